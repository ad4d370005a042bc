import numpy as np


class Lazy:
    def __init__(self, x):
        self.x = x

    def __array__(self, dtype=None, copy=None):
        return self.x


def scale(x, k):
    return Lazy(x * k)


def relu_forward(x):
    return np.maximum(x, 0)


def total(x):
    return float(x.sum())

