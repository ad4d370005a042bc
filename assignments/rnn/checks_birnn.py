"""Checks of birnn_forward: h runs forward from h0, g backward from g0."""

from __future__ import annotations

from assignments.rnn import mistakes
from assignments.rnn.cases import ARGS, random_birnn
from assignments.rnn.registry import check
from grader.checklib import Evidence, expect_floats, expect_untouched
from grader.compare import expect_sequence


def _birnn(student, args):
    return expect_sequence(student.birnn_forward(*args), 3, "what birnn_forward returns")


@check("birnn_forward", kind="shape", points=3, name="output_shapes")
def birnn_shapes(student, rng):
    """h (T, H_f), g (T, H_b) and yhat (T, K), with H_f != H_b."""
    args = random_birnn(rng, T=4, D=3, Hf=4, Hb=2, K=5)
    h, g, yhat = _birnn(student, args)
    for name, value, shape in (("h", h, (4, 4)), ("g", g, (4, 2)), ("yhat", yhat, (4, 5))):
        expect_floats(value, name, shape)


@check("birnn_forward", kind="numeric", points=9, name="values")
def birnn_values(student, oracle, rng, tolerance):
    """h runs forward from h0, g backward from g0 (g(T) first computed, stored at row T-1),
    and yhat(t) = softmax(c + V [h(t); g(t)])."""
    args = random_birnn(rng)
    h, g, yhat = _birnn(student, args)
    h_ref, g_ref, yhat_ref = oracle.birnn_forward(*args)
    models = mistakes.birnn_models(*args, g=g_ref)
    evidence = Evidence(tolerance)
    evidence.compare(h, h_ref, "h", partial=True)
    evidence.compare(g, g_ref, "g", models["g"], partial=True)
    evidence.compare(yhat, yhat_ref, "yhat", models["yhat"], partial=True)
    evidence.verdict()


@check("birnn_forward", kind="behavior", points=3, name="leaves_inputs_alone")
def birnn_leaves_inputs_alone(student, rng):
    """No input is modified; h, g and yhat are finite float arrays of the right shapes."""
    args = random_birnn(rng)
    h, g, yhat = _birnn(student, args)
    expect_untouched(student, "birnn_forward", ARGS["birnn_forward"])
    T = args[0].shape[0]
    for name, value, size in (("h", h, args[1].size), ("g", g, args[2].size), ("yhat", yhat, args[-1].size)):
        expect_floats(value, name, (T, size))
