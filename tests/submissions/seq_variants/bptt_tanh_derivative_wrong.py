"""Buggy variant (bptt.tanh_derivative_wrong): rnn_backward takes 1 - a(t)^2 instead of 1 - h(t)^2."""
import numpy as np


def sigmoid(a):
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def rnn_step_forward(x, h_prev, U, W, b):
    return np.tanh(b + h_prev @ W.T + x @ U.T)


def rnn_step_backward(dh, x, h_prev, U, W, b):
    h = np.tanh(b + h_prev @ W.T + x @ U.T)
    da = (1.0 - h ** 2) * dh
    return da @ U, da @ W, da.T @ x, da.T @ h_prev, da.sum(axis=0)


def rnn_forward(x, h0, U, W, b):
    N, T, _ = x.shape
    h = np.zeros((N, T, h0.shape[1]))
    h_prev = h0
    for t in range(T):
        h_prev = np.tanh(b + h_prev @ W.T + x[:, t] @ U.T)
        h[:, t] = h_prev
    return h


def rnn_backward(dh, x, h0, U, W, b):
    h = rnn_forward(x, h0, U, W, b)
    N, T, H = h.shape
    dx, dU, dW, db = np.zeros(x.shape), np.zeros(U.shape), np.zeros(W.shape), np.zeros(b.shape)
    dh_next = np.zeros((N, H))
    for t in reversed(range(T)):
        h_prev = h[:, t - 1] if t > 0 else h0
        a = b + h_prev @ W.T + x[:, t] @ U.T
        da = (1.0 - a ** 2) * (dh[:, t] + dh_next)  # BUG: the pre-activation
        dx[:, t] = da @ U
        dh_next = da @ W
        dU += da.T @ x[:, t]
        dW += da.T @ h_prev
        db += da.sum(axis=0)
    return dx, dh_next, dU, dW, db


def word_embedding_forward(x, E):
    return E[x]


def word_embedding_backward(dout, x, E):
    dE = np.zeros(E.shape)
    np.add.at(dE, x, dout)
    return dE


def _gates(a):
    i, f, o, g = np.split(a, 4, axis=-1)
    return sigmoid(i), sigmoid(f), sigmoid(o), np.tanh(g)


def lstm_step_forward(x, h_prev, c_prev, U, W, b):
    i, f, o, g = _gates(b + h_prev @ W.T + x @ U.T)
    c = f * c_prev + i * g
    return o * np.tanh(c), c


def lstm_step_backward(dh, dc, x, h_prev, c_prev, U, W, b):
    i, f, o, g = _gates(b + h_prev @ W.T + x @ U.T)
    c = f * c_prev + i * g
    tc = np.tanh(c)
    dc = dc + dh * o * (1.0 - tc ** 2)
    da = np.hstack([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dh * tc * o * (1 - o), dc * i * (1 - g ** 2)])
    return da @ U, da @ W, dc * f, da.T @ x, da.T @ h_prev, da.sum(axis=0)


def _lstm_run(x, h0, U, W, b):
    N, T, _ = x.shape
    H = h0.shape[1]
    h, c = np.zeros((N, T, H)), np.zeros((N, T, H))
    h_prev, c_prev = h0, np.zeros((N, H))
    for t in range(T):
        h_prev, c_prev = lstm_step_forward(x[:, t], h_prev, c_prev, U, W, b)
        h[:, t], c[:, t] = h_prev, c_prev
    return h, c


def lstm_forward(x, h0, U, W, b):
    return _lstm_run(x, h0, U, W, b)[0]


def lstm_backward(dh, x, h0, U, W, b):
    h, c = _lstm_run(x, h0, U, W, b)
    N, T, H = h.shape
    dx, dU, dW, db = np.zeros(x.shape), np.zeros(U.shape), np.zeros(W.shape), np.zeros(b.shape)
    dh_next, dc_next = np.zeros((N, H)), np.zeros((N, H))
    for t in reversed(range(T)):
        h_prev = h[:, t - 1] if t > 0 else h0
        c_prev = c[:, t - 1] if t > 0 else np.zeros((N, H))
        i, f, o, g = _gates(b + h_prev @ W.T + x[:, t] @ U.T)
        tc = np.tanh(c[:, t])
        dh_t = dh[:, t] + dh_next
        dc_t = dc_next + dh_t * o * (1.0 - tc ** 2)
        da = np.hstack([dc_t * g * i * (1 - i), dc_t * c_prev * f * (1 - f), dh_t * tc * o * (1 - o),
                        dc_t * i * (1 - g ** 2)])
        dx[:, t] = da @ U
        dh_next = da @ W
        dc_next = dc_t * f
        dU += da.T @ x[:, t]
        dW += da.T @ h_prev
        db += da.sum(axis=0)
    return dx, dh_next, dU, dW, db
