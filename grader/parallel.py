"""Grading a class on several cores: one grading process per job.

The grader's own work per student (sending arguments, decoding and comparing values,
running mistake models) is Python, and threads share one GIL; with `--jobs N > 1` on
Linux the class is graded by N forked grading processes instead. They are the
grader's own code (student code still runs only in their workers), each with its own
job slot and its own memoised oracle, and they hand each finished result back to
this process, which alone writes the journal and the reports.

Each grading process talks to this one over a pipe of its own, written synchronously:
it says which student it starts, then sends the result. So a process that dies, at
whatever moment, has lost nothing it already sent, and this process knows whom it
was grading. It is replaced, and the student it was grading is graded again by its
replacement: once is the machine's doing; a student whose grading ends its process
a second time is charged for it (submission.crashed, status error).
"""

from __future__ import annotations

import json
import multiprocessing
import signal
import sys
from collections.abc import Callable
from multiprocessing.connection import wait

from grader.assignment import Assignment
from grader.discover import Submission
from grader.models import SubmissionResult


def available(options) -> bool:
    """Forked grading processes: Linux, more than one job, not the portable path."""
    return options.jobs > 1 and sys.platform.startswith("linux") and options.sandbox != "spawn"


def _grading_process(tasks, conn, subs, assignment, oracle, options, first=None) -> None:
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
            conn.send_bytes(json.dumps({"start": index}).encode())
            try:
                result = grade_submission(subs[index], assignment, slot, oracle, options)
            except Exception as exc:  # noqa: BLE001 - one submission never stops the run
                result = internal_error_result(subs[index], assignment, exc)
            conn.send_bytes(json.dumps({"done": index, "result": result.model_dump_json()}).encode())
    finally:
        # SIGTERM asks for this clean-up: once it has begun, a SIGTERM must not cut it
        # short and leave the slot's folder (and what a submission built in it) behind.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        pool.close()
        conn.close()


class _Process:
    """One grading process, the reading end of its pipe, and the student it grades."""

    def __init__(self, ctx, tasks, subs, assignment, oracle, options, first: int | None = None):
        self.conn, theirs = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=_grading_process, name="grade",
                                   args=(tasks, theirs, subs, assignment, oracle, options, first))
        self.process.start()
        theirs.close()
        self.current: int | None = first

    def read(self) -> list[dict]:
        """Every message waiting; an empty list once the process is gone."""
        messages = []
        try:
            while self.conn.poll():
                messages.append(json.loads(self.conn.recv_bytes()))
        except (EOFError, OSError):
            pass
        return messages


def grade_in_processes(subs: list[Submission], assignment: Assignment, oracle, options,
                       on_result: Callable[[SubmissionResult], None]) -> None:
    from grader.runner import error_result, internal_error_result

    ctx = multiprocessing.get_context("fork")
    jobs = min(options.jobs, max(1, len(subs)))
    tasks = ctx.Queue()
    for index in range(len(subs)):
        tasks.put(index)
    for _ in range(jobs):
        tasks.put(None)

    def start(first: int | None = None) -> _Process:
        return _Process(ctx, tasks, subs, assignment, oracle, options, first)

    workers = [start() for _ in range(jobs)]
    done: set[int] = set()
    lost_once: dict[int, int] = {}  # student -> exit code of the process that died grading it

    def record(index: int, result: SubmissionResult) -> None:
        if index not in done:
            done.add(index)
            on_result(result)

    def handle(worker: _Process) -> None:
        for message in worker.read():
            if "start" in message:
                worker.current = int(message["start"])
            elif "done" in message:
                record(int(message["done"]), SubmissionResult.model_validate_json(message["result"]))
                worker.current = None

    try:
        while len(done) < len(subs) and workers:
            ready = wait([w.conn for w in workers] + [w.process.sentinel for w in workers], timeout=0.2)
            for number, worker in enumerate(list(workers)):
                if worker.conn in ready or worker.process.sentinel in ready:
                    handle(worker)
                if worker.process.exitcode is None:
                    continue
                handle(worker)  # what it sent before it went
                lost, code = worker.current, worker.process.exitcode
                if lost is None or lost in done:
                    workers.remove(worker)  # finished its share, or died between students
                    if lost is None and code != 0 and not tasks.empty():
                        workers.append(start())
                elif lost in lost_once:
                    record(lost, error_result(subs[lost], assignment, "submission.crashed",
                                              f"grading this submission ended its grading process twice "
                                              f"(exit codes {lost_once[lost]} and {code})"))
                    workers[workers.index(worker)] = start()
                else:
                    lost_once[lost] = code
                    workers[workers.index(worker)] = start(first=lost)
        for index in set(range(len(subs))) - done:  # nobody left to grade them: ours to own up to
            record(index, internal_error_result(subs[index], assignment,
                                                RuntimeError("no grading process was left to grade it")))
    finally:
        for worker in workers:
            if worker.process.exitcode is None:
                worker.process.terminate()  # SIGTERM: it closes its slot, whose zygote and workers go too
        for worker in workers:
            worker.process.join(timeout=5)
            if worker.process.exitcode is None:
                worker.process.kill()
                worker.process.join(timeout=5)
