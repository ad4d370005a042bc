"""Buggy variant (bptt.no_recurrence, submission.bad_return): dL/dh(t) ignores the later steps, and
the dict lacks "h0": its other five gradients are still judged, and name the recurrence."""
import numpy as np


def softmax(o):
    e = np.exp(o - o.max())
    return e / e.sum()


def rnn_forward(x, h0, U, W, V, b, c):
    T = x.shape[0]
    h = np.zeros((T, h0.shape[0]))
    yhat = np.zeros((T, c.shape[0]))
    prev = h0
    for t in range(T):
        a = b + W @ prev + U @ x[t]
        h[t] = np.tanh(a)
        yhat[t] = softmax(c + V @ h[t])
        prev = h[t]
    return h, yhat


def rnn_loss(yhat, y):
    return float(-sum(np.log(yhat[t, y[t]]) for t in range(len(y))))


def rnn_backward(x, y, h0, h, yhat, U, W, V, b, c):
    T = x.shape[0]
    dU, dW, dV = np.zeros_like(U), np.zeros_like(W), np.zeros_like(V)
    db, dc = np.zeros_like(b), np.zeros_like(c)
    dh_next = np.zeros_like(h0)
    for t in reversed(range(T)):
        do = yhat[t].copy()
        do[y[t]] -= 1
        dV += np.outer(do, h[t])
        dc += do
        dh = V.T @ do  # BUG: nothing from step t + 1
        da = (1 - h[t] ** 2) * dh
        prev = h[t - 1] if t > 0 else h0
        dW += np.outer(da, prev)
        dU += np.outer(da, x[t])
        db += da
        dh_next = W.T @ da
    return {"U": dU, "W": dW, "V": dV, "b": db, "c": dc}  # BUG: no "h0"


def rnn_sample(h0, x0, n, U, W, V, b, c, rng):
    K = c.shape[0]
    h, idx, out = h0, x0, []
    for _ in range(n):
        x = np.zeros(K)
        x[idx] = 1
        h = np.tanh(b + W @ h + U @ x)
        p = softmax(c + V @ h)
        idx = int(rng.choice(K, p=p))
        out.append(idx)
    return out


def birnn_forward(x, h0, g0, Uf, Wf, bf, Ub, Wb, bb, V, c):
    T = x.shape[0]
    h = np.zeros((T, h0.shape[0]))
    g = np.zeros((T, g0.shape[0]))
    prev = h0
    for t in range(T):
        prev = np.tanh(bf + Wf @ prev + Uf @ x[t])
        h[t] = prev
    nxt = g0
    for t in reversed(range(T)):
        nxt = np.tanh(bb + Wb @ nxt + Ub @ x[t])
        g[t] = nxt
    yhat = np.array([softmax(c + V @ np.concatenate([h[t], g[t]])) for t in range(T)])
    return h, g, yhat
