"""Starts long-lived children: a plain child, and a daemon that detaches itself."""
import os
import subprocess

import numpy as np

subprocess.Popen(["sleep", "987"])
if os.fork() == 0:  # classic double fork: the grandchild belongs to no one
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", "986"])
    os._exit(0)


def scale(x, k):
    subprocess.Popen(["sleep", "985"], start_new_session=True)
    return x * k


def relu_forward(x):
    return np.maximum(x, 0)


def total(x):
    return float(x.sum())
