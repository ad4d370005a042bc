"""Checks across layers: each layer's output is looked at before the next layer takes it,
so that a failure names the function whose output first went wrong, not a later one
that choked on it (a relu_backward handed the None of a maxpool_backward stub).

    ref_loss, ref_values = network_loss(oracle, ...)
    loss, values = network_loss(student, ..., step=forward_step(ref_values, tolerance, "the network's forward pass"))

A forward layer's output must be the reference's (its inputs were, or an earlier step
would have stopped); a backward layer's need only be an array of the reference's shape,
finite, since harmless differences (the split of a gradient among tied maxima) can pass
from layer to layer: which layer's values first differ is asked only when the end result
is wrong.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from grader.checklib import fits
from grader.checks import CheckFailed
from grader.compare import relative_error

Step = Callable[[str, object], object]


def _what(value, expected: np.ndarray) -> str | None:
    """What is wrong with the form of `value` (None: an array of `expected`'s shape, finite)."""
    if value is None:
        return "None"
    if not isinstance(value, np.ndarray):
        return f"a {type(value).__name__}"
    if value.shape != np.shape(expected):
        return f"an array of shape {value.shape}"
    if value.dtype.kind not in "biuf":
        return f"an array of dtype {value.dtype}"
    if not np.all(np.isfinite(value)):
        return "an array holding NaN or inf"
    return None


def forward_step(expected: dict, tolerance, what: str) -> Step:
    """A step that stops at the first layer whose output is not the reference's (`expected`
    by layer), saying how it differs."""
    def step(layer: str, value):
        want = expected[layer]
        if fits(value, want, tolerance.value_rtol, tolerance.value_atol):
            return value
        form = _what(value, want)
        how = (f"it returned {form}, expected an array of shape {np.shape(want)}" if form else
               f"its values differ (relative error {relative_error(value, want):.2g})")
        raise CheckFailed(f"{what} parts from the reference's at {layer}: {how}", [], {"layer": layer})
    return step


class BackwardStep:
    """A step that stops at the first layer whose output is not an array of the reference's
    shape (`expected` by layer), finite: the next layer could not take it. `what` names
    the pass in its messages ("the network's backward pass")."""

    def __init__(self, expected: dict, what: str):
        self.expected, self.what = expected, what

    def __call__(self, layer: str, value):
        form = _what(value, self.expected[layer])
        if form is None:
            return value
        raise CheckFailed(f"{self.what} goes wrong at {layer}: it returned {form}, expected an array of shape "
                          f"{np.shape(self.expected[layer])}", [], {"layer": layer})
