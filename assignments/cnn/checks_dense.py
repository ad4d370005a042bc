"""Checks of relu_*, linear_* and softmax_cross_entropy."""

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
    gradient_tuple,
)
from grader.checks import CheckFailed
from grader.compare import expect_number, expect_sequence
from grader.gradcheck import expect_backward_matches_forward

RELU_SHAPES = ((7,), (3, 4), (2, 3, 4, 2))


# ------------------------------------------------------------------ ReLU
def _with_zeros(rng, shape) -> np.ndarray:
    """Standard normals with about a quarter set to exactly 0 (the kink)."""
    x = rng.standard_normal(shape)
    x[rng.random(shape) < 0.25] = 0.0
    return x


@check("relu_forward", kind="numeric", points=3, name="values")
def relu_values(student, oracle, rng, tolerance):
    """max(x, 0) elementwise, for 1-D, 2-D and 4-D inputs with negative values and exact zeros."""
    evidence = Evidence(tolerance)
    for shape in RELU_SHAPES:
        x = _with_zeros(rng, shape)
        evidence.compare(student.relu_forward(x), oracle.relu_forward(x), "y", prefix=f"x of shape {shape}")
    evidence.verdict()


@check("relu_forward", kind="behavior", points=1, name="leaves_inputs_alone")
def relu_leaves_inputs_alone(student, rng):
    """x is not modified; y is a finite float array."""
    y = student.relu_forward(_with_zeros(rng, (3, 5)))
    expect_untouched(student, "relu_forward", ARGS["relu_forward"])
    expect_floats(y, "y")


@check("relu_backward", kind="gradient", points=3, name="against_reference")
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
    """dx against directional central differences of your own relu_forward (inputs at
    least 0.1 away from the kink, steps far smaller)."""
    x = away_from_zero(rng, (3, 4, 5))
    dy = rng.standard_normal(x.shape)
    got = expect_floats(student.relu_backward(dy, x), "dx", x.shape)
    expect_backward_matches_forward(lambda p: student.relu_forward(p["x"]), lambda p: oracle.relu_forward(p["x"]),
                         {"x": x}, {"x": got}, dy, rng, tolerance, "relu_backward", "relu_forward",
                         steps=(1e-5, 1e-3))


@check("relu_backward", kind="behavior", points=1, name="leaves_inputs_alone")
def relu_grad_leaves_inputs_alone(student, rng):
    """dy and x are not modified (dy included); dx is a finite float array."""
    x = _with_zeros(rng, (3, 5))
    dx = student.relu_backward(rng.standard_normal(x.shape), x)
    expect_untouched(student, "relu_backward", ARGS["relu_backward"])
    expect_floats(dx, "dx", x.shape)


# ------------------------------------------------------------------ linear layer
def _linear(rng, n: int, d_in: int, d_out: int):
    return (rng.standard_normal((n, d_in)), rng.standard_normal((d_in, d_out)), rng.standard_normal(d_out))


@check("linear_forward", kind="numeric", points=2, name="values")
def linear_values(student, oracle, rng, tolerance):
    """x @ w + b with x (4, 5) and w (5, 3), and with a batch of one."""
    evidence = Evidence(tolerance)
    for n, d_in, d_out in ((4, 5, 3), (1, 6, 2)):
        x, w, b = _linear(rng, n, d_in, d_out)
        evidence.compare(student.linear_forward(x, w, b), oracle.linear_forward(x, w, b), "y",
                         mistakes.linear_forward_models(oracle, x, w, b), prefix=f"x {x.shape}, w {w.shape}")
    evidence.verdict()


@check("linear_forward", kind="numeric", points=2, name="square_weights")
def linear_square_weights(student, oracle, rng, tolerance):
    """x @ w + b with a square w (4, 4), where w and w.T have the same shape."""
    x, w, b = _linear(rng, 3, 4, 4)
    evidence = Evidence(tolerance)
    evidence.compare(student.linear_forward(x, w, b), oracle.linear_forward(x, w, b), "y",
                     mistakes.linear_forward_models(oracle, x, w, b))
    evidence.verdict()


@check("linear_forward", kind="behavior", points=1, name="leaves_inputs_alone")
def linear_leaves_inputs_alone(student, rng):
    """x, w and b are not modified; y is a finite float array."""
    y = student.linear_forward(*_linear(rng, 3, 4, 2))
    expect_untouched(student, "linear_forward", ARGS["linear_forward"])
    expect_floats(y, "y")


def _linear_backward(student, oracle, rng, tolerance, n, d_in, d_out) -> None:
    x, w, b = _linear(rng, n, d_in, d_out)
    dy = rng.standard_normal((n, d_out))
    got = gradient_tuple(student.linear_backward(dy, x, w, b), ("dx", "dw", "db"), None, "linear_backward")
    dx, dw, db = oracle.linear_backward(dy, x, w, b)
    compare_gradients(got, {"dx": dx, "dw": dw, "db": db}, mistakes.linear_backward_models(dy, x, w), tolerance,
                      label=f"x {x.shape}, w {w.shape}")


@check("linear_backward", kind="gradient", points=3, name="against_reference")
def linear_grad_against_reference(student, oracle, rng, tolerance):
    """dx = dy @ w.T, dw = x.T @ dy, db = dy summed over the batch; x (4, 5), w (5, 3)."""
    _linear_backward(student, oracle, rng, tolerance, 4, 5, 3)


@check("linear_backward", kind="gradient", points=2, name="square_weights")
def linear_grad_square_weights(student, oracle, rng, tolerance):
    """The same with a square w (4, 4), where w and w.T have the same shape."""
    _linear_backward(student, oracle, rng, tolerance, 3, 4, 4)


