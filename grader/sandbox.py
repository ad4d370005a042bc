"""Where student code runs: the sandbox modes, what each hides, a zygote per job slot,
and the slots that hand each submission a fresh folder and a worker (the workers
themselves are in `grader.workers`, their side of the sandbox in `grader.worker`).

Layers, outermost first:
- bubblewrap (`--sandbox bwrap`, Linux): per job slot, a read-only root; the toolkit,
  the class, the output folder, home and the forbidden packages hidden; a private
  /tmp; no network; its own user and PID namespaces; dies with the grader. Inside
  it, every submission gets PID, mount and IPC namespaces of its own
  (`grader.worker.isolate`) and is torn down by killing its PID 1;
- without bubblewrap (`none`, Linux): workers forked from a non-dumpable zygote; as
  root, each slot's workers take a uid of their own; Landlock limits what they read
  and write (the toolkit, the class, the output and the forbidden packages are not
  on the list), and seccomp refuses network sockets and tracing
  (`grader.worker.confine`);
- every worker: its own session, a scrubbed environment, a fresh working directory
  holding a copy of its submission only, rlimits on address space, CPU time, file
  size, open files and processes.

Which of these held in a run is measured, not assumed: see `grader.protections`.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import signal
import site
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from grader.assignment import TOOLKIT_PACKAGES
from grader.trees import make_dirs, remove_tree
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
# The toolkit's own folder, hidden as a whole, unless the toolkit is installed into a
# site-packages that the student's libraries share (then its packages alone are).
SHARED_SITE = (TOOLKIT_ROOT / "numpy").is_dir() or TOOLKIT_ROOT.name in ("site-packages", "dist-packages")
TOOLKIT_HOME = [] if SHARED_SITE else [TOOLKIT_ROOT]
NOBODY_UID = 65534
# Outside bubblewrap, as root, the workers of each job slot run as a uid of their own
# (no account has it): a worker can then signal neither the grader nor another slot's
# worker, and a slot's leftovers are found by their uid. Chosen per grader process,
# so that two runs on one machine do not share uids.
SLOT_UID_BASE = 1_600_000_000
CONTROL_TIMEOUT = 15.0
# What a Python process and NumPy read besides the interpreter's own folders.
SYSTEM_READ = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc/ld.so.cache", "/etc/ld.so.conf",
               "/etc/ld.so.conf.d", "/etc/localtime", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf",
               "/etc/alternatives", "/etc/fonts", "/etc/matplotlibrc", "/dev/null", "/dev/zero",
               "/dev/urandom", "/dev/random", "/proc/cpuinfo", "/proc/meminfo", "/proc/stat",
               "/sys/devices/system/cpu")


# --------------------------------------------------------------------- modes
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
    none (forked workers under Landlock, seccomp and process limits, Linux), spawn (a
    fresh interpreter per submission over pipes: any platform, used by the student kit)."""
    if mode == "spawn":
        return "spawn", None
    if not sys.platform.startswith("linux"):
        if mode == "bwrap":
            raise SandboxUnavailable("bubblewrap only runs on Linux")
        return "spawn", None
    if mode == "none":
        return "none", "sandbox without bubblewrap (--sandbox none): see which protections held below"
    if bwrap_works():
        return "bwrap", None
    if mode == "bwrap":
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed or cannot create namespaces here")
    return "none", ("bubblewrap is not available, so workers run without namespaces (install the "
                    "'bubblewrap' package for the full sandbox); see which protections held below")


# --------------------------------------------------------------------- what to hide
def module_locations(names) -> list[Path]:
    """Where the named modules live (package folders, module files), without importing
    them (a dotted name imports its parent package, in the grader's process only)."""
    found = []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError, AttributeError):
            continue
        if spec is None:
            continue
        if spec.submodule_search_locations:
            found += [Path(p).resolve() for p in spec.submodule_search_locations if os.path.isdir(p)]
        elif spec.origin and os.path.isfile(spec.origin):
            found.append(Path(spec.origin).resolve())
    return sorted(set(found))


