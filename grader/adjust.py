"""The instructor's adjustments: a TOML file of points given or taken by hand (with the
reason), comments for students, and a late penalty, validated by pydantic (an unknown
key is an error naming its line and the nearest known key, as for grader/config.py).

    assignment = "cnn"          # optional: refuse this file for another assignment

    [late]                      # optional: a penalty for lateness
    per_day = 10                # percent of the maximum score per day late (days counted whole, rounded up)
    cap = 50                    # the most it takes in all, in percent (default 100)
    flagged_days = 1            # days counted when the LMS flags a file LATE without saying how late

    [students.carol]
    points = -5                 # either sign; a reason is required when it is not 0
    reason = "the lecture's code copied without citing it"
    comment = "Come and see me in office hours."
    late_days = 2               # wins over the LMS's flag; 0 excuses a late file

Applied when the reports are written, never to `score` (the graded score): each
student's `adjustment` in results.json holds what was applied and the `final_score`.
Which file a run uses: `--adjustments FILE` is checked and copied to
OUT/adjustments.toml (replacing the copy there); without the flag, OUT/adjustments.toml
is used when it exists. So a rerun, `--resume` and `grade rescore OUT` keep the
adjustments; edit OUT/adjustments.toml (or give the flag again) to change them, delete
it to drop them.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, PrivateAttr, ValidationError, model_validator

from grader.models import Adjustment, SubmissionResult
from grader.store import is_grader_failure, write_atomic

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ADJUSTMENTS_FILE = "adjustments.toml"
STRICT = ConfigDict(extra="forbid")
ADJUSTMENT_WARNING = "adjustments: "  # how a run's warnings about its adjustments begin (a rescore replaces them)


class LateRule(BaseModel):
    model_config = STRICT

    per_day: FiniteFloat = Field(ge=0, le=100)  # percent of the maximum score per day late
    cap: FiniteFloat = Field(default=100, ge=0, le=100)  # percent, in all
    flagged_days: FiniteFloat = Field(default=1, ge=0)  # an LMS's LATE flag alone counts this many days

    def penalty(self, days: float, max_score: float) -> float:
        """Points taken for `days` late: every started day counts."""
        percent = min(self.cap, self.per_day * math.ceil(days)) if days > 0 else 0.0
        return round(max_score * percent / 100, 6)


class StudentAdjustment(BaseModel):
    model_config = STRICT

    points: FiniteFloat = 0.0
    reason: str = ""
    comment: str = ""
    late_days: Optional[FiniteFloat] = Field(default=None, ge=0)  # None: as the LMS says

    @model_validator(mode="after")
    def _reason_given(self):
        if self.points and not self.reason.strip():
            raise ValueError(f"points = {self.points:g} needs a reason (reason = \"...\")")
        return self


class Adjustments(BaseModel):
    model_config = STRICT

    assignment: Optional[str] = None
    late: Optional[LateRule] = None
    students: dict[str, StudentAdjustment] = Field(default_factory=dict)

    _source: str = PrivateAttr(default="")
    _path: str = PrivateAttr(default=ADJUSTMENTS_FILE)

    def where(self, *parts: str) -> str:
        line = _find_line(self._source, list(parts))
        return f"{self._path}, line {line}" if line else self._path


def load_adjustments(path: Path) -> Adjustments:
    """Read and validate an adjustments file; ValueError names the file, the line and
    what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the adjustments {path}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None
    try:
        adjustments = Adjustments.model_validate(data)
    except ValidationError as exc:
        raise ValueError("\n".join(_explain(error, text, path) for error in exc.errors())) from None
    adjustments._source = text
    adjustments._path = str(path)
    for student, entry in adjustments.students.items():
        if entry.late_days and adjustments.late is None:
            raise ValueError(f"{adjustments.where('students', student, 'late_days')}: late_days = "
                             f"{entry.late_days:g} needs a [late] rule (per_day = percent of the maximum "
                             "score per day late)")
    return adjustments


def for_output(out: Path, given: Path | None, assignment: str) -> Adjustments | None:
    """The adjustments of a run that writes to `out` (see the module's docstring for the
    rule); ValueError when the file is not valid or is for another assignment."""
    kept = out / ADJUSTMENTS_FILE
    path = given if given is not None else kept
    if given is None and not kept.is_file():
        return None
    adjustments = load_adjustments(path)
    if adjustments.assignment is not None and adjustments.assignment != assignment:
        raise ValueError(f"{adjustments.where('assignment')}: these adjustments are for assignment "
                         f"{adjustments.assignment!r}, not {assignment!r}")
    if given is not None and not (kept.exists() and kept.resolve() == given.resolve()):
        write_atomic(kept, adjustments._source)
    return adjustments


