"""The lecture's vanilla recurrent network in NumPy: your file for the `rnn` assignment.

You write the forward pass of the network over one sequence, its loss,
backpropagation through time, text generation by sampling, and the forward pass
of a bidirectional RNN. Replace every ``raise NotImplementedError(...)`` line
with your own code and keep each function's name and arguments exactly as they
are: the grader calls them by name.

The network, for t = 1, ..., T (the lecture's equations):

    a(t)    = b + W h(t-1) + U x(t)
    h(t)    = tanh(a(t))
    o(t)    = c + V h(t)
    yhat(t) = softmax(o(t))
    L       = sum_t -log yhat(t)[y(t)]      (a sum over time, not a mean)

The same U, W, V, b, c serve every time step (parameter sharing). Vectors are
columns multiplied from the left, as on the slides: W h(t-1) is ``W @ h_prev``.

Layout: one sequence at a time, time first. NumPy counts from 0, so row t-1 of
a sequence array holds time t: x[0] is x(1) and h[T-1] is h(T). The state
before the first input, h(0), is the argument h0.

Shapes (T time steps, D inputs, H hidden units, K output symbols):

- x (T, D): the inputs x(1), ..., x(T)
- y (T,): the correct symbols y(1), ..., y(T), ints in [0, K)
- h0 (H,): the initial hidden state h(0)
- U (H, D): input-to-hidden weights
- W (H, H): hidden-to-hidden weights
- V (K, H): hidden-to-output weights
- b (H,): hidden bias
- c (K,): output bias

Rules:

- Import nothing but NumPy. The grader refuses libraries that would do the
  work for you (torch, ...).
- Never write into an input array: the caller still needs it. ``a += ...`` or
  ``a[...] = ...`` on an argument changes the caller's array, so build your
  results in new arrays.
- Loops are allowed (the recurrence needs one over time anyway). A correct loop
  version gets full marks; speed is reported, not scored.

Checking your work: in a terminal, in the folder that holds this file, run

    grade rnn_layers.py

(or ``python -m grader rnn_layers.py``). It runs the public checks and prints,
for each function, whether it passed and, if not, what went wrong.
"""

import numpy as np  # noqa: F401 - students use it; a linter must not remove it


def rnn_forward(x, h0, U, W, V, b, c):
    """Forward pass of the RNN over one sequence.

    Starting from h(0) = h0, compute for t = 1, ..., T the hidden state h(t) and
    the output distribution yhat(t) with the equations at the top of this file.
    Each h(t) needs h(t-1), so the time steps are computed one after the other,
    all with the same U, W, V, b, c.

    Inputs:
    - x: input sequence, shape (T, D); row t-1 is x(t)
    - h0: initial hidden state h(0), shape (H,)
    - U: input-to-hidden weights, shape (H, D)
    - W: hidden-to-hidden weights, shape (H, H)
    - V: hidden-to-output weights, shape (K, H)
    - b: hidden bias, shape (H,)
    - c: output bias, shape (K,)

    Returns a tuple (h, yhat):
    - h: hidden states h(1), ..., h(T), shape (T, H); h(0) is not included
    - yhat: output distributions yhat(1), ..., yhat(T), shape (T, K); every
      row sums to 1
    """
    raise NotImplementedError("rnn_forward: write the forward pass over the sequence here")


def rnn_loss(yhat, y):
    """Cross-entropy loss of one sequence, summed over time.

        L = sum over t of -log yhat(t)[y(t)]

    Each term is minus the log of the probability that the network gives the
    correct symbol at step t.

    Inputs:
    - yhat: output distributions, shape (T, K), as rnn_forward returns them
    - y: the correct symbols, shape (T,), ints in [0, K)

    Returns:
    - L: the loss, a float
    """
    raise NotImplementedError("rnn_loss: write the summed cross-entropy here")


