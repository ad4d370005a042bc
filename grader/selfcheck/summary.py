"""What the notebook check shows: per function its score and state, each diagnosis's
sentence and hint once, what failed where nothing was diagnosed, and the path of the
full page; rendered as HTML (jinja2, autoescaped) for Jupyter and as plain text
elsewhere. Worked out from the run's results (grader.models), never from the code."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from grader.diagnoses import Diagnosis, describe
from grader.models import CheckResult, SubmissionResult

MAX_FAILURES_SHOWN = 2  # messages of undiagnosed failures per function; the page has the rest

_env = Environment(loader=PackageLoader("grader.selfcheck", "templates"),
                   autoescape=select_autoescape(["html", "j2"], default=True),
                   trim_blocks=True, lstrip_blocks=True, undefined=StrictUndefined)


def points(value: float) -> str:
    return f"{value:g}" if math.isfinite(value) else str(value)


_env.filters["points"] = points


@dataclass
class FunctionSummary:
    name: str
    score: float
    max_score: float
    state: str  # passed | failed | not_written | not_in_kernel
    diagnoses: list[Diagnosis] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (check, message), undiagnosed
    more_failures: int = 0  # failed checks beyond those shown
    hidden_failed: int = 0  # hidden checks failed (name and result only, as on a student's page)

    @property
    def line(self) -> str:
        return {"passed": "all checks passed", "not_written": "not written yet",
                "not_in_kernel": "not defined in the kernel: run its cell, then check again",
                "failed": "some checks failed"}[self.state]


@dataclass
class Summary:
    assignment: str
    score: float
    max_score: float
    functions: list[FunctionSummary]
    notes: list[str] = field(default_factory=list)
    page: str = ""  # the full page, as a path from the notebook's folder
    error: str = ""  # why there is no result


def summarize(sub: SubmissionResult, only: list[str], missing: list[str],
              where: Callable[[str], str], page: str, assignment: str) -> Summary:
    """The summary of `sub`, for the functions `only` (all of them when empty). `missing`
    are the functions the kernel does not define; `where` rewrites line numbers of the
    built module into the notebook's cells."""
    groups: dict[str, list[CheckResult]] = {}
    for check in sub.checks:
        groups.setdefault(check.function, []).append(check)
    names = only or list(groups)
    functions = [_function(name, groups.get(name, []), name in missing, where) for name in names]
    functions = [f for f in functions if f.max_score > 0 or f.state == "not_in_kernel"]
    # The rows say which functions the kernel lacks: not the grader's list of them too.
    notes = [where(note) for note in sub.notes if not (missing and note.startswith("Not defined: "))]
    if sub.status == "error":
        notes.insert(0, where(sub.message))
    return Summary(assignment, sum(f.score for f in functions), sum(f.max_score for f in functions),
                   functions, notes, page)


def _function(name: str, checks: list[CheckResult], missing: bool, where) -> FunctionSummary:
    scored = [c for c in checks if c.max_score > 0]  # 0-point checks inform, they never fail a function
    summary = FunctionSummary(name, sum(c.score for c in checks), sum(c.max_score for c in checks), "passed")
    failed = [c for c in scored if not c.passed]
    if missing:
        summary.state = "not_in_kernel"
        return summary
    if not failed:
        return summary
    if not any(c.passed for c in scored) and any(c.message == f"{name} is not implemented yet" for c in failed):
        summary.state = "not_written"
        return summary
    summary.state = "failed"
    public = [c for c in failed if c.visibility == "public"]
    summary.hidden_failed = len(failed) - len(public)
    codes = list(dict.fromkeys(code for c in public for code in c.diagnoses))
    summary.diagnoses = [describe(code) for code in codes]
    undiagnosed = [c for c in public if not c.diagnoses] or ([] if codes else public)
    seen = set()
    for check in undiagnosed:
        message = where(check.message)
        if message in seen:
            continue
        seen.add(message)
        if len(summary.failures) < MAX_FAILURES_SHOWN:
            summary.failures.append((check.id.split(".", 1)[-1], message))
        else:
            summary.more_failures += 1
    return summary


def error_summary(assignment: str, message: str) -> Summary:
    return Summary(assignment, 0.0, 0.0, [], error=message)


_LINE = re.compile(r"\bline (\d+)\b")


def line_rewriter(where_line: Callable[[int], str | None]) -> Callable[[str], str]:
    """A function that turns "line 41" of the built module into "In [12], line 3"."""
    def rewrite(text: str) -> str:
        return _LINE.sub(lambda m: where_line(int(m.group(1))) or m.group(0), text)
    return rewrite


# ------------------------------------------------------------------ rendering
def render_html(summary: Summary) -> str:
    return _env.get_template("summary.html.j2").render(s=summary)


def render_text(summary: Summary) -> str:
    if summary.error:
        return f"Notebook check ({summary.assignment}): could not run.\n  {summary.error}\n"
    lines = [f"Notebook check ({summary.assignment}), your functions as the kernel holds them: "
             f"{points(summary.score)} / {points(summary.max_score)}"]
    for f in summary.functions:
        mark = {"passed": "ok  ", "failed": "FAIL", "not_written": "--  ", "not_in_kernel": "??  "}[f.state]
        tail = "" if f.state in ("passed", "failed") else f"  {f.line}"
        lines.append(f"  {mark} {f.name:<26} {points(f.score)}/{points(f.max_score)}{tail}")
        for d in f.diagnoses:
            lines.append(f"       {d.sentence}")
            if d.hint:
                lines.append(f"       Hint: {d.hint}")
        for check, message in f.failures:
            lines.append(f"       {check}: {message}")
        if f.more_failures:
            lines.append(f"       ... and {f.more_failures} more on the full page")
        if f.hidden_failed:
            lines.append(f"       {f.hidden_failed} hidden check(s) failed")
    for note in summary.notes:
        lines.append(f"  note: {note}")
    if summary.page:
        lines.append(f"Full page: {summary.page}")
    return "\n".join(lines) + "\n"
