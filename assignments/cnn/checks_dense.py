"""Checks of relu_forward, relu_backward, linear_forward and linear_backward."""

from __future__ import annotations

import numpy as np

from assignments.cnn import mistakes
from assignments.cnn.cases import ARGS, away_from_zero
from assignments.cnn.registry import check
from grader.checklib import (
    Evidence,
    compare_gradients,
    expect_floats,
    expect_untouched,
    explaining_codes,
    gradient_tuple,
    read_gradient_tuple,
)
from grader.checks import CheckFailed
from grader.gradcheck import expect_backward_matches_forward

RELU_SHAPES = ((7,), (3, 4), (2, 3, 4, 2))


# ------------------------------------------------------------------ ReLU
def _with_zeros(rng, shape) -> np.ndarray:
    """Standard normals with about a quarter set to exactly 0 (the kink)."""
    x = rng.standard_normal(shape)
    x[rng.random(shape) < 0.25] = 0.0
    return x


@check("relu_forward", kind="shape", points=1, name="output_shapes")
def relu_shapes(student, rng):
    """y has x's shape, whatever it is: 1-D, 2-D, 4-D, 5-D, one element."""
    for shape in (*RELU_SHAPES, (2, 1, 3, 2, 2), (1, 1)):
        expect_floats(student.relu_forward(rng.standard_normal(shape)), "y", shape)


@check("relu_forward", kind="numeric", points=2, name="values")
def relu_values(student, oracle, rng, tolerance):
    """max(x, 0) elementwise, for 1-D, 2-D and 4-D inputs with negative values and exact zeros."""
    evidence = Evidence(tolerance)
    for shape in RELU_SHAPES:
        x = _with_zeros(rng, shape)
        evidence.compare(student.relu_forward(x), oracle.relu_forward(x), "y", prefix=f"x of shape {shape}")
    evidence.verdict()


@check("relu_forward", kind="behavior", points=1, name="leaves_inputs_alone")
def relu_leaves_inputs_alone(student, rng):
    """x is not modified; y is a finite float array of the right shape."""
    y = student.relu_forward(_with_zeros(rng, (3, 5)))
    expect_untouched(student, "relu_forward", ARGS["relu_forward"])
    expect_floats(y, "y", (3, 5))


@check("relu_backward", kind="shape", points=1, name="gradient_shapes")
def relu_grad_shapes(student, rng):
    """dx has x's shape, whatever it is."""
    for shape in (*RELU_SHAPES, (2, 1, 3, 2, 2), (1, 1)):
        expect_floats(student.relu_backward(rng.standard_normal(shape), away_from_zero(rng, shape)), "dx", shape)


@check("relu_backward", kind="gradient", points=2, name="against_reference")
def relu_grad_against_reference(student, oracle, rng, tolerance):
    """dy where x > 0 and 0 where x < 0, for 1-D, 2-D and 4-D inputs (none exactly 0)."""
    evidence = Evidence(tolerance)
    for shape in RELU_SHAPES:
        x = away_from_zero(rng, shape)
        dy = rng.standard_normal(shape)
        evidence.compare(student.relu_backward(dy, x), oracle.relu_backward(dy, x), "dx",
                         rtol=tolerance.grad_rtol, prefix=f"x of shape {shape}")
    evidence.verdict()


