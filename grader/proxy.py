"""`student.conv2d_forward(x, w, b, stride=2, pad=1)`: a call into the worker.

A call returns plain data, or raises `StudentCallError` with a diagnosis code
(`submission.timeout`, `submission.memory_limit`, `submission.crashed`,
`submission.bad_return`, `submission.missing_function`) or `StudentRaised` when
the student's function raised an exception (a check may expect one, e.g. a
ValueError). After a timeout or a crash the next call gets a fresh worker.

Two time limits: each call has `Limits.call_timeout`, and all of a submission's calls
(with the reloads after its worker was stopped) share `Limits.budget` (see
`grader.workers.DEFAULT_BUDGET`). A call is never given more than what is left of the
budget; once it is used up, every later call fails at once with `submission.timeout`
and a message saying that the budget, not the call's own limit, ran out.

A function that ran past its limit once is still called by later checks (a
convolution that hangs only for stride 2 still earns its stride-1 checks), each call
with RETRY_TIMEOUT seconds at most; after MAX_TIMEOUTS_IN_A_ROW timeouts with no call
of it answering in between, it is not called again.

A call that raises or runs out of time carries a `Where` (grader.where): the call, and
the innermost frames in the student's file (before the worker is killed, its watchdog
reports where the code was running).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from grader.sandbox import (
    Limits,
    OutputCapture,
    Slot,
    WorkerDied,
    WorkerProcess,
    WorkerProtocolError,
    WorkerTimedOut,
)
from grader import where as where_
from grader.models import MAX_NAME_CHARS, Where, cut
from grader.source import Code
from grader.worker import codec

# A function that ran past Limits.call_timeout is still called by later checks, each
# call with at most this many seconds: a correct call of the cnn and rnn checks takes
# milliseconds (the slowest correct submission makes ~180 calls in 0.35 s), so this is
# room enough for a call that does not hang, and cheap for one that does.
RETRY_TIMEOUT = 2.0
# After this many timeouts of one function in a row (the first at the full limit), its
# later calls fail at once: a function that always hangs costs 10 + 2 + 2 s, not the
# submission's whole time budget.
MAX_TIMEOUTS_IN_A_ROW = 3
# The worker's watchdog reports where the code was this long before the call's limit
# (at most a fifth of the limit).
REPORT_MARGIN = 0.5


class StudentCallError(Exception):
    """A call produced no usable value; `code` is the diagnosis. `where`: the call, and
    where the student's code was (a timeout), when known."""

    def __init__(self, code: str, message: str, where: Where | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.where = where


class StudentRaised(Exception):
    """The student's function raised; `type_name` is the exception's class name.
    `location`: its line ("line 12", "cell 3, line 2"); `where`: the call and the
    frames, when known."""

    def __init__(self, function: str, type_name: str, message: str, location: str,
                 type_names: tuple[str, ...] = (), where: Where | None = None):
        text = f"{function} raised {type_name}" + (f": {message}" if message else "")
        if location:
            text += f" ({location})"
        super().__init__(text)
        self.function = function
        self.type_name = type_name
        # The class and its bases, so that a ValueError subclass counts as a ValueError.
        self.type_names = tuple(type_names) or (type_name,)
        self.message = text
        self.where = where


@dataclass
class LoadReport:
    mode: str = "none"  # full | definitions | none
    notes: list[str] = field(default_factory=list)
    functions: dict[str, str] = field(default_factory=dict)  # name -> function | missing | not_callable
    failure: StudentCallError | None = None  # why nothing could be loaded


class StudentSession:
    """The worker side of one submission, as the checks see it.

    A failure of the sandbox's helper (it died, stopped answering, could not start a
    worker) is never the student's: it raises SandboxUnavailable out of every check,
    and the submission is graded again on a fresh helper. A worker that died is
    noted in `worker_deaths`: it may be the student's doing (an exit, a segfault) or
    the machine's (the OOM killer); grading again tells which."""

    def __init__(self, slot: Slot, workdir: Path, code: Code, functions: list[str], limits: Limits,
                 main_copy: str):
        self.slot = slot
        self.workdir = workdir
        self.main_copy = main_copy  # the main file's path inside workdir
        self.code = code
        self.functions = functions
        self.limits = limits
        self.output = OutputCapture()
        self.worker: WorkerProcess | None = None
        self.report = LoadReport()
        self.blocked_imports: set[str] = set()
        self.timeouts: dict[str, int] = {}  # per function: timeouts since it last answered
        self.timed_out: set[str] = set()  # functions that ever ran past call_timeout
        self.params: dict[str, list[str]] = {}  # the student's parameter names, to label a call
        self.last_mutated: list = []
        self.last_seconds: float | None = None
        self.calls = 0
        self.worker_deaths: list[str] = []
        self.held: dict = {}  # what the first worker's sandbox said held
        self.used = 0.0  # seconds of the time budget used: calls, and reloads after the first load

    # -------------------------------------------------------------- time budget
    def _left(self) -> float:
        return self.limits.budget - self.used

    def _out_of_budget(self, function: str, stopped: bool, where: Where | None = None) -> StudentCallError:
        what = (f"{function} was stopped: the submission's time budget of {self.limits.budget:g} s ran out "
                "during this call" if stopped else
                f"{function} was not called: the submission had used up its time budget of "
                f"{self.limits.budget:g} s")
        if not any(n.startswith("Its time budget") for n in self.report.notes):
            self.report.notes.append(
                f"Its time budget of {self.limits.budget:g} s (the time all of its calls may take together) "
                f"ran out after {self.calls} call(s): the checks after that were not run (submission.timeout).")
        return StudentCallError("submission.timeout", f"{what} (the time all of its calls may take together; "
                                f"each call may also take {self.limits.call_timeout:g} s at most)", where)

    # -------------------------------------------------------------- loading
    def start(self) -> LoadReport:
        """Run the module's top level; where it fails or runs too long, fall back to
        its definitions alone, in a fresh worker."""
        full = self._load(self.code.text, "full")
        if full is None:
            self.report.mode = "full"
            return self.report
        self.report.notes.append(f"The top level of {self.code.display_name} {full}; "
                                 "it was graded from its definitions alone (imports, functions, "
                                 "classes, constants).")
        reduced = self._load(self.code.definitions_only(), "definitions")
        if reduced is None:
            self.report.mode = "definitions"
            return self.report
        self.report.mode = "none"
        self.report.notes.append(f"Its definitions alone could not be loaded either: {reduced}.")
        self.report.failure = StudentCallError(
            "submission.crashed", f"{self.code.display_name} could not be loaded: {reduced}")
        return self.report

    def _load(self, source: str, mode: str, charged: bool = False) -> str | None:
        """Load `source` in a new worker; None on success, else what went wrong. A
        `charged` load (a reload after the worker was stopped) counts against the time
        budget, and is given no more than what is left of it."""
        self._kill()
        started = time.monotonic()
        timeout = min(self.limits.load_timeout, self._left()) if charged else self.limits.load_timeout
        try:
            return self._load_in_new_worker(source, mode, timeout)
        finally:
            if charged:
                self.used += time.monotonic() - started

    def _load_in_new_worker(self, source: str, mode: str, timeout: float) -> str | None:
        cwd = (self.workdir / self.main_copy).parent
        self.worker = self.slot.spawn(self.workdir, self.limits, self.output, cwd)
        self.held = self.held or dict(self.worker.held)
        header = {"op": "load", "mode": mode, "source": source, "display_name": self.code.display_name,
                  "module_name": self.code.module_name, "file_name": self.main_copy,
                  "functions": self.functions}
        try:
            reply, _ = self.worker.request(header, [], timeout)
        except WorkerTimedOut:
            return f"ran longer than {timeout:g} s"
        except WorkerDied as exc:
            self.worker_deaths.append(f"while loading: {exc}")
            return f"ended the process ({exc})"
        except WorkerProtocolError as exc:
            return f"broke the worker protocol ({exc})"
        self._note_blocked(reply)
        if reply.get("ok") is True and isinstance(reply.get("functions"), dict):
            self.report.functions = {str(k): str(v) for k, v in reply["functions"].items()
                                     if k in self.functions}
            params = reply.get("params") if isinstance(reply.get("params"), dict) else {}
            self.params = {name: where_.parameter_names(params.get(name)) for name in self.functions}
            if mode == "definitions":
                self._note_skipped(reply.get("skipped"))  # only noted on the first load
            return None
        self._kill()
        kind = reply.get("kind")
        if kind == "memory":
            return "ran out of memory"
        where = self.code.where(reply.get("line") if isinstance(reply.get("line"), int) else None)
        where = f" at {where}" if where else ""
        if kind == "exit":
            return f"tried to exit ({cut(str(reply.get('type')), MAX_NAME_CHARS)}){where}"
        return f"raised {cut(str(reply.get('type')), MAX_NAME_CHARS)}{where}: {cut(str(reply.get('message', '')), 300)}"

    # -------------------------------------------------------------- calling
    def call(self, function: str, args: tuple, kwargs: dict, keep: tuple[int, ...] = ()):
        """The student's `function` on these arguments. The results at positions `keep`
        (a layer's cache) stay in the worker and come back as handles."""
        if self.report.failure is not None:
            raise self.report.failure
        status = self.report.functions.get(function, "missing")
        if status != "function":
            what = "is not defined" if status == "missing" else "is defined but is not a function"
            raise StudentCallError("submission.missing_function",
                                   f"{function} {what} in {self.code.display_name}")
        if self.timeouts.get(function, 0) >= MAX_TIMEOUTS_IN_A_ROW:
            raise StudentCallError("submission.timeout",
                                   f"{function} was not called again: its last {MAX_TIMEOUTS_IN_A_ROW} calls "
                                   f"ran past their time limit ({self.limits.call_timeout:g} s, then "
                                   f"{self._retry_limit():g} s each)")
        if self._left() <= 0:
            raise self._out_of_budget(function, stopped=False)
        if self.worker is None or self.worker.dead:
            again = self._load(self.code.text, "full", charged=True) if self.report.mode == "full" \
                else self._load(self.code.definitions_only(), "definitions", charged=True)
            if again is not None:
                if self._left() <= 0:
                    raise self._out_of_budget(function, stopped=False)
                raise StudentCallError("submission.crashed", f"the submission could not be restarted: {again}")
        try:
            # One encoding for both, so that they share one numbering of buffers.
            tree, buffers = codec.encode((list(args), dict(kwargs)), allow_rng=True)
        except codec.CodecError as exc:  # a bug in a check, not the student's
            raise RuntimeError(f"check passed a value that cannot be sent: {exc}") from exc
        tree_args, tree_kwargs = tree["tuple"]
        limit = self._retry_limit() if function in self.timed_out else self.limits.call_timeout
        left = self._left()
        timeout = min(limit, left)
        header = {"op": "call", "fn": function, "args": tree_args, "kwargs": tree_kwargs,
                  "cpu_seconds": limit, "keep": list(keep),
                  "report_after": max(0.0, timeout - min(REPORT_MARGIN, timeout / 5))}
        self.calls += 1
        started = time.monotonic()
        try:
            reply, out = self.worker.request(header, buffers, timeout)
        except WorkerTimedOut as stopped:
            at = self._where(function, args, kwargs, stopped.report, stopped=True)
            if left < limit:
                raise self._out_of_budget(function, stopped=True, where=at) from None
            self.timeouts[function] = self.timeouts.get(function, 0) + 1
            running = f"; it was running {at.frames[0].place}" if at.frames else ""
            if function not in self.timed_out:
                self.timed_out.add(function)
                what = f"the {limit:g} s limit"
            elif limit < self.limits.call_timeout:
                what = f"{limit:g} s, the limit of its calls after one ran past {self.limits.call_timeout:g} s"
            else:
                what = f"the {limit:g} s limit again"
            raise StudentCallError("submission.timeout", f"{function} ran past {what}{running}", at) from None
        except WorkerDied as exc:
            self.worker_deaths.append(f"{function}: {exc}")
            raise StudentCallError("submission.crashed", f"{function}: {exc}") from None
        except WorkerProtocolError as exc:
            raise StudentCallError("submission.bad_return", f"{function}: {exc}; the worker was stopped") from None
        finally:
            self.used += time.monotonic() - started
        self._note_blocked(reply)
        self.timeouts.pop(function, None)  # it answered: only timeouts in a row stop its calls
        if reply.get("ok") is True:
            try:
                value = codec.decode(reply.get("value"), out)
            except codec.CodecError as exc:
                raise StudentCallError("submission.bad_return", f"{function} returned {exc}") from None
            mutated = reply.get("mutated")
            self.last_mutated = [m for m in mutated if type(m) in (int, str)] if isinstance(mutated, list) else []
            seconds = reply.get("seconds")
            self.last_seconds = float(seconds) if type(seconds) in (int, float) else None
            return value
        return self._failure(function, reply, args, kwargs)

    def _retry_limit(self) -> float:
        return min(RETRY_TIMEOUT, self.limits.call_timeout)

    def _where(self, function: str, args: tuple, kwargs: dict, reported, stopped: bool = False) -> Where:
        return where_.where(function, args, kwargs, self.code, reported, self.params.get(function, []), stopped)

    def _failure(self, function: str, reply: dict, args: tuple = (), kwargs: dict | None = None):
        kind = reply.get("kind")
        message = str(reply.get("message", ""))[:500]
        if kind == "memory":
            self._kill()  # a worker that hit its memory limit may be in a bad state
            raise StudentCallError("submission.memory_limit",
                                   f"{function} ran past the {self.limits.memory_mb} MB memory limit")
        if kind == "exit":
            self._kill()
            raise StudentCallError("submission.crashed", message or f"{function} tried to exit")
        if kind == "bad_return":
            raise StudentCallError("submission.bad_return", f"{function} returned {message}")
        if kind == "missing":
            raise StudentCallError("submission.missing_function", message)
        if kind == "raised":
            line = reply.get("line") if isinstance(reply.get("line"), int) else None
            bases = reply.get("bases")
            bases = tuple(cut(str(b), MAX_NAME_CHARS) for b in bases[:20]) if isinstance(bases, list) else ()
            raise StudentRaised(function, cut(str(reply.get("type", "an exception")), MAX_NAME_CHARS), message,
                                self.code.where(line), bases, self._where(function, args, kwargs or {}, reply))
        self._kill()
        raise StudentCallError("submission.crashed", f"{function}: the worker sent an invalid reply")

    def _note_skipped(self, skipped) -> None:
        if not isinstance(skipped, list) or self.report.mode != "none":
            return
        for item in skipped[:20]:
            if isinstance(item, dict) and isinstance(item.get("line"), int):
                self.report.notes.append(
                    f"The statement at {self.code.where(item['line'])} failed "
                    f"({cut(str(item.get('type')), MAX_NAME_CHARS)}: {cut(str(item.get('message')), 200)}) and was left out.")

    def _note_blocked(self, reply: dict) -> None:
        blocked = reply.get("blocked_imports")
        if isinstance(blocked, list):
            self.blocked_imports.update(cut(str(b), MAX_NAME_CHARS) for b in blocked[:20])

    def _kill(self) -> None:
        if self.worker is not None:
            self.worker.kill()
            self.worker = None

    def close(self) -> None:
        self._kill()
        self.output.finish()


class Proxy:
    """Attribute access to the student's functions: `student.relu_forward(x)`.

    Two reserved methods report on the last successful call, as the worker measured
    it: `_mutated_inputs()` (positions or keyword names of array arguments the
    function wrote into) and `_seconds()` (the call's duration inside the worker).
    """

    def __init__(self, caller, functions: list[str], session=None):
        self._caller = caller
        self._functions = set(functions)
        self._session = session

    def _mutated_inputs(self) -> list:
        return list(self._session.last_mutated) if self._session is not None else []

    def _seconds(self) -> float | None:
        return self._session.last_seconds if self._session is not None else None

    def __getattr__(self, name: str):
        if name.startswith("_") or name not in self._functions:
            raise AttributeError(name)

        def call(*args, **kwargs):
            return self._caller(name, args, kwargs)

        call.__name__ = name
        return call
