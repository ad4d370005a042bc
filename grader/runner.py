"""Grading: one submission end to end, and the pool over a class.

Scores are computed here, in the grader's process, from the plain values the
worker hands back; nothing a submission does can reach them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from grader.assignment import Assignment
from grader.checks import Check, CheckFailed
from grader.compare import DEFAULT_TOLERANCES, Tolerances
from grader.discover import Submission
from grader.models import CheckResult, SubmissionResult
from grader.oracle import ACTIVE_ORACLE, OracleMissing
from grader.proxy import StudentCallError, StudentRaised, StudentSession
from grader.sandbox import Limits, SandboxConfig, SandboxUnavailable, Slot, SlotPool
from grader.source import SourceError, forbidden_imports, load, module_name_for, toolkit_imports

INTERNAL_ERROR = "grader.internal_error"
SANDBOX_FAILED = "grader.sandbox_failed"
NOT_RECORDED = "grader.not_recorded"


@dataclass
class RunOptions:
    limits: Limits = field(default_factory=Limits)
    tolerances: Tolerances = DEFAULT_TOLERANCES
    jobs: int = 2
    sandbox: str = "none"
    hide: list[Path] = field(default_factory=list)
    seed: int | None = None  # the run's seed: every check's inputs come from it (None: fixed per check)
    config: SandboxConfig | None = None  # computed once per run from the fields above
    checks: tuple[str, ...] = ()  # run only these checks (grade --check); empty: all of them
    # (student, oracle, fixtures) -> the same, watched (grade --check --show records the calls)
    observe: Callable | None = None


def sandbox_config(options: RunOptions, assignment: Assignment) -> SandboxConfig:
    if options.config is None:
        options.config = SandboxConfig(options.sandbox, options.hide, list(assignment.forbidden_imports))
    return options.config


def run_check(check: Check, student, oracle, tolerances: Tolerances, seed: int | None = None,
              fixtures: dict | None = None) -> CheckResult:
    """Run one check; whatever happens, return its result. With a run `seed` the check's
    inputs come from (seed, check.seed), so they cannot be known before the run; without
    one from check.seed alone, the same every time (the kit, whose values are recorded)."""
    import numpy as np

    start = time.perf_counter()
    passed, message, codes, details, where = False, "", [], {}, None
    rng = np.random.default_rng(check.seed if seed is None else [seed, check.seed])
    active = ACTIVE_ORACLE.set(oracle)  # @kit_recorded models answer through it
    try:
        returned = check.call(student=student, oracle=oracle, rng=rng, tolerance=tolerances,
                              fresh_inputs=seed is not None, **(fixtures or {}))
        passed = True
        if isinstance(returned, dict):  # a passing check may report numbers and a note
            details, message = returned, str(returned.get("note", ""))
    except CheckFailed as failure:
        message, codes, details = failure.message, failure.diagnoses, failure.details
        where = _where_of(failure)  # a check that expected another exception says which
    except StudentCallError as failure:
        message, codes, where = failure.message, [failure.code], _where_of(failure)
    except OracleMissing as failure:  # the kit lacks an answer: never the student's fault
        message, codes = str(failure), [NOT_RECORDED]
    except SandboxUnavailable:
        raise  # the helper failed: this attempt at the submission is void
    except StudentRaised as failure:
        message, where = failure.message, failure.where
        if failure.type_name == "NotImplementedError":  # the template's stub: nothing to locate
            message, where = f"{failure.function} is not implemented yet", None
    except Exception as exc:  # noqa: BLE001 - a bug in a check must not stop the run
        message, codes = f"the grader failed in this check ({type(exc).__name__}: {exc})", [INTERNAL_ERROR]
    finally:
        ACTIVE_ORACLE.reset(active)
    return CheckResult(
        id=check.id, function=check.function, kind=check.kind, visibility=check.visibility,
        passed=passed, score=check.points if passed else 0.0, max_score=check.points,
        message=message[:2000], diagnoses=sorted(set(codes)), description=check.description,
        details=details, seconds=round(time.perf_counter() - start, 4), where=where,
    )


def _where_of(failure: BaseException):
    """The Where of a failed call behind `failure`: its own, or that of the call failure
    it was raised from or while handling (a backward whose forward failed)."""
    for exc in (failure, failure.__cause__, failure.__context__):
        if isinstance(exc, (StudentCallError, StudentRaised)) and exc.where is not None:
            return exc.where
    return None


def error_result(sub: Submission, assignment: Assignment, code: str, message: str) -> SubmissionResult:
    return SubmissionResult(
        student=sub.student, source=sub.relative(sub.main) if sub.main else sub.relative(sub.root),
        status="error", score=0.0, max_score=assignment.max_score, diagnoses=[code], message=message,
        files=[sub.relative(f) for f in sub.files], content_hash=sub.content_hash(), notes=list(sub.notes),
        lms=sub.lms_identity(),
    )


def grader_failure(sub: Submission, assignment: Assignment, code: str, message: str) -> SubmissionResult:
    """A submission the grader could not finish through no fault of the student's: status
    error, no score, regraded by --resume, and the run exits non-zero naming it."""
    return error_result(sub, assignment, code, f"the grader could not finish this submission: {message}")


def internal_error_result(sub: Submission, assignment: Assignment, exc: BaseException) -> SubmissionResult:
    return grader_failure(sub, assignment, INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")


@dataclass
class Attempt:
    """One try at grading a submission: its result, or why the sandbox failed under it."""

    result: SubmissionResult | None = None
    sandbox_failure: str | None = None
    worker_deaths: list[str] = field(default_factory=list)

    @property
    def disturbed(self) -> bool:
        return self.sandbox_failure is not None or bool(self.worker_deaths)


def grade_submission(sub: Submission, assignment: Assignment, slot: Slot, oracle,
                     options: RunOptions) -> SubmissionResult:
    """Grade one submission. A first attempt that the sandbox failed under, or whose
    worker died, is graded again on a fresh helper: what happens only once was the
    machine's doing and leaves no trace in the score; a worker that dies again is the
    submission's doing and is charged to it; a sandbox that fails again is the
    grader's, and the submission gets status error with grader.sandbox_failed."""
    first = _attempt(sub, assignment, slot, oracle, options)
    if not first.disturbed:
        return first.result
    slot.reset()
    second = _attempt(sub, assignment, slot, oracle, options)
    if second.sandbox_failure is not None:
        slot.reset()
        return grader_failure(sub, assignment, SANDBOX_FAILED, second.sandbox_failure)
    result = second.result
    if second.worker_deaths:
        result.notes.append("Its worker process died on a first attempt and again on a fresh sandbox ("
                            + "; ".join(second.worker_deaths[:3])[:500] + "): charged to the submission.")
    else:
        why = first.sandbox_failure or "; ".join(first.worker_deaths[:3])
        result.notes.append(f"A first attempt was disturbed ({why[:300]}); it was graded again on a "
                            "fresh sandbox, and this is that grading.")
    return result


