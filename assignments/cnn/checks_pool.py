"""Checks of maxpool_forward and maxpool_backward.

Where a window has several equal maxima, any split of its gradient among them is
right, so the comparisons with the reference use inputs without ties, and the ties
get a check of their own that accepts every valid split (on windows that do not
overlap, where each window's share can be told apart).
"""

from __future__ import annotations

import numpy as np

from assignments.cnn import mistakes
from assignments.cnn.cases import (
    ARGS,
    POOL_DISJOINT,
    POOL_OVERLAP,
    POOL_TABLE,
    Pool,
    distinct,
    with_ties,
)
from assignments.cnn.registry import check
from grader.checklib import Evidence, expect_floats, expect_untouched, fits, model_rtol
from grader.checks import CheckFailed
from grader.compare import BAD_RETURN
from grader.gradcheck import expect_backward_matches_forward


# ------------------------------------------------------------------ forward
@check("maxpool_forward", kind="shape", points=2)
def output_shapes(student, rng):
    """(n - size) // stride + 1 per axis: 2x2 windows, odd sizes (the rest is dropped),
    overlapping 3x3 windows, gaps, one window over the whole input."""
    for pool in POOL_TABLE:
        y = student.maxpool_forward(rng.standard_normal(pool.x), **pool.kwargs())
        expected = (pool.x[0], *pool.out_hw(), pool.x[3])
        shape = getattr(y, "shape", None)
        if not isinstance(y, np.ndarray) or tuple(shape) != expected:
            what = f"shape {tuple(shape)}" if isinstance(y, np.ndarray) else f"a {type(y).__name__}"
            raise CheckFailed(f"maxpool_forward with {pool.shown()} ({pool.why}) returned {what}, "
                              f"expected {expected}", [BAD_RETURN])


@check("maxpool_forward", kind="numeric", points=4)
def values(student, oracle, rng, tolerance):
    """The maximum of every window, per channel, over the configurations of the shape table."""
    evidence = Evidence(tolerance)
    for pool in POOL_TABLE:
        x = rng.standard_normal(pool.x)
        evidence.compare(student.maxpool_forward(x, **pool.kwargs()),
                         oracle.maxpool_forward(x, size=pool.size, stride=pool.stride), "y", prefix=pool.shown())
    evidence.verdict()


@check("maxpool_forward", kind="behavior", points=2, name="leaves_inputs_alone")
def pool_leaves_inputs_alone(student, rng):
    """x is not modified; y is a finite 4-D float array."""
    for pool in (POOL_TABLE[0], POOL_OVERLAP[0]):
        y = student.maxpool_forward(rng.standard_normal(pool.x), **pool.kwargs())
        expect_untouched(student, "maxpool_forward", ARGS["maxpool_forward"])
        expect_floats(y, "y", ndim=4)  # its shape is judged elsewhere


# ------------------------------------------------------------------ backward
def _call_backward(student, dy, x, pool: Pool):
    return expect_floats(student.maxpool_backward(dy, x, **pool.kwargs()), "dx")


def _upstream(rng, pool: Pool) -> np.ndarray:
    return rng.standard_normal((pool.x[0], *pool.out_hw(), pool.x[3]))


def _against_reference(student, oracle, rng, tolerance, cases, overlap: bool) -> None:
    evidence = Evidence(tolerance)
    for pool in cases:
        x = distinct(rng, pool.x)
        dy = _upstream(rng, pool)
        models = mistakes.pool_backward_models(x, dy, pool.size, pool.stride)
        if overlap:
            models[mistakes.POOL_OVERLAP] = [
                lambda got, x=x, dy=dy, p=pool: mistakes.overwritten_on_overlap(got, x, dy, p.size, p.stride)]
        evidence.compare(_call_backward(student, dy, x, pool),
                         oracle.maxpool_backward(dy, x, size=pool.size, stride=pool.stride), "dx", models,
                         rtol=tolerance.grad_rtol, prefix=pool.shown())
    evidence.verdict()


@check("maxpool_backward", kind="shape", points=1)
def gradient_shapes(student, rng):
    """dx has x's shape over the configurations of the shape table (zero where no window reads)."""
    for pool in POOL_TABLE:
        x = distinct(rng, pool.x)
        expect_floats(student.maxpool_backward(_upstream(rng, pool), x, **pool.kwargs()), "dx", x.shape)


@check("maxpool_backward", kind="gradient", points=4)
def against_reference(student, oracle, rng, tolerance):
    """dx against the reference on windows that do not overlap (inputs without ties)."""
    _against_reference(student, oracle, rng, tolerance, POOL_DISJOINT, overlap=False)


