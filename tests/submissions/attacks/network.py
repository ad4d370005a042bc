"""Tries to reach a server on the grader's loopback and the outside world."""
import socket

import numpy as np

for host, port in (("127.0.0.1", @PORT@), ("pypi.org", 443)):
    try:
        socket.create_connection((host, port), timeout=1).close()
        print("LEAK connected", host)
    except OSError as exc:
        print("network refused", host, type(exc).__name__)


def scale(x, k):
    return x * k


def relu_forward(x):
    return np.maximum(x, 0)


def total(x):
    return float(x.sum())

