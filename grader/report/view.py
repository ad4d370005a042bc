"""What the pages show, worked out from results alone (the pydantic models in
grader.models), so that the templates only lay it out.

A check's `details` are free-form (each kind of check adds its own), so they are
read defensively: known shapes (a numeric mismatch, per-gradient relative errors)
are validated with pydantic and drawn specially; other scalar entries become labelled
values (times in ms, shapes as (2, 7, 7, 2), numbers to four digits), never a raw
dump; anything else is left out rather than allowed to break a page.
"""

from __future__ import annotations

import hashlib
import math
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from grader.compare import DEFAULT_TOLERANCES
from grader.diagnoses import Diagnosis, describe
from grader.models import CheckResult, RunResult, SubmissionResult
from grader.report import svg

LOAD_MODES = {
    "full": "The file ran as written.",
    "definitions": "The top level did not finish, so the file was graded from its definitions alone "
                   "(imports, functions, classes, constants).",
    "none": "The code could not be run.",
}
SCALARS = (str, int, float, bool, type(None))
MAX_FACT_CHARS = 300
MAX_FACT_ITEMS = 16
# What a student reads for the detail keys the checks write (grader/gradcheck.py, the
# assignments' checks); any other key reads as its words ("tolerance_used": "tolerance used").
LABELS = {
    "student_seconds": "your time", "reference_seconds": "the reference's time",
    "ratio": "your time / the reference's", "tolerance": "tolerance", "p_value": "p-value",
    "got_shape": "your shape", "expected_shape": "expected shape",
    "mutated": "inputs your function changed", "differentiated": "judged by differences of",
    "note": "note", "notes": "note", "counts": "counts", "observed": "observed", "expected": "expected",
}
DIFFERENTIATED = {"reference": "the reference's forward", "own": "your forward"}
# A page's or file's name from a student id: at most this many bytes before the suffix.
MAX_STEM_BYTES = 120


class Mismatch(BaseModel):
    """`details["mismatch"]` as grader.compare.mismatch writes it; every field optional."""
    model_config = ConfigDict(extra="ignore")

    name: str = ""
    index: list[int] = []
    got: float | None = None
    expected: float | None = None
    max_abs_error: float | None = None
    relative_error: float | None = None
    n_bad: int | None = None
    size: int | None = None
    slice: dict | None = None

    @property
    def where(self) -> str:
        return f"{self.name}[{','.join(map(str, self.index))}]" if self.index else self.name


_ERRORS = TypeAdapter(dict[str, float])


@dataclass
class GradientRow:
    name: str
    error: float
    above: bool  # over the tolerance, in a failed check
    own: float | None = None  # against the differences of the student's own forward (reported only)


@dataclass
class CheckView:
    check: CheckResult
    name: str
    redacted: bool  # a hidden check on a student-facing page: name and result only
    diagnoses: list[Diagnosis] = field(default_factory=list)
    mismatch: Mismatch | None = None
    heatmaps: svg.HeatmapSet | None = None
    gradients: list[GradientRow] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)

    @property
    def informational(self) -> bool:
        """Worth no points: reported, never a failure (a speed note, the end-to-end network)."""
        return self.check.max_score == 0

    @property
    def has_own_errors(self) -> bool:
        return any(g.own is not None for g in self.gradients)


@dataclass
class FunctionView:
    name: str
    checks: list[CheckView]
    score: float
    max_score: float
    passed: int


def file_names(students: list[str], suffix: str,
               reserved: tuple[str, ...] = ("index.html", "similarity.html")) -> dict[str, str]:
    """A safe, distinct file name per student: ids may hold spaces, slashes or any
    letter, two ids may reduce to one name ("a b", "a_b", or "A" and "a" on a
    case-insensitive disk), and a student called "index" must not replace the overview
    (nor one called "similarity" the page of `grade similarity`)."""
    names: dict[str, str] = {}
    taken = {r.casefold() for r in reserved}
    for student in students:
        stem = _bounded(re.sub(r"[^\w.-]", "_", student, flags=re.UNICODE).strip("._") or "student", student)
        name, n = f"{stem}{suffix}", 1
        while name.casefold() in taken:
            n += 1
            name = f"{stem}-{n}{suffix}"
        taken.add(name.casefold())
        names[student] = name
    return names


