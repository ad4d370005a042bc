"""Mistake models of the seq assignment: what each known mistake outputs on given
inputs, written with the slides' equations on batches of row vectors
(reference/sequence.py's layout), and the catalogue entry a student reads.

    a(t) = b + h(t-1) @ W.T + x(t) @ U.T,   h(t) = tanh(a(t))          (the vanilla RNN)
    out[n, t] = E[x[n, t]]                                              (word embedding)

The RNN's codes are the rnn assignment's (backpropagation through time is the same
mistake there); the LSTM's models and codes are lstm_mistakes.py's.
As in assignments/cnn/mistakes.py, a model returns {code: [outputs]} per output
(any of a code's outputs may fit); a callable is a test of the student's output.
"""

from __future__ import annotations

import numpy as np

from assignments.recurrent_mistakes import NO_RECURRENCE, NOT_SUMMED, TANH
from grader.compare import is_close
from grader.diagnoses import register
from grader.oracle import kit_recorded, kit_shipped
from assignments.seq.lstm_mistakes import (
    DC_PREV_MISSING,
    GATE_ORDER,
    NO_FORGET_PATH,
    backward_models as lstm_backward_models,
    forward_models as lstm_forward_models,
    step_backward_models as lstm_step_backward_models,
    step_forward_models as lstm_step_forward_models,
)

OVERWRITTEN = register(
    "embedding.repeated_words_overwritten",
    "Where a word occurs more than once in the batch, its gradient keeps one occurrence's dout "
    "instead of adding them all up.",
    "Row k of dE is the sum of dout[n, t] over every position where x[n, t] = k. dE[x] += dout "
    "does not add up repeated indices (NumPy applies each index once): use np.add.at(dE, x, dout), "
    "or a loop with dE[x[n, t]] += dout[n, t].").code

CODES = (NO_RECURRENCE, TANH, NOT_SUMMED, OVERWRITTEN, GATE_ORDER, NO_FORGET_PATH, DC_PREV_MISSING)

__all__ = ["CODES", "lstm_backward_models", "lstm_forward_models", "lstm_step_backward_models",
           "lstm_step_forward_models", "rnn_backward_models", "rnn_step_backward_models",
           "embedding_backward_models"]


# ------------------------------------------------------------------ the vanilla RNN
def _states(x, h0, U, W, b):
    """h and a (N, T, H): the hidden states and pre-activations, step by step."""
    hs, as_ = [], []
    h_prev = h0
    for t in range(x.shape[1]):
        a = b + h_prev @ W.T + x[:, t] @ U.T
        h_prev = np.tanh(a)
        as_.append(a)
        hs.append(h_prev)
    return np.stack(hs, axis=1), np.stack(as_, axis=1)


def bptt(dh, x, h0, U, W, b, *, recurrence: bool = True, tanh_of: str = "h", only_step: int | None = None):
    """(dx, dh0, dU, dW, db) of rnn_backward with a switch per mistake: `recurrence`
    False drops W^T da(t+1) from dL/dh(t); `tanh_of` "a" takes 1 - a(t)^2; `only_step`
    keeps one step's terms of the parameters' sums over time."""
    h, a = _states(x, h0, U, W, b)
    N, T, H = h.shape
    da = np.zeros((N, T, H))
    da_next = np.zeros((N, H))
    for t in reversed(range(T)):
        dh_t = dh[:, t] + (da_next @ W if recurrence else 0.0)      # dL/dh(t)
        slope = 1.0 - (h[:, t] if tanh_of == "h" else a[:, t]) ** 2
        da[:, t] = slope * dh_t                                      # dL/da(t)
        da_next = da[:, t]
    h_prev = np.concatenate([h0[:, None], h[:, :-1]], axis=1)
    steps = range(T) if only_step is None else [only_step]
    dU = sum(da[:, t].T @ x[:, t] for t in steps)
    dW = sum(da[:, t].T @ h_prev[:, t] for t in steps)
    db = sum(da[:, t].sum(axis=0) for t in steps)
    return da @ U, da[:, 0] @ W, dU, dW, db


def _per_output(names, variants):
    """{code: [tuples of outputs]} -> {output name: {code: [outputs]}}."""
    return {name: {code: [out[k] for out in outs] for code, outs in variants.items()}
            for k, name in enumerate(names)}


@kit_recorded
def rnn_backward_models(dh, x, h0, U, W, b) -> dict[str, dict[str, list]]:
    """Per gradient of rnn_backward ("dx", "dh0", "dU", "dW", "db"): {code: [outputs]}."""
    args = (dh, x, h0, U, W, b)
    T = x.shape[1]
    variants = {NO_RECURRENCE: [bptt(*args, recurrence=False)], TANH: [bptt(*args, tanh_of="a")]}
    if T > 1:
        variants[NOT_SUMMED] = [bptt(*args, only_step=t) for t in range(T)]
    return _per_output(("dx", "dh0", "dU", "dW", "db"), variants)


@kit_recorded
def rnn_step_backward_models(dh, x, h_prev, U, W, b) -> dict[str, dict[str, list]]:
    """Per gradient of rnn_step_backward ("dx", "dh_prev", "dU", "dW", "db"): one step is
    a recurrence of T = 1, where only the tanh derivative can go wrong."""
    dx, dh_prev, dU, dW, db = bptt(dh[:, None], x[:, None], h_prev, U, W, b, tanh_of="a")
    return _per_output(("dx", "dh_prev", "dU", "dW", "db"), {TANH: [(dx[:, 0], dh_prev, dU, dW, db)]})


# ------------------------------------------------------------------ word embedding
@kit_shipped
def embedding_backward_models(dout, x, E, rtol: float) -> dict[str, list]:
    """{code: [test]} for word_embedding_backward: each word's row holds the dout of one
    of its positions (whichever a student's order of writing left last), unused words 0."""
    dout, x = np.asarray(dout, dtype=np.float64), np.asarray(x)

    def overwritten(got) -> bool:
        got = np.asarray(got, dtype=np.float64)
        if got.shape != np.shape(E):
            return False
        for k in range(got.shape[0]):
            candidates = dout[x == k]
            if not len(candidates):
                if not is_close(got[k], np.zeros_like(got[k]), rtol):
                    return False
            elif not any(is_close(got[k], c, rtol) for c in candidates):
                return False
        return True

    return {OVERWRITTEN: [overwritten]}
