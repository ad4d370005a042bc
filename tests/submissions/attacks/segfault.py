import ctypes

import numpy as np


def scale(x, k):
    ctypes.string_at(0)  # reads address 0: SIGSEGV
    return x * k


def relu_forward(x):
    return np.maximum(x, 0)


def total(x):
    return float(x.sum())

