"""Where student code runs: the sandbox modes, bubblewrap's command line, a zygote per
job slot, and the slots that hand each submission a fresh folder and a worker (the
workers themselves are in `grader.workers`).

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
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from grader.workers import (  # noqa: F401 - re-exported: the sandbox's public names
    Limits,
    OutputCapture,
    SandboxUnavailable,
    SpawnedWorker,
    WorkerDied,
    WorkerProcess,
    WorkerProtocolError,
    WorkerTimedOut,
    zygote_environment,
)

TOOLKIT_ROOT = Path(__file__).resolve().parent.parent
NOBODY_UID = 65534
CONTROL_TIMEOUT = 15.0


# --------------------------------------------------------------------- zygote
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
