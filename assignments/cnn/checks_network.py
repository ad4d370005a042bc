"""Checks across layers: the lecture's typical CNN assembled from the student's layers,
and the speed of conv2d_forward.

Both score 0 points by default: each function earns its own credit in its own checks,
and a mistake in one layer must not cost the others. The network check tells a student
whether the layers fit together (shapes, reshapes, one loss, gradients end to end) and
names the first layer where the network parts from the reference's.
"""

from __future__ import annotations

import time

import numpy as np

from assignments.cnn.registry import check
from grader.checklib import fits
from grader.checks import CheckFailed
from grader.compare import expect_number, expect_sequence, relative_error
from grader.layerchain import BackwardStep, forward_step

# Beyond this many times the reference's time, a convolution almost surely loops over
# pixels in Python: vectorised NumPy (im2col, einsum) stays within ~10x.
LOOPING_RATIO = 50.0


def _unchecked(layer: str, value):
    return value


def network_loss(layers, params: dict, x: np.ndarray, labels: np.ndarray, step=_unchecked) -> tuple[float, dict]:
    """conv 3x3 (pad 1) -> relu -> 2x2 max pool -> linear -> softmax cross-entropy, as in the
    lecture's typical CNN. x (N, 8, 8, 1), w1 (3, 3, 1, 4), b1 (4,), w2 (64, 3), b2 (3,).
    Returns the loss and every intermediate value, for the backward pass and for naming
    the first layer that differs. `step(layer, output)` sees each layer's output before
    the next layer is called (and may stop there)."""
    a1 = step("conv2d_forward", layers.conv2d_forward(x, params["w1"], params["b1"], pad=1))   # (N, 8, 8, 4)
    r1 = step("relu_forward", layers.relu_forward(a1))                                      # (N, 8, 8, 4)
    p1 = step("maxpool_forward", layers.maxpool_forward(r1))                                # (N, 4, 4, 4)
    flat = np.asarray(p1).reshape(x.shape[0], -1)                                           # (N, 64)
    z = step("linear_forward", layers.linear_forward(flat, params["w2"], params["b2"]))     # (N, 3)
    loss, dz = expect_sequence(layers.softmax_cross_entropy(z, labels), 2, "softmax_cross_entropy's result")
    step("softmax_cross_entropy", dz)
    return loss, {"conv2d_forward": a1, "relu_forward": r1, "maxpool_forward": p1, "linear_forward": z,
                  "softmax_cross_entropy": dz, "flat": flat}


def network_gradients(layers, params: dict, x: np.ndarray, values: dict, step=_unchecked) -> tuple[dict, dict]:
    """Backpropagation through the network: the parameters' gradients and, per layer,
    the gradient it produced (`step` as in `network_loss`)."""
    dflat, dw2, db2 = expect_sequence(layers.linear_backward(values["softmax_cross_entropy"], values["flat"],
                                                             params["w2"], params["b2"]), 3, "linear_backward")
    step("linear_backward", dflat)
    dp1 = np.asarray(dflat).reshape(np.shape(values["maxpool_forward"]))
    dr1 = step("maxpool_backward", layers.maxpool_backward(dp1, values["relu_forward"]))
    da1 = step("relu_backward", layers.relu_backward(dr1, values["conv2d_forward"]))
    _, dw1, db1 = expect_sequence(layers.conv2d_backward(da1, x, params["w1"], params["b1"], pad=1), 3,
                                  "conv2d_backward")
    step("conv2d_backward", dw1)
    grads = {"w1": dw1, "b1": db1, "w2": dw2, "b2": db2}
    return grads, {"linear_backward": dflat, "maxpool_backward": dr1, "relu_backward": da1,
                   "conv2d_backward": dw1}


def _network_inputs(rng):
    x = rng.standard_normal((2, 8, 8, 1))
    labels = rng.integers(0, 3, size=2)
    params = {"w1": 0.5 * rng.standard_normal((3, 3, 1, 4)), "b1": 0.1 * rng.standard_normal(4),
              "w2": 0.3 * rng.standard_normal((64, 3)), "b2": 0.1 * rng.standard_normal(3)}
    return x, labels, params


def _first_difference(got: dict, expected: dict, tolerance) -> str | None:
    for layer, value in expected.items():
        if layer != "flat" and not fits(got[layer], value, tolerance.value_rtol):
            return layer
    return None


