"""Where a call was when it ran out of time: a thread of the worker looks at the main
thread's stack shortly before the call's limit and sends the innermost frames in the
student's file to the grader, as a report that does not end the call (`"interim":
true`). The grader kills the worker at the limit as before; the report only says where.

One thread per worker, started at its first call (after the sandbox is in place:
Landlock and seccomp then cover it too), woken for each call. A report is a few line
numbers and names, sent under the lock that every frame to the grader is sent under,
and only while the call it is about is still running. Student code can stop or fool
it (it runs in the same process); the grader treats a report as untrusted data, like
everything a worker sends.
"""

from __future__ import annotations

import sys
import threading
import time

MAX_FRAMES = 3  # the innermost frames in the student's file
MAX_WALK = 10_000  # frames looked at, from the innermost (a deep recursion has more)
MAX_NAME = 200


def student_frames(frame, filename: str) -> list[dict]:
    """The innermost MAX_FRAMES frames of `frame`'s stack whose code is in `filename`,
    innermost first: [{"line", "function"}]."""
    found = []
    walked = 0
    while frame is not None and len(found) < MAX_FRAMES and walked < MAX_WALK:
        code = frame.f_code
        if code.co_filename == filename:
            found.append({"line": frame.f_lineno, "function": code.co_name[:MAX_NAME]})
        frame = frame.f_back
        walked += 1
    return found


def traceback_frames(tb, filename: str) -> list[dict]:
    """The same, for an exception's traceback (whose innermost entry is last)."""
    entries = []
    walked = 0
    while tb is not None and walked < MAX_WALK:
        if tb.tb_frame.f_code.co_filename == filename:
            entries.append({"line": tb.tb_lineno, "function": tb.tb_frame.f_code.co_name[:MAX_NAME]})
        tb = tb.tb_next
        walked += 1
    return entries[::-1][:MAX_FRAMES]


class Watchdog:
    """`start(call_id, after)` before a call, `finish()` before its reply is sent (with
    `lock` held); `send(header)` sends a frame to the grader (called with `lock` held).

    A call costs setting two fields under a lock: the thread is woken only when it would
    otherwise sleep past the new call's moment (it was idle), not for every call."""

    def __init__(self, send, filename: str):
        self._send = send
        self.filename = filename
        self.lock = threading.Lock()  # every frame to the grader is sent holding it
        self._wake = threading.Condition()
        self._due: tuple[object, float] | None = None  # (call id, when to report)
        self._until: float | None = None  # when the thread wakes by itself (None: never)
        self._running = None  # the call under way, until its reply is sent
        self._main = threading.main_thread().ident
        self._thread: threading.Thread | None = None

    def start(self, call_id, after: float) -> None:
        at = time.monotonic() + max(0.0, after)
        with self._wake:
            self._running = call_id
            self._due = (call_id, at)
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="nngrade-watchdog", daemon=True)
                self._thread.start()
            elif self._until is None or at < self._until:
                self._wake.notify()

    def finish(self) -> None:
        """The call returned: nothing more to report about it. Call with `lock` held, so
        that no report about it follows its reply."""
        with self._wake:
            self._due = None
            self._running = None

    def _watch(self) -> None:
        while True:
            with self._wake:
                while True:
                    due, now = self._due, time.monotonic()
                    if due is not None and due[1] <= now:
                        self._due = None  # one report per call
                        break
                    self._until = None if due is None else due[1]
                    self._wake.wait(None if due is None else due[1] - now)
            try:
                self._report(due[0])
            except Exception:  # noqa: BLE001 - a report is a courtesy; the limit holds without it
                pass

    def _report(self, call_id) -> None:
        frame = sys._current_frames().get(self._main)
        found = student_frames(frame, self.filename)
        del frame
        with self.lock:
            with self._wake:
                if self._running != call_id:
                    return
            self._send({"id": call_id, "interim": True, "where": found})
