"""Mistake models of the cnn assignment: what each known mistake outputs on given
inputs, computed from the reference, and the catalogue entry a student reads.

A model returns {code: [outputs]}: any of the outputs fits (a mistake can come in a
few forms: dw from the first example or from the last); a form that happens to give
the right answer on these inputs stays in the list (it is what that student would
return); None means the mistake makes no prediction here at all (no padding to get
wrong when pad is 0).
"""

from __future__ import annotations

import math

import numpy as np

from grader.diagnoses import register
from grader.oracle import kit_recorded, kit_shipped

FLIPPED = register(
    "conv.flipped_kernel",
    "The convolution rotates the kernel by 180 degrees (true convolution) instead of sliding it as it is.",
    "The lecture's layer is a sliding dot product: y[i, j] = sum over s, t of w[s, t] * x[i + s, j + t], "
    "with w as it is, never w[::-1, ::-1].").code
BIAS = register(
    "conv.bias_missing",
    "The bias is not added in the forward pass, or its gradient db is not computed.",
    "Each output channel has one bias element, added to every position of that channel; "
    "db is dy summed over the batch and over the positions.").code
PADDING = register(
    "conv.padding_wrong",
    "The zero padding is wrong: ignored, added on one side only, or added to the batch or channel axes.",
    "Pad with pad zeros on every side of H and W only: np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0))).").code
STRIDE = register(
    "conv.stride_ignored",
    "The stride is treated as 1.",
    "With stride k the window moves k pixels at a time: output (i, j) reads the patch that starts "
    "at (i*k, j*k), and there are (n + 2*pad - f)//k + 1 of them along each axis.").code
SIZE = register(
    "conv.output_size_wrong",
    "The output-size rule is off (a missing +1, no floor, or the padding counted once).",
    "The lecture's rule: (n + 2*pad - f) // stride + 1; a 7x7 input with a 3x3 filter gives 5x5.").code
BATCH = register(
    "conv.grad_not_summed_over_batch",
    "dw or db comes from one example, or is averaged instead of summed over the batch.",
    "The weights are shared by every example of the batch, so their gradient is the sum of "
    "every example's contribution (no 1/N: the loss already averages).").code
POOL_ALL = register(
    "pool.grad_to_all_elements",
    "Max pooling's backward pass spreads the gradient over the whole window.",
    "Only the maximum of a window reached the output, so only it gets the window's gradient; "
    "the other elements get 0.").code
POOL_TIES = register(
    "pool.grad_duplicated_on_ties",
    "Where a window has several equal maxima, each of them gets the whole gradient.",
    "A window passes its gradient on once: give it to one of the tied maxima (or split it), "
    "so that the window's total stays dy.").code
POOL_OVERLAP = register(
    "pool.grad_overwritten_on_overlap",
    "With overlapping windows, a later window's gradient replaces an earlier one's instead of adding to it.",
    "When stride < size a pixel can be the maximum of several windows: it gets the sum of their "
    "gradients (dx[...] += ..., not =).").code
UNSTABLE = register(
    "softmax.unstable",
    "The softmax overflows (NaN or inf) for large scores.",
    "Subtract each row's maximum score before exp(): softmax(z) = softmax(z - max(z)), and exp() "
    "of a number <= 0 cannot overflow.").code
MIN_SHIFT = register(
    "softmax.min_shift",
    "The softmax subtracts each row's smallest score: when scores lie far apart, exp() of the gap "
    "overflows (NaN or inf).",
    "Shift by the largest score instead: softmax(z) = softmax(z - max(z)) holds for any shift, and "
    "only the maximum makes every exponent <= 0.").code
LABELS_SHIFTED = register(
    "softmax.labels_shifted",
    "The loss or its gradient uses label - 1 (or label + 1): it is computed for the wrong class.",
    "Labels here are 0-based, and the class of example n is labels[n] exactly: do not shift them. "
    "(A shift in place also changes the caller's labels.)").code
EPSILON = register(
    "softmax.epsilon_in_log",
    "The loss adds a small constant inside the log, or clips the probabilities (-log(p + 1e-7)): it "
    "is wrong wherever the label's probability is small, as it is for a confident wrong prediction.",
    "Take the loss from the log-softmax, which needs no epsilon: -log p[label] = log(sum_j "
    "exp(z_j - max z)) - (z[label] - max z). It stays exact however small p is.").code
NOT_AVERAGED = register(
    "softmax.not_averaged",
    "The loss or its gradient is summed over the batch instead of averaged.",
    "The loss is the mean over the N examples, so its gradient dz carries the same 1/N.").code
TRANSPOSED = register(
    "linear.weights_transposed",
    "The layer treats w as (D_out, D_in) instead of (D_in, D_out).",
    "In this assignment y = x @ w + b with x (N, D_in) and w (D_in, D_out); then dx = dy @ w.T "
    "and dw = x.T @ dy has w's shape.").code


