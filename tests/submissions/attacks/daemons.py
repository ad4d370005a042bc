"""Leaves children behind in every way it knows."""
import os
import subprocess

import numpy as np


def scale(x, k):
    subprocess.Popen(["sleep", "981"])
    subprocess.Popen(["sleep", "982"], start_new_session=True)
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execvp("sleep", ["sleep", "983"])
        os._exit(0)
    return x * k


def relu_forward(x):
    return np.maximum(x, 0)


def total(x):
    return float(x.sum())

