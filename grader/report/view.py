"""What the pages show, worked out from results alone (the pydantic models in
grader.models), so that the templates only lay it out.

A check's `details` are free-form (each kind of check adds its own), so they are
read defensively: known shapes (a numeric mismatch, per-gradient relative errors)
are validated with pydantic and drawn specially; other scalar entries become a small
key/value table; anything else is left out rather than allowed to break a page.
"""

from __future__ import annotations

import hashlib
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


def _fact(value) -> str | None:
    if isinstance(value, SCALARS):
        text = "" if value is None else str(value)
    elif isinstance(value, list) and len(value) <= 16 and all(isinstance(v, SCALARS) for v in value):
        text = "[" + ", ".join(map(str, value)) + "]"
    else:
        return None
    return text if len(text) <= MAX_FACT_CHARS else text[:MAX_FACT_CHARS] + " ..."


def _facts(details: dict, skip: set[str]) -> list[tuple[str, str]]:
    """Scalar entries (and short lists, and dicts of them one level down) as text."""
    rows = []
    for key, value in details.items():
        if key in skip:
            continue
        if isinstance(value, dict):
            for sub, inner in value.items():
                text = _fact(inner)
                if text is not None:
                    rows.append((f"{key}.{sub}", text))
            continue
        text = _fact(value)
        if text is not None:
            rows.append((str(key), text))
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
    tol = next((details[k] for k in ("tolerance", "rtol") if isinstance(details.get(k), (int, float))),
               DEFAULT_TOLERANCES.grad_rtol)
    return [GradientRow(name, err, not passed and not err <= tol) for name, err in errors.items()]


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
    view.facts = _facts(details, known)
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
