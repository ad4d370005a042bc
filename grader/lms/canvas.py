"""Canvas: the Gradebook's CSV import and "Re-Upload Submissions".

Both formats are read from Canvas's own source (instructure/canvas-lms):
- lib/gradebook_importer.rb: the header's first cell holds "Student" and its second
  "ID"; "SIS Login ID" right after ID is recognised as one; the last student column is
  "Section". A row whose first cell holds "Points Possible" gives the points. Students
  are matched first on ID (the Canvas user id); an assignment column is matched on
  "Title (assignment id)" when it ends so, else on the exact title.
- app/models/assignment.rb (infer_comment_context_from_filename): each file of the
  zip is split on "_", and its first two all-digit parts are the user id and the id of
  a file of that user's submission; the file becomes a submission comment's attachment.
"""

from __future__ import annotations

import re
from pathlib import Path

from grader.lms.common import Export, ExportError, csv_text, grader_failures, names, number, points, read_run, \
    write_zip
from grader.lms.pages import student_page
from grader.models import SubmissionResult
from grader.store import write_atomic

GRADES_FILE = "canvas-grades.csv"
FEEDBACK_FILE = "canvas-feedback.zip"
STUDENT_COLUMNS = ["Student", "ID", "SIS Login ID", "Section"]
MAX_NAME_CHARS = 60


def assignment_column(title: str, assignment_id: str | None) -> str:
    """The assignment's column: "Title (id)" matches by id; the title alone matches an
    assignment of exactly that title."""
    title = title.strip()
    if not title:
        raise ExportError("--assignment-title is empty: give the assignment's title as Canvas shows it")
    if assignment_id is None:
        return title
    if not assignment_id.isdigit():
        raise ExportError(f"--assignment-id must be the number in the assignment's Canvas address, "
                          f"got {assignment_id!r}")
    return f"{title} ({assignment_id})"


def _canvas(sub: SubmissionResult) -> bool:
    return sub.lms is not None and sub.lms.system == "canvas" and bool(sub.lms.user_id)


def grades_csv(subs: list[SubmissionResult], column: str, max_score: float) -> str:
    rows = [STUDENT_COLUMNS + [column], ["Points Possible", "", "", "", number(max_score)]]
    for sub in subs:
        rows.append([sub.lms.name or sub.student, sub.lms.user_id, "", "", number(points(sub))])
    return csv_text(rows)


def feedback_name(sub: SubmissionResult) -> str:
    """`<name>_<user_id>_<attachment_id>_feedback.html`: Canvas reads the first two
    all-digit parts, so the name part keeps no "_" and is never all digits."""
    name = re.sub(r"[\W_]+", "", sub.lms.name, flags=re.UNICODE)[:MAX_NAME_CHARS]
    if not name or name.isdigit():
        name = "student"
    return f"{name}_{sub.lms.user_id}_{sub.lms.attachment_id}_feedback.html"


def export_canvas(out: Path, title: str, assignment_id: str | None = None) -> Export:
    column = assignment_column(title, assignment_id)
    run = read_run(out)
    export = Export()
    without = [s.student for s in run.submissions if not _canvas(s)]
    canvas = [s for s in run.submissions if _canvas(s)]
    if not canvas:
        raise ExportError(f"no student in {out / 'results.json'} has a Canvas user id: grade the class from "
                          "Canvas's 'Download Submissions' zip (or its unzipped folder) to export to Canvas")
    by_user: dict[str, list[SubmissionResult]] = {}
    for sub in canvas:
        by_user.setdefault(sub.lms.user_id, []).append(sub)
    twice = sorted(s.student for group in by_user.values() if len(group) > 1 for s in group)
    sendable = [s for s in canvas if len(by_user[s.lms.user_id]) == 1 and points(s) is not None]
    if without:
        export.left_out.append(f"left out {len(without)} student(s) without a Canvas user id: {names(without)}")
    if twice:
        export.left_out.append(f"left out {len(twice)} submissions that share a Canvas user id: {names(twice)}")
    export.left_out += grader_failures(canvas)

    max_score = run.max_score or max((s.max_score for s in sendable), default=0.0)
    write_atomic(out / GRADES_FILE, grades_csv(sendable, column, max_score))
    export.written.append(out / GRADES_FILE)
    export.exported = len(sendable)

    pages = [(feedback_name(s), student_page(run, s)) for s in sendable if s.lms.attachment_id]
    no_file = [s.student for s in sendable if not s.lms.attachment_id]
    if no_file:
        export.left_out.append(f"no feedback page for {len(no_file)} student(s) whose download named no "
                               f"submitted file: {names(no_file)}")
    write_zip(out / FEEDBACK_FILE, pages)
    export.written.append(out / FEEDBACK_FILE)
    return export
