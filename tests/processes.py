"""What is running on the machine, for tests that assert nothing a run started is left."""

from __future__ import annotations

import os
from pathlib import Path


def processes(contains: str) -> dict[int, str]:
    """pid -> command line of every process whose command line contains `contains`."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # it ended while we looked
        if contains in cmd:
            found[int(entry)] = cmd
    return found


def zygotes() -> set[int]:
    return set(processes("grader.worker.zygote"))


def sleepers() -> dict[int, str]:
    """The `sleep 98x` children that the hostile test submissions start."""
    return {pid: cmd for pid, cmd in processes("sleep 98").items() if cmd.startswith("sleep 98")}


def slot_uid_processes() -> dict[int, str]:
    """Processes running as one of the uids the sandbox gives job slots (no account has
    them): none may outlive the run that started them."""
    from grader.sandbox import SLOT_UID_BASE

    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
            dead = stat[stat.rfind(b")") + 2:].split()[0] in (b"Z", b"X")  # exited, not yet reaped
            if os.stat(f"/proc/{entry}").st_uid >= SLOT_UID_BASE and not dead:
                found[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
    return found


def describe(pids) -> dict[int, str]:
    """State, parent, uid and command line of each pid, for an assertion's message."""
    found = {}
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_bytes()
            fields = stat[stat.rfind(b")") + 2:].split()
            found[pid] = (f"state {fields[0].decode()} ppid {int(fields[1])} uid {os.stat(f'/proc/{pid}').st_uid} "
                          + Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120])
        except OSError:
            found[pid] = "gone"
    return found


def _stat(pid: int) -> list[bytes] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return stat[stat.rfind(b")") + 2:].split()


def descendants(root: int) -> dict[int, bytes]:
    """pid -> start time of every live process below `root` (start times tell a pid
    that was reused from the process we saw)."""
    children: dict[int, list[int]] = {}
    starts = {}
    for entry in os.listdir("/proc"):
        fields = _stat(int(entry)) if entry.isdigit() else None
        if fields and fields[0] not in (b"Z", b"X"):
            children.setdefault(int(fields[1]), []).append(int(entry))
            starts[int(entry)] = fields[19]
    found, todo = {}, [root]
    while todo:
        for kid in children.get(todo.pop(), []):
            found[kid] = starts[kid]
            todo.append(kid)
    return found


def still_alive(seen: dict[int, bytes]) -> dict[int, str]:
    """Those of `seen` that are the same processes and alive."""
    alive = [pid for pid, start in seen.items()
             if (fields := _stat(pid)) and fields[19] == start and fields[0] not in (b"Z", b"X")]
    return describe(alive)
