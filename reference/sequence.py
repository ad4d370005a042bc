"""Reference layers for batches of sequences: the vanilla RNN's step and recurrence,
word embedding, the LSTM, and the output layer and loss over time.

This is the canonical form of what CS231n's assignment 3 (`rnn_layers.py`) asks
for, in the convention of reference/rnn.py.

Layout
------
Batch first, then time, then features; row n of every array is example n:

    x (N, T, D) inputs, h (N, T, H) hidden states, x[:, t-1] = x(t), h[:, t-1] = h(t)
    one step: x (N, D), h_prev (N, H), h (N, H)

Matrices keep the slides' (out, in) shapes of reference/rnn.py, so that for each
example the recurrence reads exactly as there:

    a(t) = b + W h(t-1) + U x(t),   h(t) = tanh(a(t))      U (H, D), W (H, H), b (H,)

On a batch of row vectors that is a = b + h_prev @ W.T + x @ U.T. With N = 1,
x[0] and h[0] are rnn.py's x (T, D) and h (T, H) for the same h0, U, W, b.

The LSTM stacks its four gates in one pre-activation a (N, 4H), blocks of H in the
order i, f, o, g, with U (4H, D), W (4H, H), b (4H,) stacked the same way
(rows k*H to (k+1)*H - 1 belong to gate k):

    a = b + h_prev @ W.T + x @ U.T
    i = sigmoid(a[:, 0:H])    f = sigmoid(a[:, H:2H])
    o = sigmoid(a[:, 2H:3H])  g = tanh(a[:, 3H:4H])
    c = f * c_prev + i * g,   h = o * tanh(c)

Here c is the LSTM's cell state (c_prev, c0). In temporal_affine_* c keeps its
meaning of reference/rnn.py, the output bias: o(t) = c + V h(t), V (K, H), c (K,).
Word vectors are the rows of E (K, D): word k is E[k]; x holds integer word indices
(N, T) in [0, K). temporal_softmax_loss sums the cross-entropy over the time steps
the mask keeps and averages over the batch (CS231n's definition; with N = 1 and
every step kept it is rnn.py's rnn_loss).

Forward and backward
--------------------
A forward returns its outputs only (no cache). A backward takes the upstream
gradient(s) first, then exactly the forward's inputs, in the forward's order and
under the same names, and returns the gradients of the forward's float inputs in
that order, as a tuple:

    rnn_backward(dh, x, h0, U, W, b) -> (dx, dh0, dU, dW, db)

It recomputes the forward from those inputs (one more forward pass) instead of
taking the forward's outputs as reference/rnn.py's rnn_backward does: a backward
is then a function of its arguments alone, the vector-Jacobian product of the
forward at those inputs, and no state that disagrees with them can be passed in.

CS231n's assignment 3 onto this module (transposes and renames only)
--------------------------------------------------------------------
CS231n works on row vectors with (in, out) matrices Wx (D, H), Wh (H, H), and on
the LSTM Wx (D, 4H), Wh (H, 4H), b (4H,) in the same gate order i, f, o, g, so

    U = Wx.T,  W = Wh.T,  b = b;        dWx = dU.T,  dWh = dW.T

and x, h0, h, prev_h (h_prev), prev_c (c_prev), dh keep their shapes. Each CS231n
forward returns (out, cache); its backward(dout, cache) is this module's backward
called with the inputs that forward was given.

    rnn_step_forward(x, prev_h, Wx, Wh, b) -> next_h, cache
        = rnn_step_forward(x, prev_h, Wx.T, Wh.T, b)
    rnn_step_backward(dnext_h, cache) -> dx, dprev_h, dWx, dWh, db
        = rnn_step_backward(dnext_h, x, prev_h, Wx.T, Wh.T, b) -> dx, dprev_h, dWx.T, dWh.T, db
    rnn_forward(x, h0, Wx, Wh, b) -> h, cache
        = rnn_forward(x, h0, Wx.T, Wh.T, b)
    rnn_backward(dh, cache) -> dx, dh0, dWx, dWh, db
        = rnn_backward(dh, x, h0, Wx.T, Wh.T, b) -> dx, dh0, dWx.T, dWh.T, db
    word_embedding_forward(x, W) -> out, cache
        = word_embedding_forward(x, E=W)                (CS231n's V words = K)
    word_embedding_backward(dout, cache) -> dW
        = word_embedding_backward(dout, x, W) -> dW
    lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b) -> next_h, next_c, cache
        = lstm_step_forward(x, prev_h, prev_c, Wx.T, Wh.T, b)
    lstm_step_backward(dnext_h, dnext_c, cache) -> dx, dprev_h, dprev_c, dWx, dWh, db
        = lstm_step_backward(dnext_h, dnext_c, x, prev_h, prev_c, Wx.T, Wh.T, b)
          -> dx, dprev_h, dprev_c, dWx.T, dWh.T, db
    lstm_forward(x, h0, Wx, Wh, b) -> h, cache       (c0 = 0)
        = lstm_forward(x, h0, Wx.T, Wh.T, b)
    lstm_backward(dh, cache) -> dx, dh0, dWx, dWh, db
        = lstm_backward(dh, x, h0, Wx.T, Wh.T, b) -> dx, dh0, dWx.T, dWh.T, db
    temporal_affine_forward(x, w, b) -> out, cache   (w (D, M), b (M,))
        = temporal_affine_forward(h=x, V=w.T, c=b)
    temporal_affine_backward(dout, cache) -> dx, dw, db
        = temporal_affine_backward(dout, x, w.T, b) -> dx, dw.T, db
    temporal_softmax_loss(x, y, mask) -> loss, dx
        = temporal_softmax_loss(o=x, y, mask) -> loss, dx

PyTorch's cells use the same (out, in) shapes: torch.nn.RNNCell has
weight_ih = U, weight_hh = W, bias_ih + bias_hh = b; torch.nn.LSTMCell the same
with its blocks in the order i, f, g, o (swap the last two blocks of H rows).

Every function converts its inputs to float64 with np.asarray (integer indices
excepted) and only builds new arrays, so callers' arrays are never written. Shapes
that do not fit raise ValueError naming the argument, its shape and the shape
expected.
"""

