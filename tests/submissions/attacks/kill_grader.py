"""Tries to end the whole run: walks up /proc and kills the grader, its process
group and every process that looks like it (as seen without bubblewrap: no
results.json for anyone). Without root it also tries kill(-1)."""
import os
import signal

import numpy as np


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


victims = {os.getppid()}
try:
    victims |= {int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()
                and any(word in cmdline(p) for word in ("grader", "pytest", "nngrade"))}
except OSError as exc:
    print("refused listing /proc", type(exc).__name__)
for pid in sorted(victims):
    if pid <= 1:
        continue
    for how, kill in (("kill", lambda: os.kill(pid, signal.SIGKILL)),
                      ("killpg", lambda: os.killpg(os.getpgid(pid), signal.SIGKILL))):
        try:
            kill()
            print("LEAK", how, pid, cmdline(pid)[:60])
        except OSError as exc:
            print("refused", how, pid, type(exc).__name__)
if os.geteuid() != 0:  # as root this would take the test machine down with it
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError as exc:
        print("refused kill(-1)", type(exc).__name__)


def scale(x, k):
    return x * k


def relu_forward(x):
    return np.maximum(x, 0)


def total(x):
    return float(x.sum())
