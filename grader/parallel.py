"""Grading a class on several cores: one grading process per job.

The grader's own work per student (sending arguments, decoding and comparing values,
running mistake models) is Python, and threads share one GIL; with `--jobs N > 1` on
Linux the class is graded by N forked grading processes instead. They are the
grader's own code (student code still runs only in their workers), each with its own
job slot and its own memoised oracle, and they hand each finished result back to
this process, which alone writes the journal and the reports.

A grading process that dies is replaced, and the student it was grading is graded
again by its replacement: once is the machine's doing; a student whose grading ends
its process a second time is charged for it (submission.crashed, status error).
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import sys
from collections.abc import Callable

from grader.assignment import Assignment
from grader.discover import Submission
from grader.models import SubmissionResult

IDLE = -1


def available(options) -> bool:
    """Forked grading processes: Linux, more than one job, not the portable path."""
    return options.jobs > 1 and sys.platform.startswith("linux") and options.sandbox != "spawn"


def _grading_process(number, tasks, results, current, subs, assignment, oracle, options, first=None) -> None:
    from grader.runner import grade_submission, internal_error_result, sandbox_config
    from grader.sandbox import SlotPool

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle

    def stop(_signum, _frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    pool = SlotPool(1, sandbox_config(options, assignment))
    slot = pool.acquire()
    try:
        while True:
            index, first = (first, None) if first is not None else (tasks.get(), None)
            if index is None:
                return
            current[number] = index
            try:
                result = grade_submission(subs[index], assignment, slot, oracle, options)
            except Exception as exc:  # noqa: BLE001 - one submission never stops the run
                result = internal_error_result(subs[index], assignment, exc)
            results.put((index, result.model_dump_json()))
            current[number] = IDLE
    finally:
        pool.close()


def grade_in_processes(subs: list[Submission], assignment: Assignment, oracle, options,
                       on_result: Callable[[SubmissionResult], None]) -> None:
    from grader.runner import error_result, internal_error_result

    ctx = multiprocessing.get_context("fork")
    jobs = min(options.jobs, max(1, len(subs)))
    tasks, results = ctx.Queue(), ctx.Queue()
    current = ctx.Array("i", [IDLE] * jobs)
    for index in range(len(subs)):
        tasks.put(index)
    for _ in range(jobs):
        tasks.put(None)

    def start(number: int, first: int | None = None):
        process = ctx.Process(target=_grading_process, name=f"grade-{number}",
                              args=(number, tasks, results, current, subs, assignment, oracle, options, first))
        process.start()
        return process

    processes = [start(n) for n in range(jobs)]
    done: set[int] = set()
    lost_once: dict[int, int] = {}  # student -> exit code of the process that died grading it

    def record(index: int, result: SubmissionResult) -> None:
        if index not in done:
            done.add(index)
            on_result(result)

    try:
        while len(done) < len(subs):
            try:
                index, payload = results.get(timeout=0.2)
            except queue.Empty:
                for number, process in enumerate(processes):
                    if process.exitcode is None:
                        continue
                    lost = current[number]
                    if lost != IDLE and lost not in done:  # it died grading this student
                        current[number] = IDLE
                        if lost in lost_once:
                            record(lost, error_result(subs[lost], assignment, "submission.crashed",
                                   f"grading this submission ended its grading process twice (exit codes "
                                   f"{lost_once[lost]} and {process.exitcode})"))
                            processes[number] = start(number)
                        else:
                            lost_once[lost] = process.exitcode
                            processes[number] = start(number, first=lost)
                if all(p.exitcode is not None for p in processes) and results.empty():
                    for index in set(range(len(subs))) - done:  # taken by a process that died at once
                        record(index, internal_error_result(subs[index], assignment,
                                                            RuntimeError("the grading process ended")))
                continue
            record(index, SubmissionResult.model_validate_json(payload))
    finally:
        for process in processes:
            if process.exitcode is None:
                process.terminate()  # SIGTERM: it closes its slot, whose zygote and workers go too
        for process in processes:
            process.join(timeout=5)
            if process.exitcode is None:
                process.kill()
                process.join(timeout=5)