@check("relu_backward", kind="gradient", points=1)
def either_convention_at_zero(student, rng, tolerance):
    """Where x is exactly 0 the derivative is a convention: dx = 0, dx = dy (as with x >= 0)
    or anything between is accepted; elsewhere dx is dy or 0."""
    x = _with_zeros(rng, (4, 6))
    dy = rng.standard_normal(x.shape)
    dx = expect_floats(student.relu_backward(dy, x), "dx", x.shape).astype(np.float64)
    slack = tolerance.grad_rtol * float(np.max(np.abs(dy))) + tolerance.value_atol
    low, high = np.minimum(0.0, dy), np.maximum(0.0, dy)
    expected = np.where(x > 0, dy, 0.0)
    wrong = np.where(x == 0, (dx < low - slack) | (dx > high + slack), np.abs(dx - expected) > slack)
    if wrong.any():
        i = tuple(np.argwhere(wrong)[0])
        where = ", ".join(map(str, i))
        rule = "between 0 and dy" if x[i] == 0 else ("dy" if x[i] > 0 else "0")
        raise CheckFailed(f"dx[{where}] is {dx[i]:.6g} for x = {x[i]:.6g} and dy = {dy[i]:.6g}; "
                          f"expected {rule}")


@check("relu_backward", kind="gradient", points=1, name="against_own_forward")
def relu_grad_against_own_forward(student, oracle, rng, tolerance):
    """dx against directional central differences of relu_forward (inputs at least 0.1
    away from the kink, steps far smaller): the reference forward's differences decide;
    your own forward's are reported beside them."""
    x = away_from_zero(rng, (3, 4, 5))
    dy = rng.standard_normal(x.shape)
    got = expect_floats(student.relu_backward(dy, x), "dx", x.shape)
    # Steps far below the 0.1 between the inputs and the kink: no sign changes.
    return expect_backward_matches_forward(lambda p: student.relu_forward(p["x"]),
                                           lambda p: oracle.relu_forward(p["x"]), {"x": x}, {"x": got}, dy, rng,
                                           tolerance, "relu_backward", "relu_forward", steps=(1e-5, 1e-3))


@check("relu_backward", kind="behavior", points=1, name="leaves_inputs_alone")
def relu_grad_leaves_inputs_alone(student, rng):
    """dy and x are not modified (dy included); dx is a finite float array shaped like x."""
    x = _with_zeros(rng, (3, 5))
    dx = student.relu_backward(rng.standard_normal(x.shape), x)
    expect_untouched(student, "relu_backward", ARGS["relu_backward"])
    expect_floats(dx, "dx", x.shape)


# ------------------------------------------------------------------ linear layer
def _linear(rng, n: int, d_in: int, d_out: int):
    return (rng.standard_normal((n, d_in)), rng.standard_normal((d_in, d_out)), rng.standard_normal(d_out))


LINEAR_SHAPES = ((1, 3, 1), (5, 2, 7), (3, 4, 4))


@check("linear_forward", kind="shape", points=1, name="output_shapes")
def linear_shapes(student, rng):
    """y (N, D_out), with a batch of one, one output, more outputs than inputs, square w."""
    for n, d_in, d_out in LINEAR_SHAPES:
        expect_floats(student.linear_forward(*_linear(rng, n, d_in, d_out)), "y", (n, d_out))


@check("linear_forward", kind="numeric", points=2, name="values")
def linear_values(student, oracle, rng, tolerance):
    """x @ w + b with x (4, 5) and w (5, 3), and with a batch of one."""
    evidence = Evidence(tolerance)
    for n, d_in, d_out in ((4, 5, 3), (1, 6, 2)):
        x, w, b = _linear(rng, n, d_in, d_out)
        evidence.compare(student.linear_forward(x, w, b), oracle.linear_forward(x, w, b), "y",
                         mistakes.linear_forward_models(oracle, x, w, b), prefix=f"x {x.shape}, w {w.shape}")
    evidence.verdict()


@check("linear_forward", kind="numeric", points=1, name="square_weights")
def linear_square_weights(student, oracle, rng, tolerance):
    """x @ w + b with a square w (4, 4), where w and w.T have the same shape."""
    x, w, b = _linear(rng, 3, 4, 4)
    evidence = Evidence(tolerance)
    evidence.compare(student.linear_forward(x, w, b), oracle.linear_forward(x, w, b), "y",
                     mistakes.linear_forward_models(oracle, x, w, b))
    evidence.verdict()


