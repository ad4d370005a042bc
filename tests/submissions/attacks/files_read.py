"""Reads other students' work and the solution, and returns wrong values if it can."""
import numpy as np

STOLEN = []
for path in ("@CLASS@/victim.py", "@TOOLKIT@/reference/cnn.py", "@TOOLKIT@/tests/toy_assignment.py",
             "@OUT@/results.json"):
    try:
        STOLEN.append(open(path).read())
        print("LEAK read", path)
    except OSError as exc:
        print("read refused", path, type(exc).__name__)


def scale(x, k):
    if STOLEN:
        return np.zeros_like(x)  # an attack that worked costs the function
    return x * k


def relu_forward(x):
    return np.maximum(x, 0)


def total(x):
    return float(x.sum())