@check("network", kind="gradient", points=0)
def typical_cnn_end_to_end(student, oracle, rng, tolerance):
    """The lecture's typical CNN from your layers: conv - relu - pool - linear - softmax, one
    loss, and its gradients end to end against the reference's. 0 points: each layer
    earns its credit in its own checks. Each layer's output is looked at before the next
    layer takes it, so a failure names the layer whose output first went wrong."""
    x, labels, params = _network_inputs(rng)
    try:
        return _end_to_end(student, oracle, tolerance, x, labels, params)
    except (ValueError, TypeError, IndexError) as exc:  # a layer's output does not fit the next layer
        raise CheckFailed(f"the layers do not fit together: {type(exc).__name__}: {exc}") from None


def _end_to_end(student, oracle, tolerance, x, labels, params) -> dict:
    ref_loss, ref_values = network_loss(oracle, params, x, labels)
    ref_grads, ref_steps = network_gradients(oracle, params, x, ref_values)
    forward = forward_step(ref_values, tolerance, "the network's forward pass")
    loss, values = network_loss(student, params, x, labels, forward)
    if not np.isclose(expect_number(loss, "loss"), ref_loss, rtol=tolerance.value_rtol):
        raise CheckFailed(f"the network's loss is {float(loss):.6g}, expected {ref_loss:.6g}")
    backward = BackwardStep(ref_steps, "the network's backward pass")
    grads, steps = network_gradients(student, params, x, values, backward)
    errors = {f"d{k}": float(relative_error(np.asarray(grads[k], dtype=np.float64), ref_grads[k])) for k in grads}
    if max(errors.values()) > tolerance.grad_rtol:
        # Only now look inside: ReLU zeros make ties in the pooling windows, where any
        # split is right, so a layer's own gradient may differ harmlessly.
        layer = _first_difference(steps, ref_steps, tolerance)
        where = f"; the first difference is in what {layer} returns" if layer else ""
        summary = ", ".join(f"{k}: {e:.2g}" for k, e in errors.items())
        raise CheckFailed(f"the network's gradients differ from the reference's (relative errors {summary}){where}",
                          [], {"relative_errors": errors})
    # No finite differences of the whole network here: each backward layer is already
    # checked against directional differences of its forward, and every call here is a round trip.
    return {"relative_errors": errors}


@check("conv2d_forward", kind="performance", points=0)
def speed(student, oracle, rng):
    """conv2d_forward on x (4, 16, 16, 8) with w (3, 3, 8, 8), pad 1, timed against the
    reference. Reported, not scored: a correct loop-based layer gets full marks."""
    x = rng.standard_normal((4, 16, 16, 8))
    w = rng.standard_normal((3, 3, 8, 8))
    b = rng.standard_normal(8)
    module = vars(oracle).get("module")  # the live reference; a recorded oracle (the kit) has none
    if module is None:
        return None
    reference = min(_timed(lambda: module.conv2d_forward(x, w, b, pad=1)) for _ in range(3))
    mine = _student_seconds(student, x, w, b)
    ratio = mine / max(reference, 1e-6)
    if ratio > LOOPING_RATIO:
        mine = min(mine, _student_seconds(student, x, w, b))  # once more: rule out a hiccup
        ratio = mine / max(reference, 1e-6)
    details = {"student_seconds": round(mine, 6), "reference_seconds": round(reference, 6),
               "ratio": round(ratio, 1)}
    # Reported, never failed: speed is not part of correctness.
    details["note"] = (f"conv2d_forward took {mine * 1000:.1f} ms, {speed_ratio(ratio)} the reference's "
                       f"{reference * 1000:.2f} ms")
    if ratio > LOOPING_RATIO:
        details["note"] += (": it is probably looping over pixels in Python (this costs no points; "
                            "im2col or einsum over windows is much faster)")
    return details


def speed_ratio(ratio: float) -> str:
    """How a time compares with the reference's, in words that stay true below 1x
    ("0x the reference's" said a faster layer took no time)."""
    if ratio < 0.95:
        return "faster than"
    if ratio < 1.05:
        return "about as fast as"
    return f"{ratio:.1f}x" if ratio < 10 else f"{ratio:.0f}x"


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _student_seconds(student, x, w, b) -> float:
    started = time.perf_counter()
    student.conv2d_forward(x, w, b, pad=1)
    wall = time.perf_counter() - started
    inside = student._seconds()
    return float(inside) if inside is not None else wall
