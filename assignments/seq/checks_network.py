"""A check across layers: CS231n's captioning model over time, assembled from the
student's word embedding and recurrences with the reference's output layer and loss
(temporal_affine_*, temporal_softmax_loss: course code in CS231n, which students do
not write). The output layer and the loss are applied to the reference's hidden
states: they hand the student's backward its upstream dL/dh.

It scores 0 points: each function earns its credit in its own checks, and a mistake
in one layer must not cost the others. It tells a student whether the layers fit
together (shapes, gradients end to end) and names the first layer where the model
parts from the reference's.
"""

from __future__ import annotations

import numpy as np

from assignments.seq.cases import SEQUENCE_GRADS
from assignments.seq.common import gradients
from assignments.seq.registry import check
from grader.checklib import fits
from grader.checks import CheckFailed
from grader.compare import relative_error


def _inputs(rng, N=2, T=5, K=6, D=4, H=3):
    """Captions x (N, T) over K words, targets y (the next words), a mask dropping the
    last two steps of the second caption, and the parameters of both recurrences."""
    x = rng.integers(0, K, size=(N, T))
    y = rng.integers(0, K, size=(N, T))
    mask = np.ones((N, T), dtype=bool)
    mask[1, -2:] = False
    params = {"E": rng.standard_normal((K, D)), "h0": 0.5 * rng.standard_normal((N, H)),
              "V": 0.5 * rng.standard_normal((K, H)), "c": 0.1 * rng.standard_normal(K)}
    for cell, gates in (("rnn", 1), ("lstm", 4)):
        params[cell] = {"U": 0.5 * rng.standard_normal((gates * H, D)), "W": 0.6 * rng.standard_normal((gates * H, H)),
                        "b": 0.3 * rng.standard_normal(gates * H)}
    return x, y, mask, params


def _reference(oracle, cell: str, x, y, mask, params) -> tuple[dict, np.ndarray, dict]:
    """The reference's model: each layer's output, dL/dh from the output layer and the
    loss, and every parameter's gradient."""
    p, E, h0, V, c = params[cell], params["E"], params["h0"], params["V"], params["c"]
    emb = oracle.word_embedding_forward(x, E)                                 # (N, T, D)
    h = getattr(oracle, f"{cell}_forward")(emb, h0, p["U"], p["W"], p["b"])    # (N, T, H)
    o = oracle.temporal_affine_forward(h, V, c)                                # (N, T, K)
    _, do = oracle.temporal_softmax_loss(o, y, mask)
    dh, _, _ = oracle.temporal_affine_backward(do, h, V, c)
    dx, dh0, dU, dW, db = getattr(oracle, f"{cell}_backward")(dh, emb, h0, p["U"], p["W"], p["b"])
    grads = {"dE": oracle.word_embedding_backward(dx, x, E), "dh0": dh0, "dU": dU, "dW": dW, "db": db}
    return {"word_embedding_forward": emb, f"{cell}_forward": h}, dh, grads


def _student(student, cell: str, x, dh, params) -> tuple[dict, dict]:
    """The same model from the student's layers, each fed what the one before it returned;
    dL/dh comes from the (reference's) output layer and loss."""
    p, E, h0 = params[cell], params["E"], params["h0"]
    emb = student.word_embedding_forward(x, E)
    h = getattr(student, f"{cell}_forward")(emb, h0, p["U"], p["W"], p["b"])
    got = gradients(getattr(student, f"{cell}_backward")(dh, emb, h0, p["U"], p["W"], p["b"]), SEQUENCE_GRADS,
                    None, f"{cell}_backward")
    grads = {"dE": student.word_embedding_backward(got["dx"], x, E), "dh0": got["dh0"], "dU": got["dU"],
             "dW": got["dW"], "db": got["db"]}
    return {"word_embedding_forward": emb, f"{cell}_forward": h}, grads


@check("network", kind="gradient", points=0)
def captioning_end_to_end(student, oracle, rng, tolerance):
    """CS231n's captioning model from your layers: word embedding, the RNN (then the LSTM),
    the output layer and the masked loss over time (the reference's: course code), and the
    gradients of every parameter end to end against the reference's. 0 points: each
    layer earns its credit in its own checks."""
    x, y, mask, params = _inputs(rng)
    errors = {}
    for cell in ("rnn", "lstm"):
        expected, dh, ref_grads = _reference(oracle, cell, x, y, mask, params)
        try:
            values, grads = _student(student, cell, x, dh, params)
        except (ValueError, TypeError, IndexError) as exc:  # a layer's output does not fit the next layer
            raise CheckFailed(f"with the {cell.upper()}, the layers do not fit together: "
                              f"{type(exc).__name__}: {exc}") from None
        for layer, value in expected.items():
            if not fits(values[layer], value, tolerance.value_rtol):
                raise CheckFailed(f"with the {cell.upper()}, the model's forward pass parts from the "
                                  f"reference's at {layer}")
        mine = {k: _error(grads[k], ref_grads[k]) for k in ref_grads}
        if max(mine.values()) > tolerance.grad_rtol:
            summary = ", ".join(f"{k}: {e:.2g}" for k, e in mine.items())
            raise CheckFailed(f"with the {cell.upper()}, the model's gradients differ from the reference's "
                              f"(relative errors {summary})", [], {"relative_errors": mine})
        errors.update({f"{cell}: {k}": e for k, e in mine.items()})
    return {"relative_errors": errors}


def _error(got, expected) -> float:
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return float("inf")
    return float(relative_error(got, expected)) if got.shape == np.shape(expected) else float("inf")
