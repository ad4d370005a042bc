"""Directional finite differences: is a backward pass the derivative of a forward pass?

For a forward pass y = f(p, ...) and an upstream gradient v (the `dy` a backward
pass is given), the backward pass returns g = J^T v, the gradient of the scalar
phi(p) = v . f(p). For any unit direction u in p's space

    g . u  =  v . (J u)  ~  (phi(p + h u) - phi(p - h u)) / (2 h)      (central difference)

so each direction costs two forward calls, however large p is: the number of
forward calls never grows with the number of parameters (a handful per gradient,
where perturbing one entry at a time would cost two calls per entry).

Which forward judges: always the reference's. Its differences (float64, where
round-off is no concern) are taken along two random directions, so that the points
it is evaluated at never depend on the student: the student kit can record the
reference's answers there ahead of time. A correct backward always agrees with
them. The student's own forward never decides: one that is right at the tested
input but answers differently next to it (the value of an input it has already
seen, for a slightly perturbed copy) would make its own differences agree with any
backward, an all-zero one included. Where the student's forward is right at the
tested input its own differences are still computed and reported, along

- g's own direction u = g / |g|: the derivative there is as large as it gets
  (|g| when g is right), so round-off cannot swamp the comparison;
- one random direction: it sees any part of the error that is orthogonal to g;

and a disagreement between the two is explained in a note. Random directions are
Gaussian, scaled to unit length: seeded, the same on every machine, and no error has a
fair chance of cancelling along them (as one whose entries cancel in pairs does along
a +-1 direction).

Everything is computed in float64. A forward pass that computes in float32 makes
phi itself noisy; `directional_errors` subtracts an estimate of that round-off
(`NOISE_FACTOR` machine epsilons of the forward's dtype per unit of sum |v * y|)
before calling a difference an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from grader.checks import CheckFailed
from grader.compare import DEFAULT_TOLERANCES, Tolerances, is_close
from grader.proxy import StudentCallError, StudentRaised

# Round-off of phi = v . f, in machine epsilons per unit of sum |v * y|: that sum
# bounds the error of the last rounding of every output, and the sums inside a layer
# add errors of the same size that mostly cancel (measured: the real error of a float32
# convolution is 10-100 times below this bound). A larger factor would hide real
# errors of float32 forwards in the report; a smaller one cannot fail correct code,
# since only the (float64) reference forward's differences decide.
NOISE_FACTOR = 2.0
# Steps, relative to the largest entry of the perturbed input: near eps^(1/3) of the
# dtype, where the truncation error (h^2) of a smooth forward and its round-off
# (eps / h) are both small. Piecewise-linear forwards (ReLU, max pooling) need
# steps below the distance to the nearest kink; their checks pass smaller ones.
STEP_FLOAT64 = 1e-5
STEP_FLOAT32 = 3e-3
# Differences of a float32 forward are accurate to ~1e-5 relative (measured on the
# layers and the RNN at the steps above), gradients computed in float32 to ~1e-6; a
# correct backward stays far below 1e-3 either way, every gradient mistake we know of
# (a missing term, a wrong factor, a transposition) far above (> 1e-2).
FD_RTOL_FLOAT32 = 1e-3

Phi = Callable[[dict], tuple[float, float]]
# What differentiating a student's own forward may run into (it is only reported, so
# none of these may stop the check): a failed call, a value of the wrong kind or shape.
OWN_FORWARD_FAILURES = (StudentCallError, StudentRaised, CheckFailed, ValueError, TypeError)


@dataclass(frozen=True)
class Directional:
    """One gradient's comparison: `error` is the largest relative error over its
    directions, after round-off; `analytic` (g . u) and `numeric` (the central
    differences) per direction, for the report."""

    name: str
    error: float
    analytic: tuple[float, ...]
    numeric: tuple[float, ...]


def contraction(upstream: np.ndarray | None, output) -> tuple[float, float]:
    """phi = v . y and sum |v * y| (the scale of phi's round-off), in float64.
    `upstream` None means the output is already the scalar phi (a loss)."""
    y = np.asarray(output, dtype=np.float64)
    if upstream is None:
        return float(y), float(abs(y))
    terms = np.asarray(upstream, dtype=np.float64) * y
    return float(terms.sum()), float(np.abs(terms).sum())


def step_for(p: np.ndarray, relative_step: float) -> float:
    """The absolute step h for input p: relative to its largest entry (at least 1)."""
    top = float(np.max(np.abs(p))) if p.size else 0.0
    return relative_step * max(1.0, top)


def directional_errors(phi: Phi, inputs: dict[str, np.ndarray], grads: dict[str, np.ndarray],
                       rng: np.random.Generator, relative_step: float = STEP_FLOAT64,
                       eps: float = float(np.finfo(np.float64).eps),
                       along_gradient: bool = True) -> dict[str, Directional]:
    """Compare each gradient in `grads` with central differences of `phi` along two unit
    directions in that input's space: the gradient's own and a random one (two random
    ones when `along_gradient` is False). `phi(inputs) -> (value, scale)`, see `contraction`.
    A gradient that is None (the student's lacks it) is skipped, its directions drawn all
    the same.

    Forward calls: four per gradient (two directions, two sides), independent of sizes.
    Relative error of a gradient g: max over directions of
        max(0, |fd - g.u| - noise) / max(|g|, |fd|)
    where noise = NOISE_FACTOR * eps * (scale+ + scale-) / (2 h) is the round-off of fd.
    """
    base = {name: np.asarray(value, dtype=np.float64) for name, value in inputs.items()}
    out = {}
    for name, grad in grads.items():
        p = base[name]
        first = _unit(rng, p.shape)  # drawn whatever happens: the same stream for every student
        if grad is None:  # a gradient the student did not give: the others' directions stay the same
            _unit(rng, p.shape)
            continue
        g = np.asarray(grad, dtype=np.float64)
        h = step_for(p, relative_step)
        norm = float(np.linalg.norm(g))
        directions = [g / norm if along_gradient and norm > 0 else first, _unit(rng, p.shape)]
        analytic, numeric, errors = [], [], []
        for u in directions:
            plus, plus_scale = phi({**base, name: p + h * u})
            minus, minus_scale = phi({**base, name: p - h * u})
            fd = (plus - minus) / (2.0 * h)
            noise = NOISE_FACTOR * eps * (plus_scale + minus_scale) / (2.0 * h)
            an = float(np.sum(g * u))
            scale = max(norm, abs(fd))
            excess = max(0.0, abs(fd - an) - noise)
            errors.append(excess / scale if scale > 0 else 0.0)
            analytic.append(an)
            numeric.append(fd)
        out[name] = Directional(name, max(errors), tuple(analytic), tuple(numeric))
    return out


def _unit(rng: np.random.Generator, shape) -> np.ndarray:
    """A random unit vector, Gaussian before scaling. (A +-1 direction misses, with a chance of
    one in ten, an error whose entries cancel in pairs, such as a gradient at label - 1 instead
    of the label: (v[y] - v[y-1]) sums to 0 over five rows.)"""
    v = rng.standard_normal(shape)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else np.ones(shape) / np.sqrt(float(max(v.size, 1)))


@dataclass
class Verdict:
    """The outcome of `backward_matches_forward`. `errors` and `tolerance` are the
    reference differences' (they decide); `own_errors` those of the student's own
    forward where it was differentiated (reported, never scored)."""

    errors: dict[str, float]
    tolerance: float
    source: str = "reference"  # whose differences decide: always the reference forward's
    notes: list[str] = field(default_factory=list)
    own_errors: dict[str, float] | None = None

    @property
    def passed(self) -> bool:
        return all(e <= self.tolerance for e in self.errors.values())

    def summary(self) -> str:
        return _summary(self.errors)


def _summary(errors: dict[str, float]) -> str:
    return ", ".join(f"{name}: {err:.2g}" for name, err in errors.items())


def backward_matches_forward(own_forward: Callable[[dict], object],
                             reference_forward: Callable[[dict], object],
                             inputs: dict[str, np.ndarray], grads: dict[str, np.ndarray],
                             upstream: np.ndarray | None, rng: np.random.Generator,
                             tolerance: Tolerances = DEFAULT_TOLERANCES,
                             steps: tuple[float, float] = (STEP_FLOAT64, STEP_FLOAT32),
                             forward: str = "forward pass") -> Verdict:
    """Are the student's gradients `grads` the derivative of the forward pass?

    `own_forward(inputs)` calls the student's forward (an array, or a scalar loss when
    `upstream` is None); `reference_forward(inputs)` the reference's. `grads` are the
    student's gradients for some of `inputs`; `steps` the relative steps for a float64
    and a float32 forward; `forward` the forward's name, for the notes.

    The judge of a backward pass must be a correct derivative, so the verdict is
    always that of the reference forward's central differences (float64, along
    seeded random directions: exact to round-off, the same points for every student,
    so the kit can record them). A correct backward therefore always passes and a
    wrong one never does, whatever the student's forward does. The student's own
    forward is not the judge: one that answers right at the tested input but
    differently next to it (returning the value of an input it has already seen
    for a slightly perturbed copy, say) makes its own differences agree with any
    backward, an all-zero one included. Where the student's forward is right at the
    base point its own differences are computed too and reported in `own_errors`;
    a disagreement between the two is explained in a note.
    """
    seed = int(rng.integers(2**31))
    expected = np.asarray(reference_forward(inputs), dtype=np.float64)
    # Tolerances may lack the float32 field (an older config); then the constant above holds.
    rtol_single = getattr(tolerance, "fd_rtol_float32", FD_RTOL_FLOAT32)

    def measure(phi, eps, step, along_gradient):
        found = directional_errors(phi, inputs, grads, np.random.default_rng(seed), step, eps, along_gradient)
        return {f"d{name}": d.error for name, d in found.items()}  # named as the student knows them

    notes: list[str] = []
    own_errors, single = None, False
    try:
        got = own_forward(inputs)
        usable = _usable(got, expected, tolerance)
    except OWN_FORWARD_FAILURES as exc:
        notes.append(f"your {forward} failed ({_short(exc)}), so only the reference {forward} was differentiated")
        usable = None
    if usable is False:
        notes.append(f"your {forward} differs from the reference's, so only the reference {forward} "
                     "was differentiated")
    elif usable:
        single = _is_single(got)
        eps = float(np.finfo(np.float32 if single else np.float64).eps)
        try:
            own_errors = measure(_phi(own_forward, upstream), eps, steps[1] if single else steps[0], True)
        except OWN_FORWARD_FAILURES as exc:
            notes.append(f"your {forward} failed on a perturbed input ({_short(exc)})")
    # Gradients computed in float32, or beside a float32 forward, carry ~1e-6 of round-off: judge them so.
    rtol = rtol_single if single or any(_is_single(g) for g in grads.values() if g is not None) else tolerance.fd_rtol
    verdict = Verdict(measure(_phi(reference_forward, upstream), float(np.finfo(np.float64).eps), steps[0], False),
                      rtol, "reference", notes, own_errors)
    if own_errors is not None:
        own_agree = all(e <= rtol for e in own_errors.values())
        if verdict.passed and not own_agree:
            notes.append(f"the differences of your own {forward} disagree with your gradients "
                         f"({_summary(own_errors)}), but those of the reference {forward} agree: your {forward} "
                         "is right at the tested input but only approximately (round-off) or not at all next to it")
        elif own_agree and not verdict.passed:
            notes.append(f"the differences of your own {forward} agree with your gradients, but those of the "
                         f"reference {forward} do not: your {forward} is right at the tested input but not "
                         "next to it")
    return verdict


def _phi(forward, upstream) -> Phi:
    return lambda inputs: contraction(upstream, forward(inputs))


def _short(exc: Exception) -> str:
    return str(getattr(exc, "message", exc))[:200]


def _is_single(value) -> bool:
    dtype = np.asarray(value).dtype
    return dtype.kind == "f" and dtype.itemsize < 8


def _usable(got, expected: np.ndarray, tolerance: Tolerances) -> bool:
    try:
        arr = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return (arr.shape == expected.shape and bool(np.all(np.isfinite(arr)))
            and is_close(arr, expected, tolerance.value_rtol, tolerance.value_atol))


def expect_backward_matches_forward(own_forward, reference_forward, inputs: dict, grads: dict, upstream, rng,
                                    tolerance: Tolerances, function: str, forward: str,
                                    steps: tuple[float, float] = (STEP_FLOAT64, STEP_FLOAT32),
                                    defects: list[CheckFailed] | tuple = (), diagnoses: list[str] | tuple = ()) -> dict:
    """`backward_matches_forward`, failing the check (with the relative error of every
    gradient) unless the student's gradients agree with the reference forward's
    directional differences. Returns the details a passing check reports (its notes).
    `defects`: what kept some gradients from being read (they are None in `grads`); they
    fail the check, and the others are still judged and reported. `diagnoses`: the codes
    of the mistakes the gradients fit (named only when the verdict fails)."""
    verdict = backward_matches_forward(own_forward, reference_forward, inputs, grads, upstream, rng,
                                       tolerance, steps, forward)
    details = {"relative_errors": verdict.errors, "tolerance": verdict.tolerance,
               "differentiated": verdict.source, "notes": verdict.notes}
    if verdict.own_errors is not None:
        details["own_forward_relative_errors"] = verdict.own_errors
    if verdict.passed and not defects:
        if verdict.notes:
            details["note"] = "; ".join(verdict.notes)
        return details
    # Say what decided, and what was only reported beside it.
    notes = "".join(f"; {note}" for note in verdict.notes)
    if verdict.own_errors is not None and not any("your own" in note for note in verdict.notes):
        notes += f"; those of your own {forward} (reported, not scored): {_summary(verdict.own_errors)}"
    compared = (f"directional finite differences of the reference {forward}, which decide; relative errors: "
                f"{verdict.summary()} (tolerance {verdict.tolerance:g}){notes}")
    named = list(diagnoses) if not verdict.passed else []
    if not defects:
        raise CheckFailed(f"{function}'s gradients disagree with {compared}", named, details)
    said = "; ".join(d.message for d in defects)
    codes = sorted({code for d in defects for code in d.diagnoses} | set(named))
    if not verdict.errors:
        raise CheckFailed(said, codes, details)
    agree = "disagree with" if not verdict.passed else "agree with"
    raise CheckFailed(f"{said}; the other gradients {agree} {compared}", codes, details)
