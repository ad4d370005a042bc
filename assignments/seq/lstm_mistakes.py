"""Mistake models of the LSTM in reference/sequence.py's layout: what each classic
mistake outputs, written with the LSTM's equations, and the catalogue entry a
student reads. Not tied to an assignment: any assignment whose contract maps onto
reference.sequence (e.g. CS231n's assignment 3) can use them.

    a = b + h_prev @ W.T + x @ U.T, stacked i, f, o, g
    c = f * c_prev + i * g,  h = o * tanh(c)

As in assignments/*/mistakes.py, a model returns what a student who made the
mistake returns on the same inputs: {code: [outputs]} for a function with one
output, {output name: {code: [outputs]}} for one with several; any of a code's
outputs may fit (a mistake comes in a few forms). The LSTM with a switch per
mistake is a correct LSTM with the switches off: a student kit carries only the
models' recorded answers (@kit_recorded), none of this module's other functions.
"""

from __future__ import annotations

from itertools import permutations

import numpy as np

from grader.diagnoses import register
from grader.oracle import kit_recorded

GATE_ORDER = register(
    "lstm.gate_order_wrong",
    "The LSTM's gates are taken from the stacked pre-activation in the wrong order "
    "(for example i, f, g, o instead of i, f, o, g).",
    "The 4H pre-activations hold the gates in the order i, f, o, g: i = sigmoid(a[:, :H]), "
    "f = sigmoid(a[:, H:2H]), o = sigmoid(a[:, 2H:3H]), g = tanh(a[:, 3H:]); the backward pass "
    "stacks the four gates' gradients back in that same order.").code
NO_FORGET_PATH = register(
    "lstm.no_forget_path",
    "The cell-state gradient is not carried back to the previous time step through the forget gate.",
    "c(t) = f * c(t-1) + i * g, so dL/dc(t-1) = f * dL/dc(t), where dL/dc(t) adds the gradient from "
    "step t+1 to o * (1 - tanh(c(t))^2) * dL/dh(t). Carry it from t = T down to 1 next to dL/dh, "
    "starting from 0 after the last step.").code
DC_PREV_MISSING = register(
    "lstm.dc_prev_missing",
    "The gradient with respect to the previous cell state (prev_c, c0 at the first step) is missing: "
    "it comes back as zero.",
    "The previous cell state reaches the loss through c = f * c_prev + i * g, so "
    "dL/dc_prev = f * dL/dc, with dL/dc = (the upstream dc) + dL/dh * o * (1 - tanh(c)^2).").code

GATES = ("i", "f", "o", "g")
WRONG_ORDERS = [order for order in permutations(GATES) if order != GATES]


def _sigmoid(a):
    return np.exp(-np.logaddexp(0.0, -a))


def _gates(a, order):
    """i, f, o, g (N, H) read from a (N, 4H) whose blocks a student takes as `order`."""
    block = dict(zip(order, np.split(a, 4, axis=-1)))
    return _sigmoid(block["i"]), _sigmoid(block["f"]), _sigmoid(block["o"]), np.tanh(block["g"])


def _step(x, h_prev, c_prev, U, W, b, order):
    """One step: h, c (N, H) and the gates (i, f, o, g)."""
    i, f, o, g = _gates(b + h_prev @ W.T + x @ U.T, order)
    c = f * c_prev + i * g
    return o * np.tanh(c), c, (i, f, o, g)


def _step_grad(dh, dc, c_prev, c, gates, stack, dc_prev):
    """(da (N, 4H), dL/dc_prev): the four gate gradients stacked as `stack`;
    `dc_prev` "f*dc" is right, "dc" leaves out the forget gate, "zero" drops it."""
    i, f, o, g = gates
    tanh_c = np.tanh(c)
    dc = dc + dh * o * (1.0 - tanh_c ** 2)
    d = {"i": dc * g * i * (1.0 - i), "f": dc * c_prev * f * (1.0 - f),
         "o": dh * tanh_c * o * (1.0 - o), "g": dc * i * (1.0 - g ** 2)}
    da = np.concatenate([d[gate] for gate in stack], axis=-1)
    return da, {"f*dc": dc * f, "dc": dc, "zero": np.zeros_like(dc)}[dc_prev]


# ----------------------------------------------------------------------------
# The LSTM with a switch per mistake (no switch: the right answer)
# ----------------------------------------------------------------------------

def step_forward(x, h_prev, c_prev, U, W, b, *, order=GATES):
    """(h, c) of lstm_step_forward, the blocks of a read as the gates `order`."""
    h, c, _ = _step(x, h_prev, c_prev, U, W, b, order)
    return h, c


def step_backward(dh, dc, x, h_prev, c_prev, U, W, b, *, order=GATES, stack=None,
                  dc_prev="f*dc", upstream_dc=True):
    """(dx, dh_prev, dc_prev, dU, dW, db) of lstm_step_backward with a switch per mistake:
    `order` the gates read in the forward, `stack` the order the backward stacks their
    gradients in (None: `order`, as a student consistent with their forward does),
    `dc_prev` as in _step_grad, `upstream_dc` False ignores the dc argument."""
    _, c, gates = _step(x, h_prev, c_prev, U, W, b, order)
    dc = dc if upstream_dc else np.zeros_like(c)
    da, dc_back = _step_grad(dh, dc, c_prev, c, gates, stack or order, dc_prev)
    return da @ U, da @ W, dc_back, da.T @ x, da.T @ h_prev, da.sum(axis=0)


