"""FMAN45's own checks, beside the canonical ones: the handout passes labels as (N,)
(its starters), (1, N) and (N, 1) (its tests and its whole-network check), and the
softmax layer must take each."""

import numpy as np

from grader.checks import CheckFailed, Registry
from grader.compare import is_close

registry = Registry()

SHAPES = {"(N,)": lambda y: y, "(1, N)": lambda y: y.reshape(1, -1), "(N, 1)": lambda y: y.reshape(-1, 1)}


def _scores(rng, classes: int = 4, n: int = 5):
    return rng.standard_normal((classes, n)), rng.integers(0, classes, size=n)


@registry.check("softmaxloss_forward", kind="behavior", points=1)
def labels_in_every_shape(course, course_oracle, rng, tolerance):
    """L is the same whether labels come as (N,), (1, N) or (N, 1)."""
    x, labels = _scores(rng)
    expected = course_oracle.softmaxloss_forward(x, labels)
    for shown, shape in SHAPES.items():
        got = course.softmaxloss_forward(x, shape(labels.copy()))
        if not is_close(np.asarray(got, dtype=np.float64), np.asarray(expected), tolerance.value_rtol, tolerance.value_atol):
            raise CheckFailed(f"with labels of shape {shown}, L is {got!r}, expected {expected:.6g}")


@registry.check("softmaxloss_backward", kind="behavior", points=1)
def gradient_labels_in_every_shape(course, course_oracle, rng, tolerance):
    """dldx is the same whether labels come as (N,), (1, N) or (N, 1), and the labels are
    left as they were."""
    x, labels = _scores(rng)
    expected = course_oracle.softmaxloss_backward(x, labels)
    for shown, shape in SHAPES.items():
        given = shape(labels.copy())
        got = np.asarray(course.softmaxloss_backward(x, given), dtype=np.float64)
        if got.shape != expected.shape or not is_close(got, expected, tolerance.grad_rtol, tolerance.value_atol):
            raise CheckFailed(f"with labels of shape {shown}, dldx differs from the expected gradient")


@registry.check("fully_connected_forward", kind="numeric", points=1)
def inputs_of_any_rank(course, course_oracle, rng, tolerance):
    """X (3, 2, 4, N): flattened column-major (order='F') to (24, N) before W acts on it."""
    X, W, b = rng.standard_normal((3, 2, 4, 5)), rng.standard_normal((6, 24)), rng.standard_normal((6, 1))
    expected = course_oracle.fully_connected_forward(X, W, b)
    got = np.asarray(course.fully_connected_forward(X, W, b), dtype=np.float64)
    if got.shape != expected.shape or not is_close(got, expected, tolerance.value_rtol, tolerance.value_atol):
        raise CheckFailed("for X of shape (3, 2, 4, 5), Z differs: flatten X column-major, "
                          "np.reshape(X, (features, N), order='F')")


@registry.check("fully_connected_backward", kind="gradient", points=1)
def gradient_of_any_rank(course, course_oracle, rng, tolerance):
    """X (3, 2, 4, N): dldX has X's shape again (reshaped back column-major), dldW (out, 24)."""
    X, W, b = rng.standard_normal((3, 2, 4, 5)), rng.standard_normal((6, 24)), rng.standard_normal((6, 1))
    dldZ = rng.standard_normal((6, 5))
    expected = course_oracle.fully_connected_backward(X, dldZ, W, b)
    got = course.fully_connected_backward(X, dldZ, W, b)
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        raise CheckFailed("fully_connected_backward should return (dldX, dldW, dldb)")
    for name, g, e in zip(("dldX", "dldW", "dldb"), got, expected):
        g = np.asarray(g, dtype=np.float64)
        if g.shape != e.shape or not is_close(g, e, tolerance.grad_rtol, tolerance.value_atol):
            raise CheckFailed(f"for X of shape (3, 2, 4, 5), {name} {'has shape ' + str(g.shape) if g.shape != e.shape else 'differs'}, "
                              f"expected shape {e.shape}")
