"""Checks of the rnn assignment. Each is a plain function; see grader/checks.py."""

from __future__ import annotations

import numpy as np

from grader.checks import Registry
from grader.compare import expect_close, expect_number, expect_sequence

registry = Registry()
check = registry.check


def random_rnn(rng, T=6, D=4, H=5, K=4):
    """Inputs and parameters of a small RNN: x (T, D), y (T,), h0 (H,), U, W, V, b, c."""
    x = rng.standard_normal((T, D))
    y = rng.integers(0, K, size=T)
    h0 = 0.1 * rng.standard_normal(H)
    U = 0.5 * rng.standard_normal((H, D))
    W = 0.5 * rng.standard_normal((H, H))
    V = 0.5 * rng.standard_normal((K, H))
    b = 0.1 * rng.standard_normal(H)
    c = 0.1 * rng.standard_normal(K)
    return x, y, h0, U, W, V, b, c


@check("rnn_forward", kind="numeric", points=2)
def values(student, oracle, rng):
    """h and yhat of a 6-step sequence."""
    x, _, h0, U, W, V, b, c = random_rnn(rng)
    h, yhat = expect_sequence(student.rnn_forward(x, h0, U, W, V, b, c), 2, "the result")
    h_ref, yhat_ref = oracle.rnn_forward(x, h0, U, W, V, b, c)
    expect_close(h, h_ref, "h")
    expect_close(yhat, yhat_ref, "yhat")


@check("rnn_loss", kind="numeric", points=1)
def summed_over_time(student, oracle, rng):
    """L = sum over t of -log yhat(t)[y(t)]."""
    x, y, h0, U, W, V, b, c = random_rnn(rng)
    _, yhat = oracle.rnn_forward(x, h0, U, W, V, b, c)
    got = expect_number(student.rnn_loss(yhat, y), "L")
    expect_close(np.array(got), np.array(oracle.rnn_loss(yhat, y)), "L")


@check("rnn_backward", kind="gradient", points=2)
def dW_through_time(student, oracle, rng):
    """dL/dW over 6 time steps, against the reference."""
    x, y, h0, U, W, V, b, c = random_rnn(rng)
    h, yhat = oracle.rnn_forward(x, h0, U, W, V, b, c)
    grads = student.rnn_backward(x, y, h0, h, yhat, U, W, V, b, c)
    expected = oracle.rnn_backward(x, y, h0, h, yhat, U, W, V, b, c)
    if not isinstance(grads, dict) or "W" not in grads:
        from grader.checks import CheckFailed

        raise CheckFailed("rnn_backward should return a dict with keys U, W, V, b, c, h0",
                          ["submission.bad_return"])
    expect_close(grads["W"], expected["W"], "dW")
