"""Layers of a small convolutional network in NumPy: your file for the `cnn` assignment.

The lecture's typical CNN stacks convolution, ReLU and max pooling a few times
and ends with fully connected layers; a softmax with the cross-entropy loss
turns the last scores into a number to minimise. Here you write each of these
building blocks: a forward pass and, where the layer has one, a backward pass
that returns the gradients backpropagation needs. Replace every
``raise NotImplementedError(...)`` line with your own code and keep each
function's name and arguments exactly as they are: the grader calls them by name.

Layout (the lecture's, and the one the grader feeds you):

- A batch comes first and channels come last: N images of H x W pixels with
  C channels form an array of shape (N, H, W, C).
- A convolutional layer's filters form an array of shape (f_h, f_w, C_in, C_out):
  C_out filters of f_h x f_w pixels, each spanning all C_in input channels.
  For example (5, 5, 3, 10) holds ten 5x5 filters over 3 channels and gives
  10 output channels. Every output channel has one bias, so b has shape (C_out,).
- Convolution is the lecture's sliding dot product: the filter is laid on the
  image as it is, never flipped. Padding adds zeros around H and W only.
- The lecture counts from 1 and NumPy from 0: the lecture's x(i, j, c) of
  image n is x[n, i-1, j-1, c-1] here.

Rules:

- Import nothing but NumPy. The grader refuses libraries that would do the
  work for you (torch, scipy.signal, ...).
- Never write into an input array, the upstream gradient dy included: the
  caller still needs it. ``a += ...`` or ``a[...] = ...`` on an argument changes
  the caller's array, so build your results in new arrays.
- Loops are allowed. A correct loop version gets full marks; speed is reported,
  not scored.

Checking your work: in a terminal, in the folder that holds this file, run

    grade cnn_layers.py

(or ``python -m grader cnn_layers.py``). It runs the public checks and prints,
for each function, whether it passed and, if not, what went wrong.
"""

import numpy as np  # noqa: F401 - students use it; a linter must not remove it


def conv_output_size(n, f, pad=0, stride=1):
    """Size of a convolution's output along one axis (height or width).

    The lecture's rules: a 7x7 image and a 3x3 filter give a 5x5 output,
    n - f + 1 along each axis; padding with (f - 1)/2 zeros on each side keeps
    the size; a stride of k gives (n - f)/k + 1. Combined, and rounded down where
    the stride does not divide evenly (as common frameworks do):

        (n + 2*pad - f) // stride + 1

    Inputs:
    - n: size of the input along the axis, int
    - f: size of the filter along the same axis, int
    - pad: number of zeros added on each side, int >= 0
    - stride: step between neighbouring filter positions, int >= 1

    Returns:
    - the output size along the axis, int

    Raises ValueError if the filter does not fit (f > n + 2*pad), if stride < 1
    or if pad < 0.
    """
    raise NotImplementedError("conv_output_size: write the output-size rule here")


def conv2d_forward(x, w, b, stride=1, pad=0):
    """Forward pass of a convolutional layer.

    Every filter slides over the zero-padded image in steps of `stride`. At each
    position the patch under the filter and the filter are multiplied
    elementwise, everything is added up over the filter's rows, columns and all
    input channels, and the filter's bias is added: one number per position.
    Filter k gives output channel k. With 0-based indices and xp the input with
    `pad` zeros on every side of H and W:

        y[n, i, j, k] = b[k] + sum over s, t, c of
                        w[s, t, c, k] * xp[n, i*stride + s, j*stride + t, c]

    Inputs:
    - x: input images, shape (N, H, W, C_in)
    - w: filters, shape (f_h, f_w, C_in, C_out)
    - b: biases, one per filter, shape (C_out,)
    - stride: step between neighbouring filter positions, int >= 1
    - pad: zeros added on every side of H and W, int >= 0

    Returns:
    - y: output, shape (N, H_out, W_out, C_out), where
      H_out = conv_output_size(H, f_h, pad, stride) and
      W_out = conv_output_size(W, f_w, pad, stride)
    """
    raise NotImplementedError("conv2d_forward: write the convolution's forward pass here")


def conv2d_backward(dy, x, w, b, stride=1, pad=0):
    """Backward pass of a convolutional layer.

    Given dy, the gradient of the loss L with respect to the output of
    conv2d_forward(x, w, b, stride, pad), return the gradients of L with respect
    to x, w and b. The same filter weights are used at every position and for
    every image (weight sharing), so a weight's gradient adds up the
    contributions of all of them. An input pixel that several filter positions
    cover receives a contribution from each.

    Inputs:
    - dy: upstream gradient dL/dy, shape (N, H_out, W_out, C_out), like the
      forward output
    - x: the forward input, shape (N, H, W, C_in)
    - w: the forward filters, shape (f_h, f_w, C_in, C_out)
    - b: the forward biases, shape (C_out,)
    - stride: the forward stride, int
    - pad: the forward padding, int

    Returns a tuple (dx, dw, db):
    - dx: dL/dx, shape (N, H, W, C_in)
    - dw: dL/dw, shape (f_h, f_w, C_in, C_out), summed over the batch
    - db: dL/db, shape (C_out,), summed over the batch
    """
    raise NotImplementedError("conv2d_backward: write the convolution's backward pass here")


