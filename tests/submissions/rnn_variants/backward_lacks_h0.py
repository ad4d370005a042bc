"""Buggy variant (submission.bad_return): rnn_backward's dict lacks "h0"; its other five gradients
are right, and are judged so."""
import numpy as np


def _softmax(o):
    e = np.exp(o - o.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _run(x, h0, U, W, b):
    h = np.empty((len(x), len(h0)))
    inputs = x @ U.T + b                  # U x(t) + b for every t at once
    for t in range(len(x)):
        h[t] = np.tanh(inputs[t] + W @ (h[t - 1] if t else h0))
    return h


def rnn_forward(x, h0, U, W, V, b, c):
    h = _run(x, h0, U, W, b)
    return h, _softmax(h @ V.T + c)


def rnn_loss(yhat, y):
    return -np.log(yhat[np.arange(len(y)), y]).sum()


def rnn_backward(x, y, h0, h, yhat, U, W, V, b, c):
    T = len(x)
    do = yhat - np.eye(yhat.shape[1])[y]
    da = np.zeros_like(h)
    carry = np.zeros_like(h0)
    for t in range(T - 1, -1, -1):
        da[t] = (1 - h[t] ** 2) * (V.T @ do[t] + carry)
        carry = W.T @ da[t]
    prev = np.vstack([h0, h[:-1]])
    return {"U": da.T @ x, "W": da.T @ prev, "V": do.T @ h, "b": da.sum(0), "c": do.sum(0)}  # BUG: no "h0"


def rnn_sample(h0, x0, n, U, W, V, b, c, rng):
    h, idx, out = h0, x0, []
    for _ in range(n):
        h = np.tanh(b + W @ h + U[:, idx])
        idx = rng.choice(len(c), p=_softmax(c + V @ h))
        out.append(idx)
    return tuple(out)


def birnn_forward(x, h0, g0, Uf, Wf, bf, Ub, Wb, bb, V, c):
    h = _run(x, h0, Uf, Wf, bf)
    g = _run(x[::-1], g0, Ub, Wb, bb)[::-1]
    return h, g, _softmax(np.hstack([h, g]) @ V.T + c)
