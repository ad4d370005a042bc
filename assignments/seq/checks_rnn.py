"""Checks of rnn_step_forward, rnn_step_backward, rnn_forward and rnn_backward.

A backward is fed the forward's inputs and an upstream gradient (never the student's
forward values), so each function earns its own credit. T = 1 has no recurrence, so
checking it apart from T = 6 tells a per-step mistake (the tanh derivative) from a
recurrence mistake (no W^T term, no sum over time).
"""

from __future__ import annotations

from assignments.seq import mistakes
from assignments.seq.cases import SEQUENCE_GRADS, STEP_GRADS, sequence, step, upstream
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

# (N, D, H) and (N, T, D, H): a batch of one, one feature, one hidden unit, D < H and D > H.
STEP_SHAPES = ((3, 5, 4), (1, 2, 6), (4, 1, 1))
SEQUENCE_SHAPES = ((2, 4, 5, 3), (1, 1, 2, 4), (3, 7, 1, 2))


# ------------------------------------------------------------------ rnn_step_forward
@check("rnn_step_forward", kind="shape", points=1, name="output_shapes")
def step_shapes(student, rng):
    """h (N, H), with a batch of one, one input feature, one hidden unit."""
    for N, D, H in STEP_SHAPES:
        outputs(call(student, "rnn_step_forward", step(rng, N, D, H)), ("h",), "rnn_step_forward", ((N, H),))


@check("rnn_step_forward", kind="numeric", points=5, name="values")
def step_values(student, oracle, rng, tolerance):
    """h = tanh(b + h_prev @ W.T + x @ U.T), for x (3, 5), h_prev (3, 4) and for a batch of one."""
    evidence = Evidence(tolerance)
    for N, D, H in ((3, 5, 4), (1, 3, 6)):
        p = step(rng, N, D, H)
        evidence.compare(call(student, "rnn_step_forward", p), call(oracle, "rnn_step_forward", p), "h",
                         prefix=f"x {p['x'].shape}, h_prev {p['h_prev'].shape}")
    evidence.verdict()


@check("rnn_step_forward", kind="behavior", points=2, name="leaves_inputs_alone")
def step_leaves_inputs_alone(student, rng):
    """x, h_prev, U, W and b are not modified; h is a finite float array of shape (N, H)."""
    p = step(rng)
    h = leaves_inputs_alone(student, "rnn_step_forward", p)
    outputs(h, ("h",), "rnn_step_forward", (p["h_prev"].shape,))


# ------------------------------------------------------------------ rnn_step_backward
def _step_backward(student, oracle, rng, tolerance, N, D, H) -> None:
    p = step(rng, N, D, H)
    dh = upstream(rng, (N, H))
    got = read_gradients(call(student, "rnn_step_backward", p, dh), STEP_GRADS, None, "rnn_step_backward")
    expected = dict(zip(STEP_GRADS, call(oracle, "rnn_step_backward", p, dh)))
    models = mistakes.rnn_step_backward_models(dh, *(p[n] for n in ("x", "h_prev", "U", "W", "b")))
    compare_gradients(got, expected, models, tolerance, label=f"x {p['x'].shape}, h_prev {p['h_prev'].shape}")


@check("rnn_step_backward", kind="shape", points=1, name="gradient_shapes")
def step_grad_shapes(student, rng):
    """(dx, dh_prev, dU, dW, db) shaped like (x, h_prev, U, W, b)."""
    for N, D, H in STEP_SHAPES:
        p = step(rng, N, D, H)
        gradients(call(student, "rnn_step_backward", p, upstream(rng, (N, H))), STEP_GRADS, p, "rnn_step_backward")


@check("rnn_step_backward", kind="gradient", points=5, name="against_reference")
def step_grad_against_reference(student, oracle, rng, tolerance):
    """da = (1 - h^2) * dh; dx = da @ U, dh_prev = da @ W, dU = da.T @ x, dW = da.T @ h_prev,
    db = da summed over the batch; x (3, 5), h_prev (3, 4)."""
    _step_backward(student, oracle, rng, tolerance, 3, 5, 4)


@check("rnn_step_backward", kind="gradient", points=2, name="against_own_forward")
def step_grad_against_own_forward(student, oracle, rng, tolerance):
    """Each gradient against directional central differences of rnn_step_forward: the
    reference forward's differences decide; your own forward's are reported beside them."""
    p = step(rng)
    dh = upstream(rng, p["h_prev"].shape)
    got = read_gradients(call(student, "rnn_step_backward", p, dh), STEP_GRADS, p, "rnn_step_backward")
    return against_own_forward(student, oracle, rng, tolerance, "rnn_step_backward", "rnn_step_forward", p, got,
                               (dh,))