import numpy as np

from reference.rnn import _as_float, _expect

__all__ = [
    "rnn_step_forward",
    "rnn_step_backward",
    "rnn_forward",
    "rnn_backward",
    "word_embedding_forward",
    "word_embedding_backward",
    "lstm_step_forward",
    "lstm_step_backward",
    "lstm_forward",
    "lstm_backward",
    "temporal_affine_forward",
    "temporal_affine_backward",
    "temporal_softmax_loss",
]

GATES = ("i", "f", "o", "g")      # the order of the blocks of H in a, U, W, b

# ----------------------------------------------------------------------------
# Validation: each mismatch raises a ValueError that leads with the argument's name.
# ----------------------------------------------------------------------------

def _batch(name, value, ndim):
    """`value` as float64 with `ndim` dimensions and at least one example (and step)."""
    arr = _as_float(name, value, ndim)
    if 0 in arr.shape[:ndim - 1]:
        what = "one example and one step" if ndim == 3 else "one example"
        raise ValueError(f"{name} must hold at least {what}, got shape {arr.shape}")
    return arr


def _weights(D, H, U, W, b, gates, source):
    """U (G*H, D), W (G*H, H), b (G*H,) for G = gates; `source` says what fixed D and H."""
    U, W, b = _as_float("U", U, 2), _as_float("W", W, 2), _as_float("b", b, 1)
    rows, sym = gates * H, ("4H" if gates == 4 else "H")
    _expect("U", U, (rows, D), f"({sym}, D)", source)
    _expect("W", W, (rows, H), f"({sym}, H)", source)
    _expect("b", b, (rows,), f"({sym},)", source)
    return U, W, b


def _state(name, value, N, H, source):
    """A (N, H) state such as c_prev, shaped like h_prev."""
    arr = _as_float(name, value, 2)
    _expect(name, arr, (N, H), "(N, H)", source)
    return arr


def _upstream(name, value, shape, symbols, source):
    """An upstream gradient shaped like the forward output it belongs to."""
    arr = _as_float(name, value, len(shape))
    _expect(name, arr, shape, symbols, source)
    return arr


def _indices(name, value, shape, K, source):
    """Integer indices of `shape`, each in [0, K); booleans and floats are refused."""
    arr = np.asarray(value)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer indices, got dtype {arr.dtype}")
    if shape is None:
        if arr.ndim != 2:
            raise ValueError(f"{name} must be 2-D (N, T), got shape {arr.shape}")
    elif arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, expected (N, T) = {shape} from {source}")
    if arr.size and (arr.min() < 0 or arr.max() >= K):
        raise ValueError(f"{name} must lie in [0, K) = [0, {K}) from {source}, "
                         f"got min {arr.min()} and max {arr.max()}")
    return arr


