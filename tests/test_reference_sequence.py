"""Tests of the batched sequence layers (reference/sequence.py) and of the LSTM's
mistake models (assignments/seq/lstm_mistakes.py).

Expected values come from outside the code under test: per-example loops written
out here in the slides' column-vector form, reference/rnn.py, central finite
differences in float64, the CS231n-convention formulas (to check the documented
mapping) and, where it is installed, PyTorch.
"""

import re

import numpy as np
import pytest

from reference import rnn as single
from reference import sequence as seq
from assignments.seq import lstm_mistakes as mistakes

# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------

def rel_error(a, b):
    """max|a - b| / max(max|a|, max|b|): the one error measure of this file."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0))
    return 0.0 if scale == 0 else float(np.abs(a - b).max() / scale)


def numeric_grad(f, args, name, eps=1e-6):
    """Central differences of the scalar f(**args) with respect to args[name]."""
    args = {k: (np.array(v, dtype=np.float64) if k == name else v) for k, v in args.items()}
    target = args[name]
    grad = np.zeros_like(target)
    for pos in np.ndindex(target.shape):
        old = target[pos]
        target[pos] = old + eps
        up = f(**args)
        target[pos] = old - eps
        down = f(**args)
        target[pos] = old
        grad[pos] = (up - down) / (2 * eps)
    return grad


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def rnn_args(rng, N, T, D, H, gates=1, scale=0.5, step=False):
    """Random float64 inputs of rnn_* (gates=1) or lstm_* (gates=4)."""
    x = rng.normal(size=(N, D) if step else (N, T, D))
    return dict(x=x, **{"h_prev" if step else "h0": scale * rng.normal(size=(N, H))},
                U=scale * rng.normal(size=(gates * H, D)),
                W=scale * rng.normal(size=(gates * H, H)),
                b=scale * rng.normal(size=gates * H))


def lstm_step_args(rng, N, D, H, scale=0.5):
    args = rnn_args(rng, N, 1, D, H, gates=4, scale=scale, step=True)
    args["c_prev"] = rng.normal(size=(N, H))
    return {k: args[k] for k in ("x", "h_prev", "c_prev", "U", "W", "b")}


def assert_grads(backward, forward_loss, grads, args, names, tol=1e-7, label=""):
    """Each analytic gradient has its input's shape and dtype and matches finite differences."""
    assert len(grads) == len(names)
    for name, analytic in zip(names, grads):
        assert analytic.shape == np.shape(args[name]), name
        assert analytic.dtype == np.float64, name
        err = rel_error(analytic, numeric_grad(forward_loss, args, name))
        assert err < tol, f"{backward.__name__} d{name}{label}: relative error {err:.2e}"


# ----------------------------------------------------------------------------
# Vanilla RNN on batches
# ----------------------------------------------------------------------------

