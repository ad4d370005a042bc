import numpy as np


def scale(x, k):
    return np.zeros(40_000_000)  # 320 MB


def relu_forward(x):
    return np.maximum(x, 0)


def total(x):
    return float(x.sum())

