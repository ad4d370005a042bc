"""Inputs of the rnn checks. Every random input comes from the check's seeded
generator (the `rng` fixture): at grading seeded by the run's secret seed (every
student of a run sees the same numbers, no run's numbers can be known ahead), in the
student kit by the check's id alone."""

from __future__ import annotations

import numpy as np

# Contract argument names, to name a mutated argument by position.
ARGS = {
    "rnn_forward": ("x", "h0", "U", "W", "V", "b", "c"),
    "rnn_loss": ("yhat", "y"),
    "rnn_backward": ("x", "y", "h0", "h", "yhat", "U", "W", "V", "b", "c"),
    "rnn_sample": ("h0", "x0", "n", "U", "W", "V", "b", "c", "rng"),
    "birnn_forward": ("x", "h0", "g0", "Uf", "Wf", "bf", "Ub", "Wb", "bb", "V", "c"),
}


def random_rnn(rng: np.random.Generator, T: int = 6, D: int = 4, H: int = 5, K: int = 3) -> dict:
    """x (T, D), y (T,), h0 (H,), U (H, D), W (H, H), V (K, H), b (H,), c (K,): sizes all
    different, so that a transposed matrix cannot go unnoticed; weights large enough for
    the recurrence to matter, small enough for tanh not to saturate."""
    return {
        "x": rng.standard_normal((T, D)),
        "y": rng.integers(0, K, size=T),
        "h0": 0.5 * rng.standard_normal(H),
        "U": 0.5 * rng.standard_normal((H, D)),
        "W": 0.6 * rng.standard_normal((H, H)),
        "V": 0.8 * rng.standard_normal((K, H)),
        "b": 0.3 * rng.standard_normal(H),
        "c": 0.3 * rng.standard_normal(K),
    }


def forward_args(p: dict) -> tuple:
    return p["x"], p["h0"], p["U"], p["W"], p["V"], p["b"], p["c"]


def random_birnn(rng: np.random.Generator, T: int = 5, D: int = 3, Hf: int = 4, Hb: int = 2, K: int = 3) -> tuple:
    """x, h0, g0, Uf, Wf, bf, Ub, Wb, bb, V, c with different sizes per recurrence."""
    return (rng.standard_normal((T, D)), 0.5 * rng.standard_normal(Hf), 0.5 * rng.standard_normal(Hb),
            0.5 * rng.standard_normal((Hf, D)), 0.6 * rng.standard_normal((Hf, Hf)), 0.3 * rng.standard_normal(Hf),
            0.5 * rng.standard_normal((Hb, D)), 0.6 * rng.standard_normal((Hb, Hb)), 0.3 * rng.standard_normal(Hb),
            0.8 * rng.standard_normal((K, Hf + Hb)), 0.3 * rng.standard_normal(K))