def _attempt(sub: Submission, assignment: Assignment, slot: Slot, oracle, options: RunOptions) -> Attempt:
    try:
        return _grade_once(sub, assignment, slot, oracle, options)
    except SandboxUnavailable as exc:
        return Attempt(sandbox_failure=str(exc)[:1000])


def _grade_once(sub: Submission, assignment: Assignment, slot: Slot, oracle, options: RunOptions) -> Attempt:
    started = time.perf_counter()
    if sub.root.is_symlink():
        return Attempt(error_result(sub, assignment, "submission.unreadable",
                                    f"{sub.relative(sub.root)} is a symbolic link; links are not followed"))
    if sub.main is None:
        return Attempt(error_result(sub, assignment, "submission.empty",
                                    f"{sub.relative(sub.root)} holds no .py or .ipynb file"))
    display = sub.relative(sub.main)
    try:
        code = load(sub.main, display)
    except SourceError as exc:
        return Attempt(error_result(sub, assignment, exc.code, exc.message))
    code.module_name = module_name_for(Path(sub.name_of(sub.main)))  # Canvas renames files

    banned = forbidden_imports(code.text, list(assignment.forbidden_imports), code.imports)
    copies = sub.copies()
    main_copy = next(name for path, name in copies if path == sub.main)
    banned += toolkit_imports(code.text, code.imports, [name for _, name in copies],
                              PurePosixPath(main_copy).parent.as_posix().strip('.'))
    copies += assignment.provided_copies(PurePosixPath(main_copy).parent, {name for _, name in copies})
    workdir = slot.new_workdir(copies)
    session = StudentSession(slot, workdir, code, list(assignment.callable_functions), options.limits, main_copy)
    try:
        report = session.start()
        student = assignment.student(session.call, session)
        fixtures = assignment.course_fixtures(session.call, session)
        if options.observe is not None:
            student, oracle, fixtures = options.observe(student, oracle, fixtures)
        checks = [run_check(c, student, oracle, options.tolerances, options.seed, fixtures)
                  for c in assignment.checks if not options.checks or c.id in options.checks]
    finally:
        session.close()
        slot.cleanup(workdir)

    diagnoses = {d for c in checks for d in c.diagnoses}
    notes = list(sub.notes) + list(code.notes) + report.notes
    blocked = sorted(session.blocked_imports | {name for name, _ in banned})
    if blocked:
        diagnoses.add("submission.forbidden_import")
        lines = ", ".join(f"{name} ({code.where(line)})" for name, line in banned)
        notes.append("Imports the assignment forbids were refused: " + (lines or ", ".join(blocked)))
    if code.skipped_cells:
        diagnoses.add("submission.syntax_error")
    if assignment.contract is not None:
        from grader.contract.build import layout_note

        failed = {part for c in checks if not c.passed for part in c.function.split(" + ")}
        note = layout_note(assignment.contract, failed)
        if note:
            notes.append(note)
    missing = [f for f in assignment.functions if report.functions.get(f, "missing") != "function"]
    if missing and report.failure is None:
        notes.append("Not defined: " + ", ".join(missing))
    score = sum(c.score for c in checks)
    result = SubmissionResult(
        student=sub.student, source=display, status="graded", score=round(score, 6),
        max_score=assignment.max_score, diagnoses=sorted(diagnoses), checks=checks,
        message=f"{score:g} / {assignment.max_score:g}", files=[sub.relative(f) for f in sub.files],
        content_hash=sub.content_hash(), load_mode=report.mode, notes=notes,
        functions=report.functions, forbidden_imports=blocked, output=session.output.text,
        output_dropped_bytes=session.output.dropped, seconds=round(time.perf_counter() - started, 3),
        lms=sub.lms_identity(),
    )
    broken = [c for c in checks if INTERNAL_ERROR in c.diagnoses]
    if broken:  # a bug of the grader's: no score is recorded, the checks stay for the staff
        result.status, result.score = "error", 0.0
        result.message = (f"the grader could not finish this submission: it failed in {len(broken)} "
                          f"check(s), first {broken[0].id}: {broken[0].message}")[:2000]
    return Attempt(result, worker_deaths=session.worker_deaths)