def rnn_backward(x, y, h0, h, yhat, U, W, V, b, c):
    """Backpropagation through time: the gradients of L from rnn_forward and rnn_loss.

    First the gradients with respect to the nodes, from t = T down to t = 1
    (the lecture's formulas; diag(1 - h(t)^2) is the derivative of tanh at a(t),
    written with its output h(t)):

        dL/do(t) = yhat(t) - onehot(y(t))
        dL/dh(T) = V^T dL/do(T)
        dL/dh(t) = V^T dL/do(t) + W^T diag(1 - h(t+1)^2) dL/dh(t+1)    for t < T

    Then the parameters, whose gradients add up over all the time steps that
    share them:

        dL/dc  = sum_t dL/do(t)
        dL/dV  = sum_t dL/do(t) h(t)^T
        dL/db  = sum_t diag(1 - h(t)^2) dL/dh(t)
        dL/dW  = sum_t diag(1 - h(t)^2) dL/dh(t) h(t-1)^T
        dL/dU  = sum_t diag(1 - h(t)^2) dL/dh(t) x(t)^T

    and h0 = h(0), which reaches L only through a(1):

        dL/dh0 = W^T diag(1 - h(1)^2) dL/dh(1)

    Inputs:
    - x: input sequence, shape (T, D)
    - y: the correct symbols, shape (T,), ints in [0, K)
    - h0: initial hidden state h(0), shape (H,)
    - h: hidden states h(1), ..., h(T) from rnn_forward, shape (T, H)
    - yhat: output distributions from rnn_forward, shape (T, K)
    - U: input-to-hidden weights, shape (H, D)
    - W: hidden-to-hidden weights, shape (H, H)
    - V: hidden-to-output weights, shape (K, H)
    - b: hidden bias, shape (H,)
    - c: output bias, shape (K,)

    Returns a dict with the keys "U", "W", "V", "b", "c", "h0":
    - "U": dL/dU, shape (H, D)
    - "W": dL/dW, shape (H, H)
    - "V": dL/dV, shape (K, H)
    - "b": dL/db, shape (H,)
    - "c": dL/dc, shape (K,)
    - "h0": dL/dh0, shape (H,)
    """
    raise NotImplementedError("rnn_backward: write backpropagation through time here")


def rnn_sample(h0, x0, n, U, W, V, b, c, rng):
    """Generate n symbols with the RNN, as in the lecture's text generation.

    Inputs are one-hot vectors over the same K symbols as the outputs, so D == K.
    Start from h(0) = h0 with the symbol x0 as the first input, and repeat n
    times: feed the current symbol as a one-hot x(t), compute h(t) and yhat(t),
    draw the next symbol at random with the probabilities yhat(t), and make it
    the next input. Draw from yhat(t) (for example with rng.choice) rather than
    taking its most likely symbol, and use only `rng` for randomness.

    Inputs:
    - h0: initial hidden state h(0), shape (H,)
    - x0: the first input symbol, an int in [0, K)
    - n: how many symbols to generate, int >= 0
    - U: input-to-hidden weights, shape (H, K)
    - W: hidden-to-hidden weights, shape (H, H)
    - V: hidden-to-output weights, shape (K, H)
    - b: hidden bias, shape (H,)
    - c: output bias, shape (K,)
    - rng: a numpy.random.Generator, the only source of randomness

    Returns:
    - the n generated symbols, in order and without x0: a list of n ints in [0, K)
    """
    raise NotImplementedError("rnn_sample: write the sampling loop here")


def birnn_forward(x, h0, g0, Uf, Wf, bf, Ub, Wb, bb, V, c):
    """Forward pass of a bidirectional RNN over one sequence (the lecture's design pattern 3).

    The h recurrence carries information forward in time and the g recurrence
    carries it backward, so the output at time t depends on the whole sequence:

        h(t)    = tanh(bf + Wf h(t-1) + Uf x(t))   for t = 1, ..., T, from h(0) = h0
        g(t)    = tanh(bb + Wb g(t+1) + Ub x(t))   for t = T, ..., 1, from g(T+1) = g0
        o(t)    = c + V [h(t); g(t)]
        yhat(t) = softmax(o(t))

    where [h(t); g(t)] stacks the two states into one column of length 2H.

    Inputs:
    - x: input sequence, shape (T, D)
    - h0: initial state of the forward recurrence h(0), shape (H,)
    - g0: initial state of the backward recurrence g(T+1), shape (H,)
    - Uf: input weights of the forward recurrence, shape (H, D)
    - Wf: recurrent weights of the forward recurrence, shape (H, H)
    - bf: bias of the forward recurrence, shape (H,)
    - Ub: input weights of the backward recurrence, shape (H, D)
    - Wb: recurrent weights of the backward recurrence, shape (H, H)
    - bb: bias of the backward recurrence, shape (H,)
    - V: output weights, shape (K, 2H); the first H columns act on h(t), the
      last H on g(t)
    - c: output bias, shape (K,)

    Returns a tuple (h, g, yhat), each with row t-1 for time t:
    - h: forward states h(1), ..., h(T), shape (T, H)
    - g: backward states g(1), ..., g(T), shape (T, H); g(T), the first one
      computed, is the last row
    - yhat: output distributions yhat(1), ..., yhat(T), shape (T, K)
    """
    raise NotImplementedError("birnn_forward: write the two recurrences and the output here")
