"""The directional finite-difference helper: right gradients pass, wrong ones fail,
float32 forwards are judged fairly, and the number of forward calls does not grow
with the number of parameters."""

import numpy as np
import pytest

from grader.checks import CheckFailed
from grader.compare import DEFAULT_TOLERANCES
from grader.gradcheck import (
    FD_RTOL_FLOAT32,
    backward_matches_forward,
    contraction,
    directional_errors,
    expect_backward_matches_forward,
)
from grader.proxy import StudentRaised


def layer(p):
    """y = tanh(x @ w + b): smooth, array-valued, with three inputs."""
    return np.tanh(p["x"] @ p["w"] + p["b"])


def layer_backward(dy, p):
    da = dy * (1 - layer(p) ** 2)
    return {"x": da @ p["w"].T, "w": p["x"].T @ da, "b": da.sum(axis=0)}


def problem(rng, n=4, d_in=5, d_out=3):
    p = {"x": rng.standard_normal((n, d_in)), "w": 0.5 * rng.standard_normal((d_in, d_out)),
         "b": 0.1 * rng.standard_normal(d_out)}
    dy = rng.standard_normal((n, d_out))
    return p, dy


class Counting:
    """A forward pass that counts its calls (the student's would cost a round trip each)."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, p):
        self.calls += 1
        return self.fn(p)


def phi_of(forward, dy):
    return lambda p: contraction(dy, forward(p))


def test_right_gradients_agree_to_round_off():
    rng = np.random.default_rng(0)
    p, dy = problem(rng)
    found = directional_errors(phi_of(layer, dy), p, layer_backward(dy, p), rng)
    assert set(found) == {"x", "w", "b"}
    assert all(d.error < 1e-7 for d in found.values()), found


@pytest.mark.parametrize("name", ["x", "w", "b"])
@pytest.mark.parametrize("mistake", ["doubled", "zero", "orthogonal", "one_entry"])
def test_wrong_gradients_are_caught(name, mistake):
    rng = np.random.default_rng(1)
    p, dy = problem(rng)
    grads = layer_backward(dy, p)
    g = grads[name]
    if mistake == "doubled":
        grads[name] = 2 * g
    elif mistake == "zero":
        grads[name] = np.zeros_like(g)
    elif mistake == "orthogonal":  # same length, rotated away: only the random direction sees it
        r = rng.standard_normal(g.shape)
        r -= (r * g).sum() / (g * g).sum() * g
        grads[name] = g + 0.5 * np.linalg.norm(g) * r / np.linalg.norm(r)
    else:
        wrong = g.copy()
        wrong.flat[0] += 0.3 * np.abs(g).max()
        grads[name] = wrong
    found = directional_errors(phi_of(layer, dy), p, grads, rng)
    assert found[name].error > 1e-3, found[name]
    assert all(d.error < 1e-7 for other, d in found.items() if other != name)


@pytest.mark.parametrize("along_gradient", [True, False])
def test_forward_calls_do_not_grow_with_the_number_of_parameters(along_gradient):
    counts = []
    for n, d_in, d_out in ((2, 3, 2), (64, 200, 50)):  # 6 parameters in w, then 10,000
        rng = np.random.default_rng(2)
        p, dy = problem(rng, n, d_in, d_out)
        forward = Counting(layer)
        directional_errors(phi_of(forward, dy), p, layer_backward(dy, p), rng, along_gradient=along_gradient)
        counts.append(forward.calls)
    assert counts[0] == counts[1] == 4 * 3  # two directions, two sides, three gradients


def test_the_whole_check_calls_a_correct_forward_a_handful_of_times_whatever_the_size():
    counts = []
    for n, d_in, d_out in ((2, 3, 2), (64, 200, 50)):
        rng = np.random.default_rng(3)
        p, dy = problem(rng, n, d_in, d_out)
        own = Counting(layer)
        verdict = backward_matches_forward(own, layer, p, layer_backward(dy, p), dy, rng)
        assert verdict.passed and verdict.source == "reference" and max(verdict.own_errors.values()) < 1e-7
        counts.append(own.calls)
    assert counts[0] == counts[1] == 1 + 4 * 3


def test_a_float32_forward_does_not_fail_a_right_backward():
    rng = np.random.default_rng(4)
    p, dy = problem(rng, 8, 30, 10)

    def float32_forward(q):
        return np.tanh(q["x"].astype(np.float32) @ q["w"].astype(np.float32) + q["b"].astype(np.float32))

    verdict = backward_matches_forward(float32_forward, layer, p, layer_backward(dy, p), dy, rng)
    assert verdict.passed, verdict
    assert verdict.tolerance == FD_RTOL_FLOAT32 and not verdict.notes  # its own differences agree too


def test_an_imprecise_forward_does_not_fail_a_right_backward():
    """float32 inside but float64 outside: right to 1e-7, so it passes as a forward, but
    its differences at float64 steps are noise; the reference's decide, a note says so."""
    rng = np.random.default_rng(5)
    p, dy = problem(rng)

    def float32_inside(q):
        return layer({k: v.astype(np.float32) for k, v in q.items()}).astype(np.float64)

    verdict = backward_matches_forward(float32_inside, layer, p, layer_backward(dy, p), dy, rng)
    assert verdict.passed and verdict.source == "reference"
    assert "only approximately" in verdict.notes[0]