@check("linear_forward", kind="behavior", points=1, name="leaves_inputs_alone")
def linear_leaves_inputs_alone(student, rng):
    """x, w and b are not modified; y is a finite float array of the right shape."""
    y = student.linear_forward(*_linear(rng, 3, 4, 2))
    expect_untouched(student, "linear_forward", ARGS["linear_forward"])
    expect_floats(y, "y", (3, 2))


def _linear_backward(student, oracle, rng, tolerance, n, d_in, d_out) -> None:
    x, w, b = _linear(rng, n, d_in, d_out)
    dy = rng.standard_normal((n, d_out))
    got = read_gradient_tuple(student.linear_backward(dy, x, w, b), ("dx", "dw", "db"), None, "linear_backward")
    dx, dw, db = oracle.linear_backward(dy, x, w, b)
    compare_gradients(got, {"dx": dx, "dw": dw, "db": db}, mistakes.linear_backward_models(dy, x, w), tolerance,
                      label=f"x {x.shape}, w {w.shape}")


@check("linear_backward", kind="shape", points=1, name="gradient_shapes")
def linear_grad_shapes(student, rng):
    """(dx, dw, db) shaped like (x, w, b)."""
    for n, d_in, d_out in LINEAR_SHAPES:
        x, w, b = _linear(rng, n, d_in, d_out)
        gradient_tuple(student.linear_backward(rng.standard_normal((n, d_out)), x, w, b), ("dx", "dw", "db"),
                       (x.shape, w.shape, b.shape), "linear_backward")


@check("linear_backward", kind="gradient", points=3, name="against_reference")
def linear_grad_against_reference(student, oracle, rng, tolerance):
    """dx = dy @ w.T, dw = x.T @ dy, db = dy summed over the batch; x (4, 5), w (5, 3)."""
    _linear_backward(student, oracle, rng, tolerance, 4, 5, 3)


@check("linear_backward", kind="gradient", points=2, name="square_weights")
def linear_grad_square_weights(student, oracle, rng, tolerance):
    """The same with a square w (4, 4), where w and w.T have the same shape."""
    _linear_backward(student, oracle, rng, tolerance, 3, 4, 4)


@check("linear_backward", kind="gradient", points=1, name="against_own_forward")
def linear_grad_against_own_forward(student, oracle, rng, tolerance):
    """dx, dw, db against directional central differences of linear_forward: the reference
    forward's differences decide; your own forward's are reported beside them."""
    x, w, b = _linear(rng, 4, 5, 3)
    dy = rng.standard_normal((4, 3))
    got = read_gradient_tuple(student.linear_backward(dy, x, w, b), ("dx", "dw", "db"),
                              (x.shape, w.shape, b.shape), "linear_backward")
    grads = {name[1:]: g for name, g in got.by_name().items()}
    dx, dw, db = oracle.linear_backward(dy, x, w, b)
    codes = explaining_codes(got, {"dx": dx, "dw": dw, "db": db}, mistakes.linear_backward_models(dy, x, w),
                             tolerance)
    return expect_backward_matches_forward(lambda p: student.linear_forward(p["x"], p["w"], p["b"]),
                                           lambda p: oracle.linear_forward(p["x"], p["w"], p["b"]),
                                           {"x": x, "w": w, "b": b}, grads, dy, rng, tolerance,
                                           "linear_backward", "linear_forward", defects=got.defects,
                                           diagnoses=codes)


@check("linear_backward", kind="behavior", points=1, name="leaves_inputs_alone")
def linear_grad_leaves_inputs_alone(student, rng):
    """dy, x, w and b are not modified (dy included); the gradients are finite float arrays."""
    x, w, b = _linear(rng, 3, 4, 2)
    result = student.linear_backward(rng.standard_normal((3, 2)), x, w, b)
    expect_untouched(student, "linear_backward", ARGS["linear_backward"])
    gradient_tuple(result, ("dx", "dw", "db"), (x.shape, w.shape, b.shape), "linear_backward")
