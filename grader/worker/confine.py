"""Kernel confinement a worker applies to itself before any student code runs.

Layers, each optional, each reported in a `Confinement` (plain data, JSON-ready):
- Landlock: read/execute only beneath the policy's read paths, write only beneath
  its write paths, no TCP, and (ABI 6) no signals or abstract Unix sockets to
  processes outside the worker. It holds against root and every capability;
- seccomp: refuses what reaches the network, other processes, and the kernel's
  rarer attack surface (io_uring, bpf, namespaces, mounts, modules...);
- no_new_privs (which both need) and a non-dumpable process;
- dropping root: an unprivileged uid with no capability, or only CAP_DAC_READ_SEARCH.

This module runs next to student code, so it imports the standard library only.
Without a feature (another OS, an old kernel, a container's seccomp profile) a
function records that it did not hold instead of raising; only `drop_privileges`
raises, when the uid change fails. Apply it in a single-threaded process (a worker
just forked): Landlock before ABI 8, capabilities and the bounding set are per
thread. `confine_self` runs the steps in the order that works: Landlock while
still root (so every path can be opened), then the uid change, then seccomp.
A zygote calls `prepare()` once before forking: each worker then confines itself
in well under a millisecond.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import platform
import stat
import struct
import sys
from dataclasses import asdict, dataclass, field

_LINUX = sys.platform.startswith("linux")


@functools.lru_cache(maxsize=None)
def _libc_function(name: str):
    fn = getattr(ctypes.CDLL(None, use_errno=True), name)
    fn.restype = ctypes.c_long if name == "syscall" else ctypes.c_int
    return fn


def _failed() -> OSError:
    code = ctypes.get_errno()
    return OSError(code, os.strerror(code))


def _arg(value):
    """Variadic C calls need explicit widths: a bare Python int is passed as an int."""
    return ctypes.c_long(value) if isinstance(value, int) else value


def _syscall(number: int, *args) -> int:
    """syscall(2); raises OSError on failure."""
    ret = _libc_function("syscall")(ctypes.c_long(number), *map(_arg, args))
    if ret == -1:
        raise _failed()
    return ret


def _prctl(option: int, a2: int = 0, a3: int = 0, a4: int = 0, a5: int = 0) -> int:
    args = (ctypes.c_ulong(a & 0xFFFFFFFFFFFFFFFF) for a in (a2, a3, a4, a5))
    ret = _libc_function("prctl")(ctypes.c_int(option), *args)
    if ret == -1:
        raise _failed()
    return ret


def prepare() -> None:
    """Once, before forking workers (in the zygote): do the work that would otherwise
    cost every worker a few hundred microseconds (loading libc's functions, reading
    cap_last_cap, assembling the seccomp filters). Optional: everything works without."""
    if not _LINUX:
        return
    for name in ("syscall", "prctl", "capget", "capset"):
        _libc_function(name)
    _last_capability()
    _landlock_arch_ok()
    _filter_buffer()
    arch = seccomp_arch()
    if arch:
        for leader in (True, False):
            for confine_signals in (True, False):
                _filter_template(arch, leader, confine_signals)


# ------------------------------------------------------------------ the record
@dataclass
class Confinement:
    """What held; plain data the worker can send back as JSON."""

    landlock_abi: int = 0
    filesystem: bool = False  # read/write limited to the policy's paths
    tcp: bool = False  # TCP bind/connect refused by Landlock (ABI >= 4)
    signals_scoped: bool = False  # Landlock ABI >= 6: no signals to processes outside the domain
    abstract_unix_scoped: bool = False  # Landlock ABI >= 6
    seccomp: bool = False
    no_new_privs: bool = False
    privileges_dropped: bool = False  # uid/gid changed, capabilities as asked
    notes: list[str] = field(default_factory=list)  # why something did not hold

    def as_dict(self) -> dict:
        return asdict(self)


# -------------------------------------------------------------------- prctl bits
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_SECCOMP = 22
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4


def set_dumpable(flag: bool) -> None:
    """A non-dumpable process cannot be ptraced, nor its /proc/<pid>/mem opened, by
    another process of the same uid (another worker, or student code in one)."""
    if _LINUX:
        try:
            _prctl(PR_SET_DUMPABLE, 1 if flag else 0)
        except (OSError, AttributeError):
            pass


def set_no_new_privs(result: Confinement | None = None) -> None:
    """No setuid bit or file capability can raise privileges from here on; Landlock
    and seccomp require it of an unprivileged process."""
    if not _LINUX:
        return
    try:
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        held = _prctl(PR_GET_NO_NEW_PRIVS) == 1
    except (OSError, AttributeError) as exc:
        held = False
        if result is not None:
            result.notes.append(f"no_new_privs could not be set: {exc}")
    if result is not None:
        result.no_new_privs = held


def _thread_count() -> int:
    """procfs gives /proc/self/task one link per thread, plus two."""
    try:
        return max(1, os.stat("/proc/self/task").st_nlink - 2)
    except OSError:
        return 1


# ---------------------------------------------------------------------- Landlock
# include/uapi/linux/landlock.h. The syscall numbers belong to the range every
# architecture shares (424 and up), except alpha, ia64 and mips.
_NR_LANDLOCK_CREATE_RULESET, _NR_LANDLOCK_ADD_RULE, _NR_LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
LANDLOCK_RESTRICT_SELF_TSYNC = 1 << 3  # ABI 8: restrict every thread at once

FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FS_V1 = (1 << 13) - 1  # execute .. make_sym
_FS_BY_ABI = {1: _FS_V1, 2: _FS_V1 | FS_REFER, 3: _FS_V1 | FS_REFER | FS_TRUNCATE,
              4: _FS_V1 | FS_REFER | FS_TRUNCATE}
_FS_LATEST = _FS_V1 | FS_REFER | FS_TRUNCATE | FS_IOCTL_DEV  # ABI 5 and later
_FS_READ = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
_FS_FILE_ONLY = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1


@functools.lru_cache(maxsize=None)
def _landlock_arch_ok() -> bool:
    return _LINUX and not platform.machine().lower().startswith(("alpha", "ia64", "mips"))


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when unavailable (not Linux, old kernel,
    syscall blocked by a container's seccomp profile (ENOSYS/EPERM), disabled LSM)."""
    if not _landlock_arch_ok():
        return 0
    try:
        return max(0, _syscall(_NR_LANDLOCK_CREATE_RULESET, None, 0, LANDLOCK_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0


def allowed_beneath(roots: list[str], denied: list[str]) -> list[str]:
    """Landlock can only allow whole hierarchies. Expand `roots` (dirs or files) into
    paths that together cover every root EXCEPT the `denied` subtrees: a root with a
    denied path beneath it is replaced by its children, recursing only along the
    branch that leads to the denied path. A denied path equal to or above a root
    removes that root. Paths are compared after os.path.realpath; roots that do not
    exist are skipped. A denied path that does not exist (yet) still carves out its
    branch, so creating it later does not make it readable.

    Symlinks met while expanding are left out, not followed: access through one is
    checked on its target, so it needs no rule of its own, and a rule opened through
    it would grant the target (perhaps the denied subtree itself)."""
    deny = [os.path.realpath(d) for d in denied]
    out: list[str] = []
    for root in roots:
        real = os.path.realpath(root)
        if os.path.lexists(real):
            out.extend(_carve(real, deny))
    return list(dict.fromkeys(out))


def _within(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def _carve(path: str, deny: list[str]) -> list[str]:
    if any(_within(path, d) for d in deny):
        return []
    if not any(_within(d, path) for d in deny):
        return [path]
    try:
        with os.scandir(path) as entries:
            children = [e.path for e in entries if not e.is_symlink()]
    except OSError:
        return []  # cannot list it: grant nothing beneath it
    return [p for child in sorted(children) for p in _carve(child, deny)]


def apply_landlock(read: list[str], write: list[str], *, scope: bool = True, deny_tcp: bool = True,
                   result: Confinement) -> None:
    """Restrict this process (and everything it starts) to reading/executing beneath
    `read` and reading/writing beneath `write`, with every right the kernel's ABI
    knows handled, so nothing is left allowed by omission. Also refuses TCP bind and
    connect (ABI 4) and, with `scope`, signals and abstract Unix sockets to processes
    outside the domain (ABI 6). Sets no_new_privs. Paths that do not exist are skipped."""
    abi = landlock_abi()
    result.landlock_abi = abi
    if abi < 1:
        result.notes.append("Landlock is unavailable: no filesystem, TCP or signal confinement from it")
        return
    fs = _FS_BY_ABI.get(abi, _FS_LATEST)
    net = NET_BIND_TCP | NET_CONNECT_TCP if deny_tcp and abi >= 4 else 0
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if scope and abi >= 6 else 0
    # Plain bytes wherever the kernel only reads: a ctypes buffer would cost a new ctypes
    # type per size, ~0.1 ms in a freshly forked worker.
    attr = struct.pack("=QQQ", fs, net, scoped)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    try:
        ruleset = _syscall(_NR_LANDLOCK_CREATE_RULESET, attr, size, 0)
    except OSError as exc:
        result.notes.append(f"Landlock ruleset refused: {exc}")
        return
    try:
        failed = _add_rules(ruleset, read, fs & _FS_READ) + _add_rules(ruleset, write, fs)
        set_no_new_privs(result)
        threads = _thread_count()
        flags = LANDLOCK_RESTRICT_SELF_TSYNC if threads > 1 and abi >= 8 else 0
        _syscall(_NR_LANDLOCK_RESTRICT_SELF, ruleset, flags)
    except OSError as exc:
        result.notes.append(f"Landlock restrict_self failed: {exc}")
        return
    finally:
        os.close(ruleset)
    if failed:
        result.notes.append(f"Landlock: no rule for {len(failed)} path(s) (they stay unreachable): "
                            + ", ".join(failed[:5]))
    whole = threads == 1 or bool(flags)
    if not whole:
        result.notes.append(f"Landlock restricts only the calling thread; {threads - 1} other thread(s) existed")
    result.filesystem = whole
    result.tcp = whole and bool(net)
    result.signals_scoped = whole and bool(scoped & SCOPE_SIGNAL)
    result.abstract_unix_scoped = whole and bool(scoped & SCOPE_ABSTRACT_UNIX_SOCKET)
    if deny_tcp and not net:
        result.notes.append(f"Landlock ABI {abi} cannot refuse TCP (needs 4)")
    if scope and not scoped:
        result.notes.append(f"Landlock ABI {abi} cannot scope signals or abstract sockets (needs 6)")


def _add_rules(ruleset: int, paths: list[str], rights: int) -> list[str]:
    """One path-beneath rule per existing path; a file (not a directory) can only
    carry file rights. Returns the paths that exist but got no rule."""
    failed = []
    add_rule = _libc_function("syscall")
    for path in paths:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        except OSError:
            failed.append(path)
            continue
        try:
            allowed = rights if stat.S_ISDIR(os.fstat(fd).st_mode) else rights & _FS_FILE_ONLY
            rule = struct.pack("=Qi", allowed, fd)  # struct landlock_path_beneath_attr, packed
            if add_rule(ctypes.c_long(_NR_LANDLOCK_ADD_RULE), ctypes.c_long(ruleset),
                        ctypes.c_long(LANDLOCK_RULE_PATH_BENEATH), rule, ctypes.c_long(0)) == -1:
                failed.append(path)
        finally:
            os.close(fd)
    return failed


def read_ruleset(read: list[str], listable: list[str] = ()) -> int | None:
    """A ruleset that handles only the read rights (read, list, execute), with rules for
    `read` (everything beneath) and `listable` (listing only: the folders a denied path
    was carved out of, so that Python can still find their other entries). Built once
    by a zygote, whose workers inherit the descriptor and only apply it
    (`apply_layered`): hundreds of rules cost milliseconds to build, microseconds to
    apply. None without Landlock."""
    if landlock_abi() < 1:
        return None
    try:
        ruleset = _syscall(_NR_LANDLOCK_CREATE_RULESET, struct.pack("=Q", _FS_READ), 8, 0)
    except OSError:
        return None
    _add_rules(ruleset, list(read), _FS_READ)
    _add_rules(ruleset, list(listable), FS_READ_DIR)
    return ruleset


def apply_layered(base: int | None, write: list[str], *, scope: bool = True, deny_tcp: bool = True,
                  result: Confinement) -> None:
    """Two Landlock layers: the read layer `base` built by `read_ruleset` (None: reads
    are not restricted, as under bubblewrap, where nothing private is in view), then a
    layer of this worker's own that handles every other right (writing, creating,
    removing, TCP, scopes) and allows writing beneath `write` only."""
    abi = landlock_abi()
    result.landlock_abi = abi
    if abi < 1:
        result.notes.append("Landlock is unavailable: no filesystem, TCP or signal confinement from it")
        return
    fs = _FS_BY_ABI.get(abi, _FS_LATEST) & ~_FS_READ
    net = NET_BIND_TCP | NET_CONNECT_TCP if deny_tcp and abi >= 4 else 0
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if scope and abi >= 6 else 0
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    set_no_new_privs(result)
    threads = _thread_count()
    flags = LANDLOCK_RESTRICT_SELF_TSYNC if threads > 1 and abi >= 8 else 0
    try:
        if base is not None:
            _syscall(_NR_LANDLOCK_RESTRICT_SELF, base, flags)
        ruleset = _syscall(_NR_LANDLOCK_CREATE_RULESET, struct.pack("=QQQ", fs, net, scoped), size, 0)
        try:
            failed = _add_rules(ruleset, write, fs)
            _syscall(_NR_LANDLOCK_RESTRICT_SELF, ruleset, flags)
        finally:
            os.close(ruleset)
    except OSError as exc:
        result.notes.append(f"Landlock could not be applied: {exc}")
        return
    if failed:
        result.notes.append(f"Landlock: no write rule for {', '.join(failed[:5])}")
    whole = threads == 1 or bool(flags)
    if not whole:
        result.notes.append(f"Landlock restricts only the calling thread; {threads - 1} other thread(s) existed")
    result.filesystem = whole
    result.tcp = whole and bool(net)
    result.signals_scoped = result.abstract_unix_scoped = whole and bool(scoped)


# ----------------------------------------------------------------------- seccomp
# Syscall numbers. x86_64: arch/x86/entry/syscalls/syscall_64.tbl; aarch64 uses the
# generic table, include/uapi/asm-generic/unistd.h (Linux 6.x). Both were checked
# against Debian's linux-libc-dev headers (asm/unistd_64.h, asm-generic/unistd.h);
# tests/test_confine.py repeats the check wherever those headers are installed.
# From 424 up the numbers are the same on every architecture.
_COMMON = {
    "pidfd_send_signal": 424, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "pidfd_open": 434, "clone3": 435, "pidfd_getfd": 438, "mount_setattr": 442,
}
SYSCALLS = {
    "x86_64": {
        **_COMMON,
        "ioctl": 16, "prctl": 157, "socket": 41, "socketpair": 53, "clone": 56, "kill": 62, "fcntl": 72, "ptrace": 101,
        "rt_sigqueueinfo": 129, "setpriority": 141, "sched_setparam": 142, "sched_setscheduler": 144,
        "vhangup": 153, "pivot_root": 155, "chroot": 161, "acct": 163, "settimeofday": 164,
        "mount": 165, "umount2": 166, "swapon": 167, "swapoff": 168, "reboot": 169, "sethostname": 170,
        "setdomainname": 171, "iopl": 172, "ioperm": 173, "init_module": 175, "delete_module": 176,
        "tkill": 200, "sched_setaffinity": 203, "clock_settime": 227, "tgkill": 234, "kexec_load": 246,
        "add_key": 248, "request_key": 249, "keyctl": 250, "ioprio_set": 251, "migrate_pages": 256,
        "unshare": 272, "move_pages": 279, "rt_tgsigqueueinfo": 297, "perf_event_open": 298,
        "prlimit64": 302, "name_to_handle_at": 303, "open_by_handle_at": 304, "setns": 308,
        "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312, "finit_module": 313,
        "sched_setattr": 314, "seccomp": 317, "kexec_file_load": 320, "bpf": 321, "userfaultfd": 323,
    },
    "aarch64": {
        **_COMMON,
        "fcntl": 25, "ioctl": 29, "prctl": 167, "ioprio_set": 30, "umount2": 39, "mount": 40, "pivot_root": 41, "chroot": 51,
        "vhangup": 58, "acct": 89, "unshare": 97, "kexec_load": 104, "init_module": 105,
        "delete_module": 106, "clock_settime": 112, "ptrace": 117, "sched_setparam": 118,
        "sched_setscheduler": 119, "sched_setaffinity": 122, "kill": 129, "tkill": 130, "tgkill": 131,
        "rt_sigqueueinfo": 138, "setpriority": 140, "reboot": 142, "sethostname": 161,
        "setdomainname": 162, "settimeofday": 170, "socket": 198, "socketpair": 199, "add_key": 217,
        "request_key": 218, "keyctl": 219, "clone": 220, "swapon": 224, "swapoff": 225,
        "migrate_pages": 238, "move_pages": 239, "rt_tgsigqueueinfo": 240, "perf_event_open": 241,
        "prlimit64": 261, "name_to_handle_at": 264, "open_by_handle_at": 265, "setns": 268,
        "process_vm_readv": 270, "process_vm_writev": 271, "kcmp": 272, "finit_module": 273,
        "sched_setattr": 274, "seccomp": 277, "bpf": 280, "userfaultfd": 282, "kexec_file_load": 294,
    },
}
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}  # EM_* | 64BIT | LE, linux/audit.h

# Refused outright (EPERM). Student code never needs any of these; they reach other
# processes' memory (ptrace, process_vm_*, kcmp), files by handle around path checks,
# the network without seccomp seeing it (io_uring), namespaces and mounts, kernel
# modules, and the big attack surfaces (bpf, perf, userfaultfd, keyrings); the last
# line only matters if the worker kept root.
REFUSED = (
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
    "open_by_handle_at", "name_to_handle_at",
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "mount", "umount2", "pivot_root", "chroot", "setns", "unshare",
    "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "reboot", "swapon", "swapoff", "sethostname", "setdomainname", "acct", "settimeofday",
    "clock_settime", "iopl", "ioperm", "vhangup",
)
# Refused with confine_signals: no argument says whom they reach (a pidfd can be a
# /proc/<pid> directory opened by path).
REFUSED_WITH_SIGNALS = ("pidfd_send_signal", "pidfd_getfd")

SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_MODE_FILTER = 2
SECCOMP_FILTER_FLAG_TSYNC = 1
_X32_SYSCALL_BIT = 0x40000000
# Namespace flags of clone(2); CLONE_NEWTIME (0x80) shares its bit with the exit signal there.
_CLONE_NEW_ANY = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
AF_UNIX = 1
F_SETOWN, F_SETOWN_EX = 8, 15
FIOSETOWN, SIOCSPGRP = 0x8901, 0x8902
PRIO_PROCESS, IOPRIO_WHO_PROCESS = 0, 1

# Classic BPF opcodes (linux/filter.h) and struct seccomp_data offsets (linux/seccomp.h).
_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
_OFF_NR, _OFF_ARCH = 0, 4


def _arg_low(index: int) -> int:
    """Offset of the low 32 bits of argument `index` (little-endian only)."""
    return 16 + 8 * index


@functools.lru_cache(maxsize=None)
def seccomp_arch() -> str | None:
    """'x86_64' or 'aarch64' when this process makes native 64-bit little-endian
    syscalls there; None otherwise (a 32-bit or x32 interpreter, another machine)."""
    if not _LINUX or struct.calcsize("P") != 8 or sys.byteorder != "little":
        return None
    machine = platform.machine().lower()
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}.get(machine)


_PID, _MINUS_PID = "pid", "-pid"  # constants known only in the worker: patched in per process


class _Program:
    """Classic BPF with forward jumps to named labels (jt/jf offsets are 8 bits).
    A constant may be _PID or _MINUS_PID, filled in by `_fill`."""

    def __init__(self):
        self.code: list[tuple[int, str | None, str | None, int | str]] = []
        self.labels: dict[str, int] = {}

    def load(self, offset: int) -> None:
        self.code.append((_LD_W_ABS, None, None, offset))

    def jump(self, op: int, k: int | str, yes: str | None = None, no: str | None = None) -> None:
        self.code.append((op, yes, no, k if isinstance(k, str) else k & 0xFFFFFFFF))

    def ret(self, value: int) -> None:
        self.code.append((_RET_K, None, None, value))

    def label(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def assemble(self) -> tuple[bytes, tuple[tuple[int, str], ...]]:
        """-> (struct sock_filter[] bytes, (byte offset, marker) of each constant to fill)."""
        out, holes = bytearray(), []
        for i, (op, yes, no, k) in enumerate(self.code):
            jt, jf = (0 if t is None else self.labels[t] - i - 1 for t in (yes, no))
            if not (0 <= jt <= 255 and 0 <= jf <= 255):
                raise ValueError("seccomp filter too long for its jumps")
            if isinstance(k, str):
                holes.append((len(out) + 4, k))
                k = 0
            out += struct.pack("=HBBI", op, jt, jf, k)
        return bytes(out), tuple(holes)


def _fill(template: tuple[bytes, tuple[tuple[int, str], ...]], pid: int) -> bytes:
    code, holes = template
    out = bytearray(code)
    for offset, marker in holes:
        struct.pack_into("=I", out, offset, (pid if marker == _PID else -pid) & 0xFFFFFFFF)
    return bytes(out)


def _self_only_rules(leader: bool, confine_signals: bool) -> dict[str, list[tuple[int, list]]]:
    """Syscalls allowed only when they target this process: name -> [(arg, allowed
    values)], every condition required. Values compare the argument's low 32 bits."""
    pid = _PID
    me = [0, pid]  # 0: the caller itself
    rules = {
        # Same-uid processes may change each other's limits and scheduling: a lowered
        # RLIMIT_CPU kills the grader, a nice of 19 starves it. Landlock scopes none of this.
        "prlimit64": [(0, me)], "setpriority": [(0, [PRIO_PROCESS]), (1, me)],
        "ioprio_set": [(0, [IOPRIO_WHO_PROCESS]), (1, me)],
        "sched_setaffinity": [(0, me)], "sched_setscheduler": [(0, me)],
        "sched_setparam": [(0, me)], "sched_setattr": [(0, me)],
        "migrate_pages": [(0, me)], "move_pages": [(0, me)],
    }
    if confine_signals:
        # kill(0) and kill(-pgid) reach the process group: only safe for a session leader,
        # whose session no outside process can join.
        group = [0, _MINUS_PID] if leader else []
        rules.update({
            "kill": [(0, [pid, *group])], "tkill": [(0, [pid])], "tgkill": [(0, [pid])],
            "rt_sigqueueinfo": [(0, [pid])], "rt_tgsigqueueinfo": [(0, [pid])], "pidfd_open": [(0, [pid])],
        })
    return rules


def build_seccomp_filter(arch: str, *, pid: int, leader: bool, confine_signals: bool) -> bytes:
    """The filter as struct sock_filter[] bytes (see apply_seccomp for the policy)."""
    return _fill(_filter_template(arch, leader, confine_signals), pid)


@functools.lru_cache(maxsize=None)
def _filter_template(arch: str, leader: bool, confine_signals: bool):
    nr = SYSCALLS[arch]
    p = _Program()
    p.load(_OFF_ARCH)
    p.jump(_JEQ_K, _AUDIT_ARCH[arch], no="deny")  # a foreign ABI (i386, arm32): nothing runs
    p.load(_OFF_NR)
    if arch == "x86_64":
        p.jump(_JGE_K, _X32_SYSCALL_BIT, yes="deny")  # the x32 ABI
    for name in REFUSED + (REFUSED_WITH_SIGNALS if confine_signals else ()):
        if name in nr:
            p.jump(_JEQ_K, nr[name], yes="deny")
    rules = _self_only_rules(leader, confine_signals)
    dispatch = {"socket": "socket", "clone": "clone", "clone3": "enosys", "prctl": "prctl", **{n: n for n in rules}}
    if confine_signals:
        dispatch.update(fcntl="fcntl", ioctl="ioctl")
    for name, target in dispatch.items():
        p.jump(_JEQ_K, nr[name], yes=target)
    p.ret(SECCOMP_RET_ALLOW)

    p.label("socket")  # AF_UNIX only: no IPv4/IPv6/netlink/packet sockets
    p.load(_arg_low(0))
    p.jump(_JEQ_K, AF_UNIX, yes="allow", no="deny")
    p.label("prctl")  # the parent-death signal stays: a worker dies with what started it
    p.load(_arg_low(0))
    p.jump(_JEQ_K, PR_SET_PDEATHSIG, yes="deny", no="allow")
    p.label("clone")  # no new namespaces (clone3 hides its flags in memory: ENOSYS, glibc falls back)
    p.load(_arg_low(0))
    p.jump(_JSET_K, _CLONE_NEW_ANY, yes="deny", no="allow")
    for name, conditions in rules.items():
        p.label(name)
        for i, (arg, values) in enumerate(conditions):
            met = f"{name}.{i}"
            p.load(_arg_low(arg))
            for value in values[:-1]:
                p.jump(_JEQ_K, value, yes=met)
            p.jump(_JEQ_K, values[-1], yes=met, no="deny")
            p.label(met)
        p.ret(SECCOMP_RET_ALLOW)
    if confine_signals:
        # F_SETOWN/FIOSETOWN make the kernel send SIGIO (or any signal, via F_SETSIG) to a pid.
        owners = [0, _PID, _MINUS_PID] if leader else [0, _PID]
        p.label("fcntl")
        p.load(_arg_low(1))
        p.jump(_JEQ_K, F_SETOWN_EX, yes="deny")
        p.jump(_JEQ_K, F_SETOWN, no="allow")
        p.load(_arg_low(2))
        for value in owners[:-1]:
            p.jump(_JEQ_K, value, yes="allow")
        p.jump(_JEQ_K, owners[-1], yes="allow", no="deny")
        p.label("ioctl")
        p.load(_arg_low(1))
        p.jump(_JEQ_K, FIOSETOWN, yes="deny")
        p.jump(_JEQ_K, SIOCSPGRP, yes="deny", no="allow")
    p.label("allow")
    p.ret(SECCOMP_RET_ALLOW)
    p.label("deny")
    p.ret(SECCOMP_RET_ERRNO | errno.EPERM)
    p.label("enosys")
    p.ret(SECCOMP_RET_ERRNO | errno.ENOSYS)
    return p.assemble()


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def apply_seccomp(*, confine_signals: bool, result: Confinement) -> None:
    """Install a seccomp-BPF filter (x86_64 and aarch64) that answers EPERM, never
    kills, so a student's stray call is an error message rather than a mystery crash:
    - the syscalls in REFUSED (io_uring, ptrace, process_vm_*, handles, bpf, perf,
      keyrings, modules, kexec, mounts, namespaces, and root-only clock/host/swap calls);
    - socket() of any family but AF_UNIX (socketpair stays): no network at all;
    - clone() with namespace flags; clone3() answers ENOSYS so glibc falls back to clone;
    - prlimit64/setpriority/sched_set*/ioprio_set/migrate_pages/move_pages on another process;
    - with confine_signals (for kernels whose Landlock cannot scope signals): kill,
      tkill, tgkill, rt_(tg)sigqueueinfo and pidfd_open unless aimed at this process
      (kill(0) and kill(-pgid) too when it leads its own session), pidfd_send_signal,
      pidfd_getfd, F_SETOWN(_EX)/FIOSETOWN/SIOCSPGRP towards another process.
    The pid is baked in when the filter is built: processes the worker forks may signal
    the worker and its group, not themselves by pid nor each other. Everything else is
    allowed. Sets no_new_privs; covers every thread (TSYNC)."""
    arch = seccomp_arch()
    if arch is None:
        result.notes.append(f"seccomp not applied: no filter for {platform.machine() or sys.platform} "
                            f"({struct.calcsize('P') * 8}-bit {sys.byteorder}-endian)")
        return
    pid = os.getpid()
    leader = os.getsid(0) == pid
    try:
        blob = build_seccomp_filter(arch, pid=pid, leader=leader, confine_signals=confine_signals)
    except ValueError as exc:
        result.notes.append(f"seccomp not applied: {exc}")
        return
    if confine_signals and not leader:
        result.notes.append("seccomp: not a session leader, so kill(0) and kill(-pgid) are refused too")
    set_no_new_privs(result)
    try:
        _install(arch, _program(blob))
    except OSError as exc:
        result.notes.append(f"seccomp filter refused: {exc}")
        return
    result.seccomp = True


_MAX_FILTER_BYTES = 8 * 512


@functools.lru_cache(maxsize=None)
def _filter_buffer():
    buffer = ctypes.create_string_buffer(_MAX_FILTER_BYTES)
    return buffer, _SockFprog(0, ctypes.addressof(buffer))


def _program(blob: bytes) -> _SockFprog:
    """struct sock_fprog for `blob`, in memory that prepare() can allocate before the fork."""
    if len(blob) > _MAX_FILTER_BYTES:
        raise OSError(errno.E2BIG, "seccomp filter too long")
    buffer, prog = _filter_buffer()
    buffer[: len(blob)] = blob
    prog.len = len(blob) // 8
    return prog


def _install(arch: str, prog: _SockFprog) -> None:
    try:
        tid = _syscall(SYSCALLS[arch]["seccomp"], SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC,
                       ctypes.byref(prog))
    except OSError as exc:
        if exc.errno != errno.ENOSYS:
            raise
        _prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog))  # Linux < 3.17
        return
    if tid:
        raise OSError(errno.EAGAIN, f"thread {tid} could not take the filter")


