"""Where results go: one record per student appended to a journal as soon as it is
finished (flushed and synced), and the final files written atomically from it.

A run that is killed halfway leaves the journal; `--resume` reads it back and
skips every student whose files have not changed since.

A record no submission can forge: every journal line carries an HMAC-SHA256 of the
record, keyed by a secret that lives beside the journal (`.nngrade/key`, mode 0600)
and that no worker can read (bubblewrap hides the output folder, Landlock and the
worker's own uid keep it out of reach elsewhere; the run's summary says which held).
`--resume` keeps only records whose digest verifies, and results.json only when
the digest the grader wrote beside it verifies. Lines are split on the byte
b"\\n" alone, which JSON never leaves unescaped inside a record: no character a
student prints (U+2028, a form feed) can split one.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import os
import secrets
import threading
import time
from pathlib import Path

from pydantic import ValidationError

from grader.models import RunResult, SubmissionResult

STATE_DIR = ".nngrade"
KEY_FILE = "key"


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _state_key(state: Path) -> bytes:
    """The output folder's secret, created once (readable by its owner only)."""
    path = state / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key.hex())
    return key


def record_digest(key: bytes, assignment: str, data: bytes) -> str:
    """The HMAC an output folder's key gives a record (a journal line, results.json, the seed)."""
    return hmac.new(key, assignment.encode() + b"\0" + data, hashlib.sha256).hexdigest()


def result_key(files_hash: str, config: bytes | None) -> str:
    """What a kept result must match for --resume: the submission's files, and the
    configuration they were graded under (its digest after a dot, so that `grade rescore`
    can carry a record over to a new configuration: grader/rescore.py)."""
    if config is None:
        return files_hash
    return f"{files_hash}.{hashlib.sha256(config).hexdigest()}"


def files_hash_of(key: str) -> str:
    """The files' part of a result key."""
    return key.partition(".")[0]


def is_grader_failure(record: SubmissionResult) -> bool:
    """A record the grader could not finish through no fault of the student's."""
    return record.status == "error" and any(d.startswith("grader.") for d in record.diagnoses)


# Each record reaches the kernel at once (a killed grader loses nothing) and the disk at
# least every SYNC_EVERY seconds: an fsync per student cost ~10 ms each, a sizeable part of
# grading one, and protects only against a power cut, after which --resume regrades the
# last second's students.
SYNC_EVERY = 1.0


class ResultStore:
    def __init__(self, out_dir: Path, assignment: str, resume: bool):
        self.out_dir = out_dir
        self.assignment = assignment
        self.state = out_dir / STATE_DIR
        self.state.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state, 0o700)
        self.key = _state_key(self.state)
        self.journal_path = self.state / f"journal-{assignment}.jsonl"
        self.results_digest_path = self.state / f"results-{assignment}.hmac"
        self.previous: dict[str, SubmissionResult] = {}
        self.refused = 0  # journal lines that failed their digest
        self._lock = threading.Lock()
        if resume:
            self.previous = self._read_journal()
            if not self.previous:
                self.previous = self._read_results()
        # The journal holds exactly this run's records, starting with the ones resumed.
        with open(self.journal_path, "wb") as f:
            for record in self.previous.values():
                f.write(self._line(record))
        self.records: dict[str, SubmissionResult] = {}
        self._synced = time.monotonic()

    # -- digests -----------------------------------------------------------
    def _digest(self, data: bytes) -> str:
        return record_digest(self.key, self.assignment, data)

    def _line(self, record: SubmissionResult) -> bytes:
        data = record.model_dump_json().encode("utf-8")
        return self._digest(data).encode("ascii") + b" " + data + b"\n"

    def _verified(self, line: bytes) -> SubmissionResult | None:
        digest, _, data = line.partition(b" ")
        try:
            if not hmac.compare_digest(digest.decode("ascii"), self._digest(data)):
                return None
            return SubmissionResult.model_validate_json(data)
        except (UnicodeDecodeError, ValidationError):
            return None

    # -- reading back --------------------------------------------------------
    def _read_journal(self) -> dict[str, SubmissionResult]:
        found = {}
        try:
            data = self.journal_path.read_bytes()
        except OSError:
            return found
        lines = data.split(b"\n")
        for number, line in enumerate(lines):
            if not line:
                continue
            record = self._verified(line)
            if record is None:
                # The last line may be one a crash cut short; any other is refused.
                self.refused += number < len(lines) - 1
                continue
            found[record.student] = record
        return found

    def _read_results(self) -> dict[str, SubmissionResult]:
        try:
            data = (self.out_dir / "results.json").read_bytes()
            digest = self.results_digest_path.read_text(encoding="ascii").strip()
        except OSError:
            return {}
        if not hmac.compare_digest(digest, self._digest(data)):
            self.refused += 1
            return {}
        try:
            run = RunResult.model_validate_json(data)
        except ValidationError:
            return {}
        return {s.student: s for s in run.submissions} if run.assignment == self.assignment else {}

    def verified_run(self) -> RunResult | None:
        """results.json as the grader wrote it, or None (absent, another assignment's, or its
        digest does not verify)."""
        try:
            data = (self.out_dir / "results.json").read_bytes()
            digest = self.results_digest_path.read_text(encoding="ascii").strip()
        except OSError:
            return None
        if not hmac.compare_digest(digest, self._digest(data)):
            return None
        try:
            run = RunResult.model_validate_json(data)
        except ValidationError:
            return None
        return run if run.assignment == self.assignment else None

    def seed(self, requested: int | None, resume: bool) -> int:
        """The run's secret seed: `requested` if given; when resuming, the seed the
        resumed run used (kept beside the journal, with its digest); else a new one."""
        path = self.state / f"seed-{self.assignment}"
        seed = requested
        if seed is None and resume:
            try:
                digest, _, text = path.read_text(encoding="ascii").strip().partition(" ")
                if hmac.compare_digest(digest, self._digest(text.encode())):
                    seed = int(text)
            except (OSError, ValueError):
                pass
        if seed is None:
            seed = secrets.randbelow(2**53)  # below 2**53: exact in every JSON reader
        write_atomic(path, f"{self._digest(str(seed).encode())} {seed}\n")
        return seed

    def reusable(self, student: str, content_hash: str) -> SubmissionResult | None:
        """The kept record of an unchanged student; never one the grader failed to finish."""
        record = self.previous.get(student)
        if record is None or record.content_hash != content_hash or is_grader_failure(record):
            return None
        return record

    # -- writing ---------------------------------------------------------------
    def add(self, record: SubmissionResult, journal: bool = True) -> None:
        with self._lock:
            self.records[record.student] = record
            if journal:
                with open(self.journal_path, "ab") as f:
                    f.write(self._line(record))
                    f.flush()  # in the kernel's cache now: a killed or crashed grader loses nothing
                    now = time.monotonic()
                    if now - self._synced >= SYNC_EVERY:  # a power cut loses at most the last second
                        os.fsync(f.fileno())
                        self._synced = now

    def rewrite_journal(self, records: list[SubmissionResult]) -> None:
        """The journal, replaced at once by exactly these records (`grade rescore`: a later
        --resume then keeps the rescored records, not the ones before)."""
        lines = b"".join(self._line(record) for record in records)
        write_atomic(self.journal_path, lines.decode("utf-8"))

    def write(self, run: RunResult) -> None:
        with self._lock, open(self.journal_path, "ab") as f:
            os.fsync(f.fileno())
        run = RunResult.model_validate(run.model_dump())  # validated on write
        text = run.model_dump_json(indent=2)
        write_atomic(self.out_dir / "results.json", text)
        write_atomic(self.results_digest_path, self._digest(text.encode("utf-8")) + "\n")
        write_atomic(self.out_dir / "grades.csv", grades_csv(run))


