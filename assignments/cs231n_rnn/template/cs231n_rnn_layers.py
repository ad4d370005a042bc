"""CS231n assignment 3: rnn_layers.py (assignment `cs231n_rnn`): the file you write
and hand in.

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

    grade cs231n_rnn_layers.py

(or ``python -m grader cs231n_rnn_layers.py``). It runs the public checks and
prints, for each function, whether it passed and, if not, what went wrong.
"""

import numpy as np  # noqa: F401 - students use it; a linter must not remove it

# The course's own code, which you do not write and which is not graded: this file
# holds it too, as the course gives it (checks across layers call it beside your
# functions). Keep the course's version of:
#     sigmoid
#     temporal_affine_forward
#     temporal_affine_backward
#     temporal_softmax_loss


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """The course's rnn_step_forward.

    Inputs:
    - x: shape (N, D)
    - prev_h: shape (N, H)
    - Wx: shape (D, H)
    - Wh: shape (H, H)
    - b: shape (H,)

    Returns a tuple (next_h, cache):
    - next_h: shape (N, H)
    - cache: anything you need later; rnn_step_backward receives it back
    """
    raise NotImplementedError("rnn_step_forward: write your code here")


def rnn_step_backward(dnext_h, cache):
    """The course's rnn_step_backward.

    Inputs:
    - dnext_h: shape (N, H)
    - cache: what rnn_step_forward returned as its cache, for the same inputs

    Returns a tuple (dx, dprev_h, dWx, dWh, db):
    - dx: shape (N, D)
    - dprev_h: shape (N, H)
    - dWx: shape (D, H)
    - dWh: shape (H, H)
    - db: shape (H,)
    """
    raise NotImplementedError("rnn_step_backward: write your code here")


def rnn_forward(x, h0, Wx, Wh, b):
    """The course's rnn_forward.

    Inputs:
    - x: shape (N, T, D)
    - h0: shape (N, H)
    - Wx: shape (D, H)
    - Wh: shape (H, H)
    - b: shape (H,)

    Returns a tuple (h, cache):
    - h: shape (N, T, H)
    - cache: anything you need later; rnn_backward receives it back
    """
    raise NotImplementedError("rnn_forward: write your code here")


def rnn_backward(dh, cache):
    """The course's rnn_backward.

    Inputs:
    - dh: shape (N, T, H)
    - cache: what rnn_forward returned as its cache, for the same inputs

    Returns a tuple (dx, dh0, dWx, dWh, db):
    - dx: shape (N, T, D)
    - dh0: shape (N, H)
    - dWx: shape (D, H)
    - dWh: shape (H, H)
    - db: shape (H,)
    """
    raise NotImplementedError("rnn_backward: write your code here")


def word_embedding_forward(x, W):
    """The course's word_embedding_forward.

    Inputs:
    - x: shape (N, T)
    - W: shape (K, D)

    Returns a tuple (out, cache):
    - out: shape (N, T, D)
    - cache: anything you need later; word_embedding_backward receives it back
    """
    raise NotImplementedError("word_embedding_forward: write your code here")


def word_embedding_backward(dout, cache):
    """The course's word_embedding_backward.

    Inputs:
    - dout: shape (N, T, D)
    - cache: what word_embedding_forward returned as its cache, for the same inputs

    Returns:
    - dW: shape (K, D)
    """
    raise NotImplementedError("word_embedding_backward: write your code here")


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """The course's lstm_step_forward.

    Inputs:
    - x: shape (N, D)
    - prev_h: shape (N, H)
    - prev_c: shape (N, H)
    - Wx: shape (D, 4H)
    - Wh: shape (H, 4H)
    - b: shape (4H,)

    Returns a tuple (next_h, next_c, cache):
    - next_h: shape (N, H)
    - next_c: shape (N, H)
    - cache: anything you need later; lstm_step_backward receives it back
    """
    raise NotImplementedError("lstm_step_forward: write your code here")


def lstm_step_backward(dnext_h, dnext_c, cache):
    """The course's lstm_step_backward.

    Inputs:
    - dnext_h: shape (N, H)
    - dnext_c: shape (N, H)
    - cache: what lstm_step_forward returned as its cache, for the same inputs

    Returns a tuple (dx, dprev_h, dprev_c, dWx, dWh, db):
    - dx: shape (N, D)
    - dprev_h: shape (N, H)
    - dprev_c: shape (N, H)
    - dWx: shape (D, 4H)
    - dWh: shape (H, 4H)
    - db: shape (4H,)
    """
    raise NotImplementedError("lstm_step_backward: write your code here")


def lstm_forward(x, h0, Wx, Wh, b):
    """The course's lstm_forward.

    Inputs:
    - x: shape (N, T, D)
    - h0: shape (N, H)
    - Wx: shape (D, 4H)
    - Wh: shape (H, 4H)
    - b: shape (4H,)

    Returns a tuple (h, cache):
    - h: shape (N, T, H)
    - cache: anything you need later; lstm_backward receives it back
    """
    raise NotImplementedError("lstm_forward: write your code here")


def lstm_backward(dh, cache):
    """The course's lstm_backward.

    Inputs:
    - dh: shape (N, T, H)
    - cache: what lstm_forward returned as its cache, for the same inputs

    Returns a tuple (dx, dh0, dWx, dWh, db):
    - dx: shape (N, T, D)
    - dh0: shape (N, H)
    - dWx: shape (D, 4H)
    - dWh: shape (H, 4H)
    - db: shape (4H,)
    """
    raise NotImplementedError("lstm_backward: write your code here")
