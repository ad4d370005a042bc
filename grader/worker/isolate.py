"""Namespaces and mounts: how each submission gets a sandbox of its own under bubblewrap.

bubblewrap gives a job slot its view of the machine (a read-only root; the toolkit,
the class, the output and home hidden; no network). Inside it, every submission gets
its own namespaces, set up here by the zygote and the worker before any student code
exists:

    zygote (once)        enter_user_namespace(): a user namespace of its own, where it
                         holds the capabilities to create the namespaces below; it is
                         non-dumpable, so no process of its uid may trace or read it
    launcher (per fork)  new_pid_namespace(), then fork: the worker is PID 1 there
    worker               private_mounts(): a mount and IPC namespace of its own, where
                         the slot's scratch folder shows only its own working copy, /tmp
                         is a fresh tmpfs and /proc shows its own process alone; then
                         drop_capabilities()

The worker cannot name, signal or trace the zygote (it lives in a parent PID
namespace), nor see any other submission's files or processes. Tearing it down is
done from outside: killing PID 1 of a PID namespace makes the kernel kill everything
in it, whatever the student's code did to itself.

Linux only; standard library only (this runs next to student code).
"""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = 4096, 8192, 16384, 1 << 18
PR_CAPBSET_DROP = 24
CAP_LAST = 63
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# What /proc keeps besides the worker's own entry: facts about the machine that
# libraries read (CPU count and features, memory), nothing about other processes.
PROC_FILES = ("cpuinfo", "meminfo", "stat", "uptime", "loadavg", "version", "filesystems")
PROC_LINKS = {"mounts": "self/mounts", "net": "self/net"}

_libc = ctypes.CDLL(None, use_errno=True)


class IsolationError(OSError):
    """A namespace or mount could not be set up: no student code may run then."""


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise IsolationError(errno, f"{what}: {os.strerror(errno)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), f"unshare({flags:#x})")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = (lambda s: None if s is None else os.fsencode(s))
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {target}")


def enter_user_namespace() -> None:
    """The zygote's own user namespace, mapping its uid and gid to themselves: it gains
    the capabilities to create PID, mount and IPC namespaces for its workers, and none
    outside (bubblewrap's namespace and the machine are out of its reach)."""
    uid, gid = os.getuid(), os.getgid()
    unshare(CLONE_NEWUSER)
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def new_pid_namespace() -> None:
    """The calling process's next child is PID 1 of a new PID namespace (a process may
    do this once: the zygote forks a launcher for each worker)."""
    unshare(CLONE_NEWPID)


def private_mounts(workdir: str, scratch: str) -> None:
    """A mount namespace of the worker's own: `scratch` (the slot's folder) shows only
    `workdir`, /tmp is empty and private, /proc holds this process's entry alone."""
    unshare(CLONE_NEWNS | CLONE_NEWIPC)
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount leaks back out
    own = os.open(workdir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    me = os.readlink("/proc/self")  # this process's number in the /proc mounted now
    entry = os.open(f"/proc/{me}", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    files = {name: os.open(f"/proc/{name}", os.O_PATH | os.O_CLOEXEC) for name in PROC_FILES
             if os.path.exists(f"/proc/{name}")}
    try:
        # A private /tmp first: the slot's scratch usually lives under /tmp, and is then
        # covered with it; elsewhere it gets a tmpfs of its own. Then the one working copy
        # is put back where it was.
        mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
        if not (scratch + "/").startswith("/tmp/"):
            mount("tmpfs", scratch, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755")
        os.makedirs(workdir, exist_ok=True)
        mount(f"/proc/self/fd/{own}", workdir, None, MS_BIND)
        # Build the new /proc aside (the magic links of the old one are still needed
        # to bind from), then move it into place.
        staging = "/tmp/.proc"
        os.mkdir(staging)
        mount("tmpfs", staging, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=0755")
        os.mkdir(f"{staging}/{me}")
        mount(f"/proc/self/fd/{entry}", f"{staging}/{me}", None, MS_BIND | MS_REC)
        for name, fd in files.items():
            open(f"{staging}/{name}", "wb").close()
            mount(f"/proc/self/fd/{fd}", f"{staging}/{name}", None, MS_BIND)
        os.symlink(me, f"{staging}/self")
        os.symlink(f"{me}/task/{me}", f"{staging}/thread-self")
        for name, target in PROC_LINKS.items():
            os.symlink(target, f"{staging}/{name}")
        mount(staging, "/proc", None, MS_MOVE)
        os.rmdir(staging)
    finally:
        for fd in (own, entry, *files.values()):
            os.close(fd)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> None:
    """No capability left, none to regain: the bounding set emptied, then every set
    cleared (the capabilities the zygote's user namespace gave are for setting up
    mounts, not for student code)."""
    for cap in range(CAP_LAST + 1):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:
            break  # EINVAL: past the kernel's last capability
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(_CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)), data), "capset")