@check("rnn_step_backward", kind="behavior", points=2, name="leaves_inputs_alone")
def step_grad_leaves_inputs_alone(student, rng):
    """dh, x, h_prev, U, W and b are not modified (dh included); the gradients are finite float arrays."""
    p = step(rng)
    grads = leaves_inputs_alone(student, "rnn_step_backward", p, upstream(rng, p["h_prev"].shape))
    gradients(grads, STEP_GRADS, p, "rnn_step_backward")


# ------------------------------------------------------------------ rnn_forward
@check("rnn_forward", kind="shape", points=1, name="output_shapes")
def sequence_shapes(student, rng):
    """h (N, T, H), with a batch of one, one step, one input feature."""
    for N, T, D, H in SEQUENCE_SHAPES:
        outputs(call(student, "rnn_forward", sequence(rng, N, T, D, H)), ("h",), "rnn_forward", ((N, T, H),))


@check("rnn_forward", kind="numeric", points=5, name="values")
def sequence_values(student, oracle, rng, tolerance):
    """h(t) = tanh(b + h(t-1) @ W.T + x(t) @ U.T) from h(0) = h0, for T = 1 and T = 6."""
    evidence = Evidence(tolerance)
    for N, T, D, H in ((2, 1, 5, 3), (3, 6, 4, 5)):
        p = sequence(rng, N, T, D, H)
        evidence.compare(call(student, "rnn_forward", p), call(oracle, "rnn_forward", p), "h",
                         prefix=f"x {p['x'].shape}, h0 {p['h0'].shape}")
    evidence.verdict()


@check("rnn_forward", kind="behavior", points=2, name="leaves_inputs_alone")
def sequence_leaves_inputs_alone(student, rng):
    """x, h0, U, W and b are not modified; h is a finite float array of shape (N, T, H)."""
    p = sequence(rng)
    h = leaves_inputs_alone(student, "rnn_forward", p)
    N, T, _ = p["x"].shape
    outputs(h, ("h",), "rnn_forward", ((N, T, p["h0"].shape[1]),))


# ------------------------------------------------------------------ rnn_backward
def _backward(student, oracle, rng, tolerance, N, T, D, H) -> None:
    p = sequence(rng, N, T, D, H)
    dh = upstream(rng, (N, T, H))
    got = read_gradients(call(student, "rnn_backward", p, dh), SEQUENCE_GRADS, None, "rnn_backward")
    expected = dict(zip(SEQUENCE_GRADS, call(oracle, "rnn_backward", p, dh)))
    models = mistakes.rnn_backward_models(dh, *(p[n] for n in ("x", "h0", "U", "W", "b")))
    compare_gradients(got, expected, models, tolerance, label=f"T = {T}")


@check("rnn_backward", kind="shape", points=1, name="gradient_shapes")
def backward_shapes(student, rng):
    """(dx, dh0, dU, dW, db) shaped like (x, h0, U, W, b)."""
    for N, T, D, H in SEQUENCE_SHAPES:
        p = sequence(rng, N, T, D, H)
        gradients(call(student, "rnn_backward", p, upstream(rng, (N, T, H))), SEQUENCE_GRADS, p, "rnn_backward")


@check("rnn_backward", kind="gradient", points=3)
def single_step(student, oracle, rng, tolerance):
    """T = 1, no recurrence: each gradient against the reference's."""
    _backward(student, oracle, rng, tolerance, 3, 1, 5, 4)


@check("rnn_backward", kind="gradient", points=4)
def through_time(student, oracle, rng, tolerance):
    """T = 6, an upstream gradient at every step: dL/dh(t) = dh(t) + W^T da(t+1) flows back
    from later steps, and the parameters' gradients add up over time and the batch."""
    _backward(student, oracle, rng, tolerance, 2, 6, 5, 3)


@check("rnn_backward", kind="gradient", points=2, visibility="hidden")
def long_sequence(student, oracle, rng, tolerance):
    """T = 12 with other sizes (N = 3, D = 2, H = 6)."""
    _backward(student, oracle, rng, tolerance, 3, 12, 2, 6)


@check("rnn_backward", kind="gradient", points=2, name="against_own_forward")
def backward_against_own_forward(student, oracle, rng, tolerance):
    """T = 5: each gradient against directional central differences of rnn_forward: the
    reference forward's differences decide; your own forward's are reported beside them."""
    p = sequence(rng, T=5)
    dh = upstream(rng, (2, 5, 3))
    got = read_gradients(call(student, "rnn_backward", p, dh), SEQUENCE_GRADS, p, "rnn_backward")
    return against_own_forward(student, oracle, rng, tolerance, "rnn_backward", "rnn_forward", p, got, (dh,))


@check("rnn_backward", kind="behavior", points=2, name="leaves_inputs_alone")
def backward_leaves_inputs_alone(student, rng):
    """dh, x, h0, U, W and b are not modified (dh included); the gradients are finite float arrays."""
    p = sequence(rng)
    grads = leaves_inputs_alone(student, "rnn_backward", p, upstream(rng, (2, 6, 3)))
    gradients(grads, SEQUENCE_GRADS, p, "rnn_backward")
