"""Checks of softmax_cross_entropy: the mean cross-entropy over the batch and its gradient."""

from __future__ import annotations

import numpy as np

from assignments.cnn import mistakes
from assignments.cnn.cases import ARGS
from assignments.cnn.registry import check
from grader.checklib import Evidence, expect_floats, expect_untouched
from grader.checks import CheckFailed
from grader.compare import expect_number, expect_sequence
from grader.gradcheck import expect_backward_matches_forward


def _scores(rng, n: int = 5, k: int = 4):
    return rng.standard_normal((n, k)) * 2.0, rng.integers(0, k, size=n)


def _loss_and_grad(value):
    loss, dz = expect_sequence(value, 2, "what softmax_cross_entropy returns")
    return loss, dz


@check("softmax_cross_entropy", kind="shape", points=1, name="output_shapes")
def softmax_shapes(student, rng):
    """A number and dz (N, K), with one example, two classes, more classes than examples."""
    for n, k in ((1, 2), (6, 3), (2, 7)):
        z, labels = _scores(rng, n, k)
        loss, dz = _loss_and_grad(student.softmax_cross_entropy(z, labels))
        expect_number(loss, "loss")
        expect_floats(dz, "dz", (n, k))


def _against_reference(loss, dz, z, labels, oracle, tolerance, more_loss_models: dict | None = None) -> None:
    """The student's loss and dz against the reference's, naming the mistake models they match."""
    ref_loss, ref_dz = oracle.softmax_cross_entropy(z, labels)
    loss_models, dz_models = mistakes.softmax_models(ref_loss, ref_dz, z, labels)
    loss_models.update(more_loss_models or {})
    evidence = Evidence(tolerance)
    evidence.compare(np.asarray(expect_number(loss, "loss")), np.asarray(ref_loss), "loss", loss_models, partial=True)
    evidence.compare(dz, ref_dz, "dz", dz_models, rtol=tolerance.grad_rtol, partial=True)
    evidence.verdict()


@check("softmax_cross_entropy", kind="numeric", points=3, name="values")
def softmax_values(student, oracle, rng, tolerance):
    """The mean over the batch of -log softmax(z)[label], and its gradient (softmax - onehot) / N."""
    z, labels = _scores(rng)
    loss, dz = _loss_and_grad(student.softmax_cross_entropy(z, labels))
    _against_reference(loss, dz, z, labels, oracle, tolerance)


@check("softmax_cross_entropy", kind="numeric", points=1)
def confidently_wrong(student, oracle, rng, tolerance):
    """Confident wrong predictions: in every row a wrong class leads the label's score by
    about 20.4, so that the label's probability is 1e-9 to 2e-9. The loss, about 20.4, stays
    exact: an epsilon inside the log (-log(p + 1e-7)) or probabilities clipped are not."""
    z, labels = _confidently_wrong(rng)
    loss, dz = _loss_and_grad(student.softmax_cross_entropy(z, labels))
    _against_reference(loss, dz, z, labels, oracle, tolerance,
                       {mistakes.EPSILON: mistakes.epsilon_losses(z, labels)})


def _confidently_wrong(rng, n: int = 6, k: int = 5):
    """Each row: one wrong class near 4, the label's score 20.03 to 20.69 below it (its
    probability 1e-9 to 2e-9, where -log(p + 1e-12) is still right to 1e-4 and
    -log(p + 1e-10) no longer is), the other classes about 12 below the leader. Multiples
    of 1/64: exact in float32 too; far from exp()'s overflow."""
    labels = rng.integers(0, k, size=n)
    rows = np.arange(n)
    leader = (labels + 1 + rng.integers(0, k - 1, size=n)) % k
    top = 4.0 + rng.integers(0, 65, size=n) / 64
    z = top[:, None] - 12.0 + np.round(rng.standard_normal((n, k)) * 32) / 64
    z[rows, leader] = top
    z[rows, labels] = top - 20.0 - rng.integers(2, 45, size=n) / 64
    return z, labels