def test_rnn_step_forward_is_the_slides_step_per_example():
    rng = np.random.default_rng(1)
    a = rnn_args(rng, 3, 1, 4, 5, step=True)
    h = seq.rnn_step_forward(**a)
    assert h.shape == (3, 5) and h.dtype == np.float64
    for n in range(3):                      # a = b + W h(t-1) + U x(t), column vectors
        expected = np.tanh(a["b"] + a["W"] @ a["h_prev"][n] + a["U"] @ a["x"][n])
        assert np.allclose(h[n], expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("N, T", [(1, 1), (3, 6)])
def test_rnn_forward_is_rnn_py_recurrence_per_sequence(N, T):
    """Each example of the batch is reference/rnn.py's hidden states for that sequence."""
    rng = np.random.default_rng(N * 10 + T)
    D, H, K = 3, 4, 2
    a = rnn_args(rng, N, T, D, H)
    h = seq.rnn_forward(**a)
    assert h.shape == (N, T, H) and h.dtype == np.float64
    V, c = rng.normal(size=(K, H)), rng.normal(size=K)
    for n in range(N):
        h_n, _ = single.rnn_forward(a["x"][n], a["h0"][n], a["U"], a["W"], V, a["b"], c)
        assert np.allclose(h[n], h_n, rtol=1e-13, atol=1e-15)


def test_rnn_step_backward_matches_finite_differences():
    rng = np.random.default_rng(2)
    a = rnn_args(rng, 3, 1, 4, 5, step=True)
    dh = rng.normal(size=(3, 5))
    grads = seq.rnn_step_backward(dh, **a)
    assert_grads(seq.rnn_step_backward, lambda **k: np.sum(seq.rnn_step_forward(**k) * dh),
                 grads, a, ("x", "h_prev", "U", "W", "b"))


@pytest.mark.parametrize("T", [1, 2, 5])
def test_rnn_backward_matches_finite_differences(T):
    rng = np.random.default_rng(30 + T)
    a = rnn_args(rng, 2, T, 3, 4)
    dh = rng.normal(size=(2, T, 4))
    grads = seq.rnn_backward(dh, **a)
    assert_grads(seq.rnn_backward, lambda **k: np.sum(seq.rnn_forward(**k) * dh),
                 grads, a, ("x", "h0", "U", "W", "b"), label=f" at T={T}")


def test_rnn_backward_with_loss_on_outputs_is_rnn_py_bptt():
    """Upstream dh(t) = V^T (yhat(t) - onehot(y(t))) turns rnn_backward into rnn.py's BPTT."""
    rng = np.random.default_rng(4)
    T, D, H, K = 5, 3, 4, 3
    a = rnn_args(rng, 1, T, D, H)
    V, c, y = 0.5 * rng.normal(size=(K, H)), rng.normal(size=K), rng.integers(0, K, size=T)
    x, h0 = a["x"][0], a["h0"][0]
    h, yhat = single.rnn_forward(x, h0, a["U"], a["W"], V, a["b"], c)
    do = yhat.copy()
    do[np.arange(T), y] -= 1.0
    dx, dh0, dU, dW, db = seq.rnn_backward((do @ V)[None], **a)
    bptt = single.rnn_backward(x, y, h0, h, yhat, a["U"], a["W"], V, a["b"], c)
    for got, want in [(dh0[0], bptt["h0"]), (dU, bptt["U"]), (dW, bptt["W"]), (db, bptt["b"])]:
        assert rel_error(got, want) < 1e-12


# ----------------------------------------------------------------------------
# Word embedding
# ----------------------------------------------------------------------------

def test_word_embedding_forward_looks_rows_up():
    rng = np.random.default_rng(5)
    E = rng.normal(size=(4, 3))
    x = np.array([[0, 3, 3], [1, 0, 2]])
    out = seq.word_embedding_forward(x, E)
    assert out.shape == (2, 3, 3) and out.dtype == np.float64
    for n in range(2):
        for t in range(3):
            assert np.array_equal(out[n, t], E[x[n, t]])


def test_word_embedding_backward_adds_repeated_words_up():
    rng = np.random.default_rng(6)
    K, D = 5, 3
    x = rng.integers(0, K - 1, size=(3, 4))          # 12 draws of 4 words: repeats, and word K-1 unused
    E = rng.normal(size=(K, D))
    dout = rng.normal(size=(3, 4, D))
    dE = seq.word_embedding_backward(dout, x, E)
    assert dE.shape == (K, D) and dE.dtype == np.float64
    assert np.bincount(x.ravel()).max() > 1
    assert np.all(dE[K - 1] == 0)
    err = rel_error(dE, numeric_grad(lambda **k: np.sum(seq.word_embedding_forward(**k) * dout),
                                     dict(x=x, E=E), "E"))
    assert err < 1e-7


# ----------------------------------------------------------------------------
# LSTM
# ----------------------------------------------------------------------------

def lstm_step_by_hand(x, h_prev, c_prev, U, W, b):
    """Per example, column vectors, gates i, f, o, g sliced out one by one."""
    H = h_prev.shape[1]
    h, c = np.empty_like(h_prev), np.empty_like(c_prev)
    for n in range(x.shape[0]):
        a = b + W @ h_prev[n] + U @ x[n]
        i, f, o = sigmoid(a[:H]), sigmoid(a[H:2 * H]), sigmoid(a[2 * H:3 * H])
        g = np.tanh(a[3 * H:])
        c[n] = f * c_prev[n] + i * g
        h[n] = o * np.tanh(c[n])
    return h, c


def test_lstm_step_forward_matches_gates_i_f_o_g_by_hand():
    rng = np.random.default_rng(7)
    a = lstm_step_args(rng, 3, 4, 5)
    h, c = seq.lstm_step_forward(**a)
    assert h.shape == c.shape == (3, 5) and h.dtype == c.dtype == np.float64
    h_exp, c_exp = lstm_step_by_hand(**a)
    assert np.allclose(h, h_exp, rtol=1e-13, atol=1e-15)
    assert np.allclose(c, c_exp, rtol=1e-13, atol=1e-15)


def test_lstm_sigmoid_does_not_overflow():
    rng = np.random.default_rng(8)
    a = lstm_step_args(rng, 2, 3, 2)
    a["b"] = np.array([800.0, -800.0] * 4)            # exp(800) overflows float64
    with np.errstate(over="raise", invalid="raise", divide="raise"):   # exp(-800) -> 0 is fine
        h, c = seq.lstm_step_forward(**a)
    assert np.all(np.isfinite(h)) and np.all(np.isfinite(c))


def test_lstm_step_backward_matches_finite_differences():
    rng = np.random.default_rng(9)
    a = lstm_step_args(rng, 3, 4, 3)
    dh, dc = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    grads = seq.lstm_step_backward(dh, dc, **a)

    def loss(**k):
        h, c = seq.lstm_step_forward(**k)
        return np.sum(h * dh) + np.sum(c * dc)

    assert_grads(seq.lstm_step_backward, loss, grads, a, ("x", "h_prev", "c_prev", "U", "W", "b"))


def test_lstm_forward_steps_from_a_zero_cell_state():
    rng = np.random.default_rng(10)
    N, T, D, H = 2, 4, 3, 3
    a = rnn_args(rng, N, T, D, H, gates=4)
    h = seq.lstm_forward(**a)
    assert h.shape == (N, T, H) and h.dtype == np.float64
    h_prev, c_prev = a["h0"], np.zeros((N, H))
    for t in range(T):
        h_prev, c_prev = lstm_step_by_hand(a["x"][:, t], h_prev, c_prev, a["U"], a["W"], a["b"])
        assert np.allclose(h[:, t], h_prev, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("T", [1, 2, 5])
def test_lstm_backward_matches_finite_differences(T):
    rng = np.random.default_rng(40 + T)
    a = rnn_args(rng, 2, T, 3, 3, gates=4)
    dh = rng.normal(size=(2, T, 3))
    grads = seq.lstm_backward(dh, **a)
    assert_grads(seq.lstm_backward, lambda **k: np.sum(seq.lstm_forward(**k) * dh),
                 grads, a, ("x", "h0", "U", "W", "b"), label=f" at T={T}")


# ----------------------------------------------------------------------------
# Temporal affine and temporal softmax loss
# ----------------------------------------------------------------------------

def test_temporal_affine_forward_and_backward():
    rng = np.random.default_rng(11)
    N, T, H, K = 2, 3, 4, 5
    a = dict(h=rng.normal(size=(N, T, H)), V=rng.normal(size=(K, H)), c=rng.normal(size=K))
    o = seq.temporal_affine_forward(**a)
    assert o.shape == (N, T, K) and o.dtype == np.float64
    for n in range(N):
        for t in range(T):
            assert np.allclose(o[n, t], a["c"] + a["V"] @ a["h"][n, t], rtol=1e-13, atol=1e-15)
    do = rng.normal(size=(N, T, K))
    grads = seq.temporal_affine_backward(do, **a)
    assert_grads(seq.temporal_affine_backward,
                 lambda **k: np.sum(seq.temporal_affine_forward(**k) * do), grads, a, ("h", "V", "c"))


def softmax_loss_by_hand(o, y, mask):
    N, T, _ = o.shape
    total = 0.0
    for n in range(N):
        for t in range(T):
            if mask[n, t]:
                e = np.exp(o[n, t])
                total -= np.log(e[y[n, t]] / e.sum())
    return total / N


def loss_case(seed, N=3, T=4, K=5):
    rng = np.random.default_rng(seed)
    mask = rng.random((N, T)) < 0.6
    mask[0, 0], mask[-1, -1] = True, False            # some steps kept, some masked
    return rng.normal(size=(N, T, K)), rng.integers(0, K, size=(N, T)), mask


def test_temporal_softmax_loss_value_and_gradient():
    o, y, mask = loss_case(12)
    L, do = seq.temporal_softmax_loss(o, y, mask)
    assert type(L) is float
    assert L == pytest.approx(softmax_loss_by_hand(o, y, mask), rel=1e-13)
    assert do.shape == o.shape and do.dtype == np.float64
    assert np.all(do[~mask] == 0)
    numeric = numeric_grad(lambda **k: seq.temporal_softmax_loss(**k)[0], dict(o=o, y=y, mask=mask), "o")
    assert rel_error(do, numeric) < 1e-7


def test_temporal_softmax_loss_masks_ints_and_none_alike():
    o, y, mask = loss_case(13)
    L, do = seq.temporal_softmax_loss(o, y, mask)
    moved = o.copy()
    moved[~mask] += 100.0                             # masked steps do not count
    assert seq.temporal_softmax_loss(moved, y, mask)[0] == pytest.approx(L, rel=1e-13)
    L_int, do_int = seq.temporal_softmax_loss(o, y, mask.astype(int))
    assert L_int == L and np.array_equal(do_int, do)
    L_none, do_none = seq.temporal_softmax_loss(o, y)
    L_all, do_all = seq.temporal_softmax_loss(o, y, np.ones_like(mask))
    assert L_none == L_all and np.array_equal(do_none, do_all)


def test_temporal_softmax_loss_one_sequence_is_rnn_loss():
    """N = 1, every step kept: the loss summed over time of reference/rnn.py."""
    o, y, _ = loss_case(14, N=1)
    e = np.exp(o[0])
    L, _ = seq.temporal_softmax_loss(o, y)
    assert L == pytest.approx(single.rnn_loss(e / e.sum(axis=1, keepdims=True), y[0]), rel=1e-13)


def test_temporal_softmax_loss_is_stable_for_large_scores():
    o, y, mask = loss_case(15)
    with np.errstate(all="raise"):
        L_big, do_big = seq.temporal_softmax_loss(o + 1000.0, y, mask)
    L, do = seq.temporal_softmax_loss(o, y, mask)
    assert L_big == pytest.approx(L, rel=1e-10)
    assert np.allclose(do_big, do, rtol=1e-10, atol=1e-14)


# ----------------------------------------------------------------------------
# Every function: float64 out of float32 in, inputs left alone
# ----------------------------------------------------------------------------

def all_calls(rng, dtype=np.float64):
    """(function, kwargs) for every function of the module, small random inputs."""
    N, T, D, H, K = 2, 3, 3, 2, 4
    cast = lambda d: {k: (v.astype(dtype) if v.dtype.kind == "f" else v) for k, v in d.items()}
    r1, r4 = rnn_args(rng, N, T, D, H), rnn_args(rng, N, T, D, H, gates=4)
    s1, s4 = rnn_args(rng, N, T, D, H, step=True), lstm_step_args(rng, N, D, H)
    emb = dict(x=rng.integers(0, K, size=(N, T)), E=rng.normal(size=(K, D)))
    aff = dict(h=rng.normal(size=(N, T, H)), V=rng.normal(size=(K, H)), c=rng.normal(size=K))
    loss = dict(o=rng.normal(size=(N, T, K)), y=rng.integers(0, K, size=(N, T)), mask=rng.random((N, T)) < 0.5)
    g = lambda *shape: rng.normal(size=shape)
    return [
        (seq.rnn_step_forward, cast(s1)), (seq.rnn_step_backward, cast(dict(s1, dh=g(N, H)))),
        (seq.rnn_forward, cast(r1)), (seq.rnn_backward, cast(dict(r1, dh=g(N, T, H)))),
        (seq.word_embedding_forward, cast(emb)),
        (seq.word_embedding_backward, cast(dict(emb, dout=g(N, T, D)))),
        (seq.lstm_step_forward, cast(s4)),
        (seq.lstm_step_backward, cast(dict(s4, dh=g(N, H), dc=g(N, H)))),
        (seq.lstm_forward, cast(r4)), (seq.lstm_backward, cast(dict(r4, dh=g(N, T, H)))),
        (seq.temporal_affine_forward, cast(aff)),
        (seq.temporal_affine_backward, cast(dict(aff, do=g(N, T, K)))),
        (seq.temporal_softmax_loss, cast(loss)),
    ]


def test_every_function_is_listed_and_gives_float64_from_float32():
    calls = all_calls(np.random.default_rng(16), np.float32)
    assert {f.__name__ for f, _ in calls} == set(seq.__all__)
    for f, kwargs in calls:
        out = f(**kwargs)
        for part in out if isinstance(out, tuple) else (out,):
            assert isinstance(part, float) or part.dtype == np.float64, f.__name__


def test_no_function_modifies_its_inputs():
    for f, kwargs in all_calls(np.random.default_rng(17)):
        saved = {k: v.copy() for k, v in kwargs.items()}
        f(**kwargs)
        for k, v in saved.items():
            assert np.array_equal(kwargs[k], v), f"{f.__name__} modified {k}"


# (function, argument, bad value from the valid arguments)
BAD = [
    (seq.rnn_step_forward, "x", lambda a: a["x"][None]),
    (seq.rnn_step_forward, "h_prev", lambda a: a["h_prev"][:-1]),
    (seq.rnn_step_forward, "U", lambda a: a["U"].T),
    (seq.rnn_forward, "x", lambda a: a["x"][:, :0]),
    (seq.rnn_forward, "W", lambda a: a["W"][:, :-1]),
    (seq.rnn_backward, "dh", lambda a: a["dh"][:, :-1]),
    (seq.rnn_backward, "b", lambda a: a["b"][:-1]),
    (seq.lstm_step_forward, "U", lambda a: a["U"][: a["U"].shape[0] // 4]),
    (seq.lstm_step_forward, "c_prev", lambda a: a["c_prev"][:, :-1]),
    (seq.lstm_step_backward, "dc", lambda a: a["dc"][:-1]),
    (seq.lstm_forward, "b", lambda a: a["b"][:-1]),
    (seq.lstm_backward, "dh", lambda a: a["dh"][..., :-1]),
    (seq.word_embedding_forward, "x", lambda a: a["x"] + a["E"].shape[0]),
    (seq.word_embedding_forward, "x", lambda a: a["x"].astype(float)),
    (seq.word_embedding_backward, "dout", lambda a: a["dout"][..., :-1]),
    (seq.temporal_affine_forward, "V", lambda a: a["V"].T),
    (seq.temporal_affine_backward, "do", lambda a: a["do"][:, :, :-1]),
    (seq.temporal_softmax_loss, "y", lambda a: a["y"][:, :-1]),
    (seq.temporal_softmax_loss, "y", lambda a: -a["y"] - 1),
    (seq.temporal_softmax_loss, "mask", lambda a: a["mask"][:-1]),
    (seq.temporal_softmax_loss, "mask", lambda a: a["mask"] * 0.5),
]


@pytest.mark.parametrize("func, name, bad", BAD, ids=[f"{f.__name__}-{n}-{i}" for i, (f, n, _) in enumerate(BAD)])
def test_bad_argument_raises_value_error_naming_it(func, name, bad):
    kwargs = dict(next(kw for f, kw in all_calls(np.random.default_rng(18)) if f is func))
    kwargs[name] = bad(kwargs)
    with pytest.raises(ValueError) as info:
        func(**kwargs)
    assert re.match(rf"{re.escape(name)}\b", str(info.value)), str(info.value)


# ----------------------------------------------------------------------------
# The documented mapping from CS231n's convention (row vectors, (in, out) weights)
# ----------------------------------------------------------------------------

def test_cs231n_convention_maps_by_transposes_only():
    """CS231n's formulas, written here as its handout states them, equal this module's
    functions called with U = Wx.T, W = Wh.T; its gradients are ours transposed."""
    rng = np.random.default_rng(19)
    N, T, D, H, M = 2, 3, 3, 4, 5
    x, prev_h, prev_c = rng.normal(size=(N, D)), rng.normal(size=(N, H)), rng.normal(size=(N, H))
    Wx, Wh, b = rng.normal(size=(D, 4 * H)), rng.normal(size=(H, 4 * H)), rng.normal(size=4 * H)

    # lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b): a = x Wx + prev_h Wh + b, gates i, f, o, g
    a = x @ Wx + prev_h @ Wh + b
    i, f, o, g = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), sigmoid(a[:, 2 * H:3 * H]), np.tanh(a[:, 3 * H:])
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    h, c = seq.lstm_step_forward(x, prev_h, prev_c, Wx.T, Wh.T, b)
    assert rel_error(h, next_h) < 1e-13 and rel_error(c, next_c) < 1e-13

    # rnn_step_forward(x, prev_h, Wx, Wh, b) = tanh(x Wx + prev_h Wh + b), and its dWx = x^T da
    Wx1, Wh1, b1 = rng.normal(size=(D, H)), rng.normal(size=(H, H)), rng.normal(size=H)
    next_h = np.tanh(x @ Wx1 + prev_h @ Wh1 + b1)
    assert rel_error(seq.rnn_step_forward(x, prev_h, Wx1.T, Wh1.T, b1), next_h) < 1e-13
    dnext_h = rng.normal(size=(N, H))
    _, _, dU, dW, _ = seq.rnn_step_backward(dnext_h, x, prev_h, Wx1.T, Wh1.T, b1)
    da = (1 - next_h ** 2) * dnext_h
    assert rel_error(dU.T, x.T @ da) < 1e-13 and rel_error(dW.T, prev_h.T @ da) < 1e-13

    # temporal_affine_forward(x, w, b) = x w + b with w (D, M)
    hs, w, bm = rng.normal(size=(N, T, H)), rng.normal(size=(H, M)), rng.normal(size=M)
    assert rel_error(seq.temporal_affine_forward(hs, w.T, bm), hs @ w + bm) < 1e-13
    dout = rng.normal(size=(N, T, M))
    _, dV, _ = seq.temporal_affine_backward(dout, hs, w.T, bm)
    assert rel_error(dV.T, hs.reshape(-1, H).T @ dout.reshape(-1, M)) < 1e-13


# ----------------------------------------------------------------------------
# PyTorch (where installed), float64, weights mapped as the module docstring says
# ----------------------------------------------------------------------------

def torch_order(A, H):
    """Our gate blocks i, f, o, g in torch's order i, f, g, o (along the first axis)."""
    i, f, o, g = np.split(A, 4, axis=0)
    return np.concatenate([i, f, g, o], axis=0)


def to_tensors(torch, arrays):
    return [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]


def set_params(torch, module, suffix, U, W, b):
    with torch.no_grad():
        getattr(module, "weight_ih" + suffix).copy_(torch.tensor(U))
        getattr(module, "weight_hh" + suffix).copy_(torch.tensor(W))
        getattr(module, "bias_ih" + suffix).copy_(torch.tensor(b))
        getattr(module, "bias_hh" + suffix).zero_()


def torch_grads(torch, module, suffix):
    return [getattr(module, name + suffix).grad.numpy() for name in ("weight_ih", "weight_hh", "bias_ih")]


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_step_matches_torch_cell(kind):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(20)
    N, D, H = 3, 4, 5
    if kind == "rnn":
        a = rnn_args(rng, N, 1, D, H, step=True)
        cell = torch.nn.RNNCell(D, H).double()
        U, W, b = a["U"], a["W"], a["b"]
    else:
        a = lstm_step_args(rng, N, D, H)
        cell = torch.nn.LSTMCell(D, H).double()
        U, W, b = (torch_order(a[k], H) for k in ("U", "W", "b"))
    set_params(torch, cell, "", U, W, b)
    dh, dc = rng.normal(size=(N, H)), rng.normal(size=(N, H))
    x_t, h_t, c_t = to_tensors(torch, [a["x"], a["h_prev"], a.get("c_prev", np.zeros((N, H)))])

    if kind == "rnn":
        h_torch = cell(x_t, h_t)
        (h_torch * torch.tensor(dh)).sum().backward()
        assert rel_error(seq.rnn_step_forward(**a), h_torch.detach().numpy()) < 1e-13
        dx, dh_prev, dU, dW, db = seq.rnn_step_backward(dh, **a)
        dc_prev = None
    else:
        h_torch, c_torch = cell(x_t, (h_t, c_t))
        ((h_torch * torch.tensor(dh)).sum() + (c_torch * torch.tensor(dc)).sum()).backward()
        h, c = seq.lstm_step_forward(**a)
        assert rel_error(h, h_torch.detach().numpy()) < 1e-13
        assert rel_error(c, c_torch.detach().numpy()) < 1e-13
        dx, dh_prev, dc_prev, dU, dW, db = seq.lstm_step_backward(dh, dc, **a)
        dU, dW, db = torch_order(dU, H), torch_order(dW, H), torch_order(db, H)
        assert rel_error(dc_prev, c_t.grad.numpy()) < 1e-12
    assert rel_error(dx, x_t.grad.numpy()) < 1e-12
    assert rel_error(dh_prev, h_t.grad.numpy()) < 1e-12
    for ours, theirs in zip((dU, dW, db), torch_grads(torch, cell, "")):
        assert rel_error(ours, theirs) < 1e-12


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_sequence_matches_torch_layer(kind):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(21)
    N, T, D, H = 2, 5, 3, 4
    a = rnn_args(rng, N, T, D, H, gates=1 if kind == "rnn" else 4)
    layer = (torch.nn.RNN if kind == "rnn" else torch.nn.LSTM)(D, H, batch_first=True).double()
    reorder = (lambda A: A) if kind == "rnn" else (lambda A: torch_order(A, H))
    set_params(torch, layer, "_l0", reorder(a["U"]), reorder(a["W"]), reorder(a["b"]))
    x_t, h0_t = to_tensors(torch, [a["x"], a["h0"]])
    if kind == "rnn":
        h_torch, _ = layer(x_t, h0_t[None])
        forward, backward = seq.rnn_forward, seq.rnn_backward
    else:
        h_torch, _ = layer(x_t, (h0_t[None], torch.zeros(1, N, H, dtype=torch.float64)))
        forward, backward = seq.lstm_forward, seq.lstm_backward
    dh = rng.normal(size=(N, T, H))
    (h_torch * torch.tensor(dh)).sum().backward()
    assert rel_error(forward(**a), h_torch.detach().numpy()) < 1e-13
    dx, dh0, dU, dW, db = backward(dh, **a)
    assert rel_error(dx, x_t.grad.numpy()) < 1e-12
    assert rel_error(dh0, h0_t.grad.numpy()) < 1e-12
    for ours, theirs in zip((reorder(dU), reorder(dW), reorder(db)), torch_grads(torch, layer, "_l0")):
        assert rel_error(ours, theirs) < 1e-12


def test_embedding_and_loss_match_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    o, y, mask = loss_case(22)
    o_t = torch.tensor(o, requires_grad=True)
    per_step = F.cross_entropy(o_t.reshape(-1, o.shape[2]), torch.tensor(y.ravel()), reduction="none")
    L_t = (per_step * torch.tensor(mask.ravel(), dtype=torch.float64)).sum() / o.shape[0]
    L_t.backward()
    L, do = seq.temporal_softmax_loss(o, y, mask)
    assert L == pytest.approx(L_t.item(), rel=1e-13)
    assert rel_error(do, o_t.grad.numpy()) < 1e-13

    rng = np.random.default_rng(23)
    E, x = rng.normal(size=(6, 3)), rng.integers(0, 6, size=(4, 5))
    E_t = torch.tensor(E, requires_grad=True)
    out_t = F.embedding(torch.tensor(x), E_t)
    dout = rng.normal(size=(4, 5, 3))
    (out_t * torch.tensor(dout)).sum().backward()
    assert np.array_equal(seq.word_embedding_forward(x, E), out_t.detach().numpy())
    assert rel_error(seq.word_embedding_backward(dout, x, E), E_t.grad.numpy()) < 1e-13


# ----------------------------------------------------------------------------
# LSTM mistake models
# ----------------------------------------------------------------------------

def mistake_case(seed, N=2, T=4, D=3, H=3):
    rng = np.random.default_rng(seed)
    step = lstm_step_args(rng, N, D, H)
    sequence = rnn_args(rng, N, T, D, H, gates=4)
    return step, sequence, rng.normal(size=(N, H)), rng.normal(size=(N, H)), rng.normal(size=(N, T, H))


def outputs(models, names):
    """{code: [tuple per form]} from {name: {code: [output per form]}}."""
    codes = models[names[0]]
    return {code: list(zip(*(models[name][code] for name in names))) for code in codes}


def test_models_without_a_switch_are_the_reference():
    step, sequence, dh, dc, dhs = mistake_case(24)
    for got, want in [
        (mistakes.step_forward(**step), seq.lstm_step_forward(**step)),
        (mistakes.step_backward(dh, dc, **step), seq.lstm_step_backward(dh, dc, **step)),
        ((mistakes.forward(**sequence),), (seq.lstm_forward(**sequence),)),
        (mistakes.backward(dhs, **sequence), seq.lstm_backward(dhs, **sequence)),
    ]:
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert rel_error(g, w) < 1e-12


@pytest.mark.parametrize("seed", [25, 26])
def test_every_mistake_form_differs_from_the_reference(seed):
    """A check can tell each form from the right answer: some output differs by far."""
    step, sequence, dh, dc, dhs = mistake_case(seed)
    cases = [
        (mistakes.step_forward_models(**step), ("h", "c"), seq.lstm_step_forward(**step)),
        ({"h": mistakes.forward_models(**sequence)}, ("h",), (seq.lstm_forward(**sequence),)),
        (mistakes.step_backward_models(dh, dc, **step), mistakes.STEP_GRADS,
         seq.lstm_step_backward(dh, dc, **step)),
        (mistakes.backward_models(dhs, **sequence), mistakes.SEQUENCE_GRADS,
         seq.lstm_backward(dhs, **sequence)),
    ]
    seen = set()
    for models, names, reference in cases:
        for code, forms in outputs(models, names).items():
            seen.add(code)
            assert forms, code
            for k, form in enumerate(forms):
                worst = max(rel_error(g, w) for g, w in zip(form, reference))
                assert worst > 1e-2, f"{code} form {k} is the reference ({worst:.1e})"
    assert seen == {mistakes.GATE_ORDER, mistakes.NO_FORGET_PATH, mistakes.DC_PREV_MISSING}
    assert len(outputs(cases[0][0], ("h", "c"))[mistakes.GATE_ORDER]) == 23


# Students who made each mistake, written as such code is (loops over time, the
# mistake in one line), independently of the models.

def student_step(x, h_prev, c_prev, U, W, b, order="ifog"):
    H = h_prev.shape[1]
    a = x @ U.T + h_prev @ W.T + b
    blocks = {name: a[:, k * H:(k + 1) * H] for k, name in enumerate(order)}
    i, f, o, g = sigmoid(blocks["i"]), sigmoid(blocks["f"]), sigmoid(blocks["o"]), np.tanh(blocks["g"])
    c = f * c_prev + i * g
    return o * np.tanh(c), c, (i, f, o, g)


def student_backward(dh, x, h0, U, W, b, carry_dc=True, order="ifog"):
    N, T, _ = x.shape
    H = h0.shape[1]
    hs, cs, gs = [h0], [np.zeros((N, H))], []
    for t in range(T):
        h, c, gates = student_step(x[:, t], hs[-1], cs[-1], U, W, b, order)
        hs.append(h), cs.append(c), gs.append(gates)
    dx, dU, dW, db = np.zeros_like(x), np.zeros_like(U), np.zeros_like(W), np.zeros_like(b)
    dnext_h, dnext_c = np.zeros((N, H)), np.zeros((N, H))
    for t in range(T - 1, -1, -1):
        i, f, o, g = gs[t]
        dht = dh[:, t] + dnext_h
        dct = dnext_c + dht * o * (1 - np.tanh(cs[t + 1]) ** 2)
        d = {"i": dct * g * i * (1 - i), "f": dct * cs[t] * f * (1 - f),
             "o": dht * np.tanh(cs[t + 1]) * o * (1 - o), "g": dct * i * (1 - g ** 2)}
        da = np.hstack([d[name] for name in order])
        dx[:, t] = da @ U
        dU += da.T @ x[:, t]
        dW += da.T @ hs[t]
        db += da.sum(axis=0)
        dnext_h = da @ W
        dnext_c = dct * f if carry_dc else np.zeros((N, H))   # the mistake: nothing carried
    return dx, dnext_h, dU, dW, db


def explained_by(models, names, got):
    """Codes with a form that matches every output of `got`."""
    return {code for code, forms in outputs(models, names).items()
            if any(all(rel_error(g, f) < 1e-9 for g, f in zip(got, form)) for form in forms)}


def test_models_explain_students_who_made_the_mistake():
    step, sequence, dh, dc, dhs = mistake_case(27)

    swapped = student_step(**step, order="ifgo")[:2]                 # torch's order, not ours
    assert explained_by(mistakes.step_forward_models(**step), ("h", "c"), swapped) == {mistakes.GATE_ORDER}
    models = mistakes.backward_models(dhs, **sequence)
    swapped = student_backward(dhs, **sequence, order="gifo")
    assert explained_by(models, mistakes.SEQUENCE_GRADS, swapped) == {mistakes.GATE_ORDER}

    no_carry = student_backward(dhs, **sequence, carry_dc=False)
    assert explained_by(models, mistakes.SEQUENCE_GRADS, no_carry) == {mistakes.NO_FORGET_PATH}
    right = student_backward(dhs, **sequence)
    assert all(rel_error(g, w) < 1e-12 for g, w in zip(right, seq.lstm_backward(dhs, **sequence)))
    assert explained_by(models, mistakes.SEQUENCE_GRADS, right) == set()

    dx, dh_prev, _, dU, dW, db = seq.lstm_step_backward(dh, dc, **step)
    forgot_dc_prev = (dx, dh_prev, np.zeros_like(dh_prev), dU, dW, db)   # returns zeros for dprev_c
    models = mistakes.step_backward_models(dh, dc, **step)
    assert explained_by(models, mistakes.STEP_GRADS, forgot_dc_prev) == {mistakes.DC_PREV_MISSING}


def test_mistake_codes_are_in_the_catalogue():
    from grader.diagnoses import CATALOGUE

    for code in (mistakes.GATE_ORDER, mistakes.NO_FORGET_PATH, mistakes.DC_PREV_MISSING):
        assert code.startswith("lstm.")
        entry = CATALOGUE[code]
        assert entry.sentence.endswith(".") and entry.hint.endswith(".")
