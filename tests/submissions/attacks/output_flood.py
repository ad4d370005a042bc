import sys

import numpy as np

sys.stdout.write("spam " * 10_000_000)  # 50 MB at import


def scale(x, k):
    sys.stderr.write("more " * 1_000_000)
    return x * k


def relu_forward(x):
    return np.maximum(x, 0)


def total(x):
    return float(x.sum())

