"""CS231n's own checks, beside the canonical ones: affine_forward takes x of any rank,
(N, d_1, ..., d_k), each example flattened row by row (C order) to D = d_1 * ... * d_k."""

import numpy as np

from grader.checks import CheckFailed, Registry
from grader.compare import is_close

registry = Registry()


@registry.check("affine_forward", kind="numeric", points=2)
def images_as_rows(course, course_oracle, rng, tolerance):
    """x (N, 2, 3, 4): out is x.reshape(N, 24) @ w + b, and the cache comes back beside it."""
    x, w, b = rng.standard_normal((3, 2, 3, 4)), rng.standard_normal((24, 5)), rng.standard_normal(5)
    expected = x.reshape(3, -1) @ w + b
    got = course.affine_forward(x, w, b)
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailed("affine_forward should return (out, cache)")
    out = np.asarray(got[0], dtype=np.float64)
    if out.shape != expected.shape or not is_close(out, expected, tolerance.value_rtol, tolerance.value_atol):
        raise CheckFailed(f"for x of shape (3, 2, 3, 4), out {'has shape ' + str(out.shape) if out.shape != expected.shape else 'differs'}; "
                          "each example is flattened in C order to 24 values")
