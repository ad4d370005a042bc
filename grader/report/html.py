"""HTML pages from results: one per student and the class overview.

jinja2 with autoescaping everywhere: whatever a student printed or named shows as text.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from grader.models import RunResult, SubmissionResult
from grader.store import write_atomic

_env = Environment(
    loader=PackageLoader("grader.report", "templates"),
    autoescape=select_autoescape(["html", "j2"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def page_name(student: str) -> str:
    """A safe file name for a student's page (ids may hold spaces or any letter)."""
    safe = re.sub(r"[^\w.-]", "_", student, flags=re.UNICODE).strip("._") or "student"
    return f"{safe}.html"


def by_function(sub: SubmissionResult) -> list[tuple[str, list]]:
    groups: dict[str, list] = {}
    for check in sub.checks:
        groups.setdefault(check.function, []).append(check)
    return list(groups.items())


def render_student(run: RunResult, sub: SubmissionResult, student_view: bool = False) -> str:
    return _env.get_template("student.html.j2").render(
        run=run, sub=sub, groups=by_function(sub), student_view=student_view)


def render_index(run: RunResult) -> str:
    order = sorted(run.submissions, key=lambda s: (s.status != "error", s.student))
    common = Counter(d for s in run.submissions for d in s.diagnoses).most_common()
    return _env.get_template("index.html.j2").render(run=run, submissions=order, common=common,
                                                     page_name=page_name)


def write_reports(run: RunResult, out_dir: Path) -> None:
    for sub in run.submissions:
        write_atomic(out_dir / page_name(sub.student), render_student(run, sub))
    write_atomic(out_dir / "index.html", render_index(run))
