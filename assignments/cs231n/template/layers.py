"""CS231n assignment 2: layers.py (assignment `cs231n`): the file you write and hand
in.

Assignment 2's layers in NumPy, with the batch first: every forward returns
(out, cache), and its backward receives that cache with the upstream gradient. What
a cache holds is up to you.

Write the functions below. Keep each one's name and parameters exactly as they are:
the grader calls them by name, with arrays in the shapes their docstrings give, and
judges them by what they return. Replace every ``raise NotImplementedError(...)``
line with your own code.

Shapes: the batch is the first axis of every array, one example per row or first
index (N examples).

Rules:

- Import nothing but NumPy: the grader refuses torch, tensorflow, jax and
  scipy.signal.
- Never write into an input array, the upstream gradient included: the caller still
  needs it. ``a += ...`` or ``a[...] = ...`` on an argument changes the caller's
  array, so build your results in new arrays.
- Loops are allowed: a correct loop version gets full marks; speed is reported, not
  scored.

Checking your work: in a terminal, in the folder that holds this file, run

    grade layers.py

(or ``python -m grader layers.py``). It runs the public checks and prints, for each
function, whether it passed and, if not, what went wrong.
"""

import numpy as np  # noqa: F401 - students use it; a linter must not remove it


def affine_forward(x, w, b):
    """Forward pass of a fully connected layer: each output is a weighted sum of all of
    an example's inputs plus a bias.

    out = x w + b, one row per example. In a network x can have more axes after the
    batch: flatten them in row-major order to (N, D).

    Inputs:
    - x: input, shape (N, D)
    - w: weights, shape (D, M)
    - b: biases, shape (M,)

    Returns a tuple (out, cache):
    - out: the output, shape (N, M)
    - cache: anything you need later; affine_backward receives it back
    """
    raise NotImplementedError("affine_forward: write your code here")


def affine_backward(dout, cache):
    """Backward pass of a fully connected layer: the loss's gradients with respect to
    the input, the weights and the biases.

    dx has the shape x had in the forward.

    Inputs:
    - dout: upstream gradient, of the loss with respect to the forward's output, shape
      (N, M)
    - cache: what affine_forward returned as its cache, for the same inputs

    Returns a tuple (dx, dw, db):
    - dx: gradient with respect to the input, shape (N, D)
    - dw: gradient with respect to the weights, summed over the batch, shape (D, M)
    - db: gradient with respect to the biases, summed over the batch, shape (M,)
    """
    raise NotImplementedError("affine_backward: write your code here")


def relu_forward(x):
    """Rectified linear unit, elementwise: max(x, 0).

    Inputs:
    - x: input, any shape

    Returns a tuple (out, cache):
    - out: the output, same shape as x
    - cache: anything you need later; relu_backward receives it back
    """
    raise NotImplementedError("relu_forward: write your code here")


def relu_backward(dout, cache):
    """Backward pass of the ReLU: the gradient passes where the input was positive and
    stops where it was negative (at exactly 0, either is accepted).

    Inputs:
    - dout: upstream gradient, of the loss with respect to the forward's output, same
      shape as the forward's input
    - cache: what relu_forward returned as its cache, for the same inputs

    Returns:
    - dx: gradient with respect to the input, same shape as dout
    """
    raise NotImplementedError("relu_backward: write your code here")


def conv_forward_naive(x, w, b, conv_param):
    """Forward pass of a convolutional layer: every filter slides over the zero-padded
    images as it is (never flipped), and each output is the sum of the products under
    the filter plus the filter's bias.

    Cross-correlation, as the notes define it: the filter is laid on the image as it is,
    never flipped; zeros pad every side of H and W alike. The output exists where the
    stride fits: H + 2 pad - HH and W + 2 pad - WW divisible by the stride, and only
    such inputs are graded. Leave x as it is.

    Inputs:
    - x: input images, shape (N, C, H, W)
    - w: filters, shape (F, C, HH, WW)
    - b: biases, one per filter, shape (F,)
    - conv_param: a dict with the keys 'stride' (step between filter positions, an int
      >= 1) and 'pad' (zeros added on every side of the image's height and width, an int
      >= 0)

    Returns a tuple (out, cache):
    - out: the output, shape (N, F, H', W')
    - cache: anything you need later; conv_backward_naive receives it back
    """
    raise NotImplementedError("conv_forward_naive: write your code here")


def conv_backward_naive(dout, cache):
    """Backward pass of a convolutional layer: the loss's gradients with respect to the
    input, the filters and the biases; a weight's gradient adds up every position and
    every example it was used for.

    Inputs:
    - dout: upstream gradient, of the loss with respect to the forward's output, shape
      (N, F, H', W')
    - cache: what conv_forward_naive returned as its cache, for the same inputs

    Returns a tuple (dx, dw, db):
    - dx: gradient with respect to the input, shape (N, C, H, W)
    - dw: gradient with respect to the filters, summed over the batch, shape
      (F, C, HH, WW)
    - db: gradient with respect to the biases, summed over the batch, shape (F,)
    """
    raise NotImplementedError("conv_backward_naive: write your code here")


def max_pool_forward_naive(x, pool_param):
    """Forward pass of max pooling, each channel on its own: a window moves over the
    image without padding and each output keeps the largest value under it.

    No padding. The output exists where the stride fits: H - pool_height and W -
    pool_width divisible by the stride, and only such inputs are graded.

    Inputs:
    - x: input, shape (N, C, H, W)
    - pool_param: a dict with the keys 'pool_height' and 'pool_width' (the window's
      height and width, an int) and 'stride' (step between windows, an int >= 1)

    Returns a tuple (out, cache):
    - out: the output, shape (N, C, H', W')
    - cache: anything you need later; max_pool_backward_naive receives it back
    """
    raise NotImplementedError("max_pool_forward_naive: write your code here")


def max_pool_backward_naive(dout, cache):
    """Backward pass of max pooling: each window's gradient goes to the element that was
    its maximum (any split among tied maxima), and where windows overlap the gradients
    add up.

    Find again, from what the cache holds, where each window's maximum was: every other
    element's gradient is zero.

    Inputs:
    - dout: upstream gradient, of the loss with respect to the forward's output, shape
      (N, C, H', W')
    - cache: what max_pool_forward_naive returned as its cache, for the same inputs

    Returns:
    - dx: gradient with respect to the input, shape (N, C, H, W)
    """
    raise NotImplementedError("max_pool_backward_naive: write your code here")


def softmax_loss(x, y):
    """Softmax of each example's scores followed by the cross-entropy loss, -log of the
    correct class's probability, averaged over the batch; its gradient carries the same
    1/N. Subtracting each example's largest score first keeps exp from overflowing.

    One row of class scores per example; y[i] is example i's class, 0 <= y[i] < C.
    Returns the loss averaged over the batch and its gradient, already divided by N.

    Inputs:
    - x: scores, shape (N, C)
    - y: the correct class of each example, ints from 0, shape (N,)

    Returns a tuple (loss, dx):
    - loss: the mean loss over the batch, a float
    - dx: gradient of the mean loss with respect to the scores, shape (N, C)
    """
    raise NotImplementedError("softmax_loss: write your code here")
