"""Argument checks of the cnn reference, shared by forward and backward so that both
reject the same input. Each names the arguments and their shapes."""

import numpy as np


def _as_float(a):
    """Return ``a`` as a float64 array, without copying when it already is one."""
    return np.asarray(a, dtype=np.float64)


def _check_int(name, value, minimum):
    """Return ``value`` as an int; reject non-integers and values below ``minimum``."""
    try:
        ok = int(value) == value and value >= minimum
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_dy(dy, expected_shape, what="y"):
    """Reject an upstream gradient whose shape differs from the forward output."""
    if dy.shape != tuple(expected_shape):
        raise ValueError(
            f"dy has shape {dy.shape} but {what} has shape {tuple(expected_shape)}; "
            f"dy must be shaped like the forward output"
        )


def _check_conv_args(x, w, b, stride, pad):
    """Validate conv2d arguments; return (stride, pad, H_out, W_out)."""
    stride = _check_int("stride", stride, 1)
    pad = _check_int("pad", pad, 0)
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D (N, H, W, C_in), got shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"w must be 4-D (f_h, f_w, C_in, C_out), got shape {w.shape}")
    if w.shape[2] != x.shape[3]:
        raise ValueError(
            f"w has {w.shape[2]} input channels (shape {w.shape}) "
            f"but x has {x.shape[3]} (shape {x.shape})"
        )
    if b.shape != (w.shape[3],):
        raise ValueError(
            f"b must have shape ({w.shape[3]},), one bias per output channel of w "
            f"(shape {w.shape}), got shape {b.shape}"
        )
    f_h, f_w = w.shape[:2]
    _, h, wd, _ = x.shape
    if f_h > h + 2 * pad or f_w > wd + 2 * pad:
        raise ValueError(
            f"filter w (shape {w.shape}) is larger than the padded input: "
            f"x has shape {x.shape}, padded with pad={pad} to "
            f"{h + 2 * pad}x{wd + 2 * pad}"
        )
    # The lecture's output-size rule (conv_output_size); the filter fits, so both are >= 1.
    h_out = (h + 2 * pad - f_h) // stride + 1
    w_out = (wd + 2 * pad - f_w) // stride + 1
    return stride, pad, h_out, w_out


def _check_pool_args(x, size, stride):
    """Validate maxpool arguments; return (size, stride, H_out, W_out)."""
    size = _check_int("size", size, 1)
    stride = _check_int("stride", stride, 1)
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D (N, H, W, C), got shape {x.shape}")
    if size > x.shape[1] or size > x.shape[2]:
        raise ValueError(
            f"pooling window size={size} is larger than the input: x has shape {x.shape}"
        )
    h_out = (x.shape[1] - size) // stride + 1
    w_out = (x.shape[2] - size) // stride + 1
    return size, stride, h_out, w_out


def _check_linear_args(x, w, b):
    """Validate linear-layer arguments (x (N, D_in), w (D_in, D_out), b (D_out,))."""
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (N, D_in), got shape {x.shape}")
    if w.ndim != 2:
        raise ValueError(f"w must be 2-D (D_in, D_out), got shape {w.shape}")
    if w.shape[0] != x.shape[1]:
        raise ValueError(
            f"w has {w.shape[0]} input rows (shape {w.shape}) "
            f"but x has {x.shape[1]} features (shape {x.shape})"
        )
    if b.shape != (w.shape[1],):
        raise ValueError(
            f"b must have shape ({w.shape[1]},), one bias per output of w "
            f"(shape {w.shape}), got shape {b.shape}"
        )
