"""Inputs of the seq checks. Every random input comes from the check's seeded
generator (the `rng` fixture): at grading seeded by the run's secret seed (every
student of a run sees the same numbers, no run's numbers can be known ahead), in the
student kit by the check's id alone.

Sizes differ from each other (N, T, D, H and 4H all distinct), so that a transposed
matrix or a batch taken for time cannot go unnoticed; weights are large enough for
the recurrence to matter and small enough for tanh and the sigmoids not to saturate.
"""

from __future__ import annotations

import numpy as np

# Contract argument names (reference/sequence.py), to name a mutated argument by position.
ARGS = {
    "rnn_step_forward": ("x", "h_prev", "U", "W", "b"),
    "rnn_step_backward": ("dh", "x", "h_prev", "U", "W", "b"),
    "rnn_forward": ("x", "h0", "U", "W", "b"),
    "rnn_backward": ("dh", "x", "h0", "U", "W", "b"),
    "word_embedding_forward": ("x", "E"),
    "word_embedding_backward": ("dout", "x", "E"),
    "lstm_step_forward": ("x", "h_prev", "c_prev", "U", "W", "b"),
    "lstm_step_backward": ("dh", "dc", "x", "h_prev", "c_prev", "U", "W", "b"),
    "lstm_forward": ("x", "h0", "U", "W", "b"),
    "lstm_backward": ("dh", "x", "h0", "U", "W", "b"),
}

# What each backward returns, in order: the gradients of the forward's float inputs.
STEP_GRADS = ("dx", "dh_prev", "dU", "dW", "db")
SEQUENCE_GRADS = ("dx", "dh0", "dU", "dW", "db")
LSTM_STEP_GRADS = ("dx", "dh_prev", "dc_prev", "dU", "dW", "db")


def _weights(rng: np.random.Generator, D: int, H: int, gates: int) -> dict:
    """U (gates*H, D), W (gates*H, H), b (gates*H,)."""
    return {"U": 0.5 * rng.standard_normal((gates * H, D)),
            "W": 0.6 * rng.standard_normal((gates * H, H)),
            "b": 0.3 * rng.standard_normal(gates * H)}


def step(rng: np.random.Generator, N: int = 3, D: int = 5, H: int = 4, gates: int = 1) -> dict:
    """One step's inputs: x (N, D), h_prev (N, H), U, W, b (and c_prev (N, H) for the LSTM,
    gates = 4), in the order of the contract's arguments."""
    p = {"x": rng.standard_normal((N, D)), "h_prev": 0.5 * rng.standard_normal((N, H))}
    if gates == 4:
        p["c_prev"] = rng.standard_normal((N, H))
    return p | _weights(rng, D, H, gates)


def sequence(rng: np.random.Generator, N: int = 2, T: int = 6, D: int = 5, H: int = 3, gates: int = 1) -> dict:
    """A recurrence's inputs: x (N, T, D), h0 (N, H), U, W, b, in the contract's order."""
    return {"x": rng.standard_normal((N, T, D)), "h0": 0.5 * rng.standard_normal((N, H))} | _weights(rng, D, H, gates)


def upstream(rng: np.random.Generator, shape) -> np.ndarray:
    """An upstream gradient (dL/dh of every step, say)."""
    return rng.standard_normal(shape)


def words(rng: np.random.Generator, N: int = 3, T: int = 5, K: int = 7, D: int = 4) -> dict:
    """x (N, T) word indices with repeats (more positions than words, and word 1 at two
    positions of the first sequence whatever the draw), E (K, D)."""
    x = rng.integers(0, K, size=(N, T))
    x[0, :2] = 1
    return {"x": x, "E": rng.standard_normal((K, D))}
