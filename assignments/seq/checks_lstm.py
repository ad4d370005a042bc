"""Checks of lstm_step_forward, lstm_step_backward, lstm_forward and lstm_backward.

The gates are stacked i, f, o, g in the 4H pre-activations (reference/sequence.py).
The step's backward gets an upstream dc as well as dh, so that the path through the
forget gate to c_prev is tested on its own; the sequence's backward starts from
c0 = 0, and T = 1 (no cell carried between steps) is checked apart from T = 6.
"""

from __future__ import annotations

from assignments.seq import mistakes
from assignments.seq.cases import LSTM_STEP_GRADS, SEQUENCE_GRADS, sequence, step, upstream
from assignments.seq.common import (
    against_own_forward,
    call,
    gradients,
    leaves_inputs_alone,
    outputs,
    read_gradients,
)
from assignments.seq.registry import check
from grader.checklib import Evidence, compare_gradients

STEP_SHAPES = ((3, 5, 4), (1, 2, 6), (4, 1, 1))                   # (N, D, H)
SEQUENCE_SHAPES = ((2, 4, 5, 3), (1, 1, 2, 4), (3, 7, 1, 2))     # (N, T, D, H)
STEP_INPUTS = ("x", "h_prev", "c_prev", "U", "W", "b")
SEQUENCE_INPUTS = ("x", "h0", "U", "W", "b")


def _lstm_step(rng, N=3, D=5, H=4):
    return step(rng, N, D, H, gates=4)


def _lstm_sequence(rng, N=2, T=6, D=5, H=3):
    return sequence(rng, N, T, D, H, gates=4)


# ------------------------------------------------------------------ lstm_step_forward
@check("lstm_step_forward", kind="shape", points=1, name="output_shapes")
def step_shapes(student, rng):
    """(h, c), each (N, H), with a batch of one, one input feature, one hidden unit."""
    for N, D, H in STEP_SHAPES:
        outputs(call(student, "lstm_step_forward", _lstm_step(rng, N, D, H)), ("h", "c"), "lstm_step_forward",
                ((N, H), (N, H)))


@check("lstm_step_forward", kind="numeric", points=7, name="values")
def step_values(student, oracle, rng, tolerance):
    """a = b + h_prev @ W.T + x @ U.T split into i, f, o, g; c = f * c_prev + i * g and
    h = o * tanh(c), for x (3, 5), h_prev (3, 4) and for a batch of one."""
    evidence = Evidence(tolerance)
    for N, D, H in ((3, 5, 4), (1, 3, 6)):
        p = _lstm_step(rng, N, D, H)
        got = outputs(call(student, "lstm_step_forward", p), ("h", "c"), "lstm_step_forward")
        h, c = call(oracle, "lstm_step_forward", p)
        models = mistakes.lstm_step_forward_models(*(p[n] for n in STEP_INPUTS))
        prefix = f"x {p['x'].shape}, h_prev {p['h_prev'].shape}"
        evidence.compare(got["h"], h, "h", models["h"], prefix=prefix, partial=True)
        evidence.compare(got["c"], c, "c", models["c"], prefix=prefix, partial=True)
    evidence.verdict()


@check("lstm_step_forward", kind="behavior", points=2, name="leaves_inputs_alone")
def step_leaves_inputs_alone(student, rng):
    """x, h_prev, c_prev, U, W and b are not modified; h and c are finite float arrays of shape (N, H)."""
    p = _lstm_step(rng)
    result = leaves_inputs_alone(student, "lstm_step_forward", p)
    outputs(result, ("h", "c"), "lstm_step_forward", (p["h_prev"].shape,) * 2)


# ------------------------------------------------------------------ lstm_step_backward
def _upstreams(rng, p):
    return upstream(rng, p["h_prev"].shape), upstream(rng, p["c_prev"].shape)


@check("lstm_step_backward", kind="shape", points=2, name="gradient_shapes")
def step_grad_shapes(student, rng):
    """(dx, dh_prev, dc_prev, dU, dW, db) shaped like (x, h_prev, c_prev, U, W, b)."""
    for N, D, H in STEP_SHAPES:
        p = _lstm_step(rng, N, D, H)
        gradients(call(student, "lstm_step_backward", p, *_upstreams(rng, p)), LSTM_STEP_GRADS, p,
                  "lstm_step_backward")


@check("lstm_step_backward", kind="gradient", points=7, name="against_reference")
def step_grad_against_reference(student, oracle, rng, tolerance):
    """Upstream dh and dc: dL/dc = dc + dh * o * (1 - tanh(c)^2), dc_prev = f * dL/dc, the
    four gates' gradients stacked i, f, o, g into da; x (3, 5), h_prev (3, 4)."""
    p = _lstm_step(rng)
    dh, dc = _upstreams(rng, p)
    got = read_gradients(call(student, "lstm_step_backward", p, dh, dc), LSTM_STEP_GRADS, None, "lstm_step_backward")
    expected = dict(zip(LSTM_STEP_GRADS, call(oracle, "lstm_step_backward", p, dh, dc)))
    models = mistakes.lstm_step_backward_models(dh, dc, *(p[n] for n in STEP_INPUTS))
    compare_gradients(got, expected, models, tolerance, label=f"x {p['x'].shape}, h_prev {p['h_prev'].shape}")


@check("lstm_step_backward", kind="gradient", points=3, name="against_own_forward")
def step_grad_against_own_forward(student, oracle, rng, tolerance):
    """Each gradient against directional central differences of lstm_step_forward's h and c
    (contracted with dh and dc): the reference forward's differences decide; your own
    forward's are reported beside them."""
    p = _lstm_step(rng)
    dh, dc = _upstreams(rng, p)
    got = read_gradients(call(student, "lstm_step_backward", p, dh, dc), LSTM_STEP_GRADS, p, "lstm_step_backward")
    return against_own_forward(student, oracle, rng, tolerance, "lstm_step_backward", "lstm_step_forward", p, got,
                               (dh, dc))


