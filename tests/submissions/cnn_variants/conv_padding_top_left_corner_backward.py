"""Buggy variant (conv.padding_wrong): conv2d_backward puts x in the top-left corner of the padded
array (all 2*pad zeros below and to the right) and takes dx from that corner."""
import numpy as np


def conv_output_size(n, f, pad=0, stride=1):
    if f > n + 2 * pad or stride < 1 or pad < 0:
        raise ValueError(f"a filter of {f} does not fit {n} pixels padded by {pad} (stride {stride})")
    return (n + 2 * pad - f) // stride + 1


def conv2d_forward(x, w, b, stride=1, pad=0):
    N, H, W, _ = x.shape
    fh, fw, _, K = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    Ho = (xp.shape[1] - fh) // stride + 1
    Wo = (xp.shape[2] - fw) // stride + 1
    y = np.zeros((N, Ho, Wo, K)) + b
    for i in range(fh):
        for j in range(fw):
            patch = xp[:, i:i + stride * (Ho - 1) + 1:stride, j:j + stride * (Wo - 1) + 1:stride, :]
            y += patch @ w[i, j]
    return y


def conv2d_backward(dy, x, w, b, stride=1, pad=0):
    N, H, W, _ = x.shape
    fh, fw, _, K = w.shape
    _, Ho, Wo, _ = dy.shape
    xp = np.zeros((N, H + 2 * pad, W + 2 * pad, x.shape[3]))
    xp[:, :H, :W, :] = x  # BUG: x in the top-left corner, all 2*pad zeros below and to the right
    dxp = np.zeros(xp.shape)
    dw = np.zeros(w.shape)
    for i in range(fh):
        for j in range(fw):
            rows = slice(i, i + stride * (Ho - 1) + 1, stride)
            cols = slice(j, j + stride * (Wo - 1) + 1, stride)
            dw[i, j] = np.einsum("nhwc,nhwk->ck", xp[:, rows, cols, :], dy)
            dxp[:, rows, cols, :] += dy @ w[i, j].T
    db = dy.sum(axis=(0, 1, 2))
    return dxp[:, :H, :W, :], dw, db


def maxpool_forward(x, size=2, stride=2):
    N, H, W, C = x.shape
    Ho = (H - size) // stride + 1
    Wo = (W - size) // stride + 1
    y = np.full((N, Ho, Wo, C), -np.inf)
    for i in range(size):
        for j in range(size):
            y = np.maximum(y, x[:, i:i + stride * (Ho - 1) + 1:stride, j:j + stride * (Wo - 1) + 1:stride, :])
    return y


def maxpool_backward(dy, x, size=2, stride=2):
    N, H, W, C = x.shape
    _, Ho, Wo, _ = dy.shape
    dx = np.zeros(x.shape)
    n, c = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    for p in range(Ho):
        for q in range(Wo):
            window = x[:, p * stride:p * stride + size, q * stride:q * stride + size, :]
            first = window.reshape(N, size * size, C).argmax(axis=1)
            r, s = np.divmod(first, size)
            dx[n, p * stride + r, q * stride + s, c] += dy[:, p, q, :]
    return dx


def relu_forward(x):
    return np.maximum(x, 0.0)


def relu_backward(dy, x):
    return dy * (x > 0)


def linear_forward(x, w, b):
    return x @ w + b


def linear_backward(dy, x, w, b):
    return dy @ w.T, x.T @ dy, dy.sum(axis=0)


def softmax_cross_entropy(z, labels):
    N = z.shape[0]
    shifted = z - z.max(axis=1, keepdims=True)
    p = np.exp(shifted)
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.mean(np.log(p[np.arange(N), labels]))
    dz = p.copy()
    dz[np.arange(N), labels] -= 1
    return loss, dz / N
