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
from assignments.seq.common import read_gradients
from assignments.seq.registry import check
from grader.checklib import joined
from grader.checks import CheckFailed
from grader.compare import relative_error
from grader.layerchain import BackwardStep, forward_step


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


def _reference(oracle, cell: str, x, y, mask, params) -> tuple[dict, np.ndarray, dict, dict]:
    """The reference's model: each layer's output forward and backward, dL/dh from the
    output layer and the loss, and every parameter's gradient."""
    p, E, h0, V, c = params[cell], params["E"], params["h0"], params["V"], params["c"]
    emb = oracle.word_embedding_forward(x, E)                                 # (N, T, D)
    h = getattr(oracle, f"{cell}_forward")(emb, h0, p["U"], p["W"], p["b"])    # (N, T, H)
    o = oracle.temporal_affine_forward(h, V, c)                                # (N, T, K)
    _, do = oracle.temporal_softmax_loss(o, y, mask)
    dh, _, _ = oracle.temporal_affine_backward(do, h, V, c)
    dx, dh0, dU, dW, db = getattr(oracle, f"{cell}_backward")(dh, emb, h0, p["U"], p["W"], p["b"])
    dE = oracle.word_embedding_backward(dx, x, E)
    grads = {"dE": dE, "dh0": dh0, "dU": dU, "dW": dW, "db": db}
    return {"word_embedding_forward": emb, f"{cell}_forward": h}, dh, grads, \
        {f"{cell}_backward": dx, "word_embedding_backward": dE}


def _student(student, cell: str, x, dh, params, forward, backward) -> dict:
    """The same model from the student's layers, each fed what the one before it returned
    once `forward` or `backward` (grader/layerchain.py) has looked at it; dL/dh comes from
    the (reference's) output layer and loss."""
    p, E, h0 = params[cell], params["E"], params["h0"]
    emb = forward("word_embedding_forward", student.word_embedding_forward(x, E))
    forward(f"{cell}_forward", getattr(student, f"{cell}_forward")(emb, h0, p["U"], p["W"], p["b"]))
    read = read_gradients(getattr(student, f"{cell}_backward")(dh, emb, h0, p["U"], p["W"], p["b"]),
                          SEQUENCE_GRADS, None, f"{cell}_backward")
    if read.defects:
        raise joined(read.defects, f"{backward.what} goes wrong at {cell}_backward: ")
    got = read.parts
    dx = backward(f"{cell}_backward", got["dx"])
    dE = backward("word_embedding_backward", student.word_embedding_backward(dx, x, E))
    return {"dE": dE, "dh0": got["dh0"], "dU": got["dU"], "dW": got["dW"], "db": got["db"], "dx": dx}


@check("network", kind="gradient", points=0)
def captioning_end_to_end(student, oracle, rng, tolerance):
    """CS231n's captioning model from your layers: word embedding, the RNN (then the LSTM),
    the output layer and the masked loss over time (the reference's: course code), and the
    gradients of every parameter end to end against the reference's. 0 points: each
    layer earns its credit in its own checks. Each layer's output is looked at before the
    next layer takes it, so a failure names the layer whose output first went wrong."""
    x, y, mask, params = _inputs(rng)
    errors = {}
    for cell in ("rnn", "lstm"):
        expected, dh, ref_grads, ref_steps = _reference(oracle, cell, x, y, mask, params)
        with_cell = f"with the {cell.upper()}, the model's"
        try:
            grads = _student(student, cell, x, dh, params,
                             forward_step(expected, tolerance, f"{with_cell} forward pass"),
                             BackwardStep(ref_steps, f"{with_cell} backward pass"))
        except (ValueError, TypeError, IndexError) as exc:  # a layer's output does not fit the next layer
            raise CheckFailed(f"with the {cell.upper()}, the layers do not fit together: "
                              f"{type(exc).__name__}: {exc}") from None
        mine = {k: _error(grads[k], ref_grads[k]) for k in ref_grads}
        if max(mine.values()) > tolerance.grad_rtol:
            # dE is word_embedding_backward's from the recurrence's dx: where the recurrence's
            # gradients are all right, the difference is the embedding's.
            own = [_error(grads["dx"], ref_steps[f"{cell}_backward"])] + [mine[k] for k in ref_grads if k != "dE"]
            layer = f"{cell}_backward" if max(own) > tolerance.grad_rtol else "word_embedding_backward"
            summary = ", ".join(f"{k}: {e:.2g}" for k, e in mine.items())
            raise CheckFailed(f"with the {cell.upper()}, the model's gradients differ from the reference's "
                              f"(relative errors {summary}); the first difference is in what {layer} returns",
                              [], {"relative_errors": mine})
        errors.update({f"{cell}: {k}": e for k, e in mine.items()})
    return {"relative_errors": errors}


def _error(got, expected) -> float:
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return float("inf")
    return float(relative_error(got, expected)) if got.shape == np.shape(expected) else float("inf")
