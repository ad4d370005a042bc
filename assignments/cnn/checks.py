"""Checks of the cnn assignment. Each is a plain function; see grader/checks.py."""

from __future__ import annotations

import numpy as np

from grader.checks import CheckFailed, Registry
from grader.compare import expect_close, expect_int, is_close

registry = Registry()
check = registry.check


def lecture_example():
    """The lecture's two-channel example: x (1, 4, 4, 2), the same 2x2 filter on both
    channels, one output channel, bias 0."""
    x1 = [[1, -2, 0, 5], [7, 0, 1, -3], [2, -2, 2, -2], [-5, -4, 3, 1]]
    x2 = [[0, -1, 2, 0], [-4, 9, 6, 5], [3, 2, 1, 0], [0, 1, 3, -3]]
    x = np.stack([x1, x2], axis=-1).astype(np.float64)[None]
    f = np.array([[1, -2], [3, 1]], dtype=np.float64)
    w = np.stack([f, f], axis=-1)[..., None]
    b = np.zeros(1)
    return x, w, b


@check("conv_output_size", kind="shape", points=1)
def lecture_rules(student):
    """7x7 with 3x3 gives 5x5; pad (f-1)/2 keeps the size; stride k gives (n-f)/k + 1."""
    cases = [((7, 3), {}, 5), ((7, 3), {"pad": 1}, 7), ((7, 5), {"pad": 2}, 7),
             ((7, 3), {"stride": 2}, 3), ((8, 3), {"stride": 2}, 3), ((32, 5), {"pad": 2, "stride": 2}, 16)]
    for args, kwargs, expected in cases:
        got = expect_int(student.conv_output_size(*args, **kwargs), "the size")
        if got != expected:
            shown = ", ".join([*map(str, args), *(f"{k}={v}" for k, v in kwargs.items())])
            raise CheckFailed(f"conv_output_size({shown}) is {got}, expected {expected}",
                              ["conv.output_size_wrong"])


@check("conv2d_forward", kind="numeric", points=2)
def lecture_two_channel_example(student, oracle):
    """The lecture's two-channel example gives [[25, 27, 15], [0, -2, 10], [-13, -9, 23]]."""
    x, w, b = lecture_example()
    got = student.conv2d_forward(x, w, b)
    expected = oracle.conv2d_forward(x, w, b)
    flipped = oracle.conv2d_forward(x, w[::-1, ::-1], b)
    codes = ["conv.flipped_kernel"] if isinstance(got, np.ndarray) and is_close(got, flipped, 1e-4) else []
    expect_close(got, expected, "y", diagnoses=codes)


@check("conv2d_forward", kind="numeric", points=2, visibility="hidden")
def random_with_stride_and_pad(student, oracle, rng):
    """Random x (2, 7, 6, 3), w (3, 3, 3, 4), stride 2, pad 1."""
    x = rng.standard_normal((2, 7, 6, 3))
    w = rng.standard_normal((3, 3, 3, 4))
    b = rng.standard_normal(4)
    expect_close(student.conv2d_forward(x, w, b, stride=2, pad=1),
                 oracle.conv2d_forward(x, w, b, stride=2, pad=1), "y")


@check("relu_forward", kind="numeric", points=1)
def values(student, oracle, rng):
    """ReLU of random values of both signs."""
    x = rng.standard_normal((3, 4, 5))
    expect_close(student.relu_forward(x), oracle.relu_forward(x), "y")


@check("maxpool_forward", kind="numeric", points=1)
def two_by_two(student, oracle, rng):
    """2x2 max pooling with stride 2 of x (2, 6, 6, 3)."""
    x = rng.standard_normal((2, 6, 6, 3))
    expect_close(student.maxpool_forward(x), oracle.maxpool_forward(x), "y")