def _bounded(stem: str, student: str) -> str:
    """`stem` cut to MAX_STEM_BYTES of UTF-8 (a file name holds 255 bytes, and a page is
    first written under a longer temporary name); a cut stem ends in a digest of the
    whole id, so that two long ids sharing a beginning keep distinct names."""
    if len(stem.encode("utf-8")) <= MAX_STEM_BYTES:
        return stem
    tag = "-" + hashlib.sha256(student.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    head = stem.encode("utf-8")[: MAX_STEM_BYTES - len(tag)].decode("utf-8", "ignore")
    return head + tag


def check_name(check: CheckResult) -> str:
    return check.id.split(".", 1)[1] if "." in check.id else check.id


def num(value, digits: int = 4) -> str:
    """Points and errors without float noise: 2, 0.5, 1.48, 3.2e-09."""
    if value is None:
        return "-"
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}g}"


def duration(seconds: float) -> str:
    return f"{num(seconds * 1000, 3)} ms" if seconds < 1 else f"{num(seconds, 3)} s"


def label(key: str) -> str:
    return LABELS.get(key) or key.replace("_", " ").strip() or key


def _value(key: str, value) -> str | None:
    """One detail as a reader wants it, or None when it is no short scalar or list of them."""
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, (int, float)):
        if key.endswith("_seconds") and value >= 0:
            text = duration(value)
        elif key == "ratio":
            text = f"{value:.0f}\u00d7" if abs(value) >= 10 else f"{num(value, 2)}\u00d7"
        else:
            text = num(value)
    elif isinstance(value, str):
        text = DIFFERENTIATED.get(value, value) if key == "differentiated" else value
    elif isinstance(value, list) and len(value) <= MAX_FACT_ITEMS and all(
            isinstance(v, SCALARS) and v is not None for v in value):
        items = [v if isinstance(v, str) else _value("", v) for v in value]
        text = "(" + ", ".join(items) + ")" if key.endswith("shape") else ", ".join(items)
        if not text:
            return None
    else:
        return None
    return text if len(text) <= MAX_FACT_CHARS else text[:MAX_FACT_CHARS] + " ..."


def _facts(details: dict, skip: set[str], said: str) -> list[tuple[str, str]]:
    """Scalar entries (and short lists, and dicts of them one level down) as labelled
    values; a note the check's message already says is not said twice."""
    rows = []
    for key, value in details.items():
        key = str(key)
        if key in skip or value is None:
            continue
        if key == "notes" and isinstance(value, list):
            rows += [(label(key), str(n)[:MAX_FACT_CHARS]) for n in value
                     if isinstance(n, str) and n and n not in said]
            continue
        if key == "note" and isinstance(value, str) and (value in said or value in str(details.get("notes"))):
            continue
        if isinstance(value, dict):
            for sub, inner in value.items():
                text = None if inner is None else _value(str(sub), inner)
                if text is not None:
                    rows.append((f"{label(key)}: {sub}", text))
            continue
        text = _value(key, value)
        if text is not None:
            rows.append((label(key), text))
    return rows


def _mismatch(details: dict) -> tuple[Mismatch | None, svg.HeatmapSet | None]:
    try:
        found = Mismatch.model_validate(details.get("mismatch"))
    except ValidationError:
        return None, None
    maps = None
    part = found.slice or {}
    if "got" in part and "expected" in part:
        # The slice is the last two axes, except (N, H, W, C) arrays, whose slice is [n, :, :, c].
        idx = found.index
        focus = (idx[1], idx[2]) if len(idx) == 4 else tuple(idx[-2:]) if len(idx) >= 2 else (0, 0)
        try:
            maps = svg.heatmaps(str(part.get("label") or found.name), part["got"], part["expected"], focus)
        except (ValueError, TypeError, IndexError):
            maps = None  # a slice the picture cannot show: the numbers above still say it all
    return found, maps


def _gradients(details: dict, passed: bool) -> list[GradientRow]:
    try:
        errors = _ERRORS.validate_python(details.get("relative_errors"))
    except ValidationError:
        return []
    try:
        own = _ERRORS.validate_python(details.get("own_forward_relative_errors"))
    except ValidationError:
        own = {}
    tol = next((details[k] for k in ("tolerance", "rtol") if isinstance(details.get(k), (int, float))),
               DEFAULT_TOLERANCES.grad_rtol)
    return [GradientRow(name, err, not passed and not err <= tol, own.get(name)) for name, err in errors.items()]