# -------------------------------------------------------------------- privileges
CAP_DAC_READ_SEARCH = 2
_CAP_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_CapPair = _CapData * 2  # version 3: two 32-bit words per set


def _capabilities() -> tuple[int, int, int]:
    """(effective, permitted, inheritable) of the calling thread, as 64-bit masks."""
    header, data = _CapHeader(_CAP_VERSION_3, 0), _CapPair()
    if _libc_function("capget")(ctypes.byref(header), data) != 0:
        raise _failed()
    sets = ("effective", "permitted", "inheritable")
    return tuple(getattr(data[0], s) | getattr(data[1], s) << 32 for s in sets)


def _set_capabilities(mask: int) -> None:
    """Effective = permitted = mask, inheritable = none."""
    header, data = _CapHeader(_CAP_VERSION_3, 0), _CapPair()
    for i in (0, 1):
        word = mask >> (32 * i) & 0xFFFFFFFF
        data[i].effective, data[i].permitted, data[i].inheritable = word, word, 0
    if _libc_function("capset")(ctypes.byref(header), data) != 0:
        raise _failed()


@functools.lru_cache(maxsize=None)
def _last_capability() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 63  # PR_CAPBSET_DROP answers EINVAL past the last one


def drop_privileges(uid: int, gid: int, *, keep_read_search: bool, result: Confinement) -> None:
    """When running as root: become uid/gid with no supplementary groups, an empty
    bounding set (so nothing can be regained through execve) and no capability,
    except CAP_DAC_READ_SEARCH (permitted and effective) when keep_read_search.

    Why keep that one: an interpreter installed under /root (mode 0700) cannot be read
    by an unprivileged uid. Landlock holds even against capabilities and limits what
    the worker may read; seccomp refuses open_by_handle_at, the one call the capability
    would otherwise open up. Raises OSError when the uid change fails or capabilities
    cannot be brought to the requested set: the caller must not run student code then.
    Not root: does nothing."""
    if not _LINUX or os.geteuid() != 0:
        return
    keep = 1 << CAP_DAC_READ_SEARCH if keep_read_search else 0
    if keep:
        _prctl(PR_SET_KEEPCAPS, 1)  # permitted survives the uid change
    try:
        _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError:
        pass  # Linux < 4.3 has no ambient set
    try:
        for cap in range(_last_capability() + 1):
            _prctl(PR_CAPBSET_DROP, cap)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            result.notes.append(f"capability bounding set not cleared: {exc}")
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid) or os.getgroups():
        raise OSError(errno.EPERM, f"could not become uid {uid} gid {gid}")
    if keep:
        _prctl(PR_SET_KEEPCAPS, 0)
    try:
        _set_capabilities(keep)
    except OSError:
        _set_capabilities(0)
        keep = 0
        result.notes.append("CAP_DAC_READ_SEARCH could not be kept")
    if _capabilities() != (keep, keep, 0):
        raise OSError(errno.EPERM, "capabilities left after dropping privileges")
    result.privileges_dropped = True


# ----------------------------------------------------------------------- together
def confine_self(read: list[str], write: list[str], *, uid: int | None = None, gid: int | None = None,
                 keep_read_search: bool = False, scope: bool = True, deny_tcp: bool = True) -> Confinement:
    """Every layer, in the order that works: Landlock while still root (so each path can
    be opened), then the uid change, then seccomp (signal rules only where Landlock could
    not scope signals). Raises OSError only when the uid change fails."""
    result = Confinement()
    set_no_new_privs(result)
    apply_landlock(read, write, scope=scope, deny_tcp=deny_tcp, result=result)
    if uid is not None:
        drop_privileges(uid, uid if gid is None else gid, keep_read_search=keep_read_search, result=result)
    apply_seccomp(confine_signals=not result.signals_scoped, result=result)
    set_dumpable(False)
    return result
