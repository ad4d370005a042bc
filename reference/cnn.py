"""Reference solution of the `cnn` assignment: layers of a small CNN in pure NumPy.

Layout follows the lecture and the student contract: channels last, batch first.

- images ``x``: (N, H, W, C_in)
- filters ``w``: (f_h, f_w, C_in, C_out), e.g. (5, 5, 3, 10) maps 3 channels to 10
- biases ``b``: (C_out,)

Convolution is the lecture's sliding dot product (cross-correlation, no kernel
flip), summed over input channels, plus one bias per output channel, with ``pad``
zeros on every side of H and W only.

Every function converts its inputs to float64 copies-or-views and never writes
into them; shapes that do not fit raise ``ValueError`` naming the arguments and
their shapes.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from reference._cnn_checks import (
    _as_float,
    _check_conv_args,
    _check_dy,
    _check_int,
    _check_linear_args,
    _check_pool_args,
)

__all__ = [
    "conv_output_size",
    "conv2d_forward",
    "conv2d_backward",
    "maxpool_forward",
    "maxpool_backward",
    "relu_forward",
    "relu_backward",
    "linear_forward",
    "linear_backward",
    "softmax_cross_entropy",
]


# --------------------------------------------------------------------------
# Convolution
# --------------------------------------------------------------------------

def conv_output_size(n, f, pad=0, stride=1):
    """Output length of a convolution along one axis.

    Inputs:
    - n: input length (int)
    - f: filter length (int)
    - pad: zeros added on each side (int >= 0)
    - stride: step between windows (int >= 1)

    Returns:
    - (n + 2*pad - f) // stride + 1, i.e. floor where the stride does not divide,
      as in common frameworks.

    Raises ValueError if f > n + 2*pad, stride < 1 or pad < 0.
    """
    n = _check_int("n", n, 0)
    f = _check_int("f", f, 1)
    stride = _check_int("stride", stride, 1)
    pad = _check_int("pad", pad, 0)
    if f > n + 2 * pad:
        raise ValueError(
            f"filter size f={f} is larger than the padded input n + 2*pad = "
            f"{n} + 2*{pad} = {n + 2 * pad}"
        )
    return (n + 2 * pad - f) // stride + 1


def _window(a, i, j, h_out, w_out, stride, h_axis):
    """View of element (i, j) of every window: what all windows read at that offset.

    H and W are axes h_axis and h_axis + 1 of ``a``. The view has h_out x w_out
    entries there, entry [p, q] being a[i + p*stride, j + q*stride]; other axes
    are kept. Writing into the view writes into ``a``.
    """
    index = [slice(None)] * a.ndim
    index[h_axis] = slice(i, i + stride * (h_out - 1) + 1, stride)
    index[h_axis + 1] = slice(j, j + stride * (w_out - 1) + 1, stride)
    return a[tuple(index)]


def _im2col(x, f_h, f_w, pad, stride):
    """Patch matrix of x for a (f_h, f_w) filter, channels-first inside.

    Inputs:
    - x: shape (N, H, W, C_in); pad, stride as in conv2d_forward

    Returns:
    - cols: shape (f_h*f_w*C_in, N*H_out*W_out);
      cols[(i, j, c), (n, p, q)] = x_pad[n, p*stride + i, q*stride + j, c].
      Rows follow w's memory order, so w.reshape(-1, C_out) pairs with them.
    """
    # Channels first (C, N, H, W) makes each copied run a contiguous image row
    # instead of C_in scattered numbers, and gives wide matrix products, which
    # OpenBLAS runs fastest.
    xcf = x.transpose(3, 0, 1, 2)
    if pad > 0:
        xcf = np.pad(xcf, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    patches = sliding_window_view(xcf, (f_h, f_w), axis=(2, 3))[:, :, ::stride, ::stride]
    # (C, N, H_out, W_out, f_h, f_w) -> (f_h, f_w, C, N, H_out, W_out): one copy.
    cols = np.ascontiguousarray(patches.transpose(4, 5, 0, 1, 2, 3))
    return cols.reshape(f_h * f_w * x.shape[3], -1)


def conv2d_forward(x, w, b, stride=1, pad=0):
    """Forward pass of a convolutional layer (cross-correlation, channels last).

    Inputs:
    - x: input images, shape (N, H, W, C_in)
    - w: filters, shape (f_h, f_w, C_in, C_out)
    - b: biases, shape (C_out,)
    - stride: step between neighbouring windows, int >= 1
    - pad: zeros added on every side of H and W, int >= 0

    Returns:
    - y: output, shape (N, H_out, W_out, C_out) with
      H_out = (H + 2*pad - f_h) // stride + 1, W_out likewise, and
      y[n, p, q, k] = b[k] + sum_{i, j, c} x_pad[n, p*stride + i, q*stride + j, c] * w[i, j, c, k]
    """
    x, w, b = _as_float(x), _as_float(w), _as_float(b)
    stride, pad, h_out, w_out = _check_conv_args(x, w, b, stride, pad)
    f_h, f_w, _, c_out = w.shape
    cols = _im2col(x, f_h, f_w, pad, stride)
    # (C_out, f_h*f_w*C_in) @ (f_h*f_w*C_in, N*H_out*W_out): one matrix product
    # does every window; the wide result is OpenBLAS's fast case.
    y = w.reshape(-1, c_out).T @ cols
    y += b[:, None]
    y = y.reshape(c_out, x.shape[0], h_out, w_out).transpose(1, 2, 3, 0)
    return np.ascontiguousarray(y)


def conv2d_backward(dy, x, w, b, stride=1, pad=0):
    """Backward pass of a convolutional layer.

    Inputs:
    - dy: upstream gradient dL/dy, shape (N, H_out, W_out, C_out)
    - x, w, b, stride, pad: the forward inputs, x (N, H, W, C_in),
      w (f_h, f_w, C_in, C_out), b (C_out,)

    Returns a tuple (dx, dw, db):
    - dx: gradient w.r.t. x, shape (N, H, W, C_in)
    - dw: gradient w.r.t. w, shape (f_h, f_w, C_in, C_out), summed over the batch
    - db: gradient w.r.t. b, shape (C_out,), summed over the batch
    """
    dy, x, w, b = _as_float(dy), _as_float(x), _as_float(w), _as_float(b)
    stride, pad, h_out, w_out = _check_conv_args(x, w, b, stride, pad)
    n, h, wd, c_in = x.shape
    f_h, f_w, _, c_out = w.shape
    _check_dy(dy, (n, h_out, w_out, c_out))

    dy2 = dy.reshape(-1, c_out)                       # (N*H_out*W_out, C_out)
    db = dy2.sum(axis=0)
    # dw pairs every input pixel a weight touched with the gradient it produced.
    dw = (_im2col(x, f_h, f_w, pad, stride) @ dy2).reshape(w.shape)

    # g[i, j, c, n, p, q]: what output (n, p, q) sends back through w[i, j, c, :].
    g = (w.reshape(-1, c_out) @ dy2.T).reshape(f_h, f_w, c_in, n, h_out, w_out)
    # Scatter g to the pixels each offset read (channels first, like _im2col);
    # pixels read by several windows collect all their gradients (+=).
    dxp = np.zeros((c_in, n, h + 2 * pad, wd + 2 * pad))
    for i in range(f_h):
        for j in range(f_w):
            _window(dxp, i, j, h_out, w_out, stride, h_axis=2)[...] += g[i, j]
    dx = dxp[:, :, pad:pad + h, pad:pad + wd].transpose(1, 2, 3, 0)
    return np.ascontiguousarray(dx), dw, db


# --------------------------------------------------------------------------
# Max pooling
# --------------------------------------------------------------------------

def _pool_views(a, size, stride, h_out, w_out):
    """The size*size offset views of a (N, H, W, C), in row-major window order.

    Each view has shape (N, H_out, W_out, C); view k = i*size + j holds element
    (i, j) of every window.
    """
    return [_window(a, i, j, h_out, w_out, stride, h_axis=1)
            for i in range(size) for j in range(size)]


def maxpool_forward(x, size=2, stride=2):
    """Forward pass of max pooling, per channel, no padding.

    Inputs:
    - x: input, shape (N, H, W, C)
    - size: window height and width, int >= 1
    - stride: step between windows, int >= 1 (stride < size gives overlapping windows)

    Returns:
    - y: shape (N, H_out, W_out, C), H_out = (H - size) // stride + 1, W_out likewise;
      windows that do not fit are dropped.
    """
    x = _as_float(x)
    size, stride, h_out, w_out = _check_pool_args(x, size, stride)
    views = _pool_views(x, size, stride, h_out, w_out)
    if len(views) == 1:
        return views[0].copy()
    # A running maximum over the offsets streams through x once per offset;
    # reducing a (..., size, size) windowed view is several times slower.
    y = np.maximum(views[0], views[1])
    for view in views[2:]:
        np.maximum(y, view, out=y)
    return y


def maxpool_backward(dy, x, size=2, stride=2):
    """Backward pass of max pooling.

    Inputs:
    - dy: upstream gradient, shape (N, H_out, W_out, C)
    - x: the forward input, shape (N, H, W, C)
    - size, stride: as in the forward pass

    Returns:
    - dx: shape (N, H, W, C). Each window's gradient goes to its maximum; where a
      window has several equal maxima, all of it goes to the first in row-major
      order. Gradients of overlapping windows add up.
    """
    dy, x = _as_float(dy), _as_float(x)
    size, stride, h_out, w_out = _check_pool_args(x, size, stride)
    _check_dy(dy, (x.shape[0], h_out, w_out, x.shape[3]))
    y = maxpool_forward(x, size, stride)
    dx = np.zeros(x.shape)
    overlap = stride < size
    # Visit the offsets in row-major order; `todo` marks the windows whose
    # gradient is not placed yet, so only the first maximum of a window gets it.
    todo = np.ones(y.shape, dtype=bool)
    hit = np.empty(y.shape, dtype=bool)
    grad = np.empty(y.shape) if overlap else None
    for x_view, dx_view in zip(_pool_views(x, size, stride, h_out, w_out),
                               _pool_views(dx, size, stride, h_out, w_out)):
        np.equal(x_view, y, out=hit)
        hit &= todo
        todo ^= hit                      # hit is a subset of todo: this clears it
        if overlap:
            # A pixel shared by several windows collects all their gradients.
            np.multiply(dy, hit, out=grad)
            dx_view += grad
        else:
            # Disjoint windows: every pixel belongs to at most one, so write directly.
            np.multiply(dy, hit, out=dx_view)
    return dx


# --------------------------------------------------------------------------
# ReLU, linear layer, softmax cross-entropy
# --------------------------------------------------------------------------

def relu_forward(x):
    """ReLU, elementwise.

    Inputs:
    - x: any shape

    Returns:
    - y: same shape as x, max(x, 0)
    """
    return np.maximum(_as_float(x), 0.0)


def relu_backward(dy, x):
    """Backward pass of ReLU.

    Inputs:
    - dy: upstream gradient, same shape as x
    - x: the forward input, any shape

    Returns:
    - dx: same shape as x; dy where x > 0 and 0 elsewhere (0 at exactly x == 0)
    """
    dy, x = _as_float(dy), _as_float(x)
    _check_dy(dy, x.shape, what="x")
    return np.where(x > 0, dy, 0.0)


def linear_forward(x, w, b):
    """Fully connected layer.

    Inputs:
    - x: input, shape (N, D_in)
    - w: weights, shape (D_in, D_out)
    - b: biases, shape (D_out,)

    Returns:
    - y: shape (N, D_out), x @ w + b
    """
    x, w, b = _as_float(x), _as_float(w), _as_float(b)
    _check_linear_args(x, w, b)
    return x @ w + b


def linear_backward(dy, x, w, b):
    """Backward pass of the fully connected layer.

    Inputs:
    - dy: upstream gradient, shape (N, D_out)
    - x, w, b: the forward inputs, x (N, D_in), w (D_in, D_out), b (D_out,)

    Returns a tuple (dx, dw, db):
    - dx: shape (N, D_in)
    - dw: shape (D_in, D_out), summed over the batch
    - db: shape (D_out,), summed over the batch
    """
    dy, x, w, b = _as_float(dy), _as_float(x), _as_float(w), _as_float(b)
    _check_linear_args(x, w, b)
    _check_dy(dy, (x.shape[0], w.shape[1]))
    return dy @ w.T, x.T @ dy, dy.sum(axis=0)


def softmax_cross_entropy(z, labels):
    """Mean cross-entropy of softmax(z) against integer labels, and its gradient.

    Inputs:
    - z: scores, shape (N, K)
    - labels: shape (N,), integers in [0, K)

    Returns a tuple (loss, dz):
    - loss: Python float, mean over the batch of -log softmax(z)[n, labels[n]]
    - dz: shape (N, K), (softmax(z) - onehot(labels)) / N
    """
    z = _as_float(z)
    if z.ndim != 2:
        raise ValueError(f"z must be 2-D (N, K), got shape {z.shape}")
    labels = np.asarray(labels)
    n, k = z.shape
    if n == 0 or k == 0:
        raise ValueError(f"z must have at least one row and one column, got shape {z.shape}")
    if labels.shape != (n,):
        raise ValueError(
            f"labels must have shape ({n},), one per row of z (shape {z.shape}), "
            f"got shape {labels.shape}"
        )
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        if not np.all(labels == np.round(labels)):
            raise ValueError(f"labels must be integers, got {labels!r}")
    labels = labels.astype(np.intp)
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(
            f"labels must lie in [0, {k}) for z of shape {z.shape}, "
            f"got values from {labels.min()} to {labels.max()} (labels shape {labels.shape})"
        )
    # Subtracting each row's max leaves softmax unchanged but keeps exp() finite.
    shifted = z - z.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(n)
    loss = -log_probs[rows, labels].mean()
    dz = np.exp(log_probs)
    dz[rows, labels] -= 1.0
    dz /= n
    return float(loss), dz
