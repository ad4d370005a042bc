import sys

import numpy as np

sys.setrecursionlimit(10**8)


def deeper(n):
    return deeper(n + 1) + 1


def scale(x, k):
    return deeper(0) * x


def relu_forward(x):
    return np.maximum(x, 0)


def total(x):
    return float(x.sum())

