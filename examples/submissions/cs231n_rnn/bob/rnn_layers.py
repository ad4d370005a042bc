"""CS231n assignment 3: cs231n/rnn_layers.py, vectorised: the sequences' forward passes
keep every step's values in whole arrays (a dict as the cache), the embedding uses
fancy indexing and np.add.at, and the caches hold a closure."""
import numpy as np


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, {"x": x, "prev_h": prev_h, "Wx": Wx, "Wh": Wh, "next_h": next_h}


def rnn_step_backward(dnext_h, cache):
    da = dnext_h * (1 - cache["next_h"] ** 2)
    return (da @ cache["Wx"].T, da @ cache["Wh"].T, cache["x"].T @ da, cache["prev_h"].T @ da, da.sum(axis=0))


def rnn_forward(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    xWx = x @ Wx + b                                   # every step's input term at once
    h = np.empty((N, T, h0.shape[1]))
    for t in range(T):
        h[:, t] = np.tanh(xWx[:, t] + (h[:, t - 1] if t else h0) @ Wh)
    h_prev = np.concatenate([h0[:, None], h[:, :-1]], axis=1)
    return h, {"x": x, "h": h, "h_prev": h_prev, "Wx": Wx, "Wh": Wh}


def rnn_backward(dh, cache):
    h, Wh = cache["h"], cache["Wh"]
    N, T, H = h.shape
    da = np.empty_like(h)
    carry = np.zeros((N, H))
    for t in reversed(range(T)):
        da[:, t] = (dh[:, t] + carry) * (1 - h[:, t] ** 2)
        carry = da[:, t] @ Wh.T
    dx = da @ cache["Wx"].T
    dWx = np.einsum("ntd,nth->dh", cache["x"], da)
    dWh = np.einsum("ntp,nth->ph", cache["h_prev"], da)
    return dx, carry, dWx, dWh, da.sum(axis=(0, 1))


def word_embedding_forward(x, W):
    return W[x], {"x": x, "zeros": lambda: np.zeros_like(W)}


def word_embedding_backward(dout, cache):
    dW = cache["zeros"]()
    np.add.at(dW, cache["x"], dout)
    return dW


def sigmoid(x):
    """A numerically stable version of the logistic sigmoid function (course code)."""
    pos_mask = x >= 0
    neg_mask = x < 0
    z = np.zeros_like(x)
    z[pos_mask] = np.exp(-x[pos_mask])
    z[neg_mask] = np.exp(x[neg_mask])
    top = np.ones_like(x)
    top[neg_mask] = z[neg_mask]
    return top / (1 + z)


def _gates(a):
    i, f, o, g = np.split(a, 4, axis=-1)
    return sigmoid(i), sigmoid(f), sigmoid(o), np.tanh(g)


def _gate_grads(dh, dc, prev_c, c, i, f, o, g):
    """da (..., 4H) and dL/dprev_c, from the gradients of h and c."""
    tanh_c = np.tanh(c)
    dc = dc + dh * o * (1 - tanh_c ** 2)
    da = np.concatenate([dc * g * i * (1 - i), dc * prev_c * f * (1 - f), dh * tanh_c * o * (1 - o),
                         dc * i * (1 - g ** 2)], axis=-1)
    return da, dc * f


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    i, f, o, g = _gates(x @ Wx + prev_h @ Wh + b)
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, next_c, (i, f, o, g))


def lstm_step_backward(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh, next_c, gates = cache
    da, dprev_c = _gate_grads(dnext_h, dnext_c, prev_c, next_c, *gates)
    return da @ Wx.T, da @ Wh.T, dprev_c, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def lstm_forward(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    H = h0.shape[1]
    xWx = x @ Wx + b
    h, c = np.empty((N, T, H)), np.empty((N, T, H))
    gates = np.empty((4, N, T, H))
    for t in range(T):
        prev_h, prev_c = (h[:, t - 1], c[:, t - 1]) if t else (h0, np.zeros((N, H)))
        gates[:, :, t] = _gates(xWx[:, t] + prev_h @ Wh)
        i, f, o, g = gates[:, :, t]
        c[:, t] = f * prev_c + i * g
        h[:, t] = o * np.tanh(c[:, t])
    return h, {"x": x, "h0": h0, "h": h, "c": c, "gates": gates, "Wx": Wx, "Wh": Wh}


def lstm_backward(dh, cache):
    h, c, gates, Wx, Wh = cache["h"], cache["c"], cache["gates"], cache["Wx"], cache["Wh"]
    N, T, H = h.shape
    prev_c = np.concatenate([np.zeros((N, 1, H)), c[:, :-1]], axis=1)
    prev_h = np.concatenate([cache["h0"][:, None], h[:, :-1]], axis=1)
    da = np.empty((N, T, 4 * H))
    dh_next, dc_next = np.zeros((N, H)), np.zeros((N, H))
    for t in reversed(range(T)):
        da[:, t], dc_next = _gate_grads(dh[:, t] + dh_next, dc_next, prev_c[:, t], c[:, t], *gates[:, :, t])
        dh_next = da[:, t] @ Wh.T
    dWx = np.einsum("ntd,ntg->dg", cache["x"], da)
    dWh = np.einsum("nth,ntg->hg", prev_h, da)
    return da @ Wx.T, dh_next, dWx, dWh, da.sum(axis=(0, 1))
