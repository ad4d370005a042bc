"""Tests of the reference RNN (reference/rnn.py) against the lecture's formulas.

Every expected value here is computed independently of the reference: explicit
per-step loops written out in the test, or central finite differences.
"""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

from reference.rnn import (
    birnn_forward,
    rnn_backward,
    rnn_forward,
    rnn_loss,
    rnn_sample,
)

# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------

def make_rnn(rng, T, D, H, K, scale=0.5):
    """Random float64 RNN inputs and parameters with the contract's shapes."""
    return dict(
        x=rng.normal(size=(T, D)),
        h0=scale * rng.normal(size=H),
        U=scale * rng.normal(size=(H, D)),
        W=scale * rng.normal(size=(H, H)),
        V=scale * rng.normal(size=(K, H)),
        b=scale * rng.normal(size=H),
        c=scale * rng.normal(size=K),
    )


def make_birnn(rng, T, D, Hf, Hb, K, scale=0.5):
    """Random float64 bidirectional RNN inputs and parameters."""
    return dict(
        x=rng.normal(size=(T, D)),
        h0=scale * rng.normal(size=Hf),
        g0=scale * rng.normal(size=Hb),
        Uf=scale * rng.normal(size=(Hf, D)),
        Wf=scale * rng.normal(size=(Hf, Hf)),
        bf=scale * rng.normal(size=Hf),
        Ub=scale * rng.normal(size=(Hb, D)),
        Wb=scale * rng.normal(size=(Hb, Hb)),
        bb=scale * rng.normal(size=Hb),
        V=scale * rng.normal(size=(K, Hf + Hb)),
        c=scale * rng.normal(size=K),
    )


def naive_softmax(o):
    """Textbook softmax of one vector; fine for the small scores used here."""
    e = np.exp(o)
    return e / e.sum()


