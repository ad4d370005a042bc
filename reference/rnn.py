"""Reference solution of the `rnn` assignment: the lecture's vanilla RNN.

One sequence at a time, in the slides' matrix-times-column-vector convention:

    a(t)    = b + W h(t-1) + U x(t)
    h(t)    = tanh(a(t))
    o(t)    = c + V h(t)
    yhat(t) = softmax(o(t))
    L       = sum_t -log yhat(t)[y(t)]        (summed over time, not averaged)

Time is the first axis of every sequence: row t-1 of x, h, yhat holds time t.
Shapes: x (T, D), y (T,), h0 (H,), U (H, D), W (H, H), V (K, H), b (H,), c (K,).

Every function converts its inputs to float64 with np.asarray (no copy when they
already are) and only ever builds new arrays, so callers' arrays are never written.
"""

import numpy as np

# ----------------------------------------------------------------------------
# Validation helpers: each shape mismatch raises a ValueError that names the
# argument and shows both the shape it has and the shape it should have.
# ----------------------------------------------------------------------------

def _as_float(name, value, ndim):
    """Return `value` as a float64 array with `ndim` dimensions, else ValueError."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    return arr


def _expect(name, arr, shape, symbols, source):
    """Raise ValueError unless arr.shape == shape.

    `symbols` names the dimensions, e.g. "(H, D)"; `source` says which
    arguments fixed their sizes.
    """
    if arr.shape != shape:
        raise ValueError(
            f"{name} has shape {arr.shape}, expected {symbols} = {shape} from {source}")


def _sequence(x):
    """Return x as a float64 (T, D) array with T >= 1."""
    x = _as_float("x", x, 2)
    if x.shape[0] < 1:
        raise ValueError(f"x must hold at least one time step, got shape {x.shape}")
    return x


def _recurrence(D, d_source, h0, U, W, b, names=("h0", "U", "W", "b")):
    """Validate one recurrence's parameters for inputs of size D; H comes from h0.

    `d_source` says where D comes from, for the error message; `names` lets
    birnn_forward report its own argument names (g0, Ub, ...).
    Returns h0 (H,), U (H, D), W (H, H), b (H,) as float64 arrays.
    """
    n_h0, n_U, n_W, n_b = names
    h0 = _as_float(n_h0, h0, 1)
    U = _as_float(n_U, U, 2)
    W = _as_float(n_W, W, 2)
    b = _as_float(n_b, b, 1)
    H = h0.shape[0]
    _expect(n_U, U, (H, D), "(H, D)", f"{n_h0} {h0.shape} and {d_source}")
    _expect(n_W, W, (H, H), "(H, H)", f"{n_h0} {h0.shape}")
    _expect(n_b, b, (H,), "(H,)", f"{n_h0} {h0.shape}")
    return h0, U, W, b


def _output(V, c, H, symbols, source):
    """Validate the output layer V (K, H), c (K,); K comes from V's rows.

    `symbols` names V's dimensions, e.g. "(K, H)"; `source` says which
    arguments fixed H.
    """
    V = _as_float("V", V, 2)
    c = _as_float("c", c, 1)
    _expect("V", V, (V.shape[0], H), symbols, source)
    _expect("c", c, (V.shape[0],), "(K,)", f"V {V.shape}")
    return V, c


def _labels(y, T, K, source):
    """Return y as an int array (T,) with every label in [0, K); `source` fixed T."""
    y = np.asarray(y)
    # Labels index yhat, so floats or booleans are a caller's mistake, not data.
    if y.dtype == bool or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must hold integer labels, got dtype {y.dtype}")
    if y.shape != (T,):
        raise ValueError(f"y has shape {y.shape}, expected (T,) = {(T,)} from {source}")
    if T and (y.min() < 0 or y.max() >= K):
        raise ValueError(
            f"y labels must lie in [0, K) = [0, {K}), got min {y.min()} and max {y.max()}")
    return y


def _index(name, value, low, high=None):
    """Return `value` as a Python int in [low, high) (high None: no bound), else ValueError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    if value < low or (high is not None and value >= high):
        bound = f"in [{low}, {high})" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return int(value)


# ----------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------

