"""The parent side of the worker: start a zygote per job slot, spawn a worker per
submission, talk to it with deadlines, capture its output, kill what it started.

Isolation layers, outermost first:
- bubblewrap (`--sandbox bwrap`, Linux): read-only root, the toolkit, the class's
  submissions, the output folder and home hidden, a private /tmp, no network,
  its own PID namespace, dies with the grader;
- each worker: its own session (process group), a scrubbed environment, a fresh
  working directory holding a copy of its submission only, rlimits on address
  space, CPU time, file size and open files, and, when the grader runs as root,
  an unprivileged uid;
- the zygote is a child subreaper: whatever a worker starts, however detached,
  is killed when the worker is done.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from grader.worker import codec

TOOLKIT_ROOT = Path(__file__).resolve().parent.parent
NOBODY_UID = 65534
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


# --------------------------------------------------------------------- zygote
@dataclass
class SandboxConfig:
    mode: str = "auto"  # auto | bwrap | none
    hide: list[Path] = field(default_factory=list)  # folders bubblewrap hides (submissions, output)


def bwrap_works() -> bool:
    exe = shutil.which("bwrap")
    if not exe or not sys.platform.startswith("linux"):
        return False
    try:
        run = subprocess.run(
            [exe, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-all",
             "--die-with-parent", "true"],
            capture_output=True, timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return run.returncode == 0


def resolve_sandbox(mode: str) -> tuple[str, str | None]:
    """-> (effective mode, warning or None). Modes: bwrap (Linux, the full sandbox),
    none (forked workers with process limits, Linux), spawn (a fresh interpreter per
    submission over pipes: any platform, used by the student kit)."""
    if mode == "spawn":
        return "spawn", None
    if not sys.platform.startswith("linux"):
        if mode == "bwrap":
            raise SandboxUnavailable("bubblewrap only runs on Linux")
        return "spawn", None
    if mode == "none":
        return "none", "sandbox disabled (--sandbox none): workers are isolated by process limits only"
    if bwrap_works():
        return "bwrap", None
    if mode == "bwrap":
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed or cannot create namespaces here")
    return "none", ("bubblewrap is not available: workers are isolated by process limits only "
                    "(install the 'bubblewrap' package for the full sandbox)")


def _bwrap_prefix(scratch: Path, hide: list[Path]) -> list[str]:
    # A user namespace mapping us to nobody: no capabilities, even when the grader is root.
    args = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            "--tmpfs", "/tmp", "--unshare-all", "--unshare-user", "--uid", str(NOBODY_UID),
            "--gid", str(NOBODY_UID), "--cap-drop", "ALL", "--die-with-parent", "--new-session"]
    hidden = [Path.home(), *hide, TOOLKIT_ROOT]
    for path in hidden:
        if path.exists() and path != Path("/"):
            args += ["--tmpfs", str(path)]
    # Put back what the interpreter needs where a hidden folder covered it (a
    # Python under ~/.pyenv, a virtualenv inside the project) ...
    import numpy

    needed = {Path(sys.base_prefix), Path(sys.prefix), Path(numpy.__file__).resolve().parent.parent}
    for path in sorted(needed):
        if any(h == path or h in path.parents for h in hidden):
            args += ["--ro-bind", str(path), str(path)]
    # ... hide the toolkit's packages again if they were installed there ...
    for package in ("reference", "assignments", "grader"):
        for site in {p for p in needed if (p / package).is_dir() and p / package != TOOLKIT_ROOT / package}:
            args += ["--tmpfs", str(site / package)]
    # ... and put back only the worker package itself.
    grader_dir = TOOLKIT_ROOT / "grader"
    args += ["--ro-bind", str(grader_dir / "worker"), str(grader_dir / "worker"),
             "--ro-bind", str(grader_dir / "__init__.py"), str(grader_dir / "__init__.py")]
    args += ["--bind", str(scratch), str(scratch), "--chdir", str(scratch)]
    return args


def _readable_by_everyone(path: Path) -> bool:
    """Whether an unprivileged user can use the interpreter at `path`."""
    try:
        if path.stat().st_mode & 0o005 != 0o005:
            return False
        return all(parent.stat().st_mode & 0o001 for parent in path.parents)
    except OSError:
        return False


class Zygote:
    """One pre-warmed interpreter (per job slot) that forks workers on request."""

    def __init__(self, mode: str, scratch: Path, hide: list[Path], forbidden: list[str]):
        self.mode = mode
        self.scratch = scratch
        self._lock = threading.Lock()
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.ctl = parent
        boot = (
            "import sys; sys.path.insert(0, sys.argv[2]); "
            "from grader.worker.zygote import main; main(int(sys.argv[1]), sys.argv[2])"
        )
        command = [sys.executable, "-I", "-c", boot, str(child.fileno()), str(TOOLKIT_ROOT)]
        if mode == "bwrap":
            command = _bwrap_prefix(scratch, hide) + ["--"] + command
        env = zygote_environment()
        self.log_path = scratch / "zygote.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                command, pass_fds=[child.fileno()], start_new_session=True, env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=str(scratch),
            )
        child.close()

    def request(self, message: dict, fds: list[int] = ()) -> dict:
        with self._lock:
            data = json.dumps(message).encode()
            try:
                if fds:
                    socket.send_fds(self.ctl, [data], list(fds))
                else:
                    self.ctl.sendall(data)
                self.ctl.settimeout(CONTROL_TIMEOUT)
                reply = self.ctl.recv(1 << 20)
            except OSError as exc:
                raise SandboxUnavailable(f"the worker host stopped responding ({exc})") from exc
            if not reply:
                raise SandboxUnavailable("the worker host exited: " + self._log_tail())
            return json.loads(reply)

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:].strip() or "no message"
        except OSError:
            return "no message"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        """Kill every process the zygote started, then the zygote itself."""
        if self.alive():
            try:
                with self._lock:
                    self.ctl.sendall(json.dumps({"op": "sweep"}).encode())
                    self.ctl.settimeout(2.0)
                    self.ctl.recv(1 << 16)
            except OSError:
                pass
        try:
            self.ctl.close()
        finally:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


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


# --------------------------------------------------------------------- worker
def worker_spec(workdir: Path, limits: Limits, forbidden: list[str], *, drop_to_uid: int | None,
                limit_processes: bool, path: str, extra_env: dict[str, str] | None = None) -> dict:
    """What a worker is told before it loads anything: its folder, limits and environment."""
    return {
        "workdir": str(workdir),
        "memory_bytes": limits.memory_mb * 1024 * 1024,
        "file_size_bytes": limits.file_size_mb * 1024 * 1024,
        # A backstop over the whole session; each call also gets its own CPU budget.
        "cpu_seconds_total": int(max(60, 30 * limits.call_timeout)),
        "max_processes": limits.max_processes,
        "forbidden_imports": forbidden,
        "drop_to_uid": drop_to_uid,
        "limit_processes": limit_processes,
        "env": {"PATH": path, "HOME": str(workdir), "TMPDIR": str(workdir), "LANG": "C.UTF-8",
                "MPLBACKEND": "Agg", **(extra_env or {})},
    }


class WorkerProcess:
    """One live worker: a socket to it, its pid (inside the zygote's namespace)."""

    def __init__(self, zygote: Zygote, workdir: Path, limits: Limits, forbidden: list[str],
                 output: OutputCapture, drop_to_uid: int | None):
        self.zygote = zygote
        self.limits = limits
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        read_fd, write_fd = os.pipe()
        spec = worker_spec(workdir, limits, forbidden, drop_to_uid=drop_to_uid,
                           limit_processes=zygote.mode == "bwrap" or drop_to_uid is not None,
                           path="/usr/bin:/bin")
        try:
            reply = zygote.request({"op": "spawn", "spec": spec}, [theirs.fileno(), write_fd])
        finally:
            theirs.close()
            os.close(write_fd)
        output.attach(read_fd)
        self.sock = ours
        self.pid = int(reply["pid"])
        self.dead = False
        self._next_id = 0

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

    def __init__(self, workdir: Path, limits: Limits, forbidden: list[str], output: OutputCapture):
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
        self.replies: queue.Queue = queue.Queue()
        threading.Thread(target=self._read_replies, daemon=True).start()
        # Windows needs SYSTEMROOT, and TEMP/TMP where POSIX reads TMPDIR.
        spec = worker_spec(workdir, limits, forbidden, drop_to_uid=None, limit_processes=False,
                           path=os.environ.get("PATH", ""),
                           extra_env={"TEMP": str(workdir), "TMP": str(workdir),
                                      "SYSTEMROOT": os.environ.get("SYSTEMROOT", "")})
        try:
            codec.send_message(self.channel, {"op": "init", "spec": spec})
        except OSError:
            pass  # it died at once: the first request will say so

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


# --------------------------------------------------------------------- slots
class Slot:
    """A job slot: its zygote and a scratch folder where each submission gets a
    fresh working directory. One submission at a time per slot."""

    def __init__(self, index: int, run_dir: Path, mode: str, hide: list[Path], forbidden: list[str]):
        self.index = index
        self.mode = mode
        self.hide = hide
        self.forbidden = forbidden
        self.scratch = run_dir / f"slot-{index}"
        self.scratch.mkdir(mode=0o711)
        os.chmod(self.scratch, 0o711)  # mkdir's mode is filtered by the umask
        self.zygote: Zygote | None = None
        # Outside bubblewrap, a root grader runs workers as nobody, where nobody can
        # still read the interpreter (not so for a Python under /root).
        self.drop_to_uid = (NOBODY_UID if mode == "none" and os.geteuid() == 0
                            and _readable_by_everyone(Path(sys.base_prefix) / "lib") else None)

    def ensure_zygote(self) -> Zygote:
        if self.zygote is None or not self.zygote.alive():
            if self.zygote is not None:
                self.zygote.close()
            self.zygote = Zygote(self.mode, self.scratch, self.hide, self.forbidden)
        return self.zygote

    def new_workdir(self, files: list[tuple[Path, str]]) -> Path:
        """A fresh directory holding a copy of the submission's files only."""
        workdir = Path(tempfile.mkdtemp(prefix="w-", dir=self.scratch))
        for source, relative in files:
            target = workdir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        if self.drop_to_uid is not None:
            for path in [workdir, *workdir.rglob("*")]:
                os.chown(path, NOBODY_UID, NOBODY_UID, follow_symlinks=False)
        return workdir

    def spawn(self, workdir: Path, limits: Limits, output: OutputCapture) -> WorkerProcess | SpawnedWorker:
        if self.mode == "spawn":
            return SpawnedWorker(workdir, limits, self.forbidden, output)
        zygote = self.ensure_zygote()
        try:
            return WorkerProcess(zygote, workdir, limits, self.forbidden, output, self.drop_to_uid)
        except SandboxUnavailable:
            # The zygote itself died (a worker killed it, say): start a new one, once.
            self.zygote.close()
            self.zygote = None
            return WorkerProcess(self.ensure_zygote(), workdir, limits, self.forbidden, output,
                                 self.drop_to_uid)

    def cleanup(self, workdir: Path) -> None:
        if self.zygote is not None and self.zygote.alive():
            try:
                self.zygote.request({"op": "sweep"})
            except SandboxUnavailable:
                pass
        shutil.rmtree(workdir, ignore_errors=True)

    def close(self) -> None:
        if self.zygote is not None:
            self.zygote.close()
            self.zygote = None


class SlotPool:
    def __init__(self, jobs: int, mode: str, hide: list[Path], forbidden: list[str]):
        self.run_dir = Path(tempfile.mkdtemp(prefix="nngrade-"))
        os.chmod(self.run_dir, 0o711)  # workers may enter their own folder, never list others
        self.slots = [Slot(i, self.run_dir, mode, hide, forbidden) for i in range(jobs)]
        self._free = list(self.slots)
        self._cond = threading.Condition()

    def acquire(self) -> Slot:
        with self._cond:
            while not self._free:
                self._cond.wait()
            return self._free.pop()

    def release(self, slot: Slot) -> None:
        with self._cond:
            self._free.append(slot)
            self._cond.notify()

    def close(self) -> None:
        for slot in self.slots:
            slot.close()
        shutil.rmtree(self.run_dir, ignore_errors=True)