@check("softmax_cross_entropy", kind="behavior", points=3)
def large_scores(student, oracle, rng, tolerance):
    """Scores around 1000 (exact in float32 too), then scores 900 apart within a row, the
    label's among the largest: the loss and dz stay finite and right."""
    z, labels = _scores(rng)
    z = 1000.0 + np.round(z * 64) / 64
    wide, wide_labels = _far_apart(rng)
    # Whether each mistake overflows on these inputs, asked up front: the models' answers
    # depend on the inputs only, so a student kit has them recorded whatever the student returns.
    naive_overflows = not all(map(_all_finite, mistakes.naive_softmax_cross_entropy(z, labels)))
    min_shift_overflows = not all(map(_all_finite, mistakes.min_shift_softmax_cross_entropy(wide, wide_labels)))
    loss, dz = _loss_and_grad(student.softmax_cross_entropy(z, labels))
    if not (_all_finite(loss) and _all_finite(dz)):
        explained = naive_overflows
        raise CheckFailed(f"for scores around 1000 the result holds NaN or inf (loss {loss!r})",
                          [mistakes.UNSTABLE] if explained else ["submission.bad_return"])
    _against_reference(loss, dz, z, labels, oracle, tolerance)
    labels = wide_labels
    loss, dz = _loss_and_grad(student.softmax_cross_entropy(wide, labels))
    if not (_all_finite(loss) and _all_finite(dz)):
        explained = min_shift_overflows
        raise CheckFailed(f"for scores 900 apart within a row the result holds NaN or inf (loss {loss!r})",
                          [mistakes.MIN_SHIFT] if explained else ["submission.bad_return"])
    _against_reference(loss, dz, wide, labels, oracle, tolerance)


def _far_apart(rng, n: int = 5, k: int = 4):
    """Each row: the label's score near 0, one other class near 0, the rest near -900.
    The label's probability stays near 1/2, so -log p needs no care; only a shift by the
    row's minimum overflows (exp(900))."""
    labels = rng.integers(0, k, size=n)
    z = -900.0 + np.round(rng.standard_normal((n, k)) * 64) / 64
    rows = np.arange(n)
    z[rows, labels] = np.round(rng.standard_normal(n) * 64) / 64
    other = (labels + 1 + rng.integers(0, k - 1, size=n)) % k
    z[rows, other] = np.round(rng.standard_normal(n) * 64) / 64
    return z, labels


def _all_finite(value) -> bool:
    try:
        return bool(np.all(np.isfinite(np.asarray(value, dtype=np.float64))))
    except (TypeError, ValueError):
        return True  # not numbers at all: the comparison will say so


@check("softmax_cross_entropy", kind="gradient", points=1)
def against_own_loss(student, oracle, rng, tolerance):
    """dz against directional central differences of the loss: the reference's differences
    decide; those of your own loss are reported beside them."""
    z, labels = _scores(rng)
    _, dz = _loss_and_grad(student.softmax_cross_entropy(z, labels))
    dz = expect_floats(dz, "dz")

    def own(p):
        loss, _ = _loss_and_grad(student.softmax_cross_entropy(p["z"], labels))
        return loss if isinstance(loss, np.generic) else expect_number(loss, "loss")

    return expect_backward_matches_forward(own, lambda p: oracle.softmax_cross_entropy(p["z"], labels)[0],
                                           {"z": z}, {"z": dz}, None, rng, tolerance, "softmax_cross_entropy",
                                           "loss")


@check("softmax_cross_entropy", kind="behavior", points=1, name="leaves_inputs_alone")
def softmax_leaves_inputs_alone(student, rng):
    """z and labels are not modified; the loss is a number and dz a finite float array."""
    z, labels = _scores(rng)
    loss, dz = _loss_and_grad(student.softmax_cross_entropy(z, labels))
    expect_untouched(student, "softmax_cross_entropy", ARGS["softmax_cross_entropy"])
    expect_number(loss, "loss")
    expect_floats(dz, "dz", z.shape)
