"""Checks of rnn_backward (backpropagation through time).

rnn_backward is fed the reference's forward values (h, yhat), so a wrong forward pass
does not also cost the backward pass: each function earns its own credit. T = 1 has
no recurrence at all, so checking it apart from T = 6 tells a per-step mistake (the
tanh derivative, dW's pairing) from a recurrence mistake (no W^T term, no sum).
"""

from __future__ import annotations

import numpy as np

from assignments.rnn import mistakes
from assignments.rnn.cases import ARGS, forward_args, random_rnn
from assignments.rnn.registry import check
from grader.checklib import Gradients, compare_gradients, expect_floats, expect_untouched, read_gradient_dict
from grader.compare import expect_sequence
from grader.gradcheck import expect_backward_matches_forward

KEYS = ("U", "W", "V", "b", "c", "h0")
NAMES = tuple(f"d{k}" for k in KEYS)


def _inputs(oracle, p: dict) -> tuple:
    """The arguments of rnn_backward, with the reference's forward values."""
    h, yhat = oracle.rnn_forward(*forward_args(p))
    return p["x"], p["y"], p["h0"], np.array(h), np.array(yhat), p["U"], p["W"], p["V"], p["b"], p["c"]


def _gradients(value, p: dict, check_shapes: bool = True) -> Gradients:
    """The dict of gradients by their names (dU, ...): each key's a finite float array of its
    input's shape, as far as they can be read; a missing key is a defect, named once, and
    the others are still judged."""
    shapes = tuple(np.shape(p[k]) for k in KEYS) if check_shapes else None
    return read_gradient_dict(value, KEYS, NAMES, shapes, "rnn_backward")


def _against_reference(student, oracle, p: dict, tolerance, label: str) -> None:
    args = _inputs(oracle, p)
    got = _gradients(student.rnn_backward(*args), p, check_shapes=False)
    expected = oracle.rnn_backward(*args)
    models = mistakes.backward_models(*args)
    compare_gradients(got, {f"d{k}": expected[k] for k in KEYS}, {f"d{k}": models[k] for k in KEYS}, tolerance,
                      label=label)


@check("rnn_backward", kind="shape", points=3)
def keys_and_shapes(student, oracle, rng):
    """A dict with keys U, W, V, b, c, h0, each gradient shaped like its parameter."""
    p = random_rnn(rng, T=3, D=4, H=5, K=6)
    _gradients(student.rnn_backward(*_inputs(oracle, p)), p).strict()


@check("rnn_backward", kind="gradient", points=8)
def single_step(student, oracle, rng, tolerance):
    """T = 1, no recurrence: each gradient against the reference's."""
    _against_reference(student, oracle, random_rnn(rng, T=1), tolerance, "T = 1")


@check("rnn_backward", kind="gradient", points=8)
def through_time(student, oracle, rng, tolerance):
    """T = 6: gradients flow back through W from later steps and add up over time."""
    _against_reference(student, oracle, random_rnn(rng, T=6), tolerance, "T = 6")


@check("rnn_backward", kind="gradient", points=4, visibility="hidden")
def long_sequence(student, oracle, rng, tolerance):
    """T = 12 with other sizes (D = 6, H = 3, K = 5)."""
    _against_reference(student, oracle, random_rnn(rng, T=12, D=6, H=3, K=5), tolerance, "T = 12")


@check("rnn_backward", kind="gradient", points=8)
def against_own_forward(student, oracle, rng, tolerance):
    """T = 5: each gradient against directional central differences of the loss
    L = sum over t of -log yhat(t)[y(t)] of rnn_forward, four forward calls per gradient:
    the reference forward's differences decide; your own forward's are reported beside them."""
    p = random_rnn(rng, T=5)
    got = _gradients(student.rnn_backward(*_inputs(oracle, p)), p)
    grads = {k: g for k, g in zip(KEYS, got.by_name().values())}  # None where a key is missing
    rows = np.arange(len(p["y"]))

    def loss(yhat):
        yhat = expect_floats(yhat, "yhat", (len(p["y"]), p["V"].shape[0]))
        with np.errstate(divide="ignore", invalid="ignore"):  # a wrong yhat may hold 0s: L is inf, not usable
            value = -np.log(np.asarray(yhat, dtype=np.float64)[rows, p["y"]]).sum()
        # Keep the forward's precision visible: float32 differences need larger steps.
        return np.asarray(value, dtype=yhat.dtype)

    def own(q):
        _, yhat = expect_sequence(student.rnn_forward(*forward_args({**p, **q})), 2, "what rnn_forward returns")
        return loss(yhat)

    def reference(q):
        return loss(np.array(oracle.rnn_forward(*forward_args({**p, **q}))[1]))

    return expect_backward_matches_forward(own, reference, {k: p[k] for k in KEYS}, grads, None, rng, tolerance,
                                           "rnn_backward", "rnn_forward", defects=got.defects)


@check("rnn_backward", kind="behavior", points=4, name="leaves_inputs_alone")
def backward_leaves_inputs_alone(student, oracle, rng):
    """No input is modified (yhat and h included); the gradients are finite float arrays."""
    p = random_rnn(rng)
    grads = student.rnn_backward(*_inputs(oracle, p))
    expect_untouched(student, "rnn_backward", ARGS["rnn_backward"])
    _gradients(grads, p).strict()
