"""Mistake models of the rnn assignment: what each known mistake outputs, written
with the slides' equations, and the catalogue entry a student reads.

    a(t) = b + W h(t-1) + U x(t),  h(t) = tanh(a(t)),  o(t) = c + V h(t),  yhat(t) = softmax(o(t))
"""

from __future__ import annotations

import numpy as np

from assignments.recurrent_mistakes import NO_RECURRENCE, NOT_SUMMED, TANH  # noqa: F401 - this catalogue's too
from grader.diagnoses import register
from grader.oracle import kit_recorded

DW_H_T = register(
    "bptt.dW_uses_h_t",
    "dW is built from h(t) h(t)^T instead of h(t-1)^T.",
    "W multiplies h(t-1) in a(t) = b + W h(t-1) + U x(t), so step t adds "
    "diag(1 - h(t)^2) dL/dh(t) h(t-1)^T, with h(0) = h0 at the first step.").code
LOSS_AVERAGED = register(
    "rnn.loss_averaged",
    "The loss is averaged over time instead of summed.",
    "L = sum over t of -log yhat(t)[y(t)]: the lecture's loss adds the steps' losses up.").code
ARGMAX = register(
    "sample.argmax",
    "Sampling takes the most likely symbol instead of drawing from yhat.",
    "Draw each symbol at random with the probabilities yhat(t), with the rng you are given "
    "(e.g. rng.choice(K, p=yhat_t)); the most likely symbol every time is not sampling.").code
NO_FEEDBACK = register(
    "sample.no_feedback",
    "The symbols drawn are not fed back: every step gets the same input.",
    "Each drawn symbol becomes the next input x(t+1) = onehot(drawn symbol); x0 is only the first input.").code
IGNORES_RNG = register(
    "sample.ignores_rng",
    "The draws do not come from the rng argument (np.random's global state, or a new generator).",
    "Draw with the generator you are given (rng.choice(K, p=yhat_t), rng.random(), ...): the same "
    "generator state must give the same sequence.").code
G_FORWARD = register(
    "birnn.g_not_reversed",
    "The backward recurrence g runs forward in time.",
    "g starts from g0 at t = T + 1 and runs from t = T down to 1: g(t) = tanh(bb + Wb g(t+1) + Ub x(t)).").code
G_ROWS = register(
    "birnn.g_rows_reversed",
    "g is returned in the order it was computed, g(T) first, instead of indexed by t.",
    "Row t - 1 of g must hold g(t), like h; a backward loop fills g[t] for t = T-1 down to 0.").code


def forward_states(x, h0, U, W, b):
    """h (T, H) = h(1)..h(T) and a (T, H) = a(1)..a(T), step by step."""
    hs, as_ = [], []
    prev = h0
    for x_t in x:
        a = b + W @ prev + U @ x_t
        prev = np.tanh(a)
        as_.append(a)
        hs.append(prev)
    return np.array(hs), np.array(as_)


def softmax_rows(o):
    e = np.exp(o - o.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def bptt(x, y, h0, h, yhat, U, W, V, b, c, *, recurrence: bool = True, tanh_of: str = "h",
         dW_with: str = "h(t-1)", only_step: int | None = None) -> dict:
    """Backpropagation through time as on the slides, with a switch per mistake:
    `recurrence` False drops W^T dL/da(t+1); `tanh_of` "a" takes 1 - a(t)^2; `dW_with`
    "h(t)" pairs da(t) with h(t); `only_step` keeps one step's terms of the parameter sums."""
    T = x.shape[0]
    _, a = forward_states(x, h0, U, W, b)
    do = yhat.copy()
    do[np.arange(T), y] -= 1.0                                   # dL/do(t) = yhat(t) - onehot(y(t))
    da = np.zeros((T, h0.shape[0]))
    da_next = np.zeros(h0.shape[0])
    for t in reversed(range(T)):
        dh = V.T @ do[t] + (W.T @ da_next if recurrence else 0.0)  # dL/dh(t)
        slope = 1.0 - (h[t] if tanh_of == "h" else a[t]) ** 2
        da[t] = slope * dh                                          # dL/da(t)
        da_next = da[t]
    prev = np.vstack([h0[None], h[:-1]]) if dW_with == "h(t-1)" else h
    steps = range(T) if only_step is None else [only_step]
    return {
        "U": sum(np.outer(da[t], x[t]) for t in steps),
        "W": sum(np.outer(da[t], prev[t]) for t in steps),
        "V": sum(np.outer(do[t], h[t]) for t in steps),
        "b": sum(da[t] for t in steps),
        "c": sum(do[t] for t in steps),
        "h0": W.T @ da[0],
    }


@kit_recorded
def backward_models(x, y, h0, h, yhat, U, W, V, b, c) -> dict[str, dict[str, list]]:
    """Per gradient key: {code: [outputs]}."""
    args = (x, y, h0, h, yhat, U, W, V, b, c)
    variants = {NO_RECURRENCE: [bptt(*args, recurrence=False)], TANH: [bptt(*args, tanh_of="a")],
                DW_H_T: [bptt(*args, dW_with="h(t)")],
                NOT_SUMMED: [bptt(*args, only_step=t) for t in range(x.shape[0])] if x.shape[0] > 1 else []}
    keys = ("U", "W", "V", "b", "c", "h0")
    return {k: {code: [g[k] for g in outs] for code, outs in variants.items()} for k in keys}


@kit_recorded
def greedy(h0, x0: int, n: int, U, W, V, b, c) -> list[int]:
    """What an argmax 'sampler' returns: the most likely symbol at every step, fed back."""
    out, h, idx = [], h0, x0
    for _ in range(n):
        h = np.tanh(b + W @ h + U[:, idx])   # U @ onehot(idx) is column idx of U
        idx = int(np.argmax(c + V @ h))
        out.append(idx)
    return out


@kit_recorded
def birnn_models(x, h0, g0, Uf, Wf, bf, Ub, Wb, bb, V, c, g) -> dict[str, dict[str, list]]:
    """g run forward in time from g0, and g returned in computation order (g(T) first)."""
    h, _ = forward_states(x, h0, Uf, Wf, bf)
    g_forward, _ = forward_states(x, g0, Ub, Wb, bb)
    g_rows = np.asarray(g)[::-1]
    return {
        "g": {G_FORWARD: [g_forward], G_ROWS: [g_rows]},
        "yhat": {G_FORWARD: [softmax_rows(c + np.hstack([h, g_forward]) @ V.T)],
                 G_ROWS: [softmax_rows(c + np.hstack([h, g_rows]) @ V.T)]},
    }
