"""Checks of word_embedding_forward and word_embedding_backward.

The indices always repeat words (more positions than words, and one word twice in
the first sequence), since adding up the gradient of a repeated word is what the
backward pass is about.
"""

from __future__ import annotations

from assignments.seq import mistakes
from assignments.seq.cases import upstream, words
from assignments.seq.common import against_own_forward, call, leaves_inputs_alone, outputs
from assignments.seq.registry import check
from grader.checklib import Evidence, expect_floats, model_rtol

# (N, T, K, D): a batch of one, one step, one feature, more words than positions.
WORD_SHAPES = ((3, 5, 7, 4), (1, 1, 3, 2), (2, 4, 12, 1))


@check("word_embedding_forward", kind="shape", points=1, name="output_shapes")
def embedding_shapes(student, rng):
    """out (N, T, D), with a batch of one, one step, one feature."""
    for N, T, K, D in WORD_SHAPES:
        outputs(call(student, "word_embedding_forward", words(rng, N, T, K, D)), ("out",),
                "word_embedding_forward", ((N, T, D),))


@check("word_embedding_forward", kind="numeric", points=3, name="values")
def embedding_values(student, oracle, rng, tolerance):
    """out[n, t] = E[x[n, t]], for x (3, 5) over 7 words and x (2, 4) over 12."""
    evidence = Evidence(tolerance)
    for N, T, K, D in ((3, 5, 7, 4), (2, 4, 12, 3)):
        p = words(rng, N, T, K, D)
        evidence.compare(call(student, "word_embedding_forward", p), call(oracle, "word_embedding_forward", p),
                         "out", prefix=f"x {p['x'].shape}, E {p['E'].shape}")
    evidence.verdict()


@check("word_embedding_forward", kind="behavior", points=1, name="leaves_inputs_alone")
def embedding_leaves_inputs_alone(student, rng):
    """x and E are not modified; out is a finite float array of shape (N, T, D)."""
    p = words(rng)
    out = leaves_inputs_alone(student, "word_embedding_forward", p)
    outputs(out, ("out",), "word_embedding_forward", (p["x"].shape + p["E"].shape[1:],))


def _dout(rng, p):
    return upstream(rng, p["x"].shape + p["E"].shape[1:])


@check("word_embedding_backward", kind="shape", points=1, name="gradient_shapes")
def embedding_grad_shapes(student, rng):
    """dE shaped like E."""
    for N, T, K, D in WORD_SHAPES:
        p = words(rng, N, T, K, D)
        expect_floats(call(student, "word_embedding_backward", p, _dout(rng, p)), "dE", p["E"].shape)


@check("word_embedding_backward", kind="gradient", points=4, name="repeated_words")
def embedding_grad_repeated_words(student, oracle, rng, tolerance):
    """Row k of dE sums dout over every position of word k (repeated words add up; words
    that do not occur get 0), for x (3, 5) over 7 words and x (4, 6) over 5."""
    evidence = Evidence(tolerance)
    for N, T, K, D in ((3, 5, 7, 4), (4, 6, 5, 3)):
        p = words(rng, N, T, K, D)
        dout = _dout(rng, p)
        models = mistakes.embedding_backward_models(dout, p["x"], p["E"], model_rtol(tolerance))
        evidence.compare(call(student, "word_embedding_backward", p, dout),
                         call(oracle, "word_embedding_backward", p, dout), "dE", models,
                         rtol=tolerance.grad_rtol, prefix=f"x {p['x'].shape}, E {p['E'].shape}")
    evidence.verdict()


@check("word_embedding_backward", kind="gradient", points=1, name="against_own_forward")
def embedding_grad_against_own_forward(student, oracle, rng, tolerance):
    """dE against directional central differences of word_embedding_forward: the reference
    forward's differences decide; your own forward's are reported beside them."""
    p = words(rng)
    dout = _dout(rng, p)
    got = {"dE": expect_floats(call(student, "word_embedding_backward", p, dout), "dE", p["E"].shape)}
    return against_own_forward(student, oracle, rng, tolerance, "word_embedding_backward",
                               "word_embedding_forward", p, got, (dout,))


@check("word_embedding_backward", kind="behavior", points=1, name="leaves_inputs_alone")
def embedding_grad_leaves_inputs_alone(student, rng):
    """dout, x and E are not modified (dout included); dE is a finite float array shaped like E."""
    p = words(rng)
    dE = leaves_inputs_alone(student, "word_embedding_backward", p, _dout(rng, p))
    expect_floats(dE, "dE", p["E"].shape)