def _rnn_args(x, h0, U, W, b, gates, step):
    """Validated (x, h0, U, W, b): x (N, D) if step else (N, T, D), h0 (N, H)."""
    x = _batch("x", x, 2 if step else 3)
    h0_name = "h_prev" if step else "h0"
    h0 = _as_float(h0_name, h0, 2)
    _expect(h0_name, h0, (x.shape[0], h0.shape[1]), "(N, H)", f"x {x.shape}")
    U, W, b = _weights(x.shape[-1], h0.shape[1], U, W, b, gates,
                       f"x {x.shape} and {h0_name} {h0.shape}")
    return x, h0, U, W, b


# ----------------------------------------------------------------------------
# Vanilla RNN
# ----------------------------------------------------------------------------

def _rnn_run(x, h0, U, W, b):
    """h (N, T, H) = h(1)..h(T) from x (N, T, D) and h0 (N, H)."""
    N, T, _ = x.shape
    b_Ux = b + x @ U.T                   # (N, T, H): the input terms of every step at once
    h = np.empty((N, T, h0.shape[1]))
    h_prev = h0
    for t in range(T):                   # sequential: h(t) needs h(t-1)
        h[:, t] = np.tanh(b_Ux[:, t] + h_prev @ W.T)
        h_prev = h[:, t]
    return h


def rnn_step_forward(x, h_prev, U, W, b):
    """One step of the vanilla RNN on a batch: h = tanh(b + W h_prev + U x) per example.

    Inputs:
    - x: (N, D) inputs of this step
    - h_prev: (N, H) hidden states of the previous step
    - U: (H, D) input-to-hidden weights
    - W: (H, H) hidden-to-hidden weights
    - b: (H,) bias

    Returns:
    - h: (N, H) the next hidden states
    """
    x, h_prev, U, W, b = _rnn_args(x, h_prev, U, W, b, 1, step=True)
    return np.tanh(b + h_prev @ W.T + x @ U.T)


def rnn_step_backward(dh, x, h_prev, U, W, b):
    """Backward pass of rnn_step_forward.

    Inputs:
    - dh: (N, H) upstream gradient dL/dh
    - x: (N, D), h_prev: (N, H), U: (H, D), W: (H, H), b: (H,): the forward inputs

    Returns a tuple (dx, dh_prev, dU, dW, db):
    - dx: (N, D), dh_prev: (N, H)
    - dU: (H, D), dW: (H, H), db: (H,), each summed over the batch
    """
    x, h_prev, U, W, b = _rnn_args(x, h_prev, U, W, b, 1, step=True)
    h = np.tanh(b + h_prev @ W.T + x @ U.T)
    dh = _upstream("dh", dh, h.shape, "(N, H)", f"x {x.shape} and h_prev {h_prev.shape}")
    da = (1.0 - h ** 2) * dh             # tanh' from its output, as the lecture writes it
    return da @ U, da @ W, da.T @ x, da.T @ h_prev, da.sum(axis=0)


def rnn_forward(x, h0, U, W, b):
    """The vanilla RNN's recurrence over a batch of sequences (no output layer).

    Inputs:
    - x: (N, T, D) inputs, x[:, t-1] = x(t)
    - h0: (N, H) initial hidden states h(0)
    - U: (H, D), W: (H, H), b: (H,)

    Returns:
    - h: (N, T, H) hidden states h(1)..h(T), h(t) = tanh(b + W h(t-1) + U x(t))
    """
    x, h0, U, W, b = _rnn_args(x, h0, U, W, b, 1, step=False)
    return _rnn_run(x, h0, U, W, b)


