"""An honest student the attacks aim at."""
import numpy as np


def scale(x, k):
    return x * k


def relu_forward(x):
    return np.maximum(x, 0)


def total(x):
    return float(x.sum())

