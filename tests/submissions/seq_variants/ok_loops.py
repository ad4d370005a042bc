"""Correct, as a CS231n student writes it in the slides' layout: loops over time (and
over the batch and words for the embedding), the sequences built from the steps, the
steps' backward passes recomputing what they need from their inputs."""
import numpy as np


def sigmoid(a):
    pos = a >= 0
    z = np.exp(-np.abs(a))
    return np.where(pos, 1.0 / (1.0 + z), z / (1.0 + z))


def rnn_step_forward(x, h_prev, U, W, b):
    a = x.dot(U.T) + h_prev.dot(W.T) + b
    return np.tanh(a)


def rnn_step_backward(dh, x, h_prev, U, W, b):
    h = rnn_step_forward(x, h_prev, U, W, b)
    da = dh * (1 - h * h)
    dx = da.dot(U)
    dh_prev = da.dot(W)
    dU = da.T.dot(x)
    dW = da.T.dot(h_prev)
    db = np.sum(da, axis=0)
    return dx, dh_prev, dU, dW, db


def rnn_forward(x, h0, U, W, b):
    N, T, D = x.shape
    H = h0.shape[1]
    h = np.zeros((N, T, H))
    prev = h0
    for t in range(T):
        prev = rnn_step_forward(x[:, t, :], prev, U, W, b)
        h[:, t, :] = prev
    return h


def rnn_backward(dh, x, h0, U, W, b):
    N, T, D = x.shape
    h = rnn_forward(x, h0, U, W, b)
    dx = np.zeros((N, T, D))
    dU = np.zeros_like(U)
    dW = np.zeros_like(W)
    db = np.zeros_like(b)
    dprev = np.zeros_like(h0)
    for t in range(T - 1, -1, -1):
        prev = h0 if t == 0 else h[:, t - 1, :]
        dx_t, dprev, dU_t, dW_t, db_t = rnn_step_backward(dh[:, t, :] + dprev, x[:, t, :], prev, U, W, b)
        dx[:, t, :] = dx_t
        dU += dU_t
        dW += dW_t
        db += db_t
    return dx, dprev, dU, dW, db


def word_embedding_forward(x, E):
    N, T = x.shape
    out = np.zeros((N, T, E.shape[1]))
    for n in range(N):
        for t in range(T):
            out[n, t] = E[x[n, t]]
    return out


def word_embedding_backward(dout, x, E):
    dE = np.zeros_like(E)
    N, T = x.shape
    for n in range(N):
        for t in range(T):
            dE[x[n, t]] += dout[n, t]
    return dE


def lstm_step_forward(x, h_prev, c_prev, U, W, b):
    H = h_prev.shape[1]
    a = x.dot(U.T) + h_prev.dot(W.T) + b
    i = sigmoid(a[:, :H])
    f = sigmoid(a[:, H:2 * H])
    o = sigmoid(a[:, 2 * H:3 * H])
    g = np.tanh(a[:, 3 * H:])
    c = f * c_prev + i * g
    h = o * np.tanh(c)
    return h, c


def lstm_step_backward(dh, dc, x, h_prev, c_prev, U, W, b):
    H = h_prev.shape[1]
    a = x.dot(U.T) + h_prev.dot(W.T) + b
    i = sigmoid(a[:, :H])
    f = sigmoid(a[:, H:2 * H])
    o = sigmoid(a[:, 2 * H:3 * H])
    g = np.tanh(a[:, 3 * H:])
    c = f * c_prev + i * g
    dc_total = dc + dh * o * (1 - np.tanh(c) ** 2)
    di = dc_total * g
    df = dc_total * c_prev
    do = dh * np.tanh(c)
    dg = dc_total * i
    da = np.concatenate([di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g ** 2)], axis=1)
    dx = da.dot(U)
    dh_prev = da.dot(W)
    dc_prev = dc_total * f
    dU = da.T.dot(x)
    dW = da.T.dot(h_prev)
    db = da.sum(axis=0)
    return dx, dh_prev, dc_prev, dU, dW, db


def lstm_forward(x, h0, U, W, b):
    N, T, D = x.shape
    H = h0.shape[1]
    h = np.zeros((N, T, H))
    prev_h, prev_c = h0, np.zeros((N, H))
    for t in range(T):
        prev_h, prev_c = lstm_step_forward(x[:, t, :], prev_h, prev_c, U, W, b)
        h[:, t, :] = prev_h
    return h


def lstm_backward(dh, x, h0, U, W, b):
    N, T, D = x.shape
    H = h0.shape[1]
    hs, cs = [h0], [np.zeros((N, H))]
    for t in range(T):
        h_t, c_t = lstm_step_forward(x[:, t, :], hs[-1], cs[-1], U, W, b)
        hs.append(h_t)
        cs.append(c_t)
    dx = np.zeros((N, T, D))
    dU, dW, db = np.zeros_like(U), np.zeros_like(W), np.zeros_like(b)
    dprev_h, dprev_c = np.zeros((N, H)), np.zeros((N, H))
    for t in range(T - 1, -1, -1):
        dx_t, dprev_h, dprev_c, dU_t, dW_t, db_t = lstm_step_backward(
            dh[:, t, :] + dprev_h, dprev_c, x[:, t, :], hs[t], cs[t], U, W, b)
        dx[:, t, :] = dx_t
        dU += dU_t
        dW += dW_t
        db += db_t
    return dx, dprev_h, dU, dW, db
