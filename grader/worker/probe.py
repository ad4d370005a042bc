"""The sandbox attacking itself: a fresh worker, before any student code exists, tries
what a hostile submission would, and reports what was refused.

The grader runs this once per run before grading anyone (`grader.protections`), so
the run's summary and results.json say which protections held on this machine in
this mode, as measured, not as hoped. Every attempt is harmless if it succeeds:
files are opened, never changed; a probe file created in a folder is removed at
once; signal 0 is sent, which checks permission and delivers nothing.

Targets (from the grader):
    {"read": {"solution": [paths], "classmates": [paths], "record": [paths]},
     "write": {"record": [paths], "classmates": [paths]},
     "processes": [pids],            # the grader and the worker host
     "tcp": port, "udp": port,       # loopback listeners of the grader
     "imports": [module names],      # forbidden packages installed on this machine
     "toolkit_root": path,
     "leftover": "9...."}            # argument of a detached `sleep` to leave behind
"""

from __future__ import annotations

import importlib.util
import os
import socket
import sys


def run(targets: dict) -> dict:
    """-> {protection: {"held": bool, "seen": [what got through]}}"""
    results = {}
    for group, paths in targets.get("read", {}).items():
        results.setdefault(group, []).extend(f"read {p}" for p in paths if _readable(p))
    for group, paths in targets.get("write", {}).items():
        results.setdefault(group, []).extend(f"wrote {p}" for p in paths if _writable(p))
    results["processes"] = [f"{how} {pid}" for pid in targets.get("processes", [])
                            for how in _reachable(int(pid))]
    results["network"] = _network(targets.get("tcp"), targets.get("udp"))
    results["forbidden_imports"] = _importable(targets.get("imports", []), targets.get("toolkit_root"))
    results["privileges"] = _privileges()
    if targets.get("leftover"):
        _leave_behind(str(targets["leftover"]))
    return {name: {"held": not seen, "seen": seen[:10]} for name, seen in results.items()}


def _leave_behind(marker: str) -> None:
    """A detached process that should not outlive this worker: the grader looks for
    its command line (`sleep MARKER`) once the worker has been cleaned up."""
    import subprocess

    try:
        subprocess.Popen(["sleep", marker], start_new_session=True, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        pass


def _readable(path: str) -> bool:
    try:
        if os.path.isdir(path):
            os.listdir(path)
            return True
        with open(path, "rb") as f:
            f.read(1)
        return True
    except OSError:
        return False


def _writable(path: str) -> bool:
    try:
        if os.path.isdir(path):
            probe = os.path.join(path, f".nngrade-probe-{os.getpid()}")
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            os.unlink(probe)
            return True
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)  # opened, not written
        os.close(fd)
        return True
    except OSError:
        return False


def _reachable(pid: int) -> list[str]:
    seen = []
    if pid == os.getpid():
        return seen
    try:
        os.kill(pid, 0)  # permission to signal, nothing delivered
        seen.append("signal")
    except OSError:
        pass
    for name in ("mem", "environ"):
        try:
            with open(f"/proc/{pid}/{name}", "rb"):
                seen.append(f"/proc/{name} of")
        except OSError:
            pass
    return seen


def _network(tcp: int | None, udp: int | None) -> list[str]:
    seen = []
    if tcp:
        try:
            with socket.create_connection(("127.0.0.1", tcp), timeout=2):
                seen.append(f"connected to 127.0.0.1:{tcp}")
        except OSError:
            pass
    if udp:
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"probe", ("127.0.0.1", udp))
                seen.append(f"sent a datagram to 127.0.0.1:{udp}")
        except OSError:
            pass
    return seen


def _importable(names: list[str], toolkit_root: str | None) -> list[str]:
    """With every import hook of ours removed, as a student could: are the forbidden
    packages and the toolkit's reference still there to load?"""
    seen = []
    saved_meta, saved_path = list(sys.meta_path), list(sys.path)
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ not in ("ImportBlocker", "ToolkitFinder")]
    if toolkit_root:
        sys.path.insert(0, toolkit_root)
    try:
        for name in [*names, "reference.cnn"]:
            try:
                spec = importlib.util.find_spec(name)
                if spec is not None and spec.origin and os.path.isfile(spec.origin):
                    with open(spec.origin, "rb") as f:
                        f.read(1)
                    seen.append(name)
            except (ImportError, ValueError, OSError):
                pass
    finally:
        sys.meta_path[:] = saved_meta
        sys.path[:] = saved_path
        for name in [m for m in sys.modules if m == "reference" or m.startswith("reference.")]:
            del sys.modules[name]
    return seen


def _privileges() -> list[str]:
    seen = []
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        seen.append("runs as root")
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("CapEff:") and int(line.split()[1], 16) & ~(1 << 2):
                    seen.append(f"holds capabilities {line.split()[1]}")
    except OSError:
        pass
    return seen
