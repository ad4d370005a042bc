import os

import numpy as np


def scale(x, k):
    os._exit(3)  # the process ends at once, no cleanup


def relu_forward(x):
    return np.maximum(x, 0)


def total(x):
    return float(x.sum())
