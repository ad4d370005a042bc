"""Where results go: one record per student appended to a journal as soon as it is
finished (flushed and synced), and the final files written atomically from it.

A run that is killed halfway leaves the journal; `--resume` reads it back and
skips every student whose files have not changed since.
"""

from __future__ import annotations

import csv
import io
import os
import threading
from pathlib import Path

from pydantic import ValidationError

from grader.models import RunResult, SubmissionResult

STATE_DIR = ".nngrade"


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ResultStore:
    def __init__(self, out_dir: Path, assignment: str, resume: bool):
        self.out_dir = out_dir
        self.state = out_dir / STATE_DIR
        self.state.mkdir(parents=True, exist_ok=True)
        self.journal_path = self.state / f"journal-{assignment}.jsonl"
        self.previous: dict[str, SubmissionResult] = {}
        self._lock = threading.Lock()
        if resume:
            self.previous = self._read_journal()
            if not self.previous:
                self.previous = self._read_results(assignment)
        # The journal holds exactly this run's records, starting with the ones resumed.
        with open(self.journal_path, "w", encoding="utf-8") as f:
            for record in self.previous.values():
                f.write(record.model_dump_json() + "\n")
        self.records: dict[str, SubmissionResult] = {}

    def _read_journal(self) -> dict[str, SubmissionResult]:
        found = {}
        if not self.journal_path.exists():
            return found
        for line in self.journal_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = SubmissionResult.model_validate_json(line)
            except ValidationError:
                continue  # a line cut short by a crash
            found[record.student] = record
        return found

    def _read_results(self, assignment: str) -> dict[str, SubmissionResult]:
        path = self.out_dir / "results.json"
        try:
            run = RunResult.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValidationError):
            return {}
        return {s.student: s for s in run.submissions} if run.assignment == assignment else {}

    def reusable(self, student: str, content_hash: str) -> SubmissionResult | None:
        record = self.previous.get(student)
        return record if record is not None and record.content_hash == content_hash else None

    def add(self, record: SubmissionResult, journal: bool = True) -> None:
        with self._lock:
            self.records[record.student] = record
            if journal:
                with open(self.journal_path, "a", encoding="utf-8") as f:
                    f.write(record.model_dump_json() + "\n")
                    f.flush()
                    os.fsync(f.fileno())

    def write(self, run: RunResult) -> None:
        run = RunResult.model_validate(run.model_dump())  # validated on write
        write_atomic(self.out_dir / "results.json", run.model_dump_json(indent=2))
        write_atomic(self.out_dir / "grades.csv", grades_csv(run))


def grades_csv(run: RunResult) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["student", "score", "max_score", "status"])
    for s in run.submissions:
        writer.writerow([s.student, f"{s.score:g}", f"{s.max_score:g}", s.status])
    return buf.getvalue()
