"""Moodle: the assignment's offline grading worksheet and "Upload multiple feedback
files in a zip".

Both formats are read from Moodle's own source (moodle/moodle, mod/assign):
- feedback/offline/importgradeslib.php and locallib.php: the columns are found by their
  exact English header: "Identifier" (its value "Participant <id>", the prefix cut off),
  "Grade", "Last modified (grade)", and the feedback comments plugin's "Feedback
  comments"; every other column is ignored. A row is skipped when Moodle's grade was
  changed more than 60 s after its "Last modified (grade)", when the grade is empty,
  negative or above the assignment's maximum, or when it is unchanged.
- feedback/file/importziplib.php: each folder of a file's path is split on "_" into at
  most 5 parts; the first of the form `<name>_<participant id>_assignfeedback_file`
  gives the participant, and the rest of the path is the feedback file's name.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from pathlib import Path

from grader.lms.common import Export, ExportError, csv_text, grader_failures, names, number, points, read_run, \
    write_zip
from grader.lms.pages import student_page
from grader.models import RunResult, SubmissionResult
from grader.report import view
from grader.store import write_atomic

WORKSHEET_FILE = "moodle-grades.csv"
FEEDBACK_FILE = "moodle-feedback.zip"
COLUMNS = ["Identifier", "Full name", "Grade", "Maximum grade", "Last modified (grade)", "Feedback comments"]
PARTICIPANT = "Participant "  # Moodle's string 'hiddenuser' in English
MAX_NAME_CHARS = 80


def _moodle(sub: SubmissionResult) -> bool:
    return sub.lms is not None and sub.lms.system == "moodle" and bool(sub.lms.participant_id)


def feedback_comment(sub: SubmissionResult) -> str:
    """One line for the "Feedback comments" column: the score and the points per
    function, as the student's page shows them (hidden checks count, unexplained)."""
    parts = [f"{number(sub.score)} / {number(sub.max_score)}."]
    if sub.status == "error":
        parts.append(f"This submission could not be graded: {sub.message}")
    per_function = [f"{f.name} {number(f.score)}/{number(f.max_score)}"
                    for f in view.functions(sub, student_view=True)]
    if per_function:
        parts.append("; ".join(per_function) + ".")
    parts.append("The full report is in the feedback files.")
    return html.escape(" ".join(parts), quote=False)


def worksheet_csv(subs: list[SubmissionResult], modified: str) -> str:
    rows = [COLUMNS]
    for sub in subs:
        rows.append([f"{PARTICIPANT}{sub.lms.participant_id}", sub.lms.name or sub.student, number(points(sub)),
                     number(sub.max_score), modified, feedback_comment(sub)])
    return csv_text(rows)


def feedback_folder(sub: SubmissionResult) -> str:
    """`<Full name>_<id>_assignfeedback_file`: Moodle reads the id from the second "_"
    part, so the name keeps no "_" (nor a path separator)."""
    name = re.sub(r"[_/\\\x00-\x1f]+", " ", sub.lms.name).strip()[:MAX_NAME_CHARS].strip() or "Participant"
    return f"{name}_{sub.lms.participant_id}_assignfeedback_file"


def report_name(run: RunResult) -> str:
    stem = re.sub(r"[^\w.-]+", "-", run.assignment).strip(".-") or "nngrade"
    return f"{stem}-report.html"


def export_moodle(out: Path, now: dt.datetime | None = None) -> Export:
    run = read_run(out)
    export = Export()
    without = [s.student for s in run.submissions if not _moodle(s)]
    moodle = [s for s in run.submissions if _moodle(s)]
    if not moodle:
        raise ExportError(f"no student in {out / 'results.json'} has a Moodle participant id: grade the class "
                          "from Moodle's 'Download all submissions' zip (or its unzipped folder) to export to Moodle")
    by_id: dict[str, list[SubmissionResult]] = {}
    for sub in moodle:
        by_id.setdefault(sub.lms.participant_id, []).append(sub)
    twice = sorted(s.student for group in by_id.values() if len(group) > 1 for s in group)
    sendable = [s for s in moodle if len(by_id[s.lms.participant_id]) == 1 and points(s) is not None]
    if without:
        export.left_out.append(f"left out {len(without)} student(s) without a Moodle participant id: "
                               f"{names(without)}")
    if twice:
        export.left_out.append(f"left out {len(twice)} submissions that share a participant id: {names(twice)}")
    export.left_out += grader_failures(moodle)

    # The export's time: a grade changed in Moodle after it is newer than ours, and kept.
    now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    write_atomic(out / WORKSHEET_FILE, worksheet_csv(sendable, now.strftime("%Y-%m-%dT%H:%M:%S+00:00")))
    export.written.append(out / WORKSHEET_FILE)
    export.exported = len(sendable)
    page = report_name(run)
    write_zip(out / FEEDBACK_FILE, [(f"{feedback_folder(s)}/{page}", student_page(run, s)) for s in sendable])
    export.written.append(out / FEEDBACK_FILE)
    return export
