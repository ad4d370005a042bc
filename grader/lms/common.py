"""What the Canvas and Moodle exports share: reading the run, the points a student
gets, the student's page, numbers and CSV text, and writing files atomically."""

from __future__ import annotations

import csv
import io
import os
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from grader.models import RunResult, SubmissionResult
from grader.store import is_grader_failure, spreadsheet_safe

SHOWN_NAMES = 10  # students named in one summary line before "and N more"


class ExportError(Exception):
    """The export cannot be written (a usage error): one line for the instructor."""


@dataclass
class Export:
    """What an export wrote, and who it left out and why (one line each)."""

    written: list[Path] = field(default_factory=list)
    exported: int = 0
    left_out: list[str] = field(default_factory=list)


def read_run(out: Path) -> RunResult:
    path = out / "results.json"
    try:
        return RunResult.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise ExportError(f"cannot read {path} ({exc.strerror}): grade the class with --out {out} first") from None
    except ValidationError as exc:
        raise ExportError(f"{path} is not an nngrade results file ({exc.error_count()} problem(s), first: "
                          f"{exc.errors()[0]['msg']})") from None


def points(sub: SubmissionResult) -> float | None:
    """The points that go to the gradebook, adjustments applied; None when the grader could
    not finish the submission (its 0 is no grade of the student's, and no grade is sent)."""
    from grader.store import final_score

    return final_score(sub)  # the graded score with the instructor's adjustments (None: no grade)


class Number(str):
    """A cell `number` wrote: kept as it is by `csv_text` (a negative number is no formula)."""


def number(value: float) -> Number:
    """Points as a gradebook reads them: 8.5, 100, 0.333333; never 1e-07."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return Number("0" if text in ("-0", "") else text)


def names(students: list[str]) -> str:
    shown = ", ".join(students[:SHOWN_NAMES])
    return shown + (f" and {len(students) - SHOWN_NAMES} more" if len(students) > SHOWN_NAMES else "")


def csv_text(rows: list[list[str]]) -> str:
    """CSV for a spreadsheet or an importer: every text cell neutralised (a cell that
    starts with "=" would run as a formula in a spreadsheet); numbers are kept."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    for row in rows:
        writer.writerow([cell if isinstance(cell, Number) else spreadsheet_safe(cell) for cell in row])
    return buf.getvalue()


def write_zip(path: Path, entries: list[tuple[str, str]]) -> None:
    """A zip of (name inside, text) written whole or not at all. Entries carry the time
    of writing: Moodle keeps a feedback file's time from its zip."""
    stamp = time.localtime()[:6]
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, text in entries:
                archive.writestr(zipfile.ZipInfo(name, date_time=stamp), text.encode("utf-8"),
                                 compress_type=zipfile.ZIP_DEFLATED)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def grader_failures(subs: list[SubmissionResult]) -> list[str]:
    failed = [s.student for s in subs if points(s) is None]
    if not failed:
        return []
    return [f"no grade or feedback for {len(failed)} student(s) the grader could not finish: {names(failed)} "
            "(grade the class again with --resume, then export)"]
