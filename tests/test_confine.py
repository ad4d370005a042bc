"""Attacks on the kernel confinement a worker applies to itself (grader/worker/confine.py).

Every attempt runs two forks away from pytest: a stand-in for the grader (the
"parent", never confined) forks the child, which confines itself and then tries to
get out; results travel back as JSON through pipes, so pytest is neither confined
nor the target. Where it is safe, the child first makes the same attempt unconfined
(the control): a refusal afterwards is then the defence's doing. Each defence also
has a test that legitimate work (fresh imports, NumPy, threads, fork) still runs.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import re
import resource
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import sysconfig
import threading
import time
import traceback
from types import SimpleNamespace

import numpy as np
import pytest

from grader.worker import confine
from grader.worker.confine import Confinement

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux kernel confinement")

ABI = confine.landlock_abi()
ARCH = confine.seccomp_arch()
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
NOBODY = 65534


def needs_abi(version: int, what: str):
    return pytest.mark.skipif(ABI < version, reason=f"{what} needs Landlock ABI {version}; this kernel has {ABI}")


needs_seccomp = pytest.mark.skipif(ARCH is None, reason="no seccomp filter for this architecture")
needs_root = pytest.mark.skipif(not IS_ROOT, reason="dropping privileges needs root")

NUMPY_SITE = os.path.dirname(os.path.dirname(np.__file__))  # site-packages: numpy and numpy.libs
SYSTEM_READ = [sys.base_prefix, sys.prefix, NUMPY_SITE, "/usr", "/lib", "/lib64", "/etc/ld.so.cache"]
STDLIB = sysconfig.get_paths()["stdlib"]


# ----------------------------------------------------------------- the harness
def _send(fd: int, obj) -> None:
    data = json.dumps(obj).encode()
    while data:
        data = data[os.write(fd, data):]
    os.close(fd)


def _receive(fd: int, seconds: float) -> bytes | None:
    deadline, chunks = time.monotonic() + seconds, []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            os.close(fd)
            return None
        chunk = os.read(fd, 65536)
        if not chunk:
            os.close(fd)
            return b"".join(chunks)
        chunks.append(chunk)


def _state() -> dict:
    """What an attack on the parent could change without killing it."""
    return {"nice": os.getpriority(os.PRIO_PROCESS, 0),
            "nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
            "cpus": sorted(os.sched_getaffinity(0))}


def _parent(body, args, seconds, outer):
    usr1 = []
    signal.signal(signal.SIGUSR1, lambda *_: usr1.append(1))
    before = _state()
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(r)
            os.close(outer)
            out = body(os.getppid(), *args)
        except BaseException:  # noqa: BLE001 - reported to the test
            out = {"crash": traceback.format_exc()}
        try:
            _send(w, out)
        finally:
            os._exit(0)
    os.close(w)
    data = _receive(r, seconds)
    if data is None:
        os.kill(child, signal.SIGKILL)
    _, status = os.waitpid(child, 0)
    report = json.loads(data) if data else {"crash": f"the child sent nothing (wait status {status})"}
    report["parent_unchanged"] = _state() == before
    report["parent_sigusr1"] = len(usr1)
    return report


def run_confined(body, *args, seconds: float = 20.0) -> dict:
    """body(parent_pid, *args) -> dict runs in the child of an unconfined parent; the
    test fails if the parent does not survive."""
    r, w = os.pipe()
    parent = os.fork()
    if parent == 0:
        try:
            os.close(r)
            report = _parent(body, args, seconds, w)
        except BaseException:  # noqa: BLE001
            report = {"crash": traceback.format_exc()}
        try:
            _send(w, report)
        finally:
            os._exit(0)
    os.close(w)
    data = _receive(r, seconds + 5)
    _, status = os.waitpid(parent, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"the parent did not survive: {status:#x}"
    assert data, "the parent sent nothing"
    report = json.loads(data)
    assert "crash" not in report, report["crash"]
    return report


def attempt(fn, *args) -> str:
    """'ok', or the errno name (or exception type) of the failure."""
    try:
        fn(*args)
        return "ok"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno)) if exc.errno else type(exc).__name__
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__


def read(path) -> int:
    with open(path, "rb") as f:
        return len(f.read())


def write(path) -> None:
    with open(path, "w") as f:
        f.write("x")


def call(name: str, *args) -> int:
    return confine._syscall(confine.SYSCALLS[ARCH][name], *args)


def caps() -> dict:
    with open("/proc/self/status") as f:
        return {k: int(v, 16) for k, v in re.findall(r"^(Cap\w+):\s+([0-9a-f]+)$", f.read(), re.M)}


def fresh_import(*candidates: str) -> dict:
    """Import the first candidate not yet imported; report which and how it went.

    When the tests that ran before have imported them all (this runs in a fork of
    the test process), the last one is forgotten and imported again, so its files
    are still read from disk under the confinement."""
    for name in candidates:
        if name not in sys.modules:
            return {"module": name, "import": attempt(__import__, name)}
    name = candidates[-1]
    for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[loaded]
    return {"module": name, "import": attempt(__import__, name)}


def landlock(read_paths, write_paths, **kw) -> Confinement:
    result = Confinement()
    confine.apply_landlock(read_paths, write_paths, result=result, **kw)
    return result


@pytest.fixture
def tree(tmp_path):
    """A course folder holding a reference solution, a work folder, a private folder."""
    root = tmp_path / "course"
    (root / "reference" / "sub").mkdir(parents=True)
    (root / "reference" / "cnn.py").write_text("SOLUTION = 42\n")
    (root / "reference" / "sub" / "deep.py").write_text("DEEP = 1\n")
    (root / "public.txt").write_text("public\n")
    (root / "shortcut").symlink_to(root / "reference")
    work = tmp_path / "work"
    work.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text("root only\n")
    secret.chmod(0o600)
    ref = root / "reference"
    return SimpleNamespace(root=str(root), ref=str(ref), ref_file=str(ref / "cnn.py"),
                           deep=str(ref / "sub" / "deep.py"), public=str(root / "public.txt"),
                           shortcut=str(root / "shortcut" / "cnn.py"), work=str(work), outside=str(outside),
                           secret=str(secret))


def course_read_paths(t) -> list[str]:
    return confine.allowed_beneath([t.root, *SYSTEM_READ], [t.ref])


# ------------------------------------------------------------- allowed_beneath
def _make(root, *paths):
    for p in paths:
        full = os.path.join(root, p)
        if p.endswith("/"):
            os.makedirs(full, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(full), exist_ok=True)
            open(full, "w").close()


def test_allowed_beneath_carves_a_deep_denied_dir(tmp_path):
    r = str(tmp_path)
    _make(r, "a/b/c/deny/x.py", "a/b/c/keep.txt", "a/b/other/", "a/x.txt", "y/", "f.txt")
    got = confine.allowed_beneath([r], [f"{r}/a/b/c/deny"])
    assert sorted(got) == sorted(f"{r}/{p}" for p in ("a/b/c/keep.txt", "a/b/other", "a/x.txt", "y", "f.txt"))


def test_allowed_beneath_denied_root_or_above_removes_it(tmp_path):
    r = str(tmp_path)
    _make(r, "a/b/x.txt", "z/")
    assert confine.allowed_beneath([f"{r}/a"], [f"{r}/a"]) == []
    assert confine.allowed_beneath([f"{r}/a/b"], [r]) == []
    assert confine.allowed_beneath([f"{r}/a", f"{r}/z"], [f"{r}/a"]) == [f"{r}/z"]
    assert confine.allowed_beneath([f"{r}/a"], [f"{r}/z"]) == [f"{r}/a"]  # unrelated: unchanged


def test_allowed_beneath_denied_file(tmp_path):
    r = str(tmp_path)
    _make(r, "a/secret.txt", "a/ok.txt", "b.txt")
    assert sorted(confine.allowed_beneath([r], [f"{r}/a/secret.txt"])) == [f"{r}/a/ok.txt", f"{r}/b.txt"]
    assert confine.allowed_beneath([f"{r}/b.txt"], []) == [f"{r}/b.txt"]  # a file root


def test_allowed_beneath_does_not_follow_symlinks(tmp_path):
    r = str(tmp_path / "r")
    _make(r, "a/deny/x.py", "a/ok.txt")
    os.symlink(f"{r}/a/deny", f"{r}/a/into_denied")  # a way around the carve-out, if followed
    os.symlink("/etc", f"{r}/a/elsewhere")
    assert confine.allowed_beneath([r], [f"{r}/a/deny"]) == [f"{r}/a/ok.txt"]
    link = str(tmp_path / "root_link")
    os.symlink(r, link)  # roots and denied paths are resolved first
    assert confine.allowed_beneath([link], [f"{link}/a/deny"]) == [f"{r}/a/ok.txt"]


def test_allowed_beneath_missing_paths(tmp_path):
    r = str(tmp_path)
    _make(r, "a/x.txt")
    assert confine.allowed_beneath([f"{r}/nope", f"{r}/a"], []) == [f"{r}/a"]
    # A denied path that does not exist yet still carves its branch: created later, it stays out.
    assert confine.allowed_beneath([r], [f"{r}/a/later"]) == [f"{r}/a/x.txt"]


# -------------------------------------------------------------------- Landlock
def _symlink_then_read(target, link):
    os.symlink(target, link)
    return read(link)


def _filesystem_attack(parent, t):
    out = {"control": attempt(read, t.ref_file)}
    result = landlock(course_read_paths(t), [t.work])
    out["result"] = result.as_dict()
    out["attacks"] = {
        "read reference": attempt(read, t.ref_file),
        "read deep in reference": attempt(read, t.deep),
        "list reference": attempt(os.listdir, t.ref),
        "read through a symlink in the course": attempt(read, t.shortcut),
        "read a root-only file outside": attempt(read, t.secret),
        "symlink from work, then read": attempt(_symlink_then_read, t.ref_file, f"{t.work}/l"),
        "hard link into work": attempt(os.link, t.ref_file, f"{t.work}/stolen"),
        "rename reference into work": attempt(os.rename, t.ref, f"{t.work}/ref"),
        "write /etc/passwd-nngrade": attempt(write, "/etc/passwd-nngrade"),
    }
    out["legit"] = {"read public": attempt(read, t.public), "read stdlib": attempt(read, f"{STDLIB}/os.py")}
    out["known"] = {"stat reference": attempt(os.stat, t.ref_file), "list course": attempt(os.listdir, t.root)}
    return out


@needs_abi(1, "filesystem rules")
def test_landlock_hides_a_denied_subtree_even_from_root(tree):
    out = run_confined(_filesystem_attack, tree)
    assert out["control"] == "ok"  # root reads it unconfined
    assert out["result"]["filesystem"] and out["result"]["no_new_privs"]
    for what, got in out["attacks"].items():
        assert got != "ok", f"{what} succeeded"
    assert {out["attacks"][k] for k in ("read reference", "read deep in reference", "list reference",
                                        "read through a symlink in the course", "read a root-only file outside",
                                        "symlink from work, then read")} == {"EACCES"}
    assert out["legit"] == {"read public": "ok", "read stdlib": "ok"}
    # Landlock does not restrict stat(), and a folder on the way to a denied path is
    # replaced by its children, so it cannot be listed: both by design.
    assert out["known"] == {"stat reference": "ok", "list course": "EACCES"}


def _write_attack(parent, t):
    result = landlock(course_read_paths(t), [t.work, "/dev/null"])
    return {"result": result.as_dict(), "outcomes": {
        "create in work": attempt(write, f"{t.work}/out.txt"),
        "mkdir in work": attempt(os.mkdir, f"{t.work}/sub"),
        "write /dev/null": attempt(write, "/dev/null"),
        "create in course": attempt(write, f"{t.root}/new.txt"),
        "overwrite public": attempt(write, t.public),
        "truncate public": attempt(os.truncate, t.public, 0),
        "delete public": attempt(os.unlink, t.public),
        "create in outside": attempt(write, f"{t.outside}/new.txt"),
        "create in /tmp": attempt(write, f"/tmp/nngrade-confine-{os.getpid()}"),
    }}


@needs_abi(1, "filesystem rules")
def test_landlock_writes_only_beneath_write_paths(tree):
    out = run_confined(_write_attack, tree)
    assert out["outcomes"] == {
        "create in work": "ok", "mkdir in work": "ok", "write /dev/null": "ok",
        "create in course": "EACCES", "overwrite public": "EACCES", "truncate public": "EACCES",
        "delete public": "EACCES", "create in outside": "EACCES", "create in /tmp": "EACCES",
    }
    assert open(tree.public).read() == "public\n"


def _legit_work(parent, t):
    landlock(course_read_paths(t), [t.work])
    a = np.random.default_rng(0).standard_normal((200, 200)) + 200 * np.eye(200)
    out = {
        "pure python": fresh_import("fractions", "colorsys", "wave", "mailbox"),
        "system library": fresh_import("decimal", "sqlite3", "_curses"),
        "numpy submodule": fresh_import(
            "numpy.linalg", "numpy.fft", "numpy.ma", "numpy.lib.recfunctions", "numpy.polynomial"
        ),
    }
    x = np.linalg.solve(a, np.ones(200))
    out["residual"] = float(np.abs(a @ x - 1).max())
    out["inverse"] = float(np.abs(np.linalg.inv(a) @ a - np.eye(200)).max())
    out["fft"] = float(np.abs(np.fft.ifft(np.fft.fft(x)) - x).max())
    return out


@needs_abi(1, "filesystem rules")
def test_landlock_keeps_imports_and_numpy_working(tree):
    out = run_confined(_legit_work, tree)
    for what in ("pure python", "system library", "numpy submodule"):
        assert out[what]["module"] and out[what]["import"] == "ok", (what, out[what])
    assert out["residual"] < 1e-10 and out["inverse"] < 1e-10 and out["fft"] < 1e-10


def _tcp_attack(parent, port):
    def connect():
        with socket.socket() as s:
            s.connect(("127.0.0.1", port))

    def bind():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))

    out = {"control": attempt(connect)}
    out["result"] = landlock(SYSTEM_READ, []).as_dict()
    out["connect"], out["bind"] = attempt(connect), attempt(bind)
    return out


@needs_abi(4, "refusing TCP")
def test_landlock_refuses_tcp_connect_and_bind():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        out = run_confined(_tcp_attack, listener.getsockname()[1])
    assert out["control"] == "ok"
    assert out["result"]["tcp"]
    assert out["connect"] == "EACCES" and out["bind"] == "EACCES"


def _ptrace_attach(pid):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(ctypes.c_long(16), ctypes.c_long(pid), None, None) == -1:  # PTRACE_ATTACH
        raise OSError(ctypes.get_errno(), "ptrace")


def _read_memory(pid, address, size=8):
    """process_vm_readv of `size` bytes at `address` in `pid`."""
    local = ctypes.create_string_buffer(size)
    iov_local = struct.pack("=QQ", ctypes.addressof(local), size)
    iov_remote = struct.pack("=QQ", address, size)
    return call("process_vm_readv", pid, iov_local, 1, iov_remote, 1, 0)


def _sigio_at(pid):
    """Make the kernel send SIGUSR1 to `pid` (F_SETOWN + F_SETSIG + O_ASYNC on a pipe)."""
    r, w = os.pipe()
    try:
        fcntl.fcntl(r, fcntl.F_SETOWN, pid)
        fcntl.fcntl(r, 10, signal.SIGUSR1)  # F_SETSIG
        fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_ASYNC)
        os.write(w, b"x")
    finally:
        os.close(r)
        os.close(w)


def _signal_attack(parent, address, abstract):
    def connect_abstract():
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(abstract)

    def kill_child():
        pid = os.fork()
        if pid == 0:
            signal.pause()
            os._exit(0)
        os.kill(pid, signal.SIGKILL)
        if os.waitpid(pid, 0)[1] != signal.SIGKILL:
            raise RuntimeError("not killed")

    out = {"control": {"kill 0": attempt(os.kill, parent, 0),
                       "mem": attempt(lambda: open(f"/proc/{parent}/mem").close()),
                       "abstract": attempt(connect_abstract), "sigio": attempt(_sigio_at, parent),
                       "vm read": attempt(_read_memory, parent, address)}}
    # /proc is readable: what stops the attacks below is Landlock's ptrace and signal scoping.
    out["result"] = landlock([*SYSTEM_READ, "/proc"], [], scope=True).as_dict()
    pidfd = os.open(f"/proc/{parent}", os.O_RDONLY | os.O_DIRECTORY)
    out["attacks"] = {
        "kill 0": attempt(os.kill, parent, 0),
        "kill SIGKILL": attempt(os.kill, parent, signal.SIGKILL),
        "pidfd_send_signal SIGKILL": attempt(call, "pidfd_send_signal", pidfd, signal.SIGKILL, 0, 0),
        "open mem": attempt(open, f"/proc/{parent}/mem", "rb"),
        "open stack": attempt(read, f"/proc/{parent}/stack"),
        "readlink cwd": attempt(os.readlink, f"/proc/{parent}/cwd"),
        "ptrace attach": attempt(_ptrace_attach, parent),
        "process_vm_readv": attempt(_read_memory, parent, address),
        "connect abstract socket": attempt(connect_abstract),
    }
    out["sigio"] = attempt(_sigio_at, parent)  # F_SETOWN succeeds; the kernel drops the signal
    out["legit"] = {"kill self": attempt(os.kill, os.getpid(), 0), "kill own child": attempt(kill_child)}
    return out


@needs_abi(6, "scoping signals")
def test_landlock_scope_keeps_the_parent_out_of_reach():
    address = id(sys)  # the same address holds the same object in the forked parent
    name = f"\0nngrade-confine-{os.getpid()}"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(name)
        listener.listen(8)
        out = run_confined(_signal_attack, address, name)
    assert set(out["control"].values()) == {"ok"}, out["control"]  # all of these work unconfined, as root
    assert out["result"]["signals_scoped"] and out["result"]["abstract_unix_scoped"]
    for what, got in out["attacks"].items():
        assert got in ("EPERM", "EACCES"), f"{what}: {got}"
    assert out["parent_sigusr1"] == 1  # the control's signal only
    assert out["legit"] == {"kill self": "ok", "kill own child": "ok"}


# Observed on Linux 6.18 (not what Landlock's ptrace hook suggests): with /proc readable,
# a Landlocked process of the same uid (or root) can still read /proc/<pid>/environ, maps,
# auxv and pagemap of a process outside its domain (files opened with PTRACE_MODE_READ
# through proc_mem_open), while mem, stack, cwd, ptrace and process_vm_readv are refused.
# What keeps the grader's environment private is the policy: no /proc, or another uid.
def _environ_attack(parent, t):
    out = {"control": attempt(read, f"/proc/{parent}/environ")}
    landlock(course_read_paths(t), [t.work])  # the worker's policy: no /proc
    out["no /proc in the policy"] = attempt(read, f"/proc/{parent}/environ")
    return out


def _environ_attack_uid(parent, t):
    result = Confinement()
    confine.apply_landlock([*SYSTEM_READ, "/proc"], [], result=result)  # /proc readable...
    confine.drop_privileges(NOBODY, NOBODY, keep_read_search=True, result=result)  # ...but another uid
    return {"other uid": attempt(read, f"/proc/{parent}/environ"),
            "other uid, maps": attempt(read, f"/proc/{parent}/maps")}


@needs_abi(1, "filesystem rules")
def test_parent_environ_stays_closed(tree):
    out = run_confined(_environ_attack, tree)
    assert out["control"] == "ok" and out["no /proc in the policy"] == "EACCES"
    if IS_ROOT:
        assert run_confined(_environ_attack_uid, tree) == {
            "other uid": "EACCES", "other uid, maps": "EACCES", "parent_unchanged": True, "parent_sigusr1": 0}


# --------------------------------------------------------------------- seccomp
def _socket_attack(parent):
    def make(family, kind=socket.SOCK_DGRAM, proto=0):
        socket.socket(family, kind, proto).close()

    def pair():
        a, b = socket.socketpair()
        a.sendall(b"ping")
        assert b.recv(4) == b"ping"

    out = {"control": attempt(make, socket.AF_INET)}
    result = Confinement()
    confine.apply_seccomp(confine_signals=False, result=result)
    out["result"] = result.as_dict()
    out["refused"] = {
        "AF_INET dgram": attempt(make, socket.AF_INET),
        "AF_INET stream": attempt(make, socket.AF_INET, socket.SOCK_STREAM),
        "AF_INET6": attempt(make, socket.AF_INET6),
        "AF_NETLINK": attempt(make, socket.AF_NETLINK, socket.SOCK_RAW),
        "AF_PACKET": attempt(make, socket.AF_PACKET, socket.SOCK_RAW),
        "AF_INET, high bits set": attempt(call, "socket", (1 << 32) | socket.AF_INET, socket.SOCK_DGRAM, 0),
    }
    out["allowed"] = {"socketpair": attempt(pair), "AF_UNIX": attempt(make, socket.AF_UNIX)}
    return out


@needs_seccomp
def test_seccomp_refuses_every_socket_but_unix():
    out = run_confined(_socket_attack)
    assert out["control"] == "ok" and out["result"]["seccomp"]
    assert set(out["refused"].values()) == {"EPERM"}, out["refused"]
    assert out["allowed"] == {"socketpair": "ok", "AF_UNIX": "ok"}


# Arguments that fail harmlessly even if the filter were missing (invalid fds, NULL
# pointers, out-of-range values): the control calls run unconfined, as root.
SAFE_ARGS = {
    "io_uring_setup": (0, 0), "io_uring_enter": (-1, 0, 0, 0, 0, 0), "io_uring_register": (-1, 0, 0, 0),
    "ptrace": (16, 0x7FFFFFFF, 0, 0), "process_vm_readv": (0x7FFFFFFF, 0, 0, 0, 0, 0),
    "process_vm_writev": (0x7FFFFFFF, 0, 0, 0, 0, 0), "kcmp": (0x7FFFFFFF, 0x7FFFFFFF, 0, 0, 0),
    "open_by_handle_at": (-1, 0, 0), "name_to_handle_at": (-1, 0, 0, 0, 0), "bpf": (-1, 0, 0),
    "perf_event_open": (0, 0, -1, -1, 0), "userfaultfd": (-1,), "keyctl": (-1, 0, 0, 0, 0),
    "add_key": (0, 0, 0, 0, 0), "request_key": (0, 0, 0, 0), "kexec_load": (0, 1000, 0, 0),
    "kexec_file_load": (-1, -1, 0, 0, -1), "init_module": (0, 0, 0), "finit_module": (-1, 0, 0),
    "delete_module": (0, 0), "mount": (0, 0, 0, 0, 0), "umount2": (0, 0), "pivot_root": (0, 0),
    "chroot": (0,), "setns": (-1, 0), "unshare": (0,), "open_tree": (-1, 0, 0), "move_mount": (-1, 0, -1, 0, 0),
    "fsopen": (0, 0), "fsconfig": (-1, 0, 0, 0, 0), "fsmount": (-1, 0, 0), "fspick": (-1, 0, 0),
    "mount_setattr": (-1, 0, 0, 0, 0), "reboot": (0, 0, 0, 0), "swapon": (0, 0), "swapoff": (0,),
    "sethostname": (0, 65), "setdomainname": (0, 65), "acct": (1,), "settimeofday": (0, 0),
    "clock_settime": (-1, 0), "iopl": (4,), "ioperm": (0x10000, 1, 1), "vhangup": (),
    "pidfd_send_signal": (-1, 0, 0, 0), "pidfd_getfd": (-1, 0, 0),
}


def _refused_table(parent):
    os.setsid()  # no controlling terminal: vhangup has nothing to hang up
    names = [n for n in (*confine.REFUSED, *confine.REFUSED_WITH_SIGNALS) if n in confine.SYSCALLS[ARCH]]
    before = {n: attempt(call, n, *SAFE_ARGS[n]) for n in names}
    confine.apply_seccomp(confine_signals=True, result=Confinement())
    return {"before": before, "after": {n: attempt(call, n, *SAFE_ARGS[n]) for n in names}}


@needs_seccomp
def test_seccomp_refuses_each_listed_syscall():
    assert set(confine.REFUSED) | set(confine.REFUSED_WITH_SIGNALS) <= set(SAFE_ARGS)
    out = run_confined(_refused_table)
    assert set(out["after"].values()) == {"EPERM"}, out["after"]
    if IS_ROOT:  # unconfined root is refused none of them: the EPERM above is the filter's
        assert "EPERM" not in out["before"].values(), out["before"]


def _kernel_surface_attack(parent, address):
    params = ctypes.create_string_buffer(120)

    def io_uring():
        os.close(call("io_uring_setup", 1, params))

    def unshare(flags):
        call("unshare", flags)

    def raw_clone(flags):
        if call("clone", flags | signal.SIGCHLD, 0, 0, 0, 0) == 0:
            os._exit(0)  # only reached if the filter let it through

    clone_newuts, clone_newuser, clone_newnet = 0x04000000, 0x10000000, 0x40000000
    out = {"control": {"io_uring": attempt(io_uring), "vm read": attempt(_read_memory, parent, address),
                       "unshare uts": attempt(unshare, clone_newuts)}}  # the worker may unshare before
    confine.apply_seccomp(confine_signals=False, result=Confinement())
    out["attacks"] = {
        "io_uring_setup": attempt(io_uring), "process_vm_readv": attempt(_read_memory, parent, address),
        "ptrace attach": attempt(_ptrace_attach, parent), "unshare uts": attempt(unshare, clone_newuts),
        "unshare user": attempt(unshare, clone_newuser), "clone newuser": attempt(raw_clone, clone_newuser),
        "clone newnet": attempt(raw_clone, clone_newnet), "clone3": attempt(call, "clone3", 0, 0),
    }
    return out


@needs_seccomp
def test_seccomp_refuses_io_uring_process_memory_and_namespaces():
    out = run_confined(_kernel_surface_attack, id(sys))
    if IS_ROOT:
        assert out["control"]["vm read"] == "ok" and out["control"]["unshare uts"] == "ok"
    assert out["control"]["io_uring"] in ("ok", "EPERM", "ENOSYS")  # ok unless io_uring is disabled
    expected = {k: "EPERM" for k in out["attacks"]}
    expected["clone3"] = "ENOSYS"  # so that glibc falls back to clone(), whose flags can be checked
    assert out["attacks"] == expected


def _signal_fallback_attack(parent):
    os.setsid()  # as the zygote's worker does: its own session and process group
    out = {"control": attempt(os.kill, parent, 0)}
    result = Confinement()
    confine.apply_seccomp(confine_signals=True, result=result)
    out["result"] = result.as_dict()
    pidfd = os.open(f"/proc/{parent}", os.O_RDONLY | os.O_DIRECTORY)
    info = struct.pack("=iii", 0, 0, -1).ljust(128, b"\0")  # si_code SI_QUEUE
    sock = socket.socket(socket.AF_UNIX)
    out["attacks"] = {
        "kill SIGKILL": attempt(os.kill, parent, signal.SIGKILL),
        "kill 0": attempt(os.kill, parent, 0),
        "kill -1 (everyone)": attempt(os.kill, -1, 0),
        "killpg parent's group": attempt(os.killpg, os.getpgid(parent), 0),
        "tgkill": attempt(call, "tgkill", parent, parent, 0),
        "tkill": attempt(call, "tkill", parent, 0),
        "rt_sigqueueinfo": attempt(call, "rt_sigqueueinfo", parent, 0, info),
        "pidfd_open": attempt(call, "pidfd_open", parent, 0),
        "pidfd_send_signal on /proc/<pid>": attempt(call, "pidfd_send_signal", pidfd, signal.SIGKILL, 0, 0),
        "F_SETOWN + SIGIO": attempt(_sigio_at, parent),
        "FIOSETOWN": attempt(fcntl.ioctl, sock.fileno(), 0x8901, struct.pack("i", parent)),
        "prlimit parent": attempt(resource.prlimit, parent, resource.RLIMIT_NOFILE, (64, 64)),
        "renice parent": attempt(os.setpriority, os.PRIO_PROCESS, parent, 19),
        "renice a whole uid": attempt(os.setpriority, os.PRIO_USER, 4242, 19),  # harmless if let through
        "pin parent to one cpu": attempt(os.sched_setaffinity, parent, {min(os.sched_getaffinity(0))}),
    }
    handled = []
    signal.signal(signal.SIGUSR1, lambda *_: handled.append(1))

    def child_exit_code():
        pid = os.fork()
        if pid == 0:
            os._exit(7 if attempt(os.kill, os.getppid(), 0) == "ok" else 1)  # it may signal the worker
        return os.waitpid(pid, 0)[1] >> 8

    out["legit"] = {
        "kill self": attempt(os.kill, os.getpid(), 0),
        "kill own group": attempt(os.kill, 0, 0),
        "raise_signal": attempt(signal.raise_signal, signal.SIGUSR1),
        "pthread_kill": attempt(signal.pthread_kill, threading.get_ident(), signal.SIGUSR1),
        "own rlimit": attempt(resource.setrlimit, resource.RLIMIT_CORE, (0, 0)),
        "own nice": attempt(os.setpriority, os.PRIO_PROCESS, 0, 1),
        "own affinity": attempt(os.sched_setaffinity, 0, os.sched_getaffinity(0)),
        "F_SETOWN self": attempt(fcntl.fcntl, sock.fileno(), fcntl.F_SETOWN, os.getpid()),
    }
    out["handled"] = len(handled)
    out["child exit code"] = child_exit_code()
    ready_r, ready_w = os.pipe()
    grandchild = os.fork()
    if grandchild == 0:
        os.closerange(3, ready_w)  # keep no pipe of the harness open
        os.closerange(ready_w + 1, 1024)
        parent = os.getppid()
        os.write(ready_w, b"!")
        while os.getppid() == parent:  # gone when this child is (the filter refuses PDEATHSIG)
            time.sleep(0.02)
        os._exit(0)
    os.read(ready_r, 1)  # it runs
    # Known cost of the fallback: the worker cannot signal its children by pid (its group, yes).
    out["kill own child by pid"] = attempt(os.kill, grandchild, signal.SIGKILL)
    out["child still running"] = os.waitpid(grandchild, os.WNOHANG) == (0, 0)
    return out


@needs_seccomp
def test_seccomp_signal_fallback_without_landlock():
    out = run_confined(_signal_fallback_attack)
    assert out["control"] == "ok" and out["result"]["seccomp"] and not out["result"]["signals_scoped"]
    assert set(out["attacks"].values()) == {"EPERM"}, out["attacks"]
    assert out["parent_unchanged"] and out["parent_sigusr1"] == 0
    assert set(out["legit"].values()) == {"ok"}, out["legit"]
    assert out["handled"] == 2 and out["child exit code"] == 7
    assert out["kill own child by pid"] == "EPERM" and out["child still running"]


def _not_a_leader(parent):
    result = Confinement()
    confine.apply_seccomp(confine_signals=True, result=result)
    return {"kill own group": attempt(os.kill, 0, 0), "kill self": attempt(os.kill, os.getpid(), 0),
            "notes": result.notes}


@needs_seccomp
def test_seccomp_refuses_group_signals_outside_its_own_session():
    out = run_confined(_not_a_leader)  # shares the parent's process group: kill(0) would reach it
    assert out["kill own group"] == "EPERM" and out["kill self"] == "ok"
    assert any("session leader" in n for n in out["notes"])


def _threads_and_numpy(parent):
    confine.apply_seccomp(confine_signals=True, result=Confinement())
    results, all_started, go = {}, threading.Barrier(5), threading.Event()

    def work(i):
        all_started.wait()
        go.wait()
        a = np.random.default_rng(i).standard_normal((300, 300)) + 300 * np.eye(300)
        results[i] = float(np.abs(a @ np.linalg.solve(a, np.ones(300)) - 1).max())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    all_started.wait()
    with open("/proc/self/status") as f:
        live = int(re.search(r"^Threads:\s+(\d+)", f.read(), re.M).group(1))
    go.set()
    for t in threads:
        t.join()
    big = np.random.default_rng(9).standard_normal((600, 600))
    out = {"threads": sorted(results), "worst": max(results.values()), "os threads": live,
           "matmul": float(np.abs(big @ np.eye(600) - big).max())}
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    out["fork"] = os.waitpid(pid, 0)[1] >> 8
    out["subprocess"] = subprocess.run(["/bin/true"]).returncode
    return out


@needs_seccomp
def test_seccomp_keeps_threads_fork_and_numpy_working():
    out = run_confined(_threads_and_numpy)
    assert out["threads"] == [0, 1, 2, 3] and out["worst"] < 1e-10 and out["matmul"] == 0.0
    assert out["os threads"] >= 5  # Python's threads were created (clone3 -> ENOSYS -> clone)
    assert out["fork"] == 3 and out["subprocess"] == 0


def _sigio_through(parent, layer):
    out = {"control": attempt(_sigio_at, parent)}
    if layer == "landlock":
        landlock(SYSTEM_READ, [], scope=True)
    else:
        os.setsid()
        confine.apply_seccomp(confine_signals=True, result=Confinement())
    out["attack"] = attempt(_sigio_at, parent)
    return out


@pytest.mark.parametrize("layer", [pytest.param("landlock", marks=needs_abi(6, "scoping signals")),
                                   pytest.param("seccomp", marks=needs_seccomp)])
def test_sigio_cannot_signal_the_parent(layer):
    out = run_confined(_sigio_through, layer)
    assert out["control"] == "ok"
    # Unconfined, F_SETOWN + F_SETSIG makes the kernel deliver any signal to the parent.
    assert out["parent_sigusr1"] == 1
    assert out["attack"] == ("ok" if layer == "landlock" else "EPERM")  # Landlock drops it at delivery


# ------------------------------------------------------------------ privileges
def _others_can_reach(path: str) -> bool:
    path = os.path.realpath(path)
    parts = path.split("/")
    for i in range(2, len(parts)):
        if not os.stat("/".join(parts[:i])).st_mode & stat.S_IXOTH:
            return False
    return bool(os.stat(path).st_mode & stat.S_IROTH)


def _drop_plain(parent, t):
    result = Confinement()
    confine.drop_privileges(NOBODY, NOBODY, keep_read_search=False, result=result)
    return {"result": result.as_dict(), "ids": [os.getresuid(), os.getresgid(), os.getgroups()], "caps": caps(),
            "attacks": {"setuid 0": attempt(os.setuid, 0), "kill init": attempt(os.kill, 1, 0),
                        "kill parent": attempt(os.kill, parent, 0), "read secret": attempt(read, t.secret),
                        "read stdlib": attempt(read, f"{STDLIB}/colorsys.py")}}


@needs_root
def test_drop_privileges_leaves_nothing(tree):
    out = run_confined(_drop_plain, tree)
    assert out["result"]["privileges_dropped"]
    assert out["ids"] == [[NOBODY] * 3, [NOBODY] * 3, []]
    assert out["caps"] == dict.fromkeys(("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"), 0)
    attacks = out["attacks"]
    assert attacks["setuid 0"] == attacks["kill init"] == attacks["kill parent"] == "EPERM"
    assert attacks["read secret"] == "EACCES"
    if not _others_can_reach(f"{STDLIB}/colorsys.py"):  # e.g. pyenv under /root
        assert attacks["read stdlib"] == "EACCES"  # why keep_read_search exists


def _name_to_handle(path: str) -> bytes:
    handle = ctypes.create_string_buffer(struct.pack("=Ii", 128, 0).ljust(8 + 128, b"\0"))
    mount_id = ctypes.c_int()
    confine._syscall(confine.SYSCALLS[ARCH]["name_to_handle_at"], -100, path.encode(), handle,
                     ctypes.byref(mount_id), 0)
    return handle.raw


def _open_by_handle(anchor: str, handle_hex: str) -> int:
    """open_by_handle_at with a readable file of the same filesystem as mount_fd (not O_PATH:
    the kernel refuses those there)."""
    mount_fd = os.open(anchor, os.O_RDONLY)
    try:
        fd = call("open_by_handle_at", mount_fd, bytes.fromhex(handle_hex), os.O_RDONLY)
    finally:
        os.close(mount_fd)
    try:
        return len(os.read(fd, 100))
    finally:
        os.close(fd)


def _keep_read_search(parent, t, handle):
    result = Confinement()
    confine.drop_privileges(NOBODY, NOBODY, keep_read_search=True, result=result)
    out = {"control": {"read secret": attempt(read, t.secret), "read reference": attempt(read, t.ref_file),
                       "open_by_handle_at": attempt(_open_by_handle, t.public, handle)}}
    out["caps"] = caps()  # Landlock leaves capabilities alone; /proc is not readable under it
    confine.apply_landlock(course_read_paths(t), [], result=result)
    out["attacks"] = {
        "read secret": attempt(read, t.secret), "read reference": attempt(read, t.ref_file),
        "list reference": attempt(os.listdir, t.ref), "list outside": attempt(os.listdir, t.outside),
        "setuid 0": attempt(os.setuid, 0), "kill init": attempt(os.kill, 1, 0),
    }
    out["open_by_handle_at under Landlock"] = attempt(_open_by_handle, t.public, handle)
    out["legit"] = {"pure python": fresh_import("fractions", "colorsys", "wave", "mailbox"),
                    "system library": fresh_import("decimal", "sqlite3", "_curses"),
                    "read public": attempt(read, t.public)}
    confine.apply_seccomp(confine_signals=not result.signals_scoped, result=result)
    out["open_by_handle_at under seccomp"] = attempt(_open_by_handle, t.public, handle)
    out["result"] = result.as_dict()
    return out


@needs_root
@needs_seccomp
@needs_abi(1, "filesystem rules")
def test_read_search_capability_does_not_get_past_landlock(tree):
    handle = _name_to_handle(tree.secret).hex()
    out = run_confined(_keep_read_search, tree, handle)
    # The capability is real: unconfined, nobody reads root's 0600 file, by path or by handle.
    assert out["control"] == {"read secret": "ok", "read reference": "ok", "open_by_handle_at": "ok"}
    assert out["caps"]["CapEff"] == out["caps"]["CapPrm"] == 1 << confine.CAP_DAC_READ_SEARCH
    assert out["caps"]["CapBnd"] == out["caps"]["CapInh"] == out["caps"]["CapAmb"] == 0
    assert out["attacks"] == {"read secret": "EACCES", "read reference": "EACCES", "list reference": "EACCES",
                              "list outside": "EACCES", "setuid 0": "EPERM", "kill init": "EPERM"}
    assert out["open_by_handle_at under Landlock"] == "EACCES"  # Landlock checks the opened file's path
    assert out["open_by_handle_at under seccomp"] == "EPERM"
    for what in ("pure python", "system library"):
        assert out["legit"][what]["module"] and out["legit"][what]["import"] == "ok", out["legit"][what]
    assert out["legit"]["read public"] == "ok"
    assert out["result"]["privileges_dropped"] and out["result"]["filesystem"] and out["result"]["seccomp"]


# ------------------------------------------------------------------ everything
def _whole_worker(parent, t):
    os.setsid()
    read_paths = course_read_paths(t)
    result = confine.confine_self(read_paths, [t.work, "/dev/null"], uid=NOBODY if IS_ROOT else None,
                                  keep_read_search=True)
    a = np.random.default_rng(1).standard_normal((200, 200)) + 200 * np.eye(200)

    def solve():
        if not np.allclose(a @ np.linalg.solve(a, np.ones(200)), 1):
            raise ArithmeticError("wrong solution")

    return {
        "result": result.as_dict(),
        "legit": {
            "numpy": attempt(solve),
            "import": fresh_import("colorsys", "wave", "mailbox")["import"],
            "write work": attempt(write, f"{t.work}/answer.txt"),
            "read work": attempt(read, f"{t.work}/answer.txt"),
            "devnull": attempt(write, "/dev/null"),
            "socketpair": attempt(socket.socketpair),
        },
        "attacks": {"read reference": attempt(read, t.ref_file), "kill parent": attempt(os.kill, parent, 9),
                    "inet socket": attempt(socket.socket), "write course": attempt(write, f"{t.root}/x")},
    }


@needs_abi(1, "filesystem rules")
@needs_seccomp
def test_confine_self_as_a_worker_would(tree):
    if IS_ROOT:
        os.chown(tree.work, NOBODY, NOBODY)  # the worker's own folder, as the sandbox hands it over
    out = run_confined(_whole_worker, tree)
    r = out["result"]
    assert r["filesystem"] and r["seccomp"] and r["no_new_privs"] and r["landlock_abi"] == ABI
    assert r["privileges_dropped"] == IS_ROOT and r["tcp"] == (ABI >= 4) and r["signals_scoped"] == (ABI >= 6)
    assert set(out["legit"].values()) == {"ok"}, out["legit"]
    assert set(out["attacks"].values()) <= {"EACCES", "EPERM"}, out["attacks"]
    json.dumps(r)


# ------------------------------------------------------------ degrading quietly
def _landlock_blocked(parent, code):
    p = confine._Program()
    p.load(0)
    p.jump(0x15, 444, yes="no")
    p.ret(confine.SECCOMP_RET_ALLOW)
    p.label("no")
    p.ret(confine.SECCOMP_RET_ERRNO | code)
    blob, _ = p.assemble()
    confine.set_no_new_privs()
    confine._install(ARCH, confine._program(blob))
    result = Confinement()
    confine.apply_landlock(SYSTEM_READ, [], result=result)
    confine.platform.machine = lambda: "riscv64"  # a machine without a filter
    confine.seccomp_arch.cache_clear()
    confine.apply_seccomp(confine_signals=True, result=result)
    return {"abi": confine.landlock_abi(), "result": result.as_dict()}


@needs_seccomp
@pytest.mark.parametrize("code", [errno.ENOSYS, errno.EPERM])
def test_landlock_blocked_by_a_container_degrades_quietly(code):
    out = run_confined(_landlock_blocked, code)
    assert out["abi"] == 0
    r = out["result"]
    assert not (r["filesystem"] or r["tcp"] or r["signals_scoped"] or r["seccomp"])
    assert len(r["notes"]) == 2, r["notes"]


def _headers():
    found = {}
    for arch, path in (("x86_64", "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
                       ("x86_64", "/usr/include/asm/unistd_64.h"),
                       ("aarch64", "/usr/include/asm-generic/unistd.h")):
        if arch not in found and os.path.exists(path):
            text = open(path).read()
            table = {n: int(v) for n, v in re.findall(r"#define __NR(?:3264)?_(\w+)\s+(\d+)\b", text)}
            table.update({n: table.get(a) for n, a in re.findall(r"#define __NR_(\w+)\s+__NR3264_(\w+)", text)})
            found[arch] = table
    return found


def test_syscall_tables_match_the_kernel_headers():
    headers = _headers()
    if not headers:
        pytest.skip("no kernel headers installed (linux-libc-dev)")
    for arch, table in headers.items():
        mine = confine.SYSCALLS[arch]
        assert {n: table.get(n) for n in mine} == mine, arch


def _clears_its_death_signal(parent):
    confine._prctl(1, signal.SIGKILL)  # armed before the filter, as a worker's is
    confine.apply_seccomp(confine_signals=False, result=Confinement())
    return {"clear": attempt(confine._prctl, 1, 0), "rearm": attempt(confine._prctl, 1, signal.SIGTERM),
            "other prctl": attempt(confine._prctl, 4, 1)}  # PR_SET_DUMPABLE: allowed


@needs_seccomp
def test_seccomp_keeps_the_parent_death_signal():
    """A worker must die with whatever started it: it may not clear or change the signal."""
    out = run_confined(_clears_its_death_signal)
    assert {k: out[k] for k in ("clear", "rearm", "other prctl")} == {"clear": "EPERM", "rearm": "EPERM",
                                                                    "other prctl": "ok"}
