"""Inputs of the cnn checks: the lecture's examples and the tables of configurations.

Every random input comes from the check's seeded generator (the `rng` fixture): at
grading, seeded by the run's secret seed, so every student of a run sees the same
numbers and no run's numbers can be known ahead; in the student kit, by the check's
id alone. The fixed examples and size tables are shown as they are in the kit and
varied with `rng` at grading (`fresh_inputs`), keeping what each row tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Contract argument names, to name a mutated argument by position.
ARGS = {
    "conv_output_size": ("n", "f", "pad", "stride"),
    "conv2d_forward": ("x", "w", "b", "stride", "pad"),
    "conv2d_backward": ("dy", "x", "w", "b", "stride", "pad"),
    "maxpool_forward": ("x", "size", "stride"),
    "maxpool_backward": ("dy", "x", "size", "stride"),
    "relu_forward": ("x",),
    "relu_backward": ("dy", "x"),
    "linear_forward": ("x", "w", "b"),
    "linear_backward": ("dy", "x", "w", "b"),
    "softmax_cross_entropy": ("z", "labels"),
}


@dataclass(frozen=True)
class Conv:
    """One convolution: x (N, H, W, C_in), w (f_h, f_w, C_in, C_out), stride, pad."""

    x: tuple[int, int, int, int]
    w: tuple[int, int, int, int]
    stride: int = 1
    pad: int = 0
    why: str = ""

    def kwargs(self) -> dict:
        """Keyword arguments as a student would pass them; the defaults left out, so
        that the defaults are exercised too."""
        out = {}
        if self.stride != 1:
            out["stride"] = self.stride
        if self.pad != 0:
            out["pad"] = self.pad
        return out

    def out_hw(self) -> tuple[int, int]:
        h = (self.x[1] + 2 * self.pad - self.w[0]) // self.stride + 1
        w = (self.x[2] + 2 * self.pad - self.w[1]) // self.stride + 1
        return h, w

    def shown(self) -> str:
        return f"x {self.x}, w {self.w}, stride={self.stride}, pad={self.pad}"


# The lecture's rules first, then what a careless implementation gets wrong:
# non-square inputs, rectangular kernels, strides 2 and 3, pads 1 and 2, a stride
# that does not divide, batch 1 and batch > 1.
CONV_TABLE = (
    Conv((1, 7, 7, 1), (3, 3, 1, 1), why="7x7 with 3x3 gives 5x5"),
    Conv((2, 7, 7, 3), (3, 3, 3, 2), pad=1, why="pad (f-1)/2 = 1 keeps 7x7"),
    Conv((1, 7, 7, 2), (5, 5, 2, 2), pad=2, why="pad (f-1)/2 = 2 keeps 7x7"),
    Conv((2, 7, 7, 1), (3, 3, 1, 2), stride=2, why="stride 2: (7-3)/2+1 = 3"),
    Conv((1, 8, 8, 2), (3, 3, 2, 1), stride=2, why="stride 2 does not divide 8-3: floor gives 3"),
    Conv((3, 9, 6, 2), (3, 2, 2, 3), stride=3, pad=1, why="non-square, rectangular kernel, stride 3"),
    Conv((1, 6, 10, 3), (2, 4, 3, 2), stride=2, pad=2, why="rectangular kernel, pad 2"),
    Conv((2, 5, 8, 1), (5, 3, 1, 2), pad=1, why="tall kernel, pad 1"),
    Conv((2, 10, 7, 2), (3, 3, 2, 2), stride=3, pad=2, why="stride 3 and pad 2, floor on both axes"),
)

# The random-value checks: small enough to be quick through a worker.
CONV_PLAIN = (
    Conv((2, 5, 6, 3), (3, 3, 3, 4)),
    Conv((1, 6, 5, 2), (2, 3, 2, 3)),
)
CONV_STRIDE_PAD = (
    Conv((2, 7, 6, 3), (3, 3, 3, 4), stride=2, pad=1),
    Conv((1, 8, 7, 2), (3, 2, 2, 3), stride=3, pad=2),
    Conv((2, 5, 5, 2), (3, 3, 2, 2), pad=2),
)
# The checks that inputs are left alone: one plain configuration, and one with stride and
# padding where the stride fits the padded input (a course that defines the output only
# there, as CS231n does, then has both called).
CONV_UNTOUCHED = (CONV_PLAIN[0], Conv((2, 7, 7, 3), (3, 3, 3, 4), stride=2, pad=1))

# conv_output_size's table: (n, f, pad, stride) -> expected, from both axes of the
# configurations above, plus the size where the filter just fits.
SIZE_RULES = (
    ((7, 3, 0, 1), 5),
    ((7, 3, 1, 1), 7),
    ((7, 5, 2, 1), 7),
    ((7, 3, 0, 2), 3),
    ((8, 3, 0, 2), 3),
)


def moved_sizes(rng: np.random.Generator, rows) -> list[tuple[tuple[int, int, int, int], int]]:
    """The same rows on other sizes: each n grown by its stride times a seeded 0..5, which
    keeps what the row tests (whether the stride divides n + 2 pad - f, whether the pad
    keeps the size); a filter that just covers the padded input grows with n and still does."""
    out = []
    for (n, f, pad, stride), _ in rows:
        k = stride * int(rng.integers(0, 6))
        if n + 2 * pad == f:
            f += k
        n += k
        out.append(((n, f, pad, stride), (n + 2 * pad - f) // stride + 1))
    return out


def moved_errors(rng: np.random.Generator, rows) -> list[tuple[tuple[int, int, int, int], str]]:
    """The impossible sizes on other sizes: n and f grown by the same seeded 0..5, so
    each row stays impossible for its own reason."""
    out = []
    for (n, f, pad, stride), why in rows:
        k = int(rng.integers(0, 6))
        out.append(((n + k, f + k, pad, stride), why))
    return out


def size_table() -> list[tuple[tuple[int, int, int, int], int]]:
    rows = []
    for conv in CONV_TABLE:
        for axis in (0, 1):
            n, f = conv.x[1 + axis], conv.w[axis]
            args = (n, f, conv.pad, conv.stride)
            rows.append((args, (n + 2 * conv.pad - f) // conv.stride + 1))
    rows.append(((3, 5, 1, 1), 1))  # the filter exactly covers the padded input
    rows.append(((5, 5, 0, 3), 1))
    return list(dict.fromkeys(rows))


# (n, f, pad, stride) that must raise ValueError, and why.
SIZE_ERRORS = (
    ((3, 5, 0, 1), "f > n"),
    ((3, 8, 2, 1), "f > n + 2*pad"),
    ((7, 3, 0, 0), "stride < 1"),
    ((7, 3, -1, 1), "pad < 0"),
)


@dataclass(frozen=True)
class Pool:
    x: tuple[int, int, int, int]
    size: int = 2
    stride: int = 2
    why: str = ""

    def kwargs(self) -> dict:
        out = {}
        if self.size != 2:
            out["size"] = self.size
        if self.stride != 2:
            out["stride"] = self.stride
        return out

    def out_hw(self) -> tuple[int, int]:
        return ((self.x[1] - self.size) // self.stride + 1, (self.x[2] - self.size) // self.stride + 1)

    @property
    def overlapping(self) -> bool:
        return self.stride < self.size

    def shown(self) -> str:
        return f"x {self.x}, size={self.size}, stride={self.stride}"


POOL_TABLE = (
    Pool((2, 6, 6, 3), why="the lecture's 2x2 pooling"),
    Pool((1, 7, 7, 2), why="odd size: the last row and column are dropped"),
    Pool((2, 5, 8, 1), 3, 1, why="overlapping 3x3 windows, stride 1"),
    Pool((1, 9, 6, 2), 3, 2, why="overlapping windows on a non-square input"),
    Pool((3, 4, 6, 2), 2, 3, why="stride larger than the window: gaps"),
    Pool((1, 4, 4, 1), 4, 4, why="one window covers the input"),
)
POOL_DISJOINT = (Pool((2, 6, 6, 3)), Pool((1, 7, 9, 2), 3, 3), Pool((2, 5, 4, 2), 2, 3))
POOL_OVERLAP = (Pool((2, 6, 5, 2), 3, 1), Pool((1, 7, 8, 3), 3, 2))


def lecture_example():
    """The lecture's two-channel example: x (1, 4, 4, 2), the same 2x2 filter on both
    channels, one output channel, bias 0; y(:, :, 1) = [[25, 27, 15], [0, -2, 10], [-13, -9, 23]]."""
    x1 = [[1, -2, 0, 5], [7, 0, 1, -3], [2, -2, 2, -2], [-5, -4, 3, 1]]
    x2 = [[0, -1, 2, 0], [-4, 9, 6, 5], [3, 2, 1, 0], [0, 1, 3, -3]]
    x = np.stack([x1, x2], axis=-1).astype(np.float64)[None]
    f = np.array([[1, -2], [3, 1]], dtype=np.float64)
    w = np.stack([f, f], axis=-1)[..., None]
    b = np.zeros(1)
    y = np.array([[25, 27, 15], [0, -2, 10], [-13, -9, 23]], dtype=np.float64)[None, :, :, None]
    return x, w, b, y


def varied_lecture_example(rng: np.random.Generator):
    """The lecture's example with every entry of x moved by a seeded integer in -3..3, the
    filter and the zero bias kept: integers still, as easy to check by hand, but not the
    slide's numbers. Returns x, w, b (y is the reference's)."""
    x, w, b, _ = lecture_example()
    return x + rng.integers(-3, 4, size=x.shape), w, b


def conv_inputs(rng: np.random.Generator, conv: Conv):
    """x, w, b of standard normals (a nonzero bias, so that a missing one shows)."""
    x = rng.standard_normal(conv.x)
    w = rng.standard_normal(conv.w)
    b = rng.standard_normal(conv.w[3])
    return x, w, b


def distinct(rng: np.random.Generator, shape) -> np.ndarray:
    """Values that are all different, at least 1/8 apart (exact in float32 too): every
    pooling window has one maximum, and small perturbations never change it."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2) / 8.0).reshape(shape)


def with_ties(rng: np.random.Generator, shape) -> np.ndarray:
    """Small integers: most windows have tied maxima, some are constant."""
    x = rng.integers(-1, 2, size=shape).astype(np.float64)
    x[:, :2, :2, :] = 1.0  # a constant window in every image and channel
    return x


def away_from_zero(rng: np.random.Generator, shape, margin: float = 0.1) -> np.ndarray:
    """Standard normals moved at least `margin` away from 0 (ReLU's kink)."""
    x = rng.standard_normal(shape)
    return x + margin * np.sign(x) + (x == 0) * margin