@check("linear_backward", kind="gradient", points=2, name="against_own_forward")
def linear_grad_against_own_forward(student, oracle, rng, tolerance):
    """dx, dw, db against directional central differences of your own linear_forward."""
    x, w, b = _linear(rng, 4, 5, 3)
    dy = rng.standard_normal((4, 3))
    got = gradient_tuple(student.linear_backward(dy, x, w, b), ("dx", "dw", "db"),
                         (x.shape, w.shape, b.shape), "linear_backward")
    expect_backward_matches_forward(lambda p: student.linear_forward(p["x"], p["w"], p["b"]),
                         lambda p: oracle.linear_forward(p["x"], p["w"], p["b"]),
                         {"x": x, "w": w, "b": b}, {"x": got["dx"], "w": got["dw"], "b": got["db"]}, dy, rng,
                         tolerance, "linear_backward", "linear_forward")


@check("linear_backward", kind="behavior", points=1, name="leaves_inputs_alone")
def linear_grad_leaves_inputs_alone(student, rng):
    """dy, x, w and b are not modified (dy included); the gradients are finite float arrays."""
    x, w, b = _linear(rng, 3, 4, 2)
    result = student.linear_backward(rng.standard_normal((3, 2)), x, w, b)
    expect_untouched(student, "linear_backward", ARGS["linear_backward"])
    gradient_tuple(result, ("dx", "dw", "db"), (x.shape, w.shape, b.shape), "linear_backward")


# ------------------------------------------------------------------ softmax with cross-entropy
def _scores(rng, n: int = 5, k: int = 4):
    return rng.standard_normal((n, k)) * 2.0, rng.integers(0, k, size=n)


def _loss_and_grad(value):
    loss, dz = expect_sequence(value, 2, "what softmax_cross_entropy returns")
    return loss, dz


@check("softmax_cross_entropy", kind="numeric", points=4, name="values")
def softmax_values(student, oracle, rng, tolerance):
    """The mean over the batch of -log softmax(z)[label], and its gradient (softmax - onehot) / N."""
    z, labels = _scores(rng)
    loss, dz = _loss_and_grad(student.softmax_cross_entropy(z, labels))
    ref_loss, ref_dz = oracle.softmax_cross_entropy(z, labels)
    loss_models, dz_models = mistakes.softmax_models(ref_loss, ref_dz)
    evidence = Evidence(tolerance)
    evidence.compare(np.asarray(expect_number(loss, "loss")), np.asarray(ref_loss), "loss", loss_models, partial=True)
    evidence.compare(dz, ref_dz, "dz", dz_models, rtol=tolerance.grad_rtol, partial=True)
    evidence.verdict()


@check("softmax_cross_entropy", kind="behavior", points=3)
def large_scores(student, oracle, rng, tolerance):
    """Scores around 1000 (exact in float32 too): the loss and dz stay finite and right."""
    z, labels = _scores(rng)
    z = 1000.0 + np.round(z * 64) / 64
    loss, dz = _loss_and_grad(student.softmax_cross_entropy(z, labels))
    finite = _all_finite(loss) and _all_finite(dz)
    naive_loss, naive_dz = mistakes.naive_softmax_cross_entropy(z, labels)
    if not finite:
        explained = not (np.isfinite(naive_loss) and np.all(np.isfinite(naive_dz)))
        raise CheckFailed(f"for scores around 1000 the result holds NaN or inf (loss {loss!r})",
                          [mistakes.UNSTABLE] if explained else ["submission.bad_return"])
    ref_loss, ref_dz = oracle.softmax_cross_entropy(z, labels)
    loss_models, dz_models = mistakes.softmax_models(ref_loss, ref_dz)
    evidence = Evidence(tolerance)
    evidence.compare(np.asarray(expect_number(loss, "loss")), np.asarray(ref_loss), "loss", loss_models, partial=True)
    evidence.compare(dz, ref_dz, "dz", dz_models, rtol=tolerance.grad_rtol, partial=True)
    evidence.verdict()


def _all_finite(value) -> bool:
    try:
        return bool(np.all(np.isfinite(np.asarray(value, dtype=np.float64))))
    except (TypeError, ValueError):
        return True  # not numbers at all: the comparison will say so


@check("softmax_cross_entropy", kind="gradient", points=1)
def against_own_loss(student, oracle, rng, tolerance):
    """dz against directional central differences of your own loss."""
    z, labels = _scores(rng)
    _, dz = _loss_and_grad(student.softmax_cross_entropy(z, labels))
    dz = expect_floats(dz, "dz")

    def own(p):
        loss, _ = _loss_and_grad(student.softmax_cross_entropy(p["z"], labels))
        return loss if isinstance(loss, np.generic) else expect_number(loss, "loss")

    expect_backward_matches_forward(own, lambda p: oracle.softmax_cross_entropy(p["z"], labels)[0], {"z": z}, {"z": dz},
                         None, rng, tolerance, "softmax_cross_entropy", "loss")


@check("softmax_cross_entropy", kind="behavior", points=2, name="leaves_inputs_alone")
def softmax_leaves_inputs_alone(student, rng):
    """z and labels are not modified; the loss is a number and dz a finite float array."""
    z, labels = _scores(rng)
    loss, dz = _loss_and_grad(student.softmax_cross_entropy(z, labels))
    expect_untouched(student, "softmax_cross_entropy", ARGS["softmax_cross_entropy"])
    expect_number(loss, "loss")
    expect_floats(dz, "dz")