def read_journal(path: Path) -> list[dict]:
    """The records of a journal file as plain dicts, digests not checked (for tools and
    tests that inspect a journal; `ResultStore` verifies every line it keeps)."""
    import json

    records = []
    for line in path.read_bytes().split(b"\n"):
        _, _, data = line.partition(b" ")
        try:
            records.append(json.loads(data))
        except ValueError:
            continue  # empty, or cut short by a crash
    return records


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP, "CSV
# Injection"): such a cell gets a leading apostrophe, which spreadsheets hide.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """`cell` as a spreadsheet shows it without running it; results.json keeps the raw id."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


# After the spec's four columns (kept first, in their order), one per graded function.
CSV_TAIL = ["lms_id", "adjustment", "late_penalty", "final_score", "adjustment_reason"]


def _points(value: float) -> str:
    return f"{round(value, 6):g}"


def csv_functions(run: RunResult) -> list[str]:
    """The functions the checks graded, in the checks' order: the assignment's functions,
    or a course's own names for them."""
    return list(dict.fromkeys(c.function for s in run.submissions for c in s.checks))


def lms_id(record: SubmissionResult) -> str:
    """The student's id in the LMS the class came from ("" when unknown): Canvas's user id,
    Moodle's participant id. Read defensively: results may predate the field."""
    lms = getattr(record, "lms", None)
    return str(getattr(lms, "user_id", "") or getattr(lms, "participant_id", "") or "")


def final_score(record: SubmissionResult) -> float | None:
    """The score after the instructor's adjustments; None when the grader could not finish it."""
    if record.adjustment is not None:
        return record.adjustment.final_score
    return None if is_grader_failure(record) else record.score


def grades_csv(run: RunResult) -> str:
    functions = csv_functions(run)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["student", "score", "max_score", "status"]
                    + [spreadsheet_safe(f) for f in functions] + CSV_TAIL)
    for s in run.submissions:
        earned: dict[str, float] = {}
        for c in s.checks:
            earned[c.function] = earned.get(c.function, 0.0) + c.score
        # A submission nothing of which ran has no per-function scores: empty, not 0.
        per_function = [_points(earned[f]) if f in earned and s.status == "graded" else "" for f in functions]
        adjustment = s.adjustment
        final = final_score(s)
        writer.writerow(
            [spreadsheet_safe(s.student), _points(s.score), _points(s.max_score), s.status] + per_function
            + [spreadsheet_safe(lms_id(s)),
               _points(adjustment.points) if adjustment else "",
               _points(adjustment.late_penalty) if adjustment else "",
               "" if final is None else _points(final),
               spreadsheet_safe(adjustment.reason) if adjustment else ""])
    return buf.getvalue()