def rnn_backward(dh, x, h0, U, W, b):
    """Backpropagation through time for rnn_forward, from upstream gradients per step.

    Inputs:
    - dh: (N, T, H) upstream gradients dL/dh(t) from outside the recurrence
      (e.g. from an output layer); the part through h(t+1) is added here
    - x: (N, T, D), h0: (N, H), U: (H, D), W: (H, H), b: (H,): the forward inputs

    Returns a tuple (dx, dh0, dU, dW, db):
    - dx: (N, T, D), dh0: (N, H)
    - dU: (H, D), dW: (H, H), db: (H,), each summed over the batch and time
    """
    x, h0, U, W, b = _rnn_args(x, h0, U, W, b, 1, step=False)
    h = _rnn_run(x, h0, U, W, b)
    N, T, H = h.shape
    dh = _upstream("dh", dh, h.shape, "(N, T, H)", f"x {x.shape} and h0 {h0.shape}")

    # dL/dh(t) = dh(t) + W^T da(t+1), da(T+1) = 0; da(t) = (1 - h(t)^2) dL/dh(t).
    da = np.empty((N, T, H))
    da_next = np.zeros((N, H))
    for t in reversed(range(T)):         # later steps feed earlier ones through W
        da[:, t] = (1.0 - h[:, t] ** 2) * (dh[:, t] + da_next @ W)
        da_next = da[:, t]

    # W multiplies h(t-1): pair da(t) with the previous states, h(0) = h0 first.
    h_prev = np.concatenate([h0[:, None], h[:, :-1]], axis=1)     # (N, T, H)
    da2 = da.reshape(N * T, H)
    return (da @ U,                                   # dx(t) = U^T da(t)
            da[:, 0] @ W,                             # h0 reaches L only through a(1)
            da2.T @ x.reshape(N * T, -1),             # sum over n, t of da(t) x(t)^T
            da2.T @ h_prev.reshape(N * T, H),         # sum over n, t of da(t) h(t-1)^T
            da2.sum(axis=0))


# ----------------------------------------------------------------------------
# Word embedding
# ----------------------------------------------------------------------------

def word_embedding_forward(x, E):
    """Word vectors of a batch of index sequences.

    Inputs:
    - x: (N, T) integer word indices in [0, K)
    - E: (K, D) word vectors, row k = the vector of word k

    Returns:
    - out: (N, T, D), out[n, t] = E[x[n, t]]
    """
    E = _as_float("E", E, 2)
    x = _indices("x", x, None, E.shape[0], f"E {E.shape}")
    return E[x]


def word_embedding_backward(dout, x, E):
    """Backward pass of word_embedding_forward (indices have no gradient).

    Inputs:
    - dout: (N, T, D) upstream gradient
    - x: (N, T), E: (K, D): the forward inputs

    Returns:
    - dE: (K, D); row k sums dout over every position where word k occurs
    """
    E = _as_float("E", E, 2)
    x = _indices("x", x, None, E.shape[0], f"E {E.shape}")
    dout = _upstream("dout", dout, x.shape + (E.shape[1],), "(N, T, D)",
                     f"x {x.shape} and E {E.shape}")
    dE = np.zeros(E.shape)
    np.add.at(dE, x, dout)               # unbuffered: a repeated word adds up
    return dE


# ----------------------------------------------------------------------------
# LSTM
# ----------------------------------------------------------------------------

def _sigmoid(a):
    """1 / (1 + exp(-a)) without overflow for any a."""
    return np.exp(-np.logaddexp(0.0, -a))


def _gates(a):
    """Activated gates i, f, o (sigmoid) and g (tanh), each (N, H), of a (N, 4H)."""
    i, f, o, g = np.split(a, 4, axis=-1)
    return _sigmoid(i), _sigmoid(f), _sigmoid(o), np.tanh(g)


def _lstm_step(b_Ux, h_prev, c_prev, W):
    """One LSTM step from the input term b + U x (N, 4H): (h, c, (i, f, o, g))."""
    i, f, o, g = _gates(b_Ux + h_prev @ W.T)
    c = f * c_prev + i * g
    return o * np.tanh(c), c, (i, f, o, g)


def _lstm_step_grad(dh, dc, c_prev, c, gates):
    """Gradients of one step: (da (N, 4H), dc_prev (N, H)).

    dh, dc: (N, H) total gradients of h and c of this step; c_prev, c: (N, H) its
    cell states; gates: its (i, f, o, g).
    """
    i, f, o, g = gates
    tanh_c = np.tanh(c)
    dc = dc + dh * o * (1.0 - tanh_c ** 2)            # c reaches L directly and through h
    da = np.concatenate([dc * g * i * (1.0 - i),        # di * sigmoid'
                         dc * c_prev * f * (1.0 - f),   # df * sigmoid'
                         dh * tanh_c * o * (1.0 - o),   # do * sigmoid'
                         dc * i * (1.0 - g ** 2)],      # dg * tanh'
                        axis=-1)
    return da, dc * f                                   # c_prev reaches c through f