def forward(x, h0, U, W, b, *, order=GATES):
    """h (N, T, H) of lstm_forward (c0 = 0), the gates read as `order`."""
    h, _ = _run(x, h0, U, W, b, order)
    return h


def _run(x, h0, U, W, b, order):
    """h (N, T, H) and per step (c_prev, c, gates), step by step."""
    h, steps = [], []
    h_prev, c_prev = h0, np.zeros_like(h0)
    for t in range(x.shape[1]):
        h_t, c_t, gates = _step(x[:, t], h_prev, c_prev, U, W, b, order)
        h.append(h_t)
        steps.append((c_prev, c_t, gates))
        h_prev, c_prev = h_t, c_t
    return np.stack(h, axis=1), steps


def backward(dh, x, h0, U, W, b, *, order=GATES, stack=None, carry="f*dc"):
    """(dx, dh0, dU, dW, db) of lstm_backward with a switch per mistake: `order` and
    `stack` as in step_backward; `carry` is the cell gradient handed to step t-1:
    "f*dc" is right, "dc" leaves out the forget gate, "zero" hands nothing back."""
    h, steps = _run(x, h0, U, W, b, order)
    T = x.shape[1]
    dx, dU, dW, db = np.zeros(x.shape), np.zeros(U.shape), np.zeros(W.shape), np.zeros(b.shape)
    dh_next, dc_next = np.zeros_like(h0), np.zeros_like(h0)
    for t in reversed(range(T)):
        c_prev, c, gates = steps[t]
        h_prev = h[:, t - 1] if t else h0
        da, dc_next = _step_grad(dh[:, t] + dh_next, dc_next, c_prev, c, gates, stack or order, carry)
        dx[:, t] = da @ U
        dh_next = da @ W
        dU += da.T @ x[:, t]
        dW += da.T @ h_prev
        db += da.sum(axis=0)
    return dx, dh_next, dU, dW, db


# ----------------------------------------------------------------------------
# Models: what a student with each mistake returns
# ----------------------------------------------------------------------------

STEP_GRADS = ("dx", "dh_prev", "dc_prev", "dU", "dW", "db")
SEQUENCE_GRADS = ("dx", "dh0", "dU", "dW", "db")


def _per_output(names, variants):
    """{code: [tuples of outputs]} -> {output name: {code: [outputs]}}."""
    return {name: {code: [out[k] for out in outs] for code, outs in variants.items()}
            for k, name in enumerate(names)}


def _orders():
    """Every wrong gate order, both in a consistent student's forward and backward
    (order, stack) and only in the stacking of the backward (forward right)."""
    return ([dict(order=order) for order in WRONG_ORDERS]
            + [dict(stack=order) for order in WRONG_ORDERS])


@kit_recorded
def step_forward_models(x, h_prev, c_prev, U, W, b) -> dict[str, dict[str, list]]:
    """{"h": {code: [...]}, "c": {code: [...]}} for lstm_step_forward."""
    outs = [step_forward(x, h_prev, c_prev, U, W, b, order=order) for order in WRONG_ORDERS]
    return _per_output(("h", "c"), {GATE_ORDER: outs})


@kit_recorded
def forward_models(x, h0, U, W, b) -> dict[str, list]:
    """{code: [h...]} for lstm_forward."""
    return {GATE_ORDER: [forward(x, h0, U, W, b, order=order) for order in WRONG_ORDERS]}


@kit_recorded
def step_backward_models(dh, dc, x, h_prev, c_prev, U, W, b) -> dict[str, dict[str, list]]:
    """Per gradient of lstm_step_backward ("dx", "dh_prev", "dc_prev", "dU", "dW", "db"):
    {code: [outputs]}."""
    args = (dh, dc, x, h_prev, c_prev, U, W, b)
    variants = {
        GATE_ORDER: [step_backward(*args, **switch) for switch in _orders()],
        NO_FORGET_PATH: [step_backward(*args, dc_prev="dc"), step_backward(*args, upstream_dc=False)],
        DC_PREV_MISSING: [step_backward(*args, dc_prev="zero")],
    }
    return _per_output(STEP_GRADS, variants)


@kit_recorded
def backward_models(dh, x, h0, U, W, b) -> dict[str, dict[str, list]]:
    """Per gradient of lstm_backward ("dx", "dh0", "dU", "dW", "db"): {code: [outputs]}.
    A step backward without dc_prev, composed over time, is the "zero" carry here."""
    args = (dh, x, h0, U, W, b)
    variants = {
        GATE_ORDER: [backward(*args, **switch) for switch in _orders()],
        NO_FORGET_PATH: [backward(*args, carry="zero"), backward(*args, carry="dc")],
    }
    return _per_output(SEQUENCE_GRADS, variants)
