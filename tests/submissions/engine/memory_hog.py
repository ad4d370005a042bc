import numpy as np


def scale(x, k):
    big = np.ones((1 << 40,))  # 8 TiB: far past any limit
    return big[: x.size].reshape(x.shape) * k


def relu_forward(x):
    chunks = []
    while True:  # slow growth, 8 MB at a time
        chunks.append(np.ones(1 << 20))


def total(x):
    return float(x.sum())