# ------------------------------------------------------------------ convolution
@kit_recorded
def size_models(n: int, f: int, pad: int, stride: int) -> dict[str, list]:
    """What conv_output_size returns under each mistake."""
    span = n + 2 * pad - f
    return {
        SIZE: [span // stride, span / stride + 1, math.ceil(span / stride) + 1,
               (n + pad - f) // stride + 1],
        PADDING: [(n - f) // stride + 1 if n >= f else None],
        STRIDE: [span + 1],
    }


@kit_shipped
def _wrong_paddings(pad: int) -> list[tuple]:
    """np.pad widths of the wrong paddings: pad zeros on the top and left only, or on the
    bottom and right only (the output shrinks); all 2*pad zeros below and to the right (x
    copied into the top-left corner of a zero array of the right size); the batch axis
    padded too."""
    return [((0, 0), (pad, 0), (pad, 0), (0, 0)), ((0, 0), (0, pad), (0, pad), (0, 0)),
            ((0, 0), (0, 2 * pad), (0, 2 * pad), (0, 0)), ((pad, pad), (pad, pad), (pad, pad), (0, 0))]


@kit_shipped
def conv_forward_models(oracle, x, w, b, stride: int, pad: int) -> dict[str, list]:
    run = oracle.conv2d_forward
    y = run(x, w, b, stride=stride, pad=pad)
    h_out, w_out = y.shape[1:3]
    models = {
        FLIPPED: [run(x, w[::-1, ::-1], b, stride=stride, pad=pad)],
        BIAS: [run(x, w, np.zeros_like(b), stride=stride, pad=pad)],
        PADDING: [None],
        STRIDE: [None],
        # A missing +1 drops the last row and column of the right windows; counting
        # the padding once drops pad // stride of them.
        SIZE: [y[:, :h_out - 1, :w_out - 1],
               y[:, :(x.shape[1] + pad - w.shape[0]) // stride + 1, :(x.shape[2] + pad - w.shape[1]) // stride + 1]],
    }
    if pad:
        fits = x.shape[1] >= w.shape[0] and x.shape[2] >= w.shape[1]
        models[PADDING] = [run(x, w, b, stride=stride) if fits else None] + \
            [run(np.pad(x, spread), w, b, stride=stride) for spread in _wrong_paddings(pad)]
    if stride > 1:
        dense = run(x, w, b, pad=pad)
        models[STRIDE] = [dense, dense[:, :h_out, :w_out]]
    return models


@kit_shipped
def conv_backward_models(oracle, dy, x, w, b, stride: int, pad: int) -> dict[str, dict[str, list]]:
    """Models per gradient: {"dx": {code: [...]}, "dw": ..., "db": ...}."""
    run = oracle.conv2d_backward
    dx, dw, db = run(dy, x, w, b, stride=stride, pad=pad)
    fdx, fdw, _ = run(dy, x, w[::-1, ::-1], b, stride=stride, pad=pad)
    n = x.shape[0]
    singles = [run(dy[i:i + 1], x[i:i + 1], w, b, stride=stride, pad=pad) for i in range(n)] if n > 1 else []
    models = {
        "dx": {FLIPPED: [fdx]},
        "dw": {FLIPPED: [fdw[::-1, ::-1]],
               BATCH: [s[1] for s in singles] + ([dw / n] if n > 1 else [])},
        "db": {BIAS: [np.zeros_like(db)],
               BATCH: [s[2] for s in singles] + ([db / n] if n > 1 else [])},
    }
    if pad:
        # x in the top-left corner of the padded array: dx cropped from that corner, or
        # from where x belongs.
        h, wd = x.shape[1:3]
        cdx, cdw, _ = run(dy, np.pad(x, ((0, 0), (0, 2 * pad), (0, 2 * pad), (0, 0))), w, b, stride=stride)
        models["dx"][PADDING] = [cdx[:, :h, :wd], cdx[:, pad:pad + h, pad:pad + wd]]
        models["dw"][PADDING] = [cdw]
    return models


# ------------------------------------------------------------------ max pooling
@kit_shipped
def _windows(shape, size: int, stride: int):
    h_out = (shape[1] - size) // stride + 1
    w_out = (shape[2] - size) // stride + 1
    for i in range(h_out):
        for j in range(w_out):
            yield i, j, (slice(None), slice(i * stride, i * stride + size), slice(j * stride, j * stride + size))


@kit_recorded
def pool_backward_models(x, dy, size: int, stride: int) -> dict[str, list]:
    """Models of the maxpool backward mistakes (loops: clarity over speed, inputs are small)."""
    spread, mean, duplicated = np.zeros(x.shape), np.zeros(x.shape), np.zeros(x.shape)
    for i, j, window in _windows(x.shape, size, stride):
        patch = x[window]
        g = dy[:, i, j, :][:, None, None, :]
        spread[window] += g
        mean[window] += g / (size * size)
        duplicated[window] += g * (patch == patch.max(axis=(1, 2), keepdims=True))
    return {POOL_ALL: [spread, mean], POOL_TIES: [duplicated]}


@kit_shipped
def overwritten_on_overlap(got, x, dy, size: int, stride: int) -> bool:
    """Is every pixel's gradient the gradient of ONE of the windows whose maximum it is
    (any order of writing), where the sum was due at a shared maximum? Inputs without ties."""
    got = np.asarray(got, dtype=np.float64)
    if got.shape != x.shape:
        return False
    owners: dict[tuple, list[float]] = {}
    for i, j, window in _windows(x.shape, size, stride):
        patch = x[window]
        for n in range(x.shape[0]):
            for c in range(x.shape[3]):
                a, b = np.unravel_index(np.argmax(patch[n, :, :, c]), patch.shape[1:3])
                pixel = (n, window[1].start + a, window[2].start + b, c)
                owners.setdefault(pixel, []).append(float(dy[n, i, j, c]))
    scale = float(np.max(np.abs(dy))) if dy.size else 1.0
    shared = False
    for pixel, grads in owners.items():
        if not any(abs(got[pixel] - g) <= 1e-3 * scale for g in grads):
            return False
        shared |= len(grads) > 1
    others = np.ones(x.shape, dtype=bool)
    for pixel in owners:
        others[pixel] = False
    return shared and bool(np.all(np.abs(got[others]) <= 1e-3 * scale))


# ------------------------------------------------------------------ dense layers
@kit_shipped
def linear_forward_models(oracle, x, w, b) -> dict[str, list]:
    square = w.shape[0] == w.shape[1]
    return {TRANSPOSED: [oracle.linear_forward(x, w.T, b) if square else None]}


@kit_recorded
def linear_backward_models(dy, x, w) -> dict[str, dict[str, list]]:
    """Treating w as (D_out, D_in): dx = dy @ w and dw = dy.T @ x, shaped like w.T."""
    return {"dx": {TRANSPOSED: [dy @ w if w.shape[0] == w.shape[1] else None]},
            "dw": {TRANSPOSED: [dy.T @ x]},
            "db": {}}


@kit_recorded
def softmax_models(loss: float, dz: np.ndarray, z: np.ndarray | None = None,
                   labels: np.ndarray | None = None) -> tuple[dict, dict]:
    n = dz.shape[0]
    loss_models = {NOT_AVERAGED: [np.asarray(loss * n)] if n > 1 else []}
    dz_models = {NOT_AVERAGED: [dz * n] if n > 1 else []}
    if z is not None and labels is not None:
        # labels - 1, as one year's FMAN45 skeleton wrote in the backward (0 becomes -1: the last class)
        shifted = (np.asarray(labels) - 1) % z.shape[1]
        shifted_loss, shifted_dz = naive_softmax_cross_entropy(z - z.max(axis=1, keepdims=True), shifted)
        loss_models[LABELS_SHIFTED] = [np.asarray(shifted_loss)]
        dz_models[LABELS_SHIFTED] = [shifted_dz / n]
    return loss_models, dz_models


# The constants students add inside the log, or clip the probabilities at.
EPSILONS = (1e-7, 1e-8, 1e-9, 1e-10)


@kit_recorded
def epsilon_losses(z, labels) -> list[np.ndarray]:
    """The loss computed as -log(p + eps) or as -log(max(p, eps)), for each usual eps."""
    shifted = z - z.max(axis=1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    picked = p[np.arange(len(labels)), labels]
    return [np.asarray(-np.mean(np.log(form))) for eps in EPSILONS
            for form in (picked + eps, np.maximum(picked, eps))]


@kit_recorded
def min_shift_softmax_cross_entropy(z, labels):
    """Shifted by each row's minimum (as one year's FMAN45 skeleton suggests): exact for
    close scores, overflowing once a row's scores lie more than ~709 apart."""
    return naive_softmax_cross_entropy(z - z.min(axis=1, keepdims=True), labels)


@kit_recorded
def naive_softmax_cross_entropy(z, labels):
    """Without the max subtraction: what an unstable implementation computes. -> (loss,
    softmax - onehot), the gradient not yet divided by N."""
    with np.errstate(all="ignore"):
        e = np.exp(z)
        p = e / e.sum(axis=1, keepdims=True)
        loss = -np.mean(np.log(p[np.arange(len(labels)), labels]))
        p[np.arange(len(labels)), labels] -= 1
    return loss, p
