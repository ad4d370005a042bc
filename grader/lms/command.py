"""`grade export canvas|moodle OUT`: the wiring of the exports (grader.lms.canvas,
grader.lms.moodle); one line per file written and per group of students left out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK, EXIT_USAGE = 0, 2

NEXT_STEPS = {
    "canvas": "In Canvas: Grades > Import > {grades} (students matched on ID); then on the assignment's "
              "page, Re-Upload Submissions > {feedback} (each page becomes a submission comment).",
    "moodle": "In Moodle, on the assignment's submissions page: Upload grading worksheet > {grades}; then "
              "Upload multiple feedback files in a zip > {feedback} (the 'Offline grading worksheet' and "
              "'Feedback files' feedback types must be on).",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grade export",
        description="Write a graded class's grades and student-facing feedback in the form Canvas or Moodle "
        "imports. Reads OUT/results.json (a class graded from the platform's download, whose file names "
        "carry the students' ids) and writes the files into OUT.")
    systems = parser.add_subparsers(dest="system", required=True, metavar="{canvas,moodle}")
    canvas = systems.add_parser(
        "canvas", help="canvas-grades.csv (Gradebook > Import) and canvas-feedback.zip (Re-Upload Submissions)",
        description="Write OUT/canvas-grades.csv for the Gradebook's CSV import and OUT/canvas-feedback.zip "
        "for the assignment's 'Re-Upload Submissions'.")
    canvas.add_argument("out", type=Path, metavar="OUT", help="the folder a class run wrote (holds results.json)")
    canvas.add_argument("--assignment-title", required=True, metavar="TITLE",
                        help="the assignment's title in Canvas, exactly as the gradebook shows it")
    canvas.add_argument("--assignment-id", metavar="N",
                        help="the assignment's Canvas id (the number in its address): the column becomes "
                        "'TITLE (N)', which Canvas matches by id even if two assignments share the title")
    moodle = systems.add_parser(
        "moodle", help="moodle-grades.csv (Upload grading worksheet) and moodle-feedback.zip",
        description="Write OUT/moodle-grades.csv for the assignment's 'Upload grading worksheet' and "
        "OUT/moodle-feedback.zip for 'Upload multiple feedback files in a zip'.")
    moodle.add_argument("out", type=Path, metavar="OUT", help="the folder a class run wrote (holds results.json)")
    return parser


def export_command(argv: list[str]) -> int:
    from grader.lms.canvas import export_canvas
    from grader.lms.common import ExportError
    from grader.lms.moodle import export_moodle

    args = build_parser().parse_args(argv)
    try:
        if args.system == "canvas":
            export = export_canvas(args.out, args.assignment_title, args.assignment_id)
        else:
            export = export_moodle(args.out)
    except (ExportError, OSError) as exc:
        text = f"{exc.strerror}: {exc.filename}" if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"grade export: error: {text}", file=sys.stderr)
        return EXIT_USAGE
    for line in export.left_out:
        print(f"warning: {line}", file=sys.stderr)
    grades, feedback = export.written
    print(f"Wrote {grades} and {feedback} for {export.exported} student(s).")
    print(NEXT_STEPS[args.system].format(grades=grades.name, feedback=feedback.name))
    return EXIT_OK