def _lstm_run(x, h0, U, W, b):
    """Run the LSTM over x (N, T, D) from h0 and c0 = 0.

    Returns h, c (N, T, H) and the gates, a tuple (i, f, o, g) of (N, T, H) arrays.
    """
    N, T, _ = x.shape
    H = h0.shape[1]
    b_Ux = b + x @ U.T                   # (N, T, 4H): the input terms of every step at once
    h, c = np.empty((N, T, H)), np.empty((N, T, H))
    gates = tuple(np.empty((N, T, H)) for _ in GATES)
    h_prev, c_prev = h0, np.zeros((N, H))
    for t in range(T):                   # sequential: step t needs h(t-1) and c(t-1)
        h[:, t], c[:, t], step_gates = _lstm_step(b_Ux[:, t], h_prev, c_prev, W)
        for store, value in zip(gates, step_gates):
            store[:, t] = value
        h_prev, c_prev = h[:, t], c[:, t]
    return h, c, gates


def _lstm_step_args(x, h_prev, c_prev, U, W, b):
    x, h_prev, U, W, b = _rnn_args(x, h_prev, U, W, b, 4, step=True)
    c_prev = _state("c_prev", c_prev, *h_prev.shape, f"h_prev {h_prev.shape}")
    return x, h_prev, c_prev, U, W, b


def lstm_step_forward(x, h_prev, c_prev, U, W, b):
    """One LSTM step on a batch; gates stacked i, f, o, g (see the module docstring).

    Inputs:
    - x: (N, D) inputs of this step
    - h_prev: (N, H) previous hidden states
    - c_prev: (N, H) previous cell states
    - U: (4H, D) input-to-gates weights
    - W: (4H, H) hidden-to-gates weights
    - b: (4H,) gate biases

    Returns a tuple (h, c):
    - h: (N, H) next hidden states, o * tanh(c)
    - c: (N, H) next cell states, f * c_prev + i * g
    """
    x, h_prev, c_prev, U, W, b = _lstm_step_args(x, h_prev, c_prev, U, W, b)
    h, c, _ = _lstm_step(b + x @ U.T, h_prev, c_prev, W)
    return h, c


def lstm_step_backward(dh, dc, x, h_prev, c_prev, U, W, b):
    """Backward pass of lstm_step_forward.

    Inputs:
    - dh: (N, H) upstream gradient dL/dh
    - dc: (N, H) upstream gradient dL/dc (from the next step's cell)
    - x: (N, D), h_prev: (N, H), c_prev: (N, H), U: (4H, D), W: (4H, H), b: (4H,):
      the forward inputs

    Returns a tuple (dx, dh_prev, dc_prev, dU, dW, db):
    - dx: (N, D), dh_prev: (N, H), dc_prev: (N, H)
    - dU: (4H, D), dW: (4H, H), db: (4H,), each summed over the batch
    """
    x, h_prev, c_prev, U, W, b = _lstm_step_args(x, h_prev, c_prev, U, W, b)
    _, c, gates = _lstm_step(b + x @ U.T, h_prev, c_prev, W)
    source = f"h_prev {h_prev.shape}"
    dh = _upstream("dh", dh, c.shape, "(N, H)", source)
    dc = _upstream("dc", dc, c.shape, "(N, H)", source)
    da, dc_prev = _lstm_step_grad(dh, dc, c_prev, c, gates)
    return da @ U, da @ W, dc_prev, da.T @ x, da.T @ h_prev, da.sum(axis=0)


def lstm_forward(x, h0, U, W, b):
    """The LSTM over a batch of sequences, from h0 and cell state c0 = 0.

    Inputs:
    - x: (N, T, D) inputs, x[:, t-1] = x(t)
    - h0: (N, H) initial hidden states
    - U: (4H, D), W: (4H, H), b: (4H,): gate weights and biases, stacked i, f, o, g

    Returns:
    - h: (N, T, H) hidden states h(1)..h(T) (the cell states stay inside)
    """
    x, h0, U, W, b = _rnn_args(x, h0, U, W, b, 4, step=False)
    return _lstm_run(x, h0, U, W, b)[0]