def toolkit_locations() -> list[Path]:
    """The toolkit's packages wherever they are installed (a checkout, site-packages)."""
    return sorted({p for p in module_locations(TOOLKIT_PACKAGES)} | {TOOLKIT_ROOT / n for n in TOOLKIT_PACKAGES})


def interpreter_dirs() -> list[Path]:
    """What the interpreter, its standard library and NumPy need to be readable."""
    import numpy

    dirs = {Path(sys.base_prefix), Path(sys.prefix), Path(numpy.__file__).resolve().parent.parent,
            Path(sys.executable).resolve().parent}
    return sorted(p.resolve() for p in dirs)


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


@dataclass
class SandboxConfig:
    """What the sandbox of one run hides and forbids (the same for every slot)."""

    mode: str
    hide: list[Path] = field(default_factory=list)  # the class, its parent, the output
    forbidden: list[str] = field(default_factory=list)  # modules the assignment forbids

    def __post_init__(self) -> None:
        self.hide = [Path(p).resolve() for p in self.hide]
        self.forbidden_paths = module_locations(self.forbidden)
        self.toolkit_paths = toolkit_locations()
        self.landlock_abi = landlock_abi()

    # -- bubblewrap ---------------------------------------------------------
    def bwrap_prefix(self, scratch: Path) -> list[str]:
        # A user namespace mapping us to nobody: no capabilities, even when the grader is root.
        args = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                "--tmpfs", "/tmp", "--unshare-all", "--unshare-user", "--uid", str(NOBODY_UID),
                "--gid", str(NOBODY_UID), "--cap-drop", "ALL", "--die-with-parent", "--new-session"]
        wholesale = [Path.home(), *self.hide, *TOOLKIT_HOME]
        for path in wholesale:
            if path.exists() and path != Path("/"):
                args += ["--tmpfs", str(path)]
        # Put back what the interpreter needs where a hidden folder (or /tmp) covered it:
        # a Python under ~/.pyenv, a virtualenv inside the project or under /tmp.
        covered = [*wholesale, Path("/tmp")]
        rebound = [p for p in interpreter_dirs() if any(_under(p, h) for h in covered)]
        for path in rebound:
            args += ["--ro-bind", str(path), str(path)]
        # The toolkit's packages installed beside the student's libraries, and the
        # forbidden ones, are taken out exactly, wherever they are still in view: not
        # even an empty folder stays. All of a folder's at once: hiding one puts its
        # siblings back.
        gone: dict[Path, set[str]] = {}
        for path in set(self.toolkit_paths + self.forbidden_paths):
            in_view = not any(_under(path, h) for h in covered) or any(_under(path, r) for r in rebound)
            if path.exists() and in_view:
                gone.setdefault(path.parent, set()).add(path.name)
        for parent in sorted(gone, key=lambda p: len(p.parts)):
            if not any(_under(parent, folder / name) for folder, names in gone.items() for name in names):
                args += _without(parent, gone[parent])
        # The worker package itself (its modules are what the zygote runs).
        for path in (TOOLKIT_ROOT / "grader" / "worker", TOOLKIT_ROOT / "grader" / "__init__.py"):
            args += ["--ro-bind", str(path), str(path)]
        args += ["--bind", str(scratch), str(scratch), "--chdir", str(scratch)]
        return args

    # -- Landlock (without bubblewrap) -----------------------------------------
    def read_policy(self, scratch: Path) -> dict | None:
        """What a worker may read outside bubblewrap: the interpreter's folders, the
        system's libraries and its own slot's scratch, never the toolkit, the class, the
        output or a forbidden package ({"read": paths, "list": folders it may only
        list}). None where Landlock is not available."""
        if self.landlock_abi < 1:
            return None
        from grader.worker.confine import allowed_beneath

        private = [*self.hide, *TOOLKIT_HOME, *self.toolkit_paths, *self.forbidden_paths]
        # Only library folders: workers run `python -I`, so the grader's own path entries
        # (its working directory, a script's folder, PYTHONPATH) are never theirs.
        libraries = {Path(p).resolve() for p in [*site.getsitepackages(), site.getusersitepackages()]
                     if os.path.isdir(p)}
        interpreter = sorted(set(interpreter_dirs()) | libraries)
        # A virtualenv inside the project stays readable; the project's packages do not.
        denied = [d for d in private if not any(_under(r, d) and r != d for r in interpreter)]
        roots = [str(p) for p in interpreter] + list(SYSTEM_READ)
        # Folders a denied path was carved out of stay listable (names only), so that
        # Python can find their other entries; never a folder that is itself private.
        listable = sorted({str(folder) for d in denied for r in map(Path, roots) if _under(d, r) and d != r
                           for folder in [d.parent, *d.parent.parents]
                           if _under(folder, r) and not any(_under(folder, x) for x in denied)})
        return {"read": allowed_beneath(roots, [str(d) for d in denied]) + [str(scratch)], "list": listable}


