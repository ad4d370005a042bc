"""Checks of rnn_forward and rnn_loss."""

from __future__ import annotations

import numpy as np

from assignments.rnn import mistakes
from assignments.rnn.cases import ARGS, forward_args, random_rnn
from assignments.rnn.registry import check
from grader.checklib import Evidence, expect_floats, expect_untouched
from grader.compare import expect_number, expect_sequence


# ------------------------------------------------------------------ rnn_forward
def _forward(student, p: dict):
    return expect_sequence(student.rnn_forward(*forward_args(p)), 2, "what rnn_forward returns")


def _forward_values(student, oracle, p: dict, tolerance) -> None:
    h, yhat = _forward(student, p)
    h_ref, yhat_ref = oracle.rnn_forward(*forward_args(p))
    evidence = Evidence(tolerance)
    evidence.compare(h, h_ref, "h")
    evidence.compare(yhat, yhat_ref, "yhat")
    evidence.verdict()


@check("rnn_forward", kind="shape", points=3)
def output_shapes(student, rng):
    """h (T, H) and yhat (T, K), with T, D, H and K all different, and with T = 1."""
    for T in (3, 1):
        p = random_rnn(rng, T=T, D=4, H=5, K=6)
        h, yhat = _forward(student, p)
        expect_floats(h, "h", (T, 5))
        expect_floats(yhat, "yhat", (T, 6))


@check("rnn_forward", kind="numeric", points=5)
def one_step(student, oracle, rng, tolerance):
    """T = 1: h(1) = tanh(b + W h0 + U x(1)) and yhat(1) = softmax(c + V h(1))."""
    _forward_values(student, oracle, random_rnn(rng, T=1), tolerance)


@check("rnn_forward", kind="numeric", points=5)
def sequence(student, oracle, rng, tolerance):
    """T = 7: every h(t) carries h(t-1) forward, and every yhat(t) is a distribution."""
    _forward_values(student, oracle, random_rnn(rng, T=7), tolerance)


@check("rnn_forward", kind="numeric", points=3, visibility="hidden")
def long_sequence(student, oracle, rng, tolerance):
    """T = 15 with other sizes (D = 6, H = 3, K = 5)."""
    _forward_values(student, oracle, random_rnn(rng, T=15, D=6, H=3, K=5), tolerance)


@check("rnn_forward", kind="behavior", points=4, name="leaves_inputs_alone")
def forward_leaves_inputs_alone(student, rng):
    """x, h0 and the parameters are not modified; h and yhat are finite float arrays of the right shapes."""
    p = random_rnn(rng)
    h, yhat = _forward(student, p)
    expect_untouched(student, "rnn_forward", ARGS["rnn_forward"])
    expect_floats(h, "h", (len(p["x"]), len(p["h0"])))
    expect_floats(yhat, "yhat", (len(p["x"]), len(p["c"])))


# ------------------------------------------------------------------ rnn_loss
def _loss(student, yhat, y) -> float:
    return expect_number(student.rnn_loss(yhat, y), "L")


def _loss_value(student, oracle, yhat, y, tolerance, what: str) -> None:
    got = _loss(student, yhat, y)
    expected = oracle.rnn_loss(yhat, y)
    evidence = Evidence(tolerance)
    evidence.compare(np.asarray(got), np.asarray(expected), "L",
                     {mistakes.LOSS_AVERAGED: [np.asarray(expected / len(y))] if len(y) > 1 else []},
                     prefix=what)
    evidence.verdict()


@check("rnn_loss", kind="numeric", points=6)
def summed_over_time(student, oracle, rng, tolerance):
    """L = sum over t of -log yhat(t)[y(t)] over 6 time steps."""
    p = random_rnn(rng)
    _, yhat = oracle.rnn_forward(*forward_args(p))
    _loss_value(student, oracle, np.array(yhat), p["y"], tolerance, "6 time steps")


@check("rnn_loss", kind="numeric", points=2)
def uniform_predictions(student, oracle, rng, tolerance, fresh_inputs):
    """yhat(t) uniform over K symbols at each of T steps: L = T log K, whatever the labels.
    T = 5 and K = 4 in the kit; when graded, T (3..8), K (2..6) and the labels are seeded."""
    T, K, y = 5, 4, np.array([0, 3, 1, 2, 0])
    if fresh_inputs:
        T, K = int(rng.integers(3, 9)), int(rng.integers(2, 7))
        y = rng.integers(0, K, size=T)
    _loss_value(student, oracle, np.full((T, K), 1.0 / K), y, tolerance, f"uniform yhat, T = {T}, K = {K}")


@check("rnn_loss", kind="behavior", points=2, name="leaves_inputs_alone")
def loss_leaves_inputs_alone(student, rng):
    """yhat and y are not modified; L is a number."""
    p = random_rnn(rng)
    yhat = np.exp(p["x"][:, :3]) / np.exp(p["x"][:, :3]).sum(axis=1, keepdims=True)
    L = student.rnn_loss(yhat, p["y"])
    expect_untouched(student, "rnn_loss", ARGS["rnn_loss"])
    expect_number(L, "L")
