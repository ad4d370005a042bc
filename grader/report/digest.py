"""One student's results arranged to be read in ten seconds, for the page and the
terminal alike: what went wrong and what it cost, the functions not yet written,
the failed checks (identical failures said once), then the rest.

Built from results alone (grader.models) on top of `grader.report.view`'s check
views; `student_view` hides what a hidden check found exactly as the views do, and
counts the points a mistake cost over the checks the reader may see.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from grader.diagnoses import Diagnosis
from grader.models import SubmissionResult
from grader.report.view import CheckView, check_view, summary_diagnoses

MISSING_FUNCTION = "submission.missing_function"


@dataclass
class Failure:
    """One failure as the reader sees it: the checks that failed with the same message,
    the same diagnoses and the same details, said once."""

    views: list[CheckView]

    @property
    def view(self) -> CheckView:
        return self.views[0]

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.views]

    @property
    def lost(self) -> float:
        return sum(v.check.max_score - v.check.score for v in self.views)

    @property
    def max_score(self) -> float:
        return sum(v.check.max_score for v in self.views)


@dataclass
class FunctionDigest:
    name: str
    score: float
    max_score: float
    scored: int  # checks worth points
    passed_scored: int
    failures: list[Failure] = field(default_factory=list)
    passed: list[CheckView] = field(default_factory=list)  # scored checks that passed
    informational: list[CheckView] = field(default_factory=list)
    unwritten: str = ""  # why none of its checks could run: not defined, or not implemented yet
    # Its informational checks with something to say (a speed note, where the network parts
    # from the reference) that no failure has said already; the rest are folded away.
    notes: list[CheckView] = field(default_factory=list)

    @property
    def quiet(self) -> list[CheckView]:
        """What the folded part shows: passed checks, and informational ones with nothing
        new to say."""
        return self.passed + [v for v in self.informational if v not in self.notes]

    @property
    def quiet_passed(self) -> int:
        return sum(v.check.passed for v in self.quiet)

    @property
    def status(self) -> str:
        """'unwritten', 'failed', 'passed', or 'info' (a function with no scored check)."""
        if self.unwritten:
            return "unwritten"
        if self.failures:
            return "failed"
        return "passed" if self.scored else "info"


@dataclass
class Cost:
    """A diagnosis and the points lost in the shown checks that found it (None: found by
    no check, e.g. a file that does not parse)."""

    diagnosis: Diagnosis
    points: float | None
    checks: int


@dataclass
class Digest:
    functions: list[FunctionDigest]
    costs: list[Cost]

    @property
    def unwritten(self) -> list[FunctionDigest]:
        return [f for f in self.functions if f.status == "unwritten"]

    @property
    def failing(self) -> list[FunctionDigest]:
        return [f for f in self.functions if f.status == "failed"]

    @property
    def informational(self) -> list[CheckView]:
        return [v for f in self.functions for v in f.informational]

    @property
    def notes(self) -> list[FunctionDigest]:
        """Functions with informational checks that have something to say."""
        return [f for f in self.functions if f.notes]

    @property
    def folded(self) -> list[FunctionDigest]:
        """Functions with passed checks (or quiet informational ones), for the folded part."""
        return [f for f in self.functions if f.quiet]

    @property
    def folded_count(self) -> int:
        return sum(f.quiet_passed for f in self.functions)

    @property
    def failed_count(self) -> int:
        return sum(len(g.views) for f in self.failing for g in f.failures)


def _not_written(name: str, views: list[CheckView]) -> str:
    """The reason, when every scored check of `name` failed because the function is not
    there or raises NotImplementedError; else ''. A check failing on another function
    (the network's, a backward's forward) does not count."""
    parts = "|".join(re.escape(p.strip()) for p in name.split(" + "))
    own = re.compile(rf"^({parts}) is not (defined\b|implemented yet$)")
    scored = [v for v in views if not v.informational]
    if not scored or any(v.check.passed for v in scored):
        return ""
    for v in scored:
        c = v.check
        if not own.match(c.message) or ("defined" in c.message and MISSING_FUNCTION not in c.diagnoses):
            return ""
    shown = next((v.check.message for v in scored if not v.redacted), "")
    return shown or f"{name} is not written yet"


def _failures(views: list[CheckView]) -> list[Failure]:
    """Failed checks grouped by identical outcome, in the order of their first. A hidden
    check on a student's page stands alone: grouping it would tell what it found."""
    groups: dict[object, Failure] = {}
    for i, v in enumerate(views):
        c = v.check
        if v.redacted:
            key: object = ("hidden", i)
        else:
            key = (c.message, tuple(c.diagnoses), json.dumps(c.details, sort_keys=True, default=str))
        if key in groups:
            groups[key].views.append(v)
        else:
            groups[key] = Failure([v])
    return list(groups.values())


def _function(name: str, views: list[CheckView]) -> FunctionDigest:
    scored = [v for v in views if not v.informational]
    f = FunctionDigest(name, sum(v.check.score for v in views), sum(v.check.max_score for v in views),
                       len(scored), sum(v.check.passed for v in scored))
    f.informational = [v for v in views if v.informational]
    f.passed = [v for v in scored if v.check.passed]
    f.unwritten = _not_written(name, views)
    if not f.unwritten:
        f.failures = _failures([v for v in scored if not v.check.passed])
    return f


def _costs(sub: SubmissionResult, views: list[CheckView], student_view: bool) -> list[Cost]:
    costs = []
    for d in summary_diagnoses(sub, student_view):
        found = [v.check for v in views if not v.redacted and d.code in v.check.diagnoses]
        costs.append(Cost(d, sum(c.max_score - c.score for c in found) if found else None, len(found)))
    return costs


def digest(sub: SubmissionResult, student_view: bool) -> Digest:
    groups: dict[str, list[CheckView]] = {}
    for check in sub.checks:
        groups.setdefault(check.function, []).append(check_view(check, student_view))
    views = [v for group in groups.values() for v in group]
    functions = [_function(name, group) for name, group in groups.items()]
    said = {v.check.message for f in functions for g in f.failures for v in g.views if not v.redacted}
    said |= {f.unwritten for f in functions}
    for f in functions:
        f.notes = [v for v in f.informational if (v.check.message or not v.check.passed) and
                   (v.redacted or v.check.message not in said)]
    return Digest(functions, _costs(sub, views, student_view))