@check("maxpool_backward", kind="gradient", points=4)
def overlapping_windows_add_up(student, oracle, rng, tolerance):
    """Overlapping windows (size=3, stride=1 and 2): a pixel that is the maximum of several
    windows gets the sum of their gradients (inputs without ties)."""
    _against_reference(student, oracle, rng, tolerance, POOL_OVERLAP, overlap=True)


def _split_problem(got: np.ndarray, x: np.ndarray, dy: np.ndarray, pool: Pool, tolerance) -> str | None:
    """Why `got` is not a valid subgradient (None if it is): every window must pass on
    exactly its dy, to its maxima only; pixels outside every window get nothing."""
    slack = tolerance.grad_rtol * float(np.max(np.abs(dy))) + tolerance.value_atol
    covered = np.zeros(x.shape, dtype=bool)
    h_out, w_out = pool.out_hw()
    for i in range(h_out):
        for j in range(w_out):
            rows = slice(i * pool.stride, i * pool.stride + pool.size)
            cols = slice(j * pool.stride, j * pool.stride + pool.size)
            covered[:, rows, cols, :] = True
            patch, share = x[:, rows, cols, :], got[:, rows, cols, :]
            off_max = (patch < patch.max(axis=(1, 2), keepdims=True)) & (np.abs(share) > slack)
            if off_max.any():
                n, a, b, c = np.argwhere(off_max)[0]
                return (f"dx[{n},{rows.start + a},{cols.start + b},{c}] is {share[n, a, b, c]:.6g}, but "
                        f"x there is not the maximum of its window (window ({i}, {j}))")
            total, want = share.sum(axis=(1, 2)), dy[:, i, j, :]
            wrong = np.abs(total - want) > slack
            if wrong.any():
                n, c = np.argwhere(wrong)[0]
                ties = int((patch[n, :, :, c] == patch[n, :, :, c].max()).sum())
                return (f"window ({i}, {j}) of image {n}, channel {c} ({ties} tied maxima) passes on "
                        f"{total[n, c]:.6g} in total, expected its dy = {want[n, c]:.6g}")
    stray = ~covered & (np.abs(got) > slack)
    if stray.any():
        n, a, b, c = np.argwhere(stray)[0]
        return f"dx[{n},{a},{b},{c}] is {got[n, a, b, c]:.6g}, but that pixel is in no window"
    return None


@check("maxpool_backward", kind="gradient", points=3)
def tied_maxima(student, rng, tolerance):
    """Windows with several equal maxima: any split of the window's gradient among its tied
    maxima is right (all to the first, to the last, or shared), as long as it sums to dy."""
    evidence = Evidence(tolerance)
    for pool in POOL_DISJOINT:
        x = with_ties(rng, pool.x)
        dy = _upstream(rng, pool)
        got = _call_backward(student, dy, x, pool)
        if got.shape != x.shape:
            raise CheckFailed(f"dx has shape {got.shape}, expected {x.shape}", [BAD_RETURN])
        problem = _split_problem(got.astype(np.float64), x, dy, pool, tolerance)
        models = mistakes.pool_backward_models(x, dy, pool.size, pool.stride)
        fitted = {code: any(fits(got, m, model_rtol(tolerance)) for m in outs) for code, outs in models.items()}
        evidence.record(CheckFailed(f"{pool.shown()}: {problem}") if problem else None, fitted)
    evidence.verdict()


@check("maxpool_backward", kind="gradient", points=1)
def against_own_forward(student, oracle, rng, tolerance):
    """dx against directional central differences of maxpool_forward, with overlapping
    windows and inputs far from ties (no window changes its maximum): the reference
    forward's differences decide; your own forward's are reported beside them."""
    pool = POOL_OVERLAP[0]
    x = distinct(rng, pool.x)
    dy = _upstream(rng, pool)
    got = expect_floats(student.maxpool_backward(dy, x, **pool.kwargs()), "dx", x.shape)

    def own(p):
        return student.maxpool_forward(p["x"], **pool.kwargs())

    def reference(p):
        return oracle.maxpool_forward(p["x"], size=pool.size, stride=pool.stride)

    # Steps far below the 1/8 between neighbouring values: no maximum changes.
    return expect_backward_matches_forward(own, reference, {"x": x}, {"x": got}, dy, rng, tolerance,
                                           "maxpool_backward", "maxpool_forward", steps=(1e-5, 1e-3))


@check("maxpool_backward", kind="behavior", points=1, name="leaves_inputs_alone")
def pool_grad_leaves_inputs_alone(student, rng):
    """dy and x are not modified (dy included); dx is a finite float array shaped like x."""
    pool = POOL_OVERLAP[0]
    x = distinct(rng, pool.x)
    dy = _upstream(rng, pool)
    dx = student.maxpool_backward(dy, x, **pool.kwargs())
    expect_untouched(student, "maxpool_backward", ARGS["maxpool_backward"])
    expect_floats(dx, "dx", x.shape)
