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