def rel_error(a, b):
    """max|a - b| / max(max|a|, max|b|): the one error measure of this file."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.abs(a).max(), np.abs(b).max())
    return 0.0 if scale == 0 else float(np.abs(a - b).max() / scale)


def one_hot(indices, K):
    return np.eye(K)[list(indices)]


# ----------------------------------------------------------------------------
# rnn_forward
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("T, D, H, K", [(1, 3, 4, 2), (5, 4, 5, 4), (9, 2, 7, 6)])
def test_forward_matches_explicit_steps(T, D, H, K):
    p = make_rnn(np.random.default_rng(T * 100 + H), T, D, H, K)
    h, yhat = rnn_forward(**p)

    h_prev = p["h0"]
    for t in range(T):
        a_t = p["b"] + p["W"] @ h_prev + p["U"] @ p["x"][t]
        h_t = np.tanh(a_t)
        o_t = p["c"] + p["V"] @ h_t
        assert np.allclose(h[t], h_t, rtol=1e-12, atol=1e-14)
        assert np.allclose(yhat[t], naive_softmax(o_t), rtol=1e-12, atol=1e-14)
        h_prev = h_t

    assert h.shape == (T, H) and yhat.shape == (T, K)
    assert h.dtype == np.float64 and yhat.dtype == np.float64


def test_forward_softmax_is_stable_for_large_scores():
    p = make_rnn(np.random.default_rng(1), 4, 3, 5, 4)
    _, yhat = rnn_forward(**p)
    shifted = dict(p, c=p["c"] + 1000.0)      # exp(1000) overflows float64
    with np.errstate(all="raise"):
        _, yhat_big = rnn_forward(**shifted)
    assert np.all(np.isfinite(yhat_big))
    assert np.allclose(yhat_big, yhat, rtol=1e-10, atol=1e-14)


def test_float32_and_int_inputs_give_float64_results():
    rng = np.random.default_rng(2)
    p = make_rnn(rng, 3, 4, 5, 4)
    p32 = {k: v.astype(np.float32) for k, v in p.items()}
    p32["x"] = one_hot([0, 3, 1], 4).astype(np.int64)
    h, yhat = rnn_forward(**p32)
    assert h.dtype == np.float64 and yhat.dtype == np.float64
    grads = rnn_backward(y=np.array([1, 0, 2]), h=h, yhat=yhat, **p32)
    assert all(g.dtype == np.float64 for g in grads.values())
    bp = {k: v.astype(np.float32) for k, v in make_birnn(rng, 3, 4, 2, 3, 4).items()}
    assert all(r.dtype == np.float64 for r in birnn_forward(**bp))
    assert type(rnn_loss(yhat.astype(np.float32), [1, 0, 2])) is float


# ----------------------------------------------------------------------------
# rnn_loss
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("T, K", [(1, 3), (6, 4), (15, 2)])
def test_loss_is_summed_negative_log_likelihood(T, K):
    rng = np.random.default_rng(T)
    yhat = np.array([naive_softmax(o) for o in rng.normal(size=(T, K))])
    y = rng.integers(0, K, size=T)
    expected = sum(-np.log(yhat[t, y[t]]) for t in range(T))
    L = rnn_loss(yhat, y)
    assert type(L) is float
    assert L == pytest.approx(expected, rel=1e-13)


def test_loss_accepts_a_list_of_labels():
    yhat = np.array([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]])
    assert rnn_loss(yhat, [0, 2]) == pytest.approx(-np.log(0.5) - np.log(0.8))


# ----------------------------------------------------------------------------
# rnn_backward: backpropagation through time against finite differences
# ----------------------------------------------------------------------------

EPS = 1e-6
GRAD_NAMES = ("U", "W", "V", "b", "c", "h0")


def numeric_gradient(p, y, name):
    """Central differences of rnn_loss(rnn_forward(...)) with respect to p[name]."""
    base = p[name]
    grad = np.zeros_like(base)
    for i in np.ndindex(base.shape):
        plus, minus = base.copy(), base.copy()
        plus[i] += EPS
        minus[i] -= EPS
        L_plus = rnn_loss(rnn_forward(**dict(p, **{name: plus}))[1], y)
        L_minus = rnn_loss(rnn_forward(**dict(p, **{name: minus}))[1], y)
        grad[i] = (L_plus - L_minus) / (2 * EPS)
    return grad


@pytest.mark.parametrize("T", [1, 2, 3, 5, 10, 20])
def test_backward_matches_finite_differences(T):
    D = K = 4
    H = 5
    rng = np.random.default_rng(1000 + T)
    p = make_rnn(rng, T, D, H, K)
    y = rng.integers(0, K, size=T)
    h, yhat = rnn_forward(**p)

    grads = rnn_backward(y=y, h=h, yhat=yhat, **p)

    assert set(grads) == set(GRAD_NAMES)
    for name in GRAD_NAMES:
        analytic = grads[name]
        assert analytic.shape == p[name].shape, name
        assert analytic.dtype == np.float64, name
        err = rel_error(analytic, numeric_gradient(p, y, name))
        assert err < 1e-7, f"d{name}: relative error {err:.2e} at T={T}"


# ----------------------------------------------------------------------------
# birnn_forward
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("T, D, Hf, Hb, K", [(1, 3, 4, 4, 3), (6, 3, 4, 4, 5), (7, 2, 5, 3, 4)])
def test_birnn_forward_matches_explicit_loops(T, D, Hf, Hb, K):
    p = make_birnn(np.random.default_rng(T + Hb), T, D, Hf, Hb, K)
    h, g, yhat = birnn_forward(**p)

    h_exp = np.zeros((T, Hf))
    h_prev = p["h0"]
    for t in range(T):                       # forward in time from h(0) = h0
        h_prev = np.tanh(p["bf"] + p["Wf"] @ h_prev + p["Uf"] @ p["x"][t])
        h_exp[t] = h_prev

    g_exp = np.zeros((T, Hb))
    g_next = p["g0"]
    for t in range(T - 1, -1, -1):           # backward in time from g(T+1) = g0
        g_next = np.tanh(p["bb"] + p["Wb"] @ g_next + p["Ub"] @ p["x"][t])
        g_exp[t] = g_next

    yhat_exp = np.array([
        naive_softmax(p["c"] + p["V"] @ np.concatenate([h_exp[t], g_exp[t]]))
        for t in range(T)
    ])

    assert h.shape == (T, Hf) and g.shape == (T, Hb) and yhat.shape == (T, K)
    assert np.allclose(h, h_exp, rtol=1e-12, atol=1e-14)
    assert np.allclose(g, g_exp, rtol=1e-12, atol=1e-14)
    assert np.allclose(yhat, yhat_exp, rtol=1e-12, atol=1e-14)


def test_birnn_forward_half_equals_rnn_hidden_states():
    """The forward direction is exactly rnn_forward's recurrence."""
    p = make_birnn(np.random.default_rng(3), 5, 3, 4, 2, 3)
    h, _, _ = birnn_forward(**p)
    h_rnn, _ = rnn_forward(p["x"], p["h0"], p["Uf"], p["Wf"], p["V"][:, :4], p["bf"], p["c"])
    assert np.allclose(h, h_rnn, rtol=1e-13, atol=1e-15)