def _without(parent: Path, names: set[str]) -> list[str]:
    """bubblewrap arguments that make the entries `names` of `parent` vanish: a tmpfs
    over `parent`, then every other entry put back (links as links)."""
    args = ["--tmpfs", str(parent)]
    try:
        siblings = sorted(os.scandir(parent), key=lambda e: e.name)
    except OSError:
        return []
    for entry in siblings:
        if entry.name in names:
            continue
        if entry.is_symlink():
            args += ["--symlink", os.readlink(entry.path), entry.path]
        else:
            args += ["--ro-bind", entry.path, entry.path]
    return args


@functools.cache
def landlock_abi() -> int:
    """The kernel's Landlock ABI (0: none), asked once per process."""
    if not sys.platform.startswith("linux"):
        return 0
    from grader.worker import confine

    return confine.landlock_abi()


def _readable_by_others(path: Path) -> bool:
    """Whether a uid of no group, not the owner, can use `path` (read and enter)."""
    try:
        if path.stat().st_mode & 0o005 != 0o005:
            return False
        return all(parent.stat().st_mode & 0o001 for parent in path.parents)
    except OSError:
        return False


# --------------------------------------------------------------------- zygote
class Zygote:
    """One pre-warmed interpreter (per job slot) that forks workers on request."""

    def __init__(self, config: SandboxConfig, scratch: Path):
        self.mode = config.mode
        self.scratch = scratch
        self._lock = threading.Lock()
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.ctl = parent
        boot = (
            "import sys; sys.path.insert(0, sys.argv[2]); "
            "from grader.worker.zygote import main; main(int(sys.argv[1]), sys.argv[2], sys.argv[3])"
        )
        command = [sys.executable, "-I", "-c", boot, str(child.fileno()), str(TOOLKIT_ROOT), self.mode]
        if self.mode == "bwrap":
            command = config.bwrap_prefix(scratch) + ["--"] + command
        self.log_path = scratch.parent / f"{scratch.name}.log"  # outside the workers' reach
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                command, pass_fds=[child.fileno()], start_new_session=True, env=zygote_environment(),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=str(scratch),
            )
        child.close()
        policy = config.read_policy(scratch) if self.mode == "none" else None
        reply = self.request({"op": "init", "policy": policy})
        if reply.get("error"):
            self.close()
            raise SandboxUnavailable(f"the worker host could not start: {reply['error']}")

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
        """Kill every process the zygote started, then the zygote itself: from outside,
        whatever state it is in (under bubblewrap, its PID namespace goes with it)."""
        if self.alive() and self.mode != "bwrap":
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

    def __init__(self, index: int, run_dir: Path, config: SandboxConfig):
        self.index = index
        self.config = config
        self.mode = config.mode
        self.scratch = run_dir / f"slot-{index}"
        self.scratch.mkdir(mode=0o711)
        os.chmod(self.scratch, 0o711)  # mkdir's mode is filtered by the umask
        self.zygote: Zygote | None = None
        self.uid, self.keep_read_search = self._worker_uid()
        self.read_policy = config.read_policy(self.scratch) if self.mode == "spawn" else None

    def _worker_uid(self) -> tuple[int | None, bool]:
        """Outside bubblewrap, as root: the slot's own unprivileged uid, and whether it
        must keep CAP_DAC_READ_SEARCH to read an interpreter only root can (a Python
        under /root), which is safe only where Landlock bounds what it reads."""
        if self.mode == "bwrap" or not hasattr(os, "geteuid") or os.geteuid() != 0:
            return None, False
        uid = SLOT_UID_BASE + (os.getpid() % 100_000) * 64 + self.index
        if all(_readable_by_others(p) for p in interpreter_dirs()):
            return uid, False
        if self.config.landlock_abi >= 1:
            return uid, True
        raise SandboxUnavailable(
            f"the Python interpreter ({sys.base_prefix}) cannot be read by an unprivileged user, and "
            "without Landlock (Linux >= 5.13) student code would have to run as root: install nngrade "
            "with a Python every user can read (e.g. /usr/bin/python3 -m venv), or use --sandbox bwrap")

    def ensure_zygote(self) -> Zygote:
        if self.zygote is None or not self.zygote.alive():
            if self.zygote is not None:
                self.zygote.close()
            self.zygote = Zygote(self.config, self.scratch)
        return self.zygote

    def reset(self) -> None:
        """A fresh helper: the old one is killed from outside, whatever state it is in."""
        self.close()
        for leftover in self.scratch.iterdir():
            remove_tree(leftover)

    def new_workdir(self, files: list[tuple[Path, str]]) -> Path:
        """A fresh directory holding a copy of the submission's files only."""
        workdir = Path(tempfile.mkdtemp(prefix="w-", dir=self.scratch))
        made = [workdir]
        for source, relative in files:
            target = workdir / relative
            made += make_dirs(target.parent)  # iterative: discovery bounds the depth, not this
            shutil.copyfile(source, target)
            made.append(target)
        if self.uid is not None:
            for path in made:
                os.chown(path, self.uid, self.uid, follow_symlinks=False)
        return workdir

    def spawn(self, workdir: Path, limits: Limits, output: OutputCapture, cwd: Path | None = None):
        """A worker for `workdir`, started in `cwd` (default: the workdir itself)."""
        # Under bubblewrap nothing else is visible; without it, a zygote applies the read
        # rules it built once (none), a spawned worker the list it is given (spawn).
        common = dict(mode=self.mode, scratch=self.scratch, cwd=cwd or workdir, forbidden=self.config.forbidden,
                      read_policy=self.read_policy)
        common.update(uid=self.uid, keep_read_search=self.keep_read_search)
        if self.mode == "spawn":
            return SpawnedWorker(workdir, limits, output, **common)
        return WorkerProcess(self.ensure_zygote(), workdir, limits, output, **common)

    def cleanup(self, workdir: Path) -> None:
        """After a submission: nothing it started survives (under bubblewrap its PID
        namespace is gone already), and its copy is removed."""
        if self.zygote is not None and self.zygote.alive() and self.mode != "bwrap":
            try:
                self.zygote.request({"op": "sweep"})
            except SandboxUnavailable:
                pass
        elif self.mode == "spawn" and self.uid is not None:
            from grader.worker.zygote import kill_uid

            kill_uid(self.uid)  # every process of the slot's uid, however detached
        remove_tree(workdir)  # whatever the code built in it: any depth, any path length

    def close(self) -> None:
        if self.zygote is not None:
            self.zygote.close()
            self.zygote = None


class SlotPool:
    def __init__(self, jobs: int, config: SandboxConfig):
        self.run_dir = Path(tempfile.mkdtemp(prefix="nngrade-"))
        os.chmod(self.run_dir, 0o711)  # workers may enter their own folder, never list others
        self.slots = [Slot(i, self.run_dir, config) for i in range(jobs)]
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
        remove_tree(self.run_dir)
