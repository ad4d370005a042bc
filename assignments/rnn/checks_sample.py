"""Checks of rnn_sample: a statistical test of the draws, their feedback, and their
reproducibility.

Any correct way of drawing is accepted (rng.choice, an inverse CDF, rng.multinomial),
and each gives its own sequence, so only the distribution is checked: chi-square
tests whose threshold (P_VALUE) a correct sampler falls below about once in a
million seeds, while a sampler that takes the argmax, or ignores its last draw,
lands at p-values below 1e-20.
"""

from __future__ import annotations

import numpy as np

from assignments.rnn import mistakes
from assignments.rnn.cases import ARGS
from assignments.rnn.registry import check
from grader.checklib import expect_untouched, int_sequence
from grader.checks import CheckFailed
from grader.oracle import kit_recorded

P_VALUE = 1e-6
K = 5  # symbols; inputs are one-hot over them (D == K)


def _draw(student, params: dict, x0: int, n: int, seed: int) -> list[int]:
    out = student.rnn_sample(params["h0"], x0, n, params["U"], params["W"], params["V"], params["b"],
                             params["c"], np.random.default_rng(seed))
    return int_sequence(out, n, f"rnn_sample(..., n={n})", 0, K)


@kit_recorded
def _first_step_probabilities(params: dict, x0: int) -> np.ndarray:
    """yhat(1) = softmax(c + V tanh(b + W h0 + U onehot(x0))), as on the slides."""
    h1 = np.tanh(params["b"] + params["W"] @ params["h0"] + params["U"][:, x0])
    return mistakes.softmax_rows(params["c"] + params["V"] @ h1)


def _stateless(rng) -> dict:
    """U = W = 0: h(t) = tanh(b) whatever came before, so every draw has yhat(1)'s
    distribution, and one call gives thousands of first draws. A small V keeps the
    probabilities near softmax(c), between ~0.05 and ~0.4: every symbol is expected
    over a hundred times, as the chi-square approximation wants."""
    H = 4
    return {"h0": rng.standard_normal(H), "U": np.zeros((H, K)), "W": np.zeros((H, H)),
            "V": 0.3 * rng.standard_normal((K, H)), "b": rng.standard_normal(H),
            "c": np.array([0.9, 0.4, 0.0, -0.4, -0.9])}


def _markov(rng) -> dict:
    """W = 0 and a strong U: yhat(t) depends on the previous symbol only, mostly naming
    the next one (symbol s is followed by s + 1 mod K about 90% of the time)."""
    V = np.zeros((K, K))
    V[(np.arange(K) + 1) % K, np.arange(K)] = 4.0
    return {"h0": np.zeros(K), "U": 3.0 * np.eye(K), "W": np.zeros((K, K)), "V": V,
            "b": 0.1 * rng.standard_normal(K), "c": 0.1 * rng.standard_normal(K)}


def _general(rng) -> dict:
    H = 6
    return {"h0": 0.5 * rng.standard_normal(H), "U": 0.8 * rng.standard_normal((H, K)),
            "W": 0.6 * rng.standard_normal((H, H)), "V": 0.5 * rng.standard_normal((K, H)),
            "b": 0.2 * rng.standard_normal(H), "c": 0.2 * rng.standard_normal(K)}


def _greedy(params: dict, x0: int, n: int) -> list[int]:
    """What an argmax 'sampler' draws here. Asked before the student's draws are judged,
    whatever they are (a mistake model's answers depend on the inputs only; computed once
    per run, and recorded in a student kit)."""
    return mistakes.greedy(params["h0"], x0, n, params["U"], params["W"], params["V"], params["b"], params["c"])


def _argmax(draws: list[int], greedy: list[int]) -> list[str]:
    return [mistakes.ARGMAX] if draws == list(greedy) else []


