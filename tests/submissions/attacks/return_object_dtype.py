import numpy as np


def scale(x, k):
    return np.array(list(x * k), dtype=object)


def relu_forward(x):
    return np.maximum(x, 0)


def total(x):
    return float(x.sum())

