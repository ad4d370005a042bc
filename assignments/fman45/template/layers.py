"""FMAN45 Assignment 3: layers.py (assignment `fman45`): the file you write and hand
in.

Assignment 3's layers in NumPy, with the batch last: you complete the fully
connected layer, the ReLU and the softmax loss, forward and backward. The
convolution and pooling in the same file are the course's.

Write the functions below. Keep each one's name and parameters exactly as they are:
the grader calls them by name, with arrays in the shapes their docstrings give, and
judges them by what they return. Replace every ``raise NotImplementedError(...)``
line with your own code.

Shapes: an axis of size 1 is part of the shape: b is (out, 1), and what you return
in its place must keep that shape.

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

# The course's own code, which you do not write and which is not graded: this file
# holds it too, as the course gives it (checks across layers call it beside your
# functions). Keep the course's version of:
#     conv_with_padding_forward(x, w, b, padding)
#     conv_with_padding_backward(x, dldy, w, b, padding)
#     maxpooling_forward(x)
#     maxpooling_backward(x, dldy)
#     convolution_forward
#     convolution_backward


def fully_connected_forward(X, W, b):
    """Forward pass of a fully connected layer: each output is a weighted sum of all of
    an example's inputs plus a bias.

    Z = W X + b, one column per example. In the course's network X can have more axes,
    the batch still last: read it as (features, N) by reshaping in column-major order
    (order='F').

    Inputs:
    - X: input, shape (features, N)
    - W: weights, shape (out, features)
    - b: biases, shape (out, 1)

    Returns:
    - Z: the output, shape (out, N)
    """
    raise NotImplementedError("fully_connected_forward: write your code here")


def fully_connected_backward(X, dldZ, W, b):
    """Backward pass of a fully connected layer: the loss's gradients with respect to
    the input, the weights and the biases.

    Every gradient has the shape of its variable: dldX that of X as it came in (reshape
    back in column-major order), dldb a column like b.

    Inputs:
    - X: the forward's input, shape (features, N)
    - dldZ: upstream gradient, of the loss with respect to the forward's output, shape
      (out, N)
    - W: the forward's weights, shape (out, features)
    - b: the forward's biases, shape (out, 1)

    Returns a tuple (dldX, dldW, dldb):
    - dldX: gradient with respect to the input, shape (features, N)
    - dldW: gradient with respect to the weights, summed over the batch, shape
      (out, features)
    - dldb: gradient with respect to the biases, summed over the batch, shape (out, 1)
    """
    raise NotImplementedError("fully_connected_backward: write your code here")


def relu_forward(X):
    """Rectified linear unit, elementwise: max(x, 0).

    Inputs:
    - X: input, any shape

    Returns:
    - Z: the output, same shape as X
    """
    raise NotImplementedError("relu_forward: write your code here")


def relu_backward(X, dldZ):
    """Backward pass of the ReLU: the gradient passes where the input was positive and
    stops where it was negative (at exactly 0, either is accepted).

    Mind the order: the forward's input X comes first, then the upstream gradient.

    Inputs:
    - X: the forward's input, any shape
    - dldZ: upstream gradient, of the loss with respect to the forward's output, same
      shape as X

    Returns:
    - dldX: gradient with respect to the input, same shape as X
    """
    raise NotImplementedError("relu_backward: write your code here")


def softmaxloss_forward(x, labels):
    """Softmax of each example's scores followed by the cross-entropy loss, -log of the
    correct class's probability, averaged over the batch; its gradient carries the same
    1/N. Subtracting each example's largest score first keeps exp from overflowing.

    x holds one column of class scores per example. Returns the loss alone;
    softmaxloss_backward returns its gradient. The labels may come as (N,), (1, N) or
    (N, 1): flatten them.

    Inputs:
    - x: scores, shape (classes, N)
    - labels: the correct class of each example, ints from 0, shape (N,) or (1, N) or
      (N, 1)

    Returns:
    - L: the mean loss over the batch, a float
    """
    raise NotImplementedError("softmaxloss_forward: write your code here")


def softmaxloss_backward(x, labels):
    """Softmax of each example's scores followed by the cross-entropy loss, -log of the
    correct class's probability, averaged over the batch; its gradient carries the same
    1/N. Subtracting each example's largest score first keeps exp from overflowing.

    The gradient of softmaxloss_forward's loss with respect to x, already divided by N,
    in x's shape. Leave labels as they are: the caller passes the same array to the
    forward and the backward.

    Inputs:
    - x: scores, shape (classes, N)
    - labels: the correct class of each example, ints from 0, shape (N,) or (1, N) or
      (N, 1)

    Returns:
    - dldx: gradient of the mean loss with respect to the scores, shape (classes, N)
    """
    raise NotImplementedError("softmaxloss_backward: write your code here")