@check("rnn_sample", kind="numeric", points=7)
def first_draws(student, rng):
    """3,000 draws whose distribution is yhat(1) (with U = W = 0 the state never changes):
    a chi-square test of their counts against yhat(1)."""
    params, x0, n = _stateless(rng), 2, 3000
    greedy = _greedy(params, x0, n)
    draws = _draw(student, params, x0, n, seed=int(rng.integers(2**31)))
    p = _first_step_probabilities(params, x0)
    counts = np.bincount(draws, minlength=K)
    from scipy import stats  # here, not at the top: importing it costs ~0.9 s of every run's start

    result = stats.chisquare(counts, n * p)
    if result.pvalue < P_VALUE:
        shown = ", ".join(f"{c} ({n * q:.0f})" for c, q in zip(counts, p))
        raise CheckFailed(f"the draws do not follow yhat(1): counts (expected) per symbol {shown}; "
                          f"chi-square p-value {result.pvalue:.2g}", _argmax(draws, greedy),
                          {"counts": counts.tolist(), "expected": (n * p).round(1).tolist(),
                           "p_value": float(result.pvalue)})


@check("rnn_sample", kind="numeric", points=6)
def feeds_back_each_draw(student, rng):
    """Each draw is fed back as the next one-hot input, so the second draw's distribution
    depends on the first: 2,000 transitions against yhat(t) given the previous symbol."""
    params, x0, n = _markov(rng), 0, 2000
    greedy = _greedy(params, x0, n)
    draws = _draw(student, params, x0, n, seed=int(rng.integers(2**31)))
    transitions = np.array([_first_step_probabilities(params, s) for s in range(K)])  # row: previous symbol
    previous = np.array([x0] + draws[:-1])
    observed = np.zeros((K, K))
    np.add.at(observed, (previous, np.array(draws)), 1)
    rows = observed.sum(axis=1) > 0  # previous symbols that occurred
    expected = observed[rows].sum(axis=1, keepdims=True) * transitions[rows]
    statistic = float(((observed[rows] - expected) ** 2 / expected).sum())
    dof = int(rows.sum()) * (K - 1)
    from scipy import stats

    p_value = float(stats.chi2.sf(statistic, dof))
    if p_value < P_VALUE:
        # Without feedback every draw comes from yhat given x0 (W = 0: the state cannot remember).
        unfed = stats.chisquare(np.bincount(draws, minlength=K), n * transitions[x0]).pvalue
        codes = [mistakes.NO_FEEDBACK] if unfed >= P_VALUE else _argmax(draws, greedy)
        follows = float(np.mean(np.array(draws) == (previous + 1) % K))
        raise CheckFailed(f"the draws do not follow yhat(t) given the symbol drawn before (a symbol s is "
                          f"followed by s + 1 {follows:.0%} of the time, expected about "
                          f"{float(np.mean(np.diag(np.roll(transitions, -1, axis=1)))):.0%}); chi-square "
                          f"p-value {p_value:.2g}", codes,
                          {"p_value": p_value, "observed": observed.astype(int).tolist()})


@check("rnn_sample", kind="behavior", points=4)
def reproducible(student, rng):
    """All randomness comes from rng: generators in the same state give the same sequence,
    generators seeded differently give different ones."""
    params, x0, n = _general(rng), 1, 40
    greedy = _greedy(params, x0, n)
    seed = int(rng.integers(2**31))
    first = _draw(student, params, x0, n, seed)
    again = _draw(student, params, x0, n, seed)
    if first != again:
        raise CheckFailed("two calls with generators in the same state drew different sequences: draw "
                          "with the rng argument (e.g. rng.choice), not np.random's global state",
                          [mistakes.IGNORES_RNG])
    other = _draw(student, params, x0, n, seed + 1)
    if other == first:
        raise CheckFailed(f"generators seeded differently drew the same {n} symbols: the draws do not "
                          "depend on rng", _argmax(first, greedy))


@check("rnn_sample", kind="behavior", points=3)
def returns_n_symbols(student, rng):
    """n symbols (x0 not included), each an int in [0, K); no input modified."""
    params = _general(rng)
    out = student.rnn_sample(params["h0"], 3, 25, params["U"], params["W"], params["V"], params["b"],
                             params["c"], np.random.default_rng(7))
    expect_untouched(student, "rnn_sample", ARGS["rnn_sample"])
    int_sequence(out, 25, "rnn_sample(..., n=25)", 0, K)