def lstm_backward(dh, x, h0, U, W, b):
    """Backpropagation through time for lstm_forward, from upstream gradients per step.

    Inputs:
    - dh: (N, T, H) upstream gradients dL/dh(t) from outside the recurrence
    - x: (N, T, D), h0: (N, H), U: (4H, D), W: (4H, H), b: (4H,): the forward inputs

    Returns a tuple (dx, dh0, dU, dW, db):
    - dx: (N, T, D), dh0: (N, H)
    - dU: (4H, D), dW: (4H, H), db: (4H,), each summed over the batch and time
    (c0 = 0 is no input, so it has no gradient here; lstm_step_backward gives dc_prev.)
    """
    x, h0, U, W, b = _rnn_args(x, h0, U, W, b, 4, step=False)
    h, c, gates = _lstm_run(x, h0, U, W, b)
    N, T, H = h.shape
    dh = _upstream("dh", dh, h.shape, "(N, T, H)", f"x {x.shape} and h0 {h0.shape}")

    c_prev = np.concatenate([np.zeros((N, 1, H)), c[:, :-1]], axis=1)
    da = np.empty((N, T, 4 * H))
    da_next, dc_next = np.zeros((N, 4 * H)), np.zeros((N, H))
    for t in reversed(range(T)):         # h(t) and c(t) feed step t+1
        dh_t = dh[:, t] + da_next @ W    # dL/dh(t) = dh(t) + W^T da(t+1)
        da[:, t], dc_next = _lstm_step_grad(dh_t, dc_next, c_prev[:, t], c[:, t],
                                            tuple(gate[:, t] for gate in gates))
        da_next = da[:, t]

    h_prev = np.concatenate([h0[:, None], h[:, :-1]], axis=1)
    da2 = da.reshape(N * T, 4 * H)
    return (da @ U, da[:, 0] @ W, da2.T @ x.reshape(N * T, -1),
            da2.T @ h_prev.reshape(N * T, H), da2.sum(axis=0))


# ----------------------------------------------------------------------------
# Output layer over time and the loss
# ----------------------------------------------------------------------------

def _affine_args(h, V, c):
    h = _batch("h", h, 3)
    V, c = _as_float("V", V, 2), _as_float("c", c, 1)
    _expect("V", V, (V.shape[0], h.shape[2]), "(K, H)", f"h {h.shape}")
    _expect("c", c, (V.shape[0],), "(K,)", f"V {V.shape}")
    return h, V, c


def temporal_affine_forward(h, V, c):
    """The output layer at every step: o(t) = c + V h(t).

    Inputs:
    - h: (N, T, H) hidden states
    - V: (K, H) weights
    - c: (K,) bias

    Returns:
    - o: (N, T, K) scores, o = c + h @ V.T
    """
    h, V, c = _affine_args(h, V, c)
    return c + h @ V.T


def temporal_affine_backward(do, h, V, c):
    """Backward pass of temporal_affine_forward.

    Inputs:
    - do: (N, T, K) upstream gradient
    - h: (N, T, H), V: (K, H), c: (K,): the forward inputs

    Returns a tuple (dh, dV, dc):
    - dh: (N, T, H), V^T do(t) at every step
    - dV: (K, H), dc: (K,), each summed over the batch and time
    """
    h, V, c = _affine_args(h, V, c)
    N, T, H = h.shape
    do = _upstream("do", do, (N, T, V.shape[0]), "(N, T, K)", f"h {h.shape} and V {V.shape}")
    do2 = do.reshape(N * T, -1)
    return do @ V, do2.T @ h.reshape(N * T, H), do2.sum(axis=0)


def temporal_softmax_loss(o, y, mask=None):
    """Softmax cross-entropy at every kept step, summed over time, averaged over the batch.

    Inputs:
    - o: (N, T, K) scores
    - y: (N, T) integer targets in [0, K)
    - mask: (N, T) booleans (or 0/1), True where the step counts; None keeps every step

    Returns a tuple (L, do):
    - L: Python float, (1/N) sum over n, t with mask[n, t] of -log softmax(o[n, t])[y[n, t]]
    - do: (N, T, K) dL/do = mask * (softmax(o) - onehot(y)) / N, zero at masked steps
    """
    o = _batch("o", o, 3)
    N, T, K = o.shape
    y = _indices("y", y, (N, T), K, f"o {o.shape}")
    if mask is None:
        keep = np.ones((N, T))
    else:
        mask = np.asarray(mask)
        if mask.shape != (N, T):
            raise ValueError(f"mask has shape {mask.shape}, expected (N, T) = {(N, T)} from o {o.shape}")
        if not np.isin(mask, (0, 1)).all():
            raise ValueError("mask must hold booleans or 0/1")
        keep = mask.astype(np.float64)
    # Log-softmax with the row maximum subtracted: exp() cannot overflow.
    shifted = o - o.max(axis=-1, keepdims=True)
    log_yhat = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    n, t = np.indices((N, T))
    L = -(keep * log_yhat[n, t, y]).sum() / N
    do = np.exp(log_yhat)
    do[n, t, y] -= 1.0
    do *= keep[:, :, None] / N
    return float(L), do