def test_a_wrong_forward_never_costs_the_backward():
    rng = np.random.default_rng(6)
    p, dy = problem(rng)
    verdict = backward_matches_forward(lambda q: 2 * layer(q), layer, p, layer_backward(dy, p), dy, rng)
    assert verdict.passed and verdict.source == "reference"
    assert "differs from the reference" in verdict.notes[0]


def test_a_forward_that_raises_never_costs_the_backward():
    def broken(q):
        raise StudentRaised("f", "ValueError", "shapes", "")

    rng = np.random.default_rng(7)
    p, dy = problem(rng)
    verdict = backward_matches_forward(broken, layer, p, layer_backward(dy, p), dy, rng)
    assert verdict.passed and verdict.source == "reference" and "failed" in verdict.notes[0]


@pytest.mark.parametrize("forward_is_right", [True, False])
def test_a_wrong_backward_fails_whichever_forward_judges_it(forward_is_right):
    rng = np.random.default_rng(8)
    p, dy = problem(rng)
    grads = layer_backward(dy, p)
    grads["w"] = grads["w"] * 1.1
    own = layer if forward_is_right else (lambda q: layer(q) + 1.0)
    with pytest.raises(CheckFailed) as failure:
        expect_backward_matches_forward(own, layer, p, grads, dy, rng, DEFAULT_TOLERANCES, "layer_backward", "layer")
    assert "dw" in failure.value.message and failure.value.details["relative_errors"]["dx"] < 1e-7


def test_scalar_forwards_need_no_upstream_gradient():
    rng = np.random.default_rng(9)
    z = rng.standard_normal(6)

    def loss(q):
        return np.log(np.exp(q["z"]).sum())

    softmax = np.exp(z) / np.exp(z).sum()
    verdict = backward_matches_forward(loss, loss, {"z": z}, {"z": softmax}, None, rng)
    assert verdict.passed and verdict.errors["dz"] < 1e-7
    assert contraction(None, np.float64(2.5)) == (2.5, 2.5)


def test_reference_points_do_not_depend_on_the_student():
    """Differentiating the reference uses random directions only, so the kit can record
    the points it is evaluated at."""
    seen = []

    def reference(q):
        seen.append(q["x"].tobytes())
        return layer(q)

    for scale in (1.0, 3.0):
        rng = np.random.default_rng(10)
        p, dy = problem(rng)
        grads = {k: scale * g for k, g in layer_backward(dy, p).items()}
        backward_matches_forward(lambda q: layer(q) + 5.0, reference, p, grads, dy, np.random.default_rng(11))
    half = len(seen) // 2
    assert seen[:half] == seen[half:]


def test_float32_gradients_are_judged_at_float32_precision():
    rng = np.random.default_rng(12)
    p, dy = problem(rng, 16, 40, 12)
    grads = {k: g.astype(np.float32) for k, g in layer_backward(dy, p).items()}
    verdict = backward_matches_forward(lambda q: layer(q) * 2, layer, p, grads, dy, rng)  # judged by the reference
    assert verdict.passed and verdict.tolerance == FD_RTOL_FLOAT32
    grads["b"] = grads["b"] * np.float32(1.05)
    assert not backward_matches_forward(layer, layer, p, grads, dy, rng).passed


class Anchoring:
    """A forward that is right at every input it is first asked about, but answers an
    input within a tiny distance of one it has seen with that input's value: its own
    finite differences are all zero."""

    def __init__(self, fn):
        self.fn, self.seen = fn, []

    def __call__(self, p):
        for old, value in self.seen:
            if all(np.max(np.abs(p[k] - old[k])) < 1e-3 for k in p):
                return value
        value = self.fn(p)
        self.seen.append(({k: v.copy() for k, v in p.items()}, value))
        return value


def test_a_forward_that_is_only_right_at_the_tested_input_earns_a_zero_backward_nothing():
    rng = np.random.default_rng(13)
    p, dy = problem(rng)
    zeros = {k: np.zeros_like(v) for k, v in p.items()}
    verdict = backward_matches_forward(Anchoring(layer), layer, p, zeros, dy, rng)
    assert verdict.own_errors == {"dx": 0.0, "dw": 0.0, "db": 0.0}  # its own differences would pass it
    assert not verdict.passed and verdict.source == "reference"
    assert "not next to it" in verdict.notes[0]
    with pytest.raises(CheckFailed, match="reference layer"):
        expect_backward_matches_forward(Anchoring(layer), layer, p, zeros, dy, np.random.default_rng(13),
                                        DEFAULT_TOLERANCES, "layer_backward", "layer")


def test_the_same_forward_does_not_cost_a_right_backward_and_is_named_in_a_note():
    rng = np.random.default_rng(14)
    p, dy = problem(rng)
    details = expect_backward_matches_forward(Anchoring(layer), layer, p, layer_backward(dy, p), dy, rng,
                                              DEFAULT_TOLERANCES, "layer_backward", "layer")
    assert details["differentiated"] == "reference" and max(details["relative_errors"].values()) < 1e-7
    assert "disagree with your gradients" in details["note"]
