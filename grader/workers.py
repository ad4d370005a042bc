"""Workers: the processes that run student code, seen from the grader.

Two kinds, one interface (`request`, `kill`, `dead`): `WorkerProcess`, forked by a
zygote and reached over a Unix socket (Linux: fast, and bubblewrap-able), and
`SpawnedWorker`, a fresh interpreter reached over pipes (any platform: the student
kit). Here too: the limits they run under, the spec they are started with, and the
bounded capture of what they print. Where they run is `grader.sandbox`'s business.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from grader.worker import codec

if TYPE_CHECKING:
    from grader.sandbox import Zygote

TOOLKIT_ROOT = Path(__file__).resolve().parent.parent
OUTPUT_KEEP_BYTES = 64 * 1024
CONTROL_TIMEOUT = 15.0


class SandboxUnavailable(RuntimeError):
    """The requested sandbox cannot run on this machine."""


class WorkerDied(Exception):
    def __init__(self, status: dict | None):
        super().__init__(describe_status(status))
        self.status = status


class WorkerTimedOut(Exception):
    """The request ran past its time. `report`: the last report the worker sent about it
    before it was killed (its watchdog's: where the code was), untrusted, or None."""

    def __init__(self, report: dict | None = None):
        super().__init__("timed out")
        self.report = report


def _is_report(reply: dict, request_id: int) -> bool:
    """A frame about the request under way that does not answer it (see
    grader.worker.watchdog): kept, the last one only, for a timeout to carry."""
    return reply.get("id") == request_id and reply.get("interim") is True


class WorkerProtocolError(Exception):
    """The worker sent something that is not a valid message (too big, malformed); the
    message says what, as "its worker sent ..."."""


def protocol_error(exc: codec.CodecError, received: int = 0) -> WorkerProtocolError:
    """What a worker did wrong on its channel, for the student: `received` is what the
    call had read before `exc` (see codec's limits)."""
    if isinstance(exc, codec.FrameTooLarge):
        if exc.size > codec.MAX_REPLY_BYTES:
            return WorkerProtocolError(f"its worker sent a reply of {codec.mib(exc.size)}, more than the "
                                       f"{codec.mib(codec.MAX_REPLY_BYTES)} one reply may hold")
        return WorkerProtocolError(f"its worker sent more than the {codec.mib(codec.MAX_CALL_BYTES)} one call may "
                                   f"send ({codec.mib(received)} had come, then a message of "
                                   f"{codec.mib(exc.size)}; messages that answer no call count too)")
    return WorkerProtocolError(f"its worker sent an invalid message ({exc})")


# The time one submission's calls may take together (`--budget`, `budget` in a course
# configuration's [limits]): its calls into its functions, and the reloads after its
# worker was stopped (a timeout, a crash, the memory limit), as the grader waits for
# them; not its first load (which --load-timeout bounds, twice at most: its top level,
# then its definitions alone) and not the grader's own work. When it is used up, the
# call under way is stopped and every later check fails with submission.timeout, saying
# that the budget ran out. How it was chosen: what it counts, measured over every
# correct example and variant (a 2-core machine, every check, --sandbox none and spawn),
# is at most 0.35 s: cnn 0.33 s (~180 calls; the loops of ok_loops and of
# examples/submissions/cnn/alice, and one doing every multiply-add as a Python
# statement, are the slowest), rnn 0.34 s (49 calls), cs231n 0.35 s (162 calls), fman45
# 0.13 s (96 calls). 60 s is 170 times that, still 17 times it on a machine 10 times
# slower; a submission that answers every call just inside the 10 s per-call limit then
# costs about a minute instead of ~30 minutes (each attempt: one graded again after its
# worker died gets a fresh budget).
DEFAULT_BUDGET = 60.0


@dataclass
class Limits:
    memory_mb: int = 2048
    call_timeout: float = 10.0
    load_timeout: float = 5.0
    file_size_mb: int = 64
    max_processes: int = 256
    budget: float = DEFAULT_BUDGET  # seconds, per submission (see DEFAULT_BUDGET)


def describe_status(status: dict | None) -> str:
    if not status:
        return "the worker process died"
    if "signal" in status:
        try:
            name = signal.Signals(status["signal"]).name
        except ValueError:
            name = f"signal {status['signal']}"
        hint = {"SIGSEGV": " (a segmentation fault)", "SIGXCPU": " (CPU time limit)",
                "SIGKILL": " (killed)"}.get(name, "")
        return f"the worker process was killed by {name}{hint}"
    return f"the worker process exited with code {status.get('exit')}"


# --------------------------------------------------------------------- output
class OutputCapture:
    """Keeps the first 64 KiB a submission prints (stdout and stderr, merged) and
    counts the rest. Never parsed: only shown in the report."""

    def __init__(self, keep: int = OUTPUT_KEEP_BYTES):
        self.keep = keep
        self._buf = bytearray()
        self.dropped = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def attach(self, read_fd: int) -> None:
        thread = threading.Thread(target=self._drain, args=(read_fd,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _drain(self, fd: int) -> None:
        try:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                with self._lock:
                    room = self.keep - len(self._buf)
                    if room > 0:
                        self._buf += chunk[:room]
                    self.dropped += max(0, len(chunk) - max(room, 0))
        finally:
            os.close(fd)

    def finish(self, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def text(self) -> str:
        with self._lock:
            return self._buf.decode("utf-8", errors="replace")


def zygote_environment() -> dict[str, str]:
    """A scrubbed environment: nothing of the grader's, one thread per BLAS so that
    parallel workers do not fight over cores."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
    }
    # Some processors need these for OpenBLAS to compute correctly: keep them.
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def worker_spec(workdir: Path, limits: Limits, *, mode: str, scratch: Path, cwd: Path, forbidden: list[str],
                read_policy: dict | None, uid: int | None = None, keep_read_search: bool = False,
                path: str, extra_env: dict[str, str] | None = None) -> dict:
    """What a worker is told before it loads anything: its sandbox, folder, limits and
    environment (see `grader.worker.serve.enter_sandbox`)."""
    from grader.assignment import TOOLKIT_PACKAGES
    from grader.sandbox import landlock_abi

    abi = landlock_abi()
    write = [str(workdir), "/dev/null"] + (["/tmp"] if mode == "bwrap" else [])
    return {
        "mode": mode,
        "workdir": str(workdir),
        "scratch": str(scratch),
        "cwd": str(cwd),
        "memory_bytes": limits.memory_mb * 1024 * 1024,
        "file_size_bytes": limits.file_size_mb * 1024 * 1024,
        # A backstop over the whole session; each call also gets its own CPU budget.
        "cpu_seconds_total": int(max(60, 30 * limits.call_timeout)),
        "max_processes": limits.max_processes,
        "forbidden_imports": list(forbidden),
        "toolkit_names": list(TOOLKIT_PACKAGES),
        "drop_to_uid": uid,
        "keep_read_search": keep_read_search,
        "limit_processes": mode == "bwrap" or uid is not None,
        # Reads: none mode's zygote applies the rules it built once; a spawned worker is
        # given them; under bubblewrap nothing private is in view. Writes: its own copy.
        "landlock": {**(read_policy or {}), "write": write} if abi >= 1 else None,
        # Where Landlock cannot scope signals and the worker has the grader's uid,
        # seccomp keeps its signals to itself.
        "confine_signals": mode != "bwrap" and uid is None and abi < 6,
        "env": {"PATH": path, "HOME": str(workdir), "TMPDIR": str(workdir), "LANG": "C.UTF-8",
                "MPLBACKEND": "Agg", "USER": "student", **(extra_env or {})},
    }


def ready(channel, deadline: float) -> dict:
    """The worker's first frame: what held of its sandbox, sent before any student code
    exists (so it can be believed). A worker whose sandbox failed says why and exits."""
    try:
        header, _, _ = codec.recv_reply(channel, deadline)
    except (codec.CodecError, codec.FrameTimeout, codec.PeerClosed, OSError) as exc:
        raise SandboxUnavailable(f"the worker did not start ({type(exc).__name__}: {exc})") from None
    if header.get("op") == "ready" and isinstance(header.get("held"), dict):
        return header["held"]
    raise SandboxUnavailable(f"the worker's sandbox could not be set up: {str(header.get('message'))[:500]}")


class WorkerProcess:
    """One live worker: a socket to it, its pid (inside the zygote's namespace)."""

    def __init__(self, zygote: Zygote, workdir: Path, limits: Limits, output: OutputCapture, **sandbox):
        self.zygote = zygote
        self.limits = limits
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        read_fd, write_fd = os.pipe()
        spec = worker_spec(workdir, limits, path="/usr/bin:/bin", **sandbox)
        try:
            reply = zygote.request({"op": "spawn", "spec": spec}, [theirs.fileno(), write_fd])
        finally:
            theirs.close()
            os.close(write_fd)
        output.attach(read_fd)
        self.sock = ours
        if "pid" not in reply:
            ours.close()
            raise SandboxUnavailable(f"the worker host could not start a worker: {reply.get('error')}")
        self.pid = int(reply["pid"])
        self.dead = False
        self._next_id = 0
        try:
            self.held = ready(self.sock, time.monotonic() + CONTROL_TIMEOUT)
        except SandboxUnavailable:
            self.kill()
            raise

    def request(self, header: dict, buffers: list[bytes], timeout: float) -> tuple[dict, list[bytes]]:
        """Send one request and wait for its reply. Raises WorkerTimedOut (the worker
        is then killed), WorkerDied, or WorkerProtocolError (the worker is killed): a
        frame over codec.MAX_REPLY_BYTES, or more than codec.MAX_CALL_BYTES read while
        waiting, stale and forged frames included, is one."""
        if self.dead:
            raise WorkerDied({"exit": None})
        self._next_id += 1
        header = {**header, "id": self._next_id}
        deadline = time.monotonic() + timeout
        received = 0
        report = None
        try:
            codec.send_message(self.sock, header, buffers)
            while True:
                reply, out, size = codec.recv_reply(self.sock, deadline, codec.MAX_CALL_BYTES - received)
                received += size
                if _is_report(reply, self._next_id):
                    report = reply
                elif reply.get("id") == self._next_id:
                    return reply, out
                # A report, or a stale or forged frame: it does not answer this request, but
                # its bytes count. Dropped before the next one is read.
                del reply, out
        except codec.FrameTimeout:
            self.kill()
            raise WorkerTimedOut(report) from None
        except (codec.PeerClosed, BrokenPipeError, ConnectionResetError):
            status = self.zygote.request({"op": "status", "pid": self.pid, "wait": 1.0})["status"]
            self.kill()
            raise WorkerDied(status) from None
        except codec.CodecError as exc:
            self.kill()
            raise protocol_error(exc, received) from None

    def kill(self) -> None:
        if self.dead:
            return
        self.dead = True
        try:
            self.sock.close()
        finally:
            if self.zygote.alive():
                try:
                    self.zygote.request({"op": "kill", "pid": self.pid})
                except SandboxUnavailable:
                    pass


class SpawnedWorker:
    """A worker in a fresh interpreter, over pipes: the portable path (no fork, no
    bubblewrap), for the student kit on any platform. Same interface as WorkerProcess."""

    BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "from grader.worker.spawned import main; main(sys.argv[1])")

    def __init__(self, workdir: Path, limits: Limits, output: OutputCapture, **sandbox):
        posix = os.name == "posix"
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", self.BOOT, str(TOOLKIT_ROOT)], cwd=str(workdir),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=zygote_environment(),
            start_new_session=posix,
            creationflags=0 if posix else getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0),
        )
        self.pid = self.proc.pid
        self.dead = False
        self._next_id = 0
        output.attach(os.dup(self.proc.stderr.fileno()))
        self.proc.stderr.close()
        self.channel = codec.PipeChannel(self.proc.stdout.fileno(), self.proc.stdin.fileno())
        # Windows needs SYSTEMROOT, and TEMP/TMP where POSIX reads TMPDIR.
        spec = worker_spec(workdir, limits, path=os.environ.get("PATH", ""),
                           extra_env={"TEMP": str(workdir), "TMP": str(workdir),
                                      "SYSTEMROOT": os.environ.get("SYSTEMROOT", "")}, **sandbox)
        # Pipes have no deadlines: a reader thread reads, the grader waits on a queue. It
        # reads one frame each time the grader asks for one, never ahead: what a worker
        # writes meanwhile stays in the pipe (the worker blocks when it is full).
        self._asks: queue.Queue = queue.Queue()
        self.replies: queue.Queue = queue.Queue(maxsize=1)
        self._asked = False
        threading.Thread(target=self._read_replies, daemon=True).start()
        try:
            codec.send_message(self.channel, {"op": "init", "spec": spec})
            first = self._next_frame(time.monotonic() + CONTROL_TIMEOUT, codec.MAX_REPLY_BYTES)
        except (OSError, queue.Empty) as exc:
            self.kill()
            raise SandboxUnavailable(f"the worker did not start ({type(exc).__name__})") from None
        if isinstance(first, Exception) or first[0].get("op") != "ready":
            self.kill()
            why = first if isinstance(first, Exception) else first[0].get("message")
            raise SandboxUnavailable(f"the worker's sandbox could not be set up: {str(why)[:500]}")
        self.held = first[0].get("held") if isinstance(first[0].get("held"), dict) else {}

    def _read_replies(self) -> None:
        while True:
            room = self._asks.get()
            if room is None:  # the worker was killed
                return
            try:
                self.replies.put(codec.recv_reply(self.channel, None, room))
            except Exception as exc:  # noqa: BLE001 - EOF, a bad frame: hand it to the waiter
                self.replies.put(exc)
                return

    def _next_frame(self, deadline: float, room: int):
        """The next frame (header, buffers, size) or the exception that ended the reader;
        queue.Empty past `deadline`."""
        if not self._asked:
            self._asks.put(room)
            self._asked = True
        item = self.replies.get(timeout=max(0.0, deadline - time.monotonic()))
        self._asked = False
        return item

    def request(self, header: dict, buffers: list[bytes], timeout: float) -> tuple[dict, list[bytes]]:
        if self.dead:
            raise WorkerDied({"exit": None})
        self._next_id += 1
        header = {**header, "id": self._next_id}
        deadline = time.monotonic() + timeout
        received = 0
        report = None
        try:
            codec.send_message(self.channel, header, buffers)
        except OSError:
            pass  # the reader thread reports how it ended
        while True:
            try:
                item = self._next_frame(deadline, codec.MAX_CALL_BYTES - received)
            except queue.Empty:
                self.kill()
                raise WorkerTimedOut(report) from None
            if isinstance(item, codec.CodecError):
                self.kill()
                raise protocol_error(item, received)
            if isinstance(item, Exception):
                try:
                    code = self.proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    code = None
                self.kill()
                raise WorkerDied({"signal": -code} if code is not None and code < 0 else {"exit": code})
            reply, out, size = item
            received += size
            if _is_report(reply, self._next_id):
                report = reply
            elif reply.get("id") == self._next_id:
                return reply, out
            del item, reply, out  # a report, or a stale or forged frame: its bytes count, it is dropped

    def kill(self) -> None:
        if self.dead:
            return
        self.dead = True
        self._asks.put(None)  # a reader waiting to be asked ends
        try:
            if os.name == "posix":
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                self.proc.kill()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
