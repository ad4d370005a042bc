"""Ignores every signal it can, swallows SystemExit, then never returns."""
import signal
import sys
import time

import numpy as np

for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU, signal.SIGALRM):
    signal.signal(sig, signal.SIG_IGN)


def scale(x, k):
    while True:
        try:
            sys.exit(1)
        except BaseException:  # noqa: BLE001 - swallowed, on purpose
            time.sleep(0.01)


def relu_forward(x):
    return np.maximum(x, 0)


def total(x):
    return float(x.sum())