def grade_all(subs: list[Submission], assignment: Assignment, oracle, options: RunOptions,
              on_result: Callable[[SubmissionResult], None]) -> None:
    """Grade `subs` on `options.jobs` slots; `on_result` is called as each finishes.
    Ctrl-C stops at once; what finished has been handed to `on_result`."""
    from grader import parallel

    if parallel.available(options):
        parallel.grade_in_processes(subs, assignment, oracle, options, on_result)
        return
    stopping = threading.Event()
    pool = SlotPool(max(1, options.jobs), sandbox_config(options, assignment))

    def task(sub: Submission) -> None:
        if stopping.is_set():
            return
        slot = pool.acquire()
        try:
            try:
                result = grade_submission(sub, assignment, slot, oracle, options)
            except Exception as exc:  # noqa: BLE001 - one submission never stops the run
                if stopping.is_set():
                    return
                result = internal_error_result(sub, assignment, exc)
        finally:
            pool.release(slot)
        if not stopping.is_set():
            on_result(result)

    executor = ThreadPoolExecutor(max_workers=max(1, options.jobs), thread_name_prefix="grade")
    try:
        pending = {executor.submit(task, sub) for sub in subs}
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()
    except KeyboardInterrupt:
        stopping.set()
        executor.shutdown(wait=False, cancel_futures=True)
        pool.close()  # kills the running workers: their threads return at once
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        pool.close()