def maxpool_forward(x, size=2, stride=2):
    """Forward pass of max pooling, each channel on its own.

    A size x size window moves over every channel in steps of `stride`, without
    padding, and each output keeps the largest value in its window: the
    strongest activation. The defaults give the lecture's 2x2 max pooling,

        y[n, i, j, c] = max(x[n, 2i, 2j, c],   x[n, 2i, 2j+1, c],
                            x[n, 2i+1, 2j, c], x[n, 2i+1, 2j+1, c])

    Windows that would stick out of the image are left out, and windows overlap
    when stride < size.

    Inputs:
    - x: input, shape (N, H, W, C)
    - size: height and width of a window, int >= 1
    - stride: step between neighbouring windows, int >= 1

    Returns:
    - y: output, shape (N, H_out, W_out, C), where
      H_out = (H - size) // stride + 1 and W_out = (W - size) // stride + 1
    """
    raise NotImplementedError("maxpool_forward: write max pooling's forward pass here")


def maxpool_backward(dy, x, size=2, stride=2):
    """Backward pass of max pooling.

    Only the largest element of a window decides that window's output, so the
    window's gradient dy[n, i, j, c] goes to that element and the other elements
    of the window get nothing from it. Where a window holds several equal
    maxima, any split of its gradient among them that adds up to dy[n, i, j, c]
    is correct; giving all of it to one of them is the simplest. With
    overlapping windows (stride < size) an element can be the maximum of several
    windows, and then the gradients of all of them add up there.

    Inputs:
    - dy: upstream gradient dL/dy, shape (N, H_out, W_out, C), like the forward
      output
    - x: the forward input, shape (N, H, W, C)
    - size: the forward window size, int
    - stride: the forward stride, int

    Returns:
    - dx: dL/dx, shape (N, H, W, C)
    """
    raise NotImplementedError("maxpool_backward: write max pooling's backward pass here")


def relu_forward(x):
    """Rectified linear unit, elementwise: y = max(x, 0).

    Inputs:
    - x: input of any shape, e.g. (N, H, W, C) after a convolution or (N, D)
      after a fully connected layer

    Returns:
    - y: output, same shape as x
    """
    raise NotImplementedError("relu_forward: write the ReLU here")


def relu_backward(dy, x):
    """Backward pass of the ReLU.

    The gradient flows through where the input was positive and stops where it
    was negative: dx = dy where x > 0 and dx = 0 where x < 0. At x == 0 exactly,
    either choice is accepted.

    Inputs:
    - dy: upstream gradient dL/dy, same shape as x
    - x: the forward input, any shape, e.g. (N, D)

    Returns:
    - dx: dL/dx, same shape as x
    """
    raise NotImplementedError("relu_backward: write the ReLU's backward pass here")


def linear_forward(x, w, b):
    """Fully connected layer: each output is a weighted sum of all inputs plus a bias.

        y[n, j] = b[j] + sum over i of x[n, i] * w[i, j]

    Each row of x is one example. A feature map from the convolutional part,
    shape (N, H, W, C), becomes such rows once it is reshaped to (N, H*W*C).

    Inputs:
    - x: input, shape (N, D_in)
    - w: weights, shape (D_in, D_out)
    - b: biases, shape (D_out,)

    Returns:
    - y: output, shape (N, D_out)
    """
    raise NotImplementedError("linear_forward: write the fully connected layer here")


def linear_backward(dy, x, w, b):
    """Backward pass of the fully connected layer.

    Inputs:
    - dy: upstream gradient dL/dy, shape (N, D_out)
    - x: the forward input, shape (N, D_in)
    - w: the forward weights, shape (D_in, D_out)
    - b: the forward biases, shape (D_out,)

    Returns a tuple (dx, dw, db):
    - dx: dL/dx, shape (N, D_in)
    - dw: dL/dw, shape (D_in, D_out), summed over the batch
    - db: dL/db, shape (D_out,), summed over the batch
    """
    raise NotImplementedError("linear_backward: write the fully connected layer's backward pass here")


def softmax_cross_entropy(z, labels):
    """Softmax of the scores followed by the cross-entropy loss, averaged over the batch.

    For example n, softmax turns the scores z[n] into probabilities
    p[n, k] = exp(z[n, k]) / sum over j of exp(z[n, j]), and the example's loss
    is -log p[n, labels[n]]. The loss returned is the mean of these over the N
    examples, and dz its gradient with respect to z (so it carries the 1/N of
    the mean). exp overflows for large scores; subtracting each row's largest
    score from the row first leaves the probabilities unchanged and avoids that.

    Inputs:
    - z: scores, shape (N, K): one row per example, one column per class
    - labels: the correct class of each example, shape (N,), ints in [0, K)

    Returns a tuple (loss, dz):
    - loss: the mean cross-entropy over the batch, a float
    - dz: dL/dz, shape (N, K)
    """
    raise NotImplementedError("softmax_cross_entropy: write the softmax and its loss here")
