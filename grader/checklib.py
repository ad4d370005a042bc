"""Building blocks shared by the assignments' checks: results that must be float
arrays, inputs that must stay untouched, and the evidence that names a mistake.

A mistake model is the output a known mistake would produce on the same inputs
(the flipped kernel: the reference applied to w[::-1, ::-1]). A diagnosis fires only
when the student's output matches its model where the correct output does not:

    evidence = Evidence(tolerance)
    for case in CASES:
        evidence.compare(student.f(*case), oracle.f(*case), "y", mistakes.f_models(oracle, *case))
    evidence.verdict()          # raises CheckFailed with the first mismatch and the codes

Over several cases a code must fit every case where its model makes a prediction
(a student whose output matches "stride ignored" in one case but not in another
does not ignore the stride) and explain at least one failure.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field

import numpy as np

from grader.checks import CheckFailed
from grader.compare import (
    BAD_RETURN,
    DEFAULT_TOLERANCES,
    Tolerances,
    expect_array,
    expect_close,
    expect_sequence,
    is_close,
    relative_error,
)
from grader.diagnoses import register

MUTATED = "input.mutated"
register(MUTATED, "A function wrote into one of its input arrays.",
         "Layers must leave their inputs (dy included) as they found them: compute into new "
         "arrays (x - m, not x -= m; np.pad and .copy() make new ones) instead of changing "
         "the caller's data in place.")

# A student's output fits a mistake model within this factor of the value tolerance:
# a float32 implementation of a mistake is as far from the float64 model as a float32
# implementation of the truth is from the reference (~1e-5), well inside it.
MODEL_SLACK = 10.0


def model_rtol(tolerance: Tolerances) -> float:
    return MODEL_SLACK * tolerance.value_rtol


def expect_floats(value, name: str, shape: tuple | None = None, ndim: int | None = None) -> np.ndarray:
    """A finite ndarray of a floating dtype (float32 and float64 both welcome), of `shape`
    or at least of `ndim` dimensions when given."""
    arr = expect_array(value, name, shape)
    if ndim is not None and arr.ndim != ndim:
        raise CheckFailed(f"{name} has {arr.ndim} dimensions (shape {arr.shape}), expected {ndim}", [BAD_RETURN])
    if arr.dtype.kind != "f":
        raise CheckFailed(f"{name} has dtype {arr.dtype}; a layer's results should be floating point "
                          "(e.g. float64)", [BAD_RETURN])
    return arr


def expect_untouched(student, function: str, arg_names: tuple[str, ...]) -> None:
    """Fail with input.mutated if the last call wrote into any of its array arguments."""
    written = student._mutated_inputs()
    if not written:
        return
    names = [arg_names[w] if isinstance(w, int) and 0 <= w < len(arg_names) else str(w) for w in written]
    raise CheckFailed(f"{function} changed its input{'s' if len(names) > 1 else ''} "
                      f"{', '.join(names)} in place", [MUTATED], {"mutated": names})


def fits(got, model, rtol: float, atol: float = DEFAULT_TOLERANCES.value_atol) -> bool:
    """Does `got` match the model's output (same shape, close values)? A list is never a
    fit: returning one is a mistake of its own (submission.bad_return)."""
    if model is None or isinstance(got, (list, tuple)):
        return False
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    model = np.asarray(model, dtype=np.float64)
    return got.shape == model.shape and bool(np.all(np.isfinite(got))) and is_close(got, model, rtol, atol)


# True while the last call a check made was one the course's contract does not ask of
# its function (grader/contract/adapt.py answered it with the reference): such a case
# says nothing about the student, for or against a mistake model, and is not recorded.
NOT_ASKED: contextvars.ContextVar[bool] = contextvars.ContextVar("nngrade_not_asked", default=False)


@dataclass
class Evidence:
    """Outcomes of several comparisons in one check, and which mistake models explain them."""

    tolerance: Tolerances = DEFAULT_TOLERANCES
    failure: CheckFailed | None = None
    cases: list[tuple[bool, dict[str, bool]]] = field(default_factory=list)

    def compare(self, got, expected, name: str, models: dict[str, list] | None = None,
                rtol: float | None = None, prefix: str = "", partial: bool = False) -> bool:
        """Record one comparison; True if it passed. `models` maps a code to the outputs
        its mistake would produce here (any of them fits; None: no prediction; a callable
        is a test of the student's output, for mistakes that no single output captures).
        `partial`: the values compared are parts of one result (dx, dw, db) and a mistake
        may touch only some of them, so a right part says nothing against it."""
        if NOT_ASKED.get():
            return True
        models = models or {}
        rtol = self.tolerance.value_rtol if rtol is None else rtol
        failure = None
        try:
            expect_close(got, expected, name, rtol, self.tolerance.value_atol)
        except CheckFailed as exc:
            failure = exc
            if prefix:
                failure.message = f"{prefix}: {failure.message}"
        tol = max(model_rtol(self.tolerance), rtol)
        fitted = {}
        for code, outputs in models.items():
            predictions = [o for o in outputs if o is not None]
            if predictions:
                fitted[code] = any(_predicts(o, got, tol) for o in predictions)
        if partial and failure is None:
            fitted = {}
        self.cases.append((failure is not None, fitted))
        if failure is not None and self.failure is None:
            self.failure = failure
        return failure is None

    def record(self, failure: CheckFailed | None, fitted: dict[str, bool] | None = None) -> None:
        """Record a case judged by other means: its failure (None: it passed) and, per
        code that predicts something here, whether the student's output fits it."""
        if NOT_ASKED.get():
            return
        self.cases.append((failure is not None, dict(fitted or {})))
        if failure is not None and self.failure is None:
            self.failure = failure

    def codes(self) -> list[str]:
        """Codes that fit every case where they predict, and explain at least one failure."""
        names = {code for _, fitted in self.cases for code in fitted}
        found = []
        for code in sorted(names):
            consistent = all(fitted.get(code, True) for _, fitted in self.cases)
            explains = any(failed and fitted.get(code) for failed, fitted in self.cases)
            if consistent and explains:
                found.append(code)
        return found

    def verdict(self, details: dict | None = None) -> None:
        """Raise the first failure, its codes replaced by the mistakes that explain the
        evidence (a wrong shape that a known mistake explains is that mistake, not a
        bad return)."""
        if self.failure is None:
            return
        codes = self.codes()
        failure = self.failure
        merged = {**failure.details, **(details or {})}
        raise CheckFailed(failure.message, codes or failure.diagnoses, merged)


def _predicts(model, got, rtol: float) -> bool:
    if not callable(model):
        return fits(got, model, rtol)
    try:
        return bool(model(got))
    except (TypeError, ValueError, IndexError):  # the student's output is not even an array
        return False


@dataclass
class Gradients:
    """A backward pass's gradients as far as they can be read: of `names` (in order), the
    `parts` that are finite float arrays (of their shape when one was asked for), and the
    `defects` that keep the others, or the whole, from being right (a key or a value
    missing, a part that is not an array). The parts that could be read are still judged."""

    names: tuple[str, ...]
    parts: dict[str, np.ndarray] = field(default_factory=dict)
    defects: list[CheckFailed] = field(default_factory=list)

    @property
    def unread(self) -> list[str]:
        return [n for n in self.names if n not in self.parts]

    def by_name(self) -> dict[str, np.ndarray | None]:
        """Every name, in order, to its part or None (a gradient that could not be read)."""
        return {n: self.parts.get(n) for n in self.names}

    def strict(self) -> dict[str, np.ndarray]:
        """The parts, or every defect at once as one failure."""
        if self.defects:
            raise joined(self.defects)
        return self.parts


def joined(failures: list[CheckFailed], prefix: str = "") -> CheckFailed:
    """One failure saying what each of `failures` says, with all their codes."""
    codes = sorted({code for f in failures for code in f.diagnoses})
    details = {k: v for f in reversed(failures) for k, v in f.details.items()}
    return CheckFailed(prefix + "; ".join(f.message for f in failures), codes, details)


def _read_parts(pairs, shapes: dict, out: Gradients) -> Gradients:
    for name, part in pairs:
        try:
            out.parts[name] = expect_floats(part, name, shapes.get(name))
        except CheckFailed as exc:
            out.defects.append(exc)
    return out


def read_gradient_tuple(value, names: tuple[str, ...], shapes: tuple[tuple, ...] | None, function: str) -> Gradients:
    """A backward pass's tuple (dx, dw, db): each part that can be read by its position,
    of its input's shape unless `shapes` is None (then the comparison judges shapes, and
    can name the mistake behind a wrong one). A tuple of the wrong length is a defect,
    and its parts are still read by position."""
    shape_of = dict(zip(names, shapes or ()))
    what = f"what {function} returns should be a tuple of {len(names)} values ({', '.join(names)})"
    if not isinstance(value, (tuple, list)):
        return Gradients(names, {}, [CheckFailed(f"{what}, got {type(value).__name__}", [BAD_RETURN])])
    out = Gradients(names)
    if len(value) != len(names):
        missing = names[len(value):]
        told = f"{what}, got a {type(value).__name__} of length {len(value)}"
        if missing:
            told += f": {', '.join(missing)} missing" + (", the others judged by position" if len(value) else "")
        else:
            told += f": the first {len(names)} judged by position"
        out.defects.append(CheckFailed(told, [BAD_RETURN]))
    return _read_parts(zip(names, value), shape_of, out)


def read_gradient_dict(value, keys: tuple[str, ...], names: tuple[str, ...], shapes: tuple[tuple, ...] | None,
                       function: str) -> Gradients:
    """A backward pass's dict of gradients: the part under each of `keys` that can be read,
    by its name in `names`; a missing key is a defect, named once, and the others are still read."""
    shape_of = dict(zip(names, shapes or ()))
    if not isinstance(value, dict):
        return Gradients(names, {}, [CheckFailed(f"{function} should return a dict with keys {', '.join(keys)}; "
                                                 f"got {type(value).__name__}", [BAD_RETURN])])
    out = Gradients(names)
    missing = [k for k in keys if k not in value]
    if missing:
        out.defects.append(CheckFailed(f"{function}'s dict lacks the key{'s' if len(missing) > 1 else ''} "
                                       f"{', '.join(map(repr, missing))}", [BAD_RETURN], {"missing": missing}))
    return _read_parts(((n, value[k]) for k, n in zip(keys, names) if k in value), shape_of, out)


def gradient_tuple(value, names: tuple[str, ...], shapes: tuple[tuple, ...] | None, function: str) -> dict:
    """`read_gradient_tuple`'s parts, failing with every defect at once if there is one."""
    return read_gradient_tuple(value, names, shapes, function).strict()


def compare_gradients(got: dict | Gradients, expected: dict, models: dict, tolerance: Tolerances,
                      label: str = "") -> None:
    """Every gradient that could be read against the reference: the message says what kept
    the others from being judged, reports a relative error for each judged one (dx, dw,
    db), and the codes of the mistakes that explain the wrong ones."""
    gradients = got if isinstance(got, Gradients) else Gradients(tuple(got), dict(got))
    evidence = Evidence(tolerance)
    errors = {}
    for name in expected:
        if name in gradients.parts:
            evidence.compare(gradients.parts[name], expected[name], name, models.get(name),
                             rtol=tolerance.grad_rtol, partial=True)
            errors[name] = _relative(gradients.parts[name], expected[name])
    if evidence.failure is None and not gradients.defects:
        return
    failures = list(gradients.defects)
    if evidence.failure is not None:
        codes = evidence.codes() or evidence.failure.diagnoses
        failures.append(CheckFailed(evidence.failure.message, codes, evidence.failure.details))
    failure = joined(failures, f"{label}: " if label else "")
    if errors:
        summary = ", ".join([f"{n}: {e:.2g}" for n, e in errors.items()] +
                            [f"{n}: not judged" for n in expected if n in gradients.unread])
        failure.message += f". Relative errors: {summary}"
    failure.details["relative_errors"] = errors
    raise failure


def explaining_codes(got: Gradients, expected: dict, models: dict, tolerance: Tolerances) -> list[str]:
    """The mistakes that explain the wrong gradients among those of `got` that could be read,
    as `compare_gradients` would name them: for a check that judges the gradients by other
    means (directional differences), and names what it can with the same models."""
    try:
        compare_gradients(Gradients(got.names, got.parts), expected, models, tolerance)
    except CheckFailed as failure:
        return [code for code in failure.diagnoses if code != BAD_RETURN]
    return []


def _relative(got, expected) -> float:
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return float("inf")
    if got.shape != np.shape(expected):
        return float("inf")
    return float(relative_error(got, expected))


def int_sequence(value, length: int, name: str, low: int = 0, high: int | None = None) -> list[int]:
    """A list, tuple or 1-D array of `length` integers (Python or NumPy) in [low, high)."""
    if isinstance(value, np.ndarray):
        if value.ndim != 1:
            raise CheckFailed(f"{name} should be 1-D, got shape {value.shape}", [BAD_RETURN])
        items = list(value)
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise CheckFailed(f"{name} should be a list of ints, got {type(value).__name__}", [BAD_RETURN])
    if len(items) != length:
        raise CheckFailed(f"{name} holds {len(items)} values, expected {length}", [BAD_RETURN])
    out = []
    for i, item in enumerate(items):
        if isinstance(item, (float, np.floating)) and float(item).is_integer():
            item = int(item)
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer)):
            raise CheckFailed(f"{name}[{i}] is {item!r}; expected an int", [BAD_RETURN])
        item = int(item)
        if item < low or (high is not None and item >= high):
            raise CheckFailed(f"{name}[{i}] is {item}, outside [{low}, {high})", [BAD_RETURN])
        out.append(item)
    return out
