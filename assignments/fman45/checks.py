"""FMAN45's own checks, beside the canonical ones: the handout passes labels as (N,)
(its starters), (1, N) and (N, 1) (its tests and its whole-network check), and the
softmax layer must take each."""

import numpy as np

from grader.checks import CheckFailed, Registry

registry = Registry()

SHAPES = {"(N,)": lambda y: y, "(1, N)": lambda y: y.reshape(1, -1), "(N, 1)": lambda y: y.reshape(-1, 1)}


def _scores(rng, classes: int = 4, n: int = 5):
    return rng.standard_normal((classes, n)), rng.integers(0, classes, size=n)


@registry.check("softmaxloss_forward", kind="behavior", points=1)
def labels_in_every_shape(course, course_oracle, rng):
    """L is the same whether labels come as (N,), (1, N) or (N, 1)."""
    x, labels = _scores(rng)
    expected = course_oracle.softmaxloss_forward(x, labels)
    for shown, shape in SHAPES.items():
        got = course.softmaxloss_forward(x, shape(labels.copy()))
        if not np.isclose(np.asarray(got, dtype=np.float64), expected, rtol=1e-5):
            raise CheckFailed(f"with labels of shape {shown}, L is {got!r}, expected {expected:.6g}")


@registry.check("softmaxloss_backward", kind="behavior", points=1)
def gradient_labels_in_every_shape(course, course_oracle, rng):
    """dldx is the same whether labels come as (N,), (1, N) or (N, 1), and the labels are
    left as they were."""
    x, labels = _scores(rng)
    expected = course_oracle.softmaxloss_backward(x, labels)
    for shown, shape in SHAPES.items():
        given = shape(labels.copy())
        got = np.asarray(course.softmaxloss_backward(x, given), dtype=np.float64)
        if got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-5, atol=1e-8):
            raise CheckFailed(f"with labels of shape {shown}, dldx differs from the expected gradient")
