"""The pages a student may see: the report's student view (hidden checks by name and
result only; what the code printed kept back when hidden checks ran; diagnoses that
only hidden checks found left out). The same page is written by `grade --student-pages`
and put in the Canvas and Moodle feedback zips."""

from __future__ import annotations

from pathlib import Path

from grader.models import RunResult, SubmissionResult
from grader.report.html import render_student
from grader.report.view import file_names
from grader.store import write_atomic


def student_page(run: RunResult, sub: SubmissionResult) -> str:
    return render_student(run, sub, student_view=True)


def write_student_pages(run: RunResult, folder: Path) -> int:
    """One page per student in `folder` (created), named as the instructor's pages are."""
    folder.mkdir(parents=True, exist_ok=True)
    pages = file_names([s.student for s in run.submissions], ".html", reserved=())
    for sub in run.submissions:
        write_atomic(folder / pages[sub.student], student_page(run, sub))
    return len(run.submissions)