def check_view(check: CheckResult, student_view: bool) -> CheckView:
    view = CheckView(check, check_name(check), redacted=student_view and check.visibility == "hidden")
    if view.redacted:
        return view
    view.diagnoses = [describe(code) for code in check.diagnoses]
    details = check.details if isinstance(check.details, dict) else {}
    known = set()
    if "mismatch" in details:
        view.mismatch, view.heatmaps = _mismatch(details)
        if view.mismatch is not None:
            known.add("mismatch")
    if "relative_errors" in details:
        view.gradients = _gradients(details, check.passed)
        if view.gradients:
            known.add("relative_errors")
            if view.has_own_errors:
                known.add("own_forward_relative_errors")
    view.facts = _facts(details, known, check.message)
    return view


def functions(sub: SubmissionResult, student_view: bool) -> list[FunctionView]:
    groups: dict[str, list[CheckResult]] = {}
    for check in sub.checks:
        groups.setdefault(check.function, []).append(check)
    return [FunctionView(name, [check_view(c, student_view) for c in checks],
                         sum(c.score for c in checks), sum(c.max_score for c in checks),
                         sum(c.passed for c in checks))
            for name, checks in groups.items()]


def output_visible(sub: SubmissionResult, student_view: bool) -> bool:
    """Whether a page may show what the code printed. Not to a student when hidden
    checks ran: a print inside a function would show a hidden check's inputs."""
    return not student_view or not any(c.visibility == "hidden" for c in sub.checks)


def summary_diagnoses(sub: SubmissionResult, student_view: bool) -> list[Diagnosis]:
    """The submission's diagnoses; a student-facing page leaves out those that only
    hidden checks found, which would tell what the hidden checks test."""
    if not student_view:
        return [describe(code) for code in sub.diagnoses]
    from_checks = {code for c in sub.checks for code in c.diagnoses}
    shown = {code for c in sub.checks if c.visibility == "public" for code in c.diagnoses}
    return [describe(code) for code in sub.diagnoses if code in shown or code not in from_checks]


# -- the class overview ------------------------------------------------------------------


@dataclass
class CheckRate:
    id: str
    function: str
    name: str
    kind: str
    visibility: str
    max_score: float
    passed: int = 0
    total: int = 0

    @property
    def percent(self) -> float:
        return 100.0 * self.passed / self.total if self.total else 0.0


@dataclass
class Common:
    diagnosis: Diagnosis
    students: list[str]
    percent: float


@dataclass
class Overview:
    rows: list[SubmissionResult]
    histogram: svg.Histogram
    rates: list[CheckRate]
    common: list[Common]
    count: int
    errors: int
    mean: float
    median: float
    full_marks: int


def overview(run: RunResult) -> Overview:
    subs = run.submissions
    # Students whose code could not be run at all come first: they need a person.
    rows = sorted(subs, key=lambda s: (s.status != "error", s.student.casefold()))
    max_score = run.max_score or max((s.max_score for s in subs), default=0.0)
    rates: dict[str, CheckRate] = {}
    for sub in subs:
        for c in sub.checks:
            rate = rates.setdefault(c.id, CheckRate(c.id, c.function, check_name(c), c.kind, c.visibility,
                                                    c.max_score))
            rate.total += 1
            rate.passed += c.passed
    who: dict[str, list[str]] = {}
    for sub in subs:
        for code in dict.fromkeys(sub.diagnoses):
            who.setdefault(code, []).append(sub.student)
    counts = Counter({code: len(names) for code, names in who.items()})
    common = [Common(describe(code), sorted(who[code], key=str.casefold), 100.0 * n / len(subs))
              for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    scores = [s.score for s in subs]
    return Overview(
        rows=rows, histogram=svg.histogram(scores, max_score), rates=list(rates.values()), common=common,
        count=len(subs), errors=sum(s.status == "error" for s in subs),
        mean=statistics.fmean(scores) if scores else 0.0,
        median=statistics.median(scores) if scores else 0.0,
        full_marks=sum(s.max_score > 0 and s.score >= s.max_score for s in subs),
    )
