import numpy as np


class Tensor:
    def __init__(self, data):
        self.data = data

    def __array__(self, dtype=None):
        return np.asarray(self.data, dtype=dtype)


def scale(x, k):
    return Tensor(x * k)  # not a plain array


def relu_forward(x):
    return np.array([object()] * x.size, dtype=object)


def total(x):
    return float(x.sum())