# ----------------------------------------------------------------------------
# rnn_sample
# ----------------------------------------------------------------------------

def sampling_rnn(seed, K, H, target):
    """Random RNN whose yhat(1) is close to `target` (c = log target, V small)."""
    rng = np.random.default_rng(seed)
    return dict(
        h0=0.3 * rng.normal(size=H),
        U=rng.normal(size=(H, K)),
        W=0.3 * rng.normal(size=(H, H)),
        V=0.2 * rng.normal(size=(K, H)),
        b=0.3 * rng.normal(size=H),
        c=np.log(np.asarray(target, dtype=np.float64)),
    )


def test_sample_first_draw_follows_yhat1():
    K, H, x0, N = 4, 5, 2, 4000
    p = sampling_rnn(11, K, H, [0.55, 0.25, 0.15, 0.05])
    yhat1 = rnn_forward(one_hot([x0], K), **p)[1][0]
    # The test only has power against argmax/uniform draws if yhat(1) is far
    # from uniform, and chi-square needs >= 5 expected draws per symbol.
    assert yhat1.max() - yhat1.min() > 0.3 and N * yhat1.min() >= 5

    draws = [
        rnn_sample(x0=x0, n=1, rng=np.random.default_rng(s), **p)[0]
        for s in np.random.SeedSequence(20240501).spawn(N)
    ]
    counts = np.bincount(draws, minlength=K)
    assert counts.sum() == N and len(counts) == K
    _, p_value = chisquare(counts, N * yhat1)
    assert p_value > 0.001, (counts, N * yhat1)


def test_sample_is_reproducible_and_returns_python_ints():
    K, H = 4, 5
    p = sampling_rnn(12, K, H, [0.4, 0.3, 0.2, 0.1])
    first = rnn_sample(x0=1, n=50, rng=np.random.default_rng(7), **p)
    again = rnn_sample(x0=1, n=50, rng=np.random.default_rng(7), **p)
    other = rnn_sample(x0=1, n=50, rng=np.random.default_rng(8), **p)
    assert isinstance(first, list) and len(first) == 50
    assert all(type(v) is int and 0 <= v < K for v in first)
    assert first == again
    assert first != other          # 50 draws, no symbol above ~0.6: collision ~0
    assert rnn_sample(x0=1, n=0, rng=np.random.default_rng(7), **p) == []