def _softmax(o):
    """Softmax over the last axis of o (..., K).

    Subtracting the row maximum first leaves the result unchanged but keeps
    exp() from overflowing for large scores.
    """
    e = np.exp(o - o.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _step(x_t, h_prev, U, W, b):
    """One recurrence step: h(t) = tanh(b + W h(t-1) + U x(t)).

    x_t (D,), h_prev (H,), U (H, D), W (H, H), b (H,) -> h_t (H,).
    """
    a = b + W @ h_prev + U @ x_t
    return np.tanh(a)


def _run(x, h0, U, W, b):
    """Run the recurrence over x (T, D) from h0 (H,); return h (T, H) = h(1)..h(T)."""
    h = np.empty((x.shape[0], h0.shape[0]))
    h_prev = h0
    for t in range(x.shape[0]):          # sequential: h(t) needs h(t-1)
        h[t] = _step(x[t], h_prev, U, W, b)
        h_prev = h[t]
    return h


# ----------------------------------------------------------------------------
# Contract functions
# ----------------------------------------------------------------------------

def rnn_forward(x, h0, U, W, V, b, c):
    """Forward pass of the vanilla RNN over one sequence.

    Inputs:
    - x: (T, D) inputs, row t-1 = x(t)
    - h0: (H,) initial hidden state h(0)
    - U: (H, D) input-to-hidden weights
    - W: (H, H) hidden-to-hidden weights
    - V: (K, H) hidden-to-output weights
    - b: (H,) hidden bias
    - c: (K,) output bias

    Returns a tuple (h, yhat):
    - h: (T, H) hidden states h(1)..h(T)
    - yhat: (T, K) softmax outputs yhat(1)..yhat(T)
    """
    x = _sequence(x)
    h0, U, W, b = _recurrence(x.shape[1], f"x {x.shape}", h0, U, W, b)
    V, c = _output(V, c, h0.shape[0], "(K, H)", f"h0 {h0.shape}")
    h = _run(x, h0, U, W, b)
    # The output layer has no recurrence, so all time steps go at once.
    yhat = _softmax(c + h @ V.T)
    return h, yhat


def rnn_loss(yhat, y):
    """Cross-entropy loss summed over time.

    Inputs:
    - yhat: (T, K) predicted distributions
    - y: (T,) integer targets in [0, K)

    Returns L = sum_t -log yhat(t)[y(t)] as a Python float.
    """
    yhat = _as_float("yhat", yhat, 2)
    y = _labels(y, yhat.shape[0], yhat.shape[1], f"yhat {yhat.shape}")
    return float(-np.log(yhat[np.arange(y.shape[0]), y]).sum())


def rnn_backward(x, y, h0, h, yhat, U, W, V, b, c):
    """Backpropagation through time for rnn_forward followed by rnn_loss.

    Inputs:
    - x: (T, D), y: (T,), h0: (H,): the forward inputs and targets
    - h: (T, H), yhat: (T, K): the forward outputs
    - U: (H, D), W: (H, H), V: (K, H), b: (H,), c: (K,): the parameters

    Returns a dict of dL/d each of "U" (H, D), "W" (H, H), "V" (K, H),
    "b" (H,), "c" (K,), "h0" (H,).
    """
    x = _sequence(x)
    h0, U, W, b = _recurrence(x.shape[1], f"x {x.shape}", h0, U, W, b)
    V, c = _output(V, c, h0.shape[0], "(K, H)", f"h0 {h0.shape}")
    T, H, K = x.shape[0], h0.shape[0], V.shape[0]
    h = _as_float("h", h, 2)
    yhat = _as_float("yhat", yhat, 2)
    _expect("h", h, (T, H), "(T, H)", f"x {x.shape} and h0 {h0.shape}")
    _expect("yhat", yhat, (T, K), "(T, K)", f"x {x.shape} and V {V.shape}")
    y = _labels(y, T, K, f"x {x.shape}")

    # do(t) = yhat(t) - onehot(y(t)): softmax and cross-entropy combined.
    do = yhat.copy()
    do[np.arange(T), y] -= 1.0                             # (T, K)
    dh_out = do @ V                                        # (T, H): V^T do(t)

    # dh(t) = V^T do(t) + W^T da(t+1), with da(T+1) = 0; da(t) = (1 - h(t)^2) dh(t).
    # Derivative of tanh from its output h(t), as the lecture writes it.
    da = np.empty((T, H))
    da_next = np.zeros(H)
    for t in reversed(range(T)):         # later steps feed earlier ones through W
        da[t] = (1.0 - h[t] ** 2) * (dh_out[t] + W.T @ da_next)
        da_next = da[t]

    # W multiplies h(t-1), so pair da(t) with the previous state, h(0) = h0 first.
    h_prev = np.vstack([h0[None, :], h[:-1]])              # (T, H)
    return {
        "U": da.T @ x,                   # sum_t da(t) x(t)^T
        "W": da.T @ h_prev,              # sum_t da(t) h(t-1)^T
        "V": do.T @ h,                   # sum_t do(t) h(t)^T
        "b": da.sum(axis=0),             # sum_t da(t)
        "c": do.sum(axis=0),             # sum_t do(t)
        "h0": W.T @ da[0],               # h0 reaches L only through a(1)
    }


def rnn_sample(h0, x0, n, U, W, V, b, c, rng):
    """Draw n symbols from the RNN, feeding each draw back as the next input.

    Inputs:
    - h0: (H,) initial hidden state
    - x0: int in [0, K), index of the first one-hot input
    - n: int >= 0, number of symbols to draw
    - U: (H, K) (inputs are one-hot over the outputs, so D == K), W: (H, H),
      V: (K, H), b: (H,), c: (K,)
    - rng: numpy.random.Generator, the only source of randomness

    Returns a list of n Python ints (x0 not included).
    """
    h0 = _as_float("h0", h0, 1)
    V, c = _output(V, c, h0.shape[0], "(K, H)", f"h0 {h0.shape}")
    K = V.shape[0]
    # Each drawn symbol is fed back one-hot, so inputs have size D == K.
    h0, U, W, b = _recurrence(
        K, f"D == K from V {V.shape}, as draws are fed back one-hot",
        h0, U, W, b)
    idx = _index("x0", x0, 0, K)
    n = _index("n", n, 0)

    out = []
    h_t = h0
    for _ in range(n):
        x_t = np.zeros(K)
        x_t[idx] = 1.0                   # one-hot of the previous symbol
        h_t = _step(x_t, h_t, U, W, b)
        yhat_t = _softmax(c + V @ h_t)
        idx = int(rng.choice(K, p=yhat_t))
        out.append(idx)
    return out


def birnn_forward(x, h0, g0, Uf, Wf, bf, Ub, Wb, bb, V, c):
    """Forward pass of the bidirectional RNN over one sequence.

    h(t) = tanh(bf + Wf h(t-1) + Uf x(t)) runs forward from h(0) = h0;
    g(t) = tanh(bb + Wb g(t+1) + Ub x(t)) runs backward from g(T+1) = g0;
    o(t) = c + V [h(t); g(t)], yhat(t) = softmax(o(t)).

    Inputs:
    - x: (T, D) inputs
    - h0: (Hf,), Uf: (Hf, D), Wf: (Hf, Hf), bf: (Hf,): forward recurrence
    - g0: (Hb,), Ub: (Hb, D), Wb: (Hb, Hb), bb: (Hb,): backward recurrence
    - V: (K, Hf + Hb), c: (K,): output layer on the stacked states

    Returns a tuple (h, g, yhat), row t-1 = time t:
    - h: (T, Hf), g: (T, Hb), yhat: (T, K)
    """
    x = _sequence(x)
    h0, Uf, Wf, bf = _recurrence(x.shape[1], f"x {x.shape}", h0, Uf, Wf, bf,
                                 ("h0", "Uf", "Wf", "bf"))
    g0, Ub, Wb, bb = _recurrence(x.shape[1], f"x {x.shape}", g0, Ub, Wb, bb,
                                 ("g0", "Ub", "Wb", "bb"))
    V, c = _output(V, c, h0.shape[0] + g0.shape[0], "(K, H_f + H_b)",
                   f"h0 {h0.shape} and g0 {g0.shape}, as V acts on [h(t); g(t)]")
    h = _run(x, h0, Uf, Wf, bf)
    # Running the same recurrence over the reversed sequence gives g(T)..g(1);
    # flip it back so that row t-1 is time t like h.
    g = np.ascontiguousarray(_run(x[::-1], g0, Ub, Wb, bb)[::-1])
    yhat = _softmax(c + np.hstack([h, g]) @ V.T)
    return h, g, yhat
