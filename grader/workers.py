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
    pass


class WorkerProtocolError(Exception):
    """The worker sent something that is not a valid message (too big, malformed)."""


@dataclass
class Limits:
    memory_mb: int = 2048
    call_timeout: float = 10.0
    load_timeout: float = 5.0
    file_size_mb: int = 64
    max_processes: int = 256


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
        header, _ = codec.recv_message(channel, deadline)
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
        is then killed), WorkerDied, or WorkerProtocolError (the worker is killed)."""
        if self.dead:
            raise WorkerDied({"exit": None})
        self._next_id += 1
        header = {**header, "id": self._next_id}
        deadline = time.monotonic() + timeout
        try:
            codec.send_message(self.sock, header, buffers)
            while True:
                reply, out = codec.recv_message(self.sock, deadline)
                if reply.get("id") == self._next_id:
                    return reply, out
                # A stale or forged frame: skip it, it cannot answer this request.
        except codec.FrameTimeout:
            self.kill()
            raise WorkerTimedOut() from None
        except (codec.PeerClosed, BrokenPipeError, ConnectionResetError):
            status = self.zygote.request({"op": "status", "pid": self.pid, "wait": 1.0})["status"]
            self.kill()
            raise WorkerDied(status) from None
        except codec.CodecError as exc:
            self.kill()
            raise WorkerProtocolError(str(exc)) from None

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
        self.replies: queue.Queue = queue.Queue()
        threading.Thread(target=self._read_replies, daemon=True).start()
        try:
            codec.send_message(self.channel, {"op": "init", "spec": spec})
            first = self.replies.get(timeout=CONTROL_TIMEOUT)  # pipes have no deadlines: a thread waits
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
            try:
                self.replies.put(codec.recv_message(self.channel))
            except Exception as exc:  # noqa: BLE001 - EOF, a bad frame: hand it to the waiter
                self.replies.put(exc)
                return

    def request(self, header: dict, buffers: list[bytes], timeout: float) -> tuple[dict, list[bytes]]:
        if self.dead:
            raise WorkerDied({"exit": None})
        self._next_id += 1
        header = {**header, "id": self._next_id}
        deadline = time.monotonic() + timeout
        try:
            codec.send_message(self.channel, header, buffers)
        except OSError:
            pass  # the reader thread reports how it ended
        while True:
            try:
                item = self.replies.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise WorkerTimedOut() from None
            if isinstance(item, codec.CodecError):
                self.kill()
                raise WorkerProtocolError(str(item))
            if isinstance(item, Exception):
                try:
                    code = self.proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    code = None
                self.kill()
                raise WorkerDied({"signal": -code} if code is not None and code < 0 else {"exit": code})
            reply, out = item
            if reply.get("id") == self._next_id:
                return reply, out

    def kill(self) -> None:
        if self.dead:
            return
        self.dead = True
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