def cyclic_rnn(K):
    """An RNN whose next symbol is (previous input + 1) % K with probability ~1.

    U = 10 I puts h(t) ~ one-hot(previous symbol); V[(i+1) % K, i] = 30 turns
    that into a score of ~30 for the successor; W = 0 forgets everything else.
    """
    return dict(
        h0=np.zeros(K),
        U=10.0 * np.eye(K),
        W=np.zeros((K, K)),
        V=30.0 * np.roll(np.eye(K), 1, axis=0),
        b=np.zeros(K),
        c=np.zeros(K),
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sample_feeds_each_draw_back_as_next_input(seed):
    K, x0, n = 5, 2, 12
    seq = rnn_sample(x0=x0, n=n, rng=np.random.default_rng(seed), **cyclic_rnn(K))
    assert seq == [(x0 + k) % K for k in range(1, n + 1)]


def test_sample_second_draw_distribution_depends_on_first():
    """Given the first draw s, the second must follow yhat(2) of input [x0, s]."""
    K, x0, N = 3, 0, 6000
    p = dict(
        h0=np.array([0.1, -0.2, 0.3]),
        U=2.5 * np.eye(K),
        W=0.3 * np.random.default_rng(5).normal(size=(K, K)),
        V=1.5 * np.roll(np.eye(K), 1, axis=0),   # favours (input + 1) % K
        b=np.zeros(K),
        c=np.zeros(K),
    )
    conditional = np.array([rnn_forward(one_hot([x0, s], K), **p)[1][1] for s in range(K)])
    # Guard: the conditionals differ a lot, so ignoring the fed-back draw fails.
    assert np.abs(conditional[:, None] - conditional[None, :]).sum(axis=2).max() > 1.0

    pairs = np.array([
        rnn_sample(x0=x0, n=2, rng=np.random.default_rng(s), **p)
        for s in np.random.SeedSequence(4242).spawn(N)
    ])
    for s in range(K):
        second = pairs[pairs[:, 0] == s, 1]
        assert len(second) * conditional[s].min() >= 5, s
        counts = np.bincount(second, minlength=K)
        _, p_value = chisquare(counts, len(second) * conditional[s])
        assert p_value > 0.001, (s, counts, len(second) * conditional[s])


# ----------------------------------------------------------------------------
# No function writes into its inputs
# ----------------------------------------------------------------------------

def assert_unchanged(before, after):
    for name, value in before.items():
        assert np.array_equal(value, after[name]), f"{name} was modified"


@settings(max_examples=30, deadline=None)
@given(
    T=st.integers(1, 6), D=st.integers(1, 4), H=st.integers(1, 4),
    K=st.integers(2, 4), Hb=st.integers(1, 4), seed=st.integers(0, 2**32 - 1),
)
def test_no_function_modifies_its_inputs(T, D, H, K, Hb, seed):
    rng = np.random.default_rng(seed)

    p = make_rnn(rng, T, D, H, K, scale=1.0)
    y = rng.integers(0, K, size=T)
    saved = {k: v.copy() for k, v in p.items()}
    h, yhat = rnn_forward(**p)
    assert_unchanged(saved, p)

    args = dict(p, y=y, h=h, yhat=yhat)
    saved = {k: v.copy() for k, v in args.items()}
    rnn_loss(yhat, y)
    rnn_backward(**args)
    assert_unchanged(saved, args)

    s = make_rnn(rng, 1, K, H, K, scale=1.0)     # sampling needs D == K
    del s["x"]
    saved = {k: v.copy() for k, v in s.items()}
    rnn_sample(x0=int(rng.integers(K)), n=3, rng=rng, **s)
    assert_unchanged(saved, s)

    bp = make_birnn(rng, T, D, H, Hb, K, scale=1.0)
    saved = {k: v.copy() for k, v in bp.items()}
    birnn_forward(**bp)
    assert_unchanged(saved, bp)


# ----------------------------------------------------------------------------
# Shape errors name the argument
# ----------------------------------------------------------------------------

T0, D0, H0, K0, HB0 = 4, 4, 5, 4, 3       # D0 == K0 so rnn_sample fits too


def base_arguments(func):
    """Valid keyword arguments of `func`, to be broken one at a time."""
    rng = np.random.default_rng(99)
    p = make_rnn(rng, T0, D0, H0, K0)
    y = np.array([0, 3, 1, 2])
    if func is rnn_forward:
        return p
    h, yhat = rnn_forward(**p)
    if func is rnn_loss:
        return dict(yhat=yhat, y=y)
    if func is rnn_backward:
        return dict(p, y=y, h=h, yhat=yhat)
    if func is rnn_sample:
        del p["x"]
        return dict(p, x0=1, n=3, rng=rng)
    return make_birnn(rng, T0, D0, H0, HB0, K0)


# (function, argument, bad value from the valid arguments, expected shape or None)
BAD_ARGUMENTS = [
    (rnn_forward, "x", lambda a: a["x"][0], None),
    (rnn_forward, "x", lambda a: a["x"][:0], None),
    (rnn_forward, "h0", lambda a: a["h0"][None, :], None),
    (rnn_forward, "U", lambda a: a["U"][:, :-1], (H0, D0)),
    (rnn_forward, "U", lambda a: a["U"][:-1], (H0, D0)),
    (rnn_forward, "W", lambda a: a["W"][:, :-1], (H0, H0)),
    (rnn_forward, "V", lambda a: a["V"][:, :-1], (K0, H0)),
    (rnn_forward, "b", lambda a: a["b"][:-1], (H0,)),
    (rnn_forward, "c", lambda a: a["c"][:-1], (K0,)),
    (rnn_loss, "yhat", lambda a: a["yhat"][0], None),
    (rnn_loss, "y", lambda a: a["y"][:-1], (T0,)),
    (rnn_loss, "y", lambda a: np.array([0, 1, K0, 2]), None),
    (rnn_loss, "y", lambda a: np.array([0, -1, 1, 2]), None),
    (rnn_loss, "y", lambda a: a["y"].astype(float), None),
    (rnn_backward, "h", lambda a: a["h"][:-1], (T0, H0)),
    (rnn_backward, "h", lambda a: a["h"][:, :-1], (T0, H0)),
    (rnn_backward, "yhat", lambda a: a["yhat"][:, :-1], (T0, K0)),
    (rnn_backward, "y", lambda a: a["y"][:-1], (T0,)),
    (rnn_backward, "W", lambda a: a["W"][:-1], None),
    (rnn_sample, "U", lambda a: np.ones((H0, K0 + 1)), (H0, K0)),
    (rnn_sample, "x0", lambda a: K0, None),
    (rnn_sample, "x0", lambda a: -1, None),
    (rnn_sample, "n", lambda a: -1, None),
    (birnn_forward, "Uf", lambda a: a["Uf"][:, :-1], (H0, D0)),
    (birnn_forward, "Ub", lambda a: a["Ub"][:, :-1], (HB0, D0)),
    (birnn_forward, "Wb", lambda a: a["Wb"][:-1], (HB0, HB0)),
    (birnn_forward, "bb", lambda a: a["bb"][:-1], (HB0,)),
    (birnn_forward, "g0", lambda a: a["g0"][None, :], None),
    (birnn_forward, "V", lambda a: a["V"][:, :-1], (K0, H0 + HB0)),
    (birnn_forward, "V", lambda a: np.ones((K0, 2 * H0)), (K0, H0 + HB0)),
]


@pytest.mark.parametrize(
    "func, name, bad, expected", BAD_ARGUMENTS,
    ids=[f"{f.__name__}-{n}-{i}" for i, (f, n, _, _) in enumerate(BAD_ARGUMENTS)],
)
def test_bad_argument_raises_value_error_naming_it(func, name, bad, expected):
    args = base_arguments(func)
    value = bad(args)
    args[name] = value
    with pytest.raises(ValueError) as info:
        func(**args)
    message = str(info.value)
    # The argument at fault leads the message ("U has shape ...").
    assert re.match(rf"{re.escape(name)}\b", message), message
    if expected is not None:
        assert str(np.shape(value)) in message, message
        assert str(expected) in message, message
