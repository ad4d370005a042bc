"""One student's result as terminal text: a report too, not a list of codes.

Per function its score; under a failing function its failed checks, identical
failures said once, with the points they cost; one line per function not yet
written; then each mistake found, its sentence and hint once, with the points it
cost; the hidden points a self-check cannot see; and the path of the student's own
page. Student-facing, like the pages in `student_view`: a hidden check shows its
name and result only, and a diagnosis that only hidden checks found is left out.
"""

from __future__ import annotations

from grader.models import SubmissionResult
from grader.report.digest import digest
from grader.report.view import num

MARKS = {"passed": "ok", "failed": "FAIL", "unwritten": "TODO", "info": "info"}


def _points(lost: float) -> str:
    return f"-{num(lost)} {'point' if lost == 1 else 'points'}"


def summary_lines(sub: SubmissionResult, page: str | None = None, hidden_points: float | None = None) -> list[str]:
    d = digest(sub, student_view=True)
    lines = [f"{sub.student} ({sub.source}): {num(sub.score)} / {num(sub.max_score)}"]
    if sub.status == "error":
        lines.append(f"  could not be graded: {sub.message}")
    lines += [f"  note: {note}" for note in sub.notes]
    width = max((len(f.name) for f in d.functions), default=0)
    for f in d.functions:
        score = "no points" if f.status == "info" else f"{num(f.score)}/{num(f.max_score)}"
        head = f"  {MARKS[f.status]:<4} {f.name:<{width}}  {score:>7}"
        if f.status == "unwritten":
            lines.append(f"{head}  {f.unwritten}")
            continue
        lines.append(head)
        for g in f.failures:
            c = g.view.check
            text = "(hidden check)" if g.view.redacted else c.message
            codes = f" [{', '.join(c.diagnoses)}]" if c.diagnoses and not g.view.redacted else ""
            lines.append(f"       - {', '.join(g.names)} ({_points(g.lost)}): {text}{codes}")
        for v in f.notes:
            if not v.check.passed and not v.redacted and v.check.message:
                lines.append(f"       - {v.name} (no points): {v.check.message}")
    if d.costs:
        lines += ["", "What went wrong:"]
        for cost in d.costs:
            found = cost.diagnosis
            said = found.sentence if found.sentence != found.code else ""
            price = "" if cost.points is None else f", {_points(cost.points)}" if cost.points else ", no points"
            lines.append(f"  - {said + ' ' if said else ''}[{found.code}{price}]")
            if found.hint:
                lines.append(f"    Hint: {found.hint}")
    if hidden_points:
        lines += ["", f"{num(sub.max_score)} public points checked; {num(hidden_points)} more are in hidden "
                  "checks at grading."]
    if page:
        lines += ["", f"Your page: {page}"]
    return lines