@check("lstm_step_backward", kind="behavior", points=2, name="leaves_inputs_alone")
def step_grad_leaves_inputs_alone(student, rng):
    """dh, dc, x, h_prev, c_prev, U, W and b are not modified (dh and dc included); the
    gradients are finite float arrays."""
    p = _lstm_step(rng)
    grads = leaves_inputs_alone(student, "lstm_step_backward", p, *_upstreams(rng, p))
    gradients(grads, LSTM_STEP_GRADS, p, "lstm_step_backward")


# ------------------------------------------------------------------ lstm_forward
@check("lstm_forward", kind="shape", points=1, name="output_shapes")
def sequence_shapes(student, rng):
    """h (N, T, H), with a batch of one, one step, one input feature."""
    for N, T, D, H in SEQUENCE_SHAPES:
        outputs(call(student, "lstm_forward", _lstm_sequence(rng, N, T, D, H)), ("h",), "lstm_forward",
                ((N, T, H),))


@check("lstm_forward", kind="numeric", points=5, name="values")
def sequence_values(student, oracle, rng, tolerance):
    """h(1)..h(T) from h0 and c0 = 0, the cell state carried from step to step, for T = 1 and T = 6."""
    evidence = Evidence(tolerance)
    for N, T, D, H in ((2, 1, 5, 3), (3, 6, 4, 5)):
        p = _lstm_sequence(rng, N, T, D, H)
        evidence.compare(call(student, "lstm_forward", p), call(oracle, "lstm_forward", p), "h",
                         mistakes.lstm_forward_models(*(p[n] for n in SEQUENCE_INPUTS)),
                         prefix=f"x {p['x'].shape}, h0 {p['h0'].shape}")
    evidence.verdict()


@check("lstm_forward", kind="behavior", points=2, name="leaves_inputs_alone")
def sequence_leaves_inputs_alone(student, rng):
    """x, h0, U, W and b are not modified; h is a finite float array of shape (N, T, H)."""
    p = _lstm_sequence(rng)
    h = leaves_inputs_alone(student, "lstm_forward", p)
    N, T, _ = p["x"].shape
    outputs(h, ("h",), "lstm_forward", ((N, T, p["h0"].shape[1]),))


# ------------------------------------------------------------------ lstm_backward
def _backward(student, oracle, rng, tolerance, N, T, D, H) -> None:
    p = _lstm_sequence(rng, N, T, D, H)
    dh = upstream(rng, (N, T, H))
    got = read_gradients(call(student, "lstm_backward", p, dh), SEQUENCE_GRADS, None, "lstm_backward")
    expected = dict(zip(SEQUENCE_GRADS, call(oracle, "lstm_backward", p, dh)))
    models = mistakes.lstm_backward_models(dh, *(p[n] for n in SEQUENCE_INPUTS))
    compare_gradients(got, expected, models, tolerance, label=f"T = {T}")


@check("lstm_backward", kind="shape", points=2, name="gradient_shapes")
def backward_shapes(student, rng):
    """(dx, dh0, dU, dW, db) shaped like (x, h0, U, W, b)."""
    for N, T, D, H in SEQUENCE_SHAPES:
        p = _lstm_sequence(rng, N, T, D, H)
        gradients(call(student, "lstm_backward", p, upstream(rng, (N, T, H))), SEQUENCE_GRADS, p, "lstm_backward")


@check("lstm_backward", kind="gradient", points=3)
def single_step(student, oracle, rng, tolerance):
    """T = 1, no cell carried between steps: each gradient against the reference's."""
    _backward(student, oracle, rng, tolerance, 3, 1, 5, 4)


@check("lstm_backward", kind="gradient", points=4)
def through_time(student, oracle, rng, tolerance):
    """T = 6, an upstream dh at every step: dL/dh(t) gets W^T da(t+1) and dL/dc(t) gets
    f(t+1) * dL/dc(t+1) from later steps; the parameters' gradients add up over time."""
    _backward(student, oracle, rng, tolerance, 2, 6, 5, 3)


@check("lstm_backward", kind="gradient", points=2, visibility="hidden")
def long_sequence(student, oracle, rng, tolerance):
    """T = 12 with other sizes (N = 3, D = 2, H = 5)."""
    _backward(student, oracle, rng, tolerance, 3, 12, 2, 5)


@check("lstm_backward", kind="gradient", points=3, name="against_own_forward")
def backward_against_own_forward(student, oracle, rng, tolerance):
    """T = 5: each gradient against directional central differences of lstm_forward: the
    reference forward's differences decide; your own forward's are reported beside them."""
    p = _lstm_sequence(rng, T=5)
    dh = upstream(rng, (2, 5, 3))
    got = read_gradients(call(student, "lstm_backward", p, dh), SEQUENCE_GRADS, p, "lstm_backward")
    return against_own_forward(student, oracle, rng, tolerance, "lstm_backward", "lstm_forward", p, got, (dh,))


@check("lstm_backward", kind="behavior", points=2, name="leaves_inputs_alone")
def backward_leaves_inputs_alone(student, rng):
    """dh, x, h0, U, W and b are not modified (dh included); the gradients are finite float arrays."""
    p = _lstm_sequence(rng)
    grads = leaves_inputs_alone(student, "lstm_backward", p, upstream(rng, (2, 6, 3)))
    gradients(grads, SEQUENCE_GRADS, p, "lstm_backward")