def apply_adjustments(records: list[SubmissionResult], adjustments: Adjustments | None
                      ) -> tuple[list[SubmissionResult], list[str]]:
    """Copies of `records`, each with its `adjustment` worked out afresh (None where none
    applies), and a warning per adjustment that names no student of the class: those are
    reported, never applied to anyone."""
    if adjustments is None:
        return [r.model_copy(update={"adjustment": None}) for r in records], []
    adjusted = [r.model_copy(update={"adjustment": adjustment_for(r, adjustments)}) for r in records]
    present = {r.student for r in records}
    warnings = []
    for student in adjustments.students:
        if student not in present:
            near = difflib.get_close_matches(student, sorted(present), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            warnings.append(f"{ADJUSTMENT_WARNING}{adjustments.where('students', student)}: no student "
                            f"{student!r} in these results{hint}; their adjustment was not applied")
    return adjusted, warnings


def adjustment_for(record: SubmissionResult, adjustments: Adjustments) -> Adjustment | None:
    entry = adjustments.students.get(record.student)
    rule = adjustments.late
    days, source = late_days(record, entry, rule)
    if entry is None and (rule is None or not days):
        return None
    penalty = rule.penalty(days, record.max_score) if rule is not None else 0.0
    points = entry.points if entry is not None else 0.0
    final = None if is_grader_failure(record) else max(0.0, round(record.score + points - penalty, 6))
    return Adjustment(points=points, reason=entry.reason if entry else "", comment=entry.comment if entry else "",
                      late_days=days, late_from=source if days else "", late_penalty=penalty, final_score=final)


def late_days(record: SubmissionResult, entry: StudentAdjustment | None, rule: LateRule | None) -> tuple[float, str]:
    """How late the submission was, and who says so: the file's `late_days` wins; else the
    LMS's record when results carry one (days late when known, else its LATE flag)."""
    if entry is not None and entry.late_days is not None:
        return entry.late_days, "adjustments"
    lms = getattr(record, "lms", None)  # results from a download: grader/discover.py
    if lms is None or rule is None:
        return 0.0, ""
    system = str(getattr(lms, "system", "") or "the LMS")
    days = getattr(lms, "late_days", None)
    if isinstance(days, (int, float)) and days > 0:
        return float(days), system
    if getattr(lms, "late", False):
        return rule.flagged_days, system
    return 0.0, ""


# ------------------------------------------------------------------ error messages
_HEADER = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")
_KEY_PART = re.compile(r"\s*(\"(?:[^\"\\]|\\.)*\"|'[^']*'|[A-Za-z0-9_-]+)\s*(?:\.|$)")


def _header_parts(header: str) -> list[str]:
    parts, at = [], 0
    while at < len(header):
        match = _KEY_PART.match(header, at)
        if not match:
            return [header.strip()]
        token = match.group(1)
        parts.append(json.loads(token) if token.startswith('"') else token.strip("'"))
        at = match.end()
    return parts


def _find_line(text: str, parts: list[str]) -> int | None:
    """The line that sets `parts` (["students", "carol", "points"]): its table's header,
    the key inside its table, or else the nearest enclosing one that is in the file."""
    if not parts:
        return None
    lines = text.splitlines()
    table: list[str] = []
    key = parts[-1]
    pattern = re.compile(rf'^\s*(?:"{re.escape(key)}"|\'{re.escape(key)}\'|{re.escape(key)})\s*=')
    for number, line in enumerate(lines, start=1):
        header = _HEADER.match(line)
        if header:
            table = _header_parts(header.group(1))
            if table == parts:
                return number
            continue
        if table == parts[:-1] and pattern.match(line):
            return number
    return _find_line(text, parts[:-1])


def _explain(error: dict, text: str, path: Path) -> str:
    loc = [str(part) for part in error.get("loc", ())]
    line = _find_line(text, loc)
    where = f"{path}, line {line}" if line else str(path)
    if error.get("type") == "extra_forbidden":
        table, key = loc[:-1], loc[-1]
        known = _known_keys(table)
        near = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else f"; known keys: {', '.join(known)}"
        shown = f" in [{'.'.join(table)}]" if table else ""
        return f"{where}: unknown key {key!r}{shown}{hint}"
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{where}: {'.'.join(loc) or 'the file'}: {message}"


def _known_keys(table: list[str]) -> list[str]:
    if not table:
        return sorted(Adjustments.model_fields)
    if table == ["late"]:
        return sorted(LateRule.model_fields)
    if table[0] == "students" and len(table) == 2:
        return sorted(StudentAdjustment.model_fields)
    return []
