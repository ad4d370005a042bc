"""Between the canonical calls the checks make and a course's own functions.

`CourseStudent` turns `student.conv2d_forward(x, w, b, stride=2, pad=1)` (canonical:
NHWC images, HWIO filters) into the course's `conv_forward_naive(x', w', b, {"stride":
2, "pad": 1})` (NCHW, OIHW), and what comes back into the canonical layout, in the
grader's process. A cache a course function returns never leaves the worker: the
call asks the worker to keep it and gets a handle, which goes back as the backward's
argument.

`course_reference` is the other direction: the canonical reference dressed as the
course's functions. It proves a contract round-trips (every check passes on it) and
answers for a course in tests.
"""

from __future__ import annotations

import inspect
import types

import numpy as np
from dataclasses import dataclass

from grader.checklib import NOT_ASKED
from grader.contract.layout import LayoutMismatch, from_course, to_course
from grader.contract.model import Contract, CourseFunction
from grader.proxy import StudentCallError, StudentRaised

FORWARD_FAILED = "submission.forward_failed"


class NotInContract(Exception):
    """A check asked for something the course's function cannot do (a stride, a pool
    size other than the one it takes): the check does not apply to this course."""


def canonical_binding(reference, function: str, names: tuple[str, ...], args: tuple, kwargs: dict) -> dict:
    """The canonical call's arguments by name, defaults filled from the reference."""
    signature = inspect.signature(getattr(reference, function))
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    return {name: bound.arguments[name] for name in names}


class CourseStudent:
    """Canonical calls on a student's course-convention functions.

    `call(function, args, kwargs, keep=())` is the session's (or an in-process
    stand-in's): it calls the course's function; the results at positions `keep` stay
    where the function ran and come back as handles."""

    def __init__(self, contract: Contract, reference, call, session=None):
        self.contract, self.reference, self._call, self._session = contract, reference, call, session
        self.last_mutated: list = []
        self.last_seconds: float | None = None
        self.in_contract = self.out_of_contract = 0  # calls the course's functions answered, or not
        self.outside_reasons: list[str] = []  # why calls were not the course's (for its README)

    def _applies(self, function: str, bound: dict) -> None:
        """Raise NotInContract where a course function behind `function` (or the forward
        whose cache it takes) does not take these arguments."""
        for part in self.contract.implementing(function):
            for p in part.call:
                if p.kind == "cache":
                    forward = self.contract.functions[p.cache_of]
                    self._applies_to(forward, bound)
            self._applies_to(part, bound)

    @staticmethod
    def _applies_to(part: CourseFunction, bound: dict) -> None:
        for name, value in part.fixed.items():
            if name in bound and bound[name] != value:
                raise NotInContract(f"{part.name} takes only {name} = {value!r}, not {bound[name]!r}")
        if part.condition is not None and not _holds(part, bound):
            raise NotInContract(f"{part.name} is defined only where {part.only_when}")

    # The Proxy reads these as it reads a session's.
    def call(self, function: str, args: tuple, kwargs: dict):
        canonical = self.contract.canonical
        names = canonical.args(function)
        bound = canonical_binding(self.reference, function, names, args, kwargs)
        try:
            self._applies(function, bound)
        except NotInContract as exc:
            # Not something the course asks of its function (a stride that does not fit):
            # the reference answers, so that the check judges the calls that the course
            # does define. The dry run drops a check that has none. (In a course's kit the
            # recorded answers stand in for the reference: `reference` is a RecordedOracle.)
            self.out_of_contract += 1
            if str(exc) not in self.outside_reasons:
                self.outside_reasons.append(str(exc))
            self.last_mutated, self.last_seconds = [], None
            NOT_ASKED.set(True)
            return getattr(self.reference, function)(**bound)
        NOT_ASKED.set(False)
        self.in_contract += 1
        results: dict[str, object] = {}
        mutated: list = []
        seconds = 0.0
        for part in self.contract.implementing(function):
            value = self._call_course(part, bound)
            results.update(self._unpack(part, value))
            mutated += self._mutated(part, names)
            seconds += self._seconds()
        self.last_mutated, self.last_seconds = mutated, seconds
        returns = canonical.returns[function]
        values = tuple(results[n] for n in returns.names)
        return values if returns.is_tuple else values[0]

    def _call_course(self, part: CourseFunction, bound: dict):
        canonical = self.contract.canonical
        args = []
        for p in part.call:
            if p.kind == "value":
                args.append(to_course(bound[p.source], canonical.layout_of(part.implements, p.source), p.layout))
            elif p.kind == "dict":
                args.append({key: bound[src] for key, src in p.keys})
            elif p.kind == "list":
                args.append([bound[src] for _, src in p.keys])
            else:
                args.append(self._cache(self.contract.functions[p.cache_of], bound, part.name))
        keep = tuple(i for i, r in enumerate(part.returns.items) if r.name == "cache")
        return self._call(part.name, tuple(args), {}, keep)

    def _cache(self, forward: CourseFunction, bound: dict, backward: str):
        """The handle of the cache `forward` returns for the same canonical inputs."""
        names = self.contract.canonical.args(forward.implements)
        try:
            value = self._call_course(forward, {n: bound[n] for n in names if n in bound} | forward.fixed)
        except (StudentCallError, StudentRaised) as exc:
            raise StudentCallError(FORWARD_FAILED, f"{backward} could not be called: {forward.name}, whose cache it takes, "
                                   f"failed on the same inputs ({exc.message})") from None
        position = forward.returns.names.index("cache")
        if not isinstance(value, (tuple, list)) or len(value) <= position:
            raise StudentCallError(FORWARD_FAILED, f"{backward} could not be called: {forward.name} returned no cache")
        return value[position]

    def _unpack(self, part: CourseFunction, value) -> dict:
        items = part.returns.items
        if part.returns.is_tuple:
            if not isinstance(value, (tuple, list)) or len(value) != len(items):
                got = f"a {type(value).__name__}" + (f" of {len(value)}" if isinstance(value, (tuple, list)) else "")
                raise StudentCallError("submission.bad_return", f"{part.name} returned {got}; the course's "
                                       f"{part.name} returns {part.returns_text}")
            values = list(value)
        else:
            values = [value]
        canonical = self.contract.canonical
        out = {}
        for item, got in zip(items, values):
            if item.name in ("cache", "_"):
                continue
            try:
                out[item.name] = from_course(got, canonical.layout_of(part.implements, item.name), item.layout,
                                             f"{part.name}'s {item.name}")
            except LayoutMismatch as exc:
                raise StudentCallError("submission.bad_return", str(exc)) from None
        return out

    def _mutated(self, part: CourseFunction, names: tuple[str, ...]) -> list:
        """The canonical positions of arguments the course call wrote into."""
        written = getattr(self._session, "last_mutated", []) if self._session is not None else []
        found = []
        for w in written:
            if isinstance(w, int) and 0 <= w < len(part.call) and part.call[w].kind == "value":
                source = part.call[w].source
                found.append(names.index(source) if source in names else source)
        return found

    def _seconds(self) -> float:
        seconds = getattr(self._session, "last_seconds", None) if self._session is not None else None
        return float(seconds) if seconds is not None else 0.0


def _holds(part: CourseFunction, bound: dict) -> bool:
    """The course's own condition (its file is the instructor's, not a student's)."""
    try:
        return bool(eval(part.condition, {"__builtins__": {}}, dict(bound)))  # noqa: S307
    except Exception:  # noqa: BLE001 - a condition that cannot be evaluated does not hold
        return False


def _flattened(x: np.ndarray, layout: str, order: str) -> np.ndarray:
    """`x` with every axis but the batch's (N, first or last in `layout`) flattened in `order`."""
    if layout.replace("1", "").index("N") == 0:
        return np.reshape(x, (x.shape[0], -1), order=order)
    return np.reshape(x, (-1, x.shape[-1]), order=order)


@dataclass
class CourseCache:
    """What `course_reference`'s forward functions return as their cache."""

    inputs: dict


def course_reference(contract: Contract, reference) -> types.ModuleType:
    """The canonical `reference` as a module of the course's functions."""
    module = types.ModuleType(f"{contract.name}_reference")
    for part in contract.functions.values():
        setattr(module, part.name, _course_function(contract, part, reference))
    return module


def _course_function(contract: Contract, part: CourseFunction, reference):
    canonical = contract.canonical

    def course_function(*args):
        bound = dict(part.fixed)
        shapes = {}  # the original shapes of flattened parameters, by canonical name
        for p, arg in zip(part.call, args):
            if p.kind == "value" and p.name in part.flatten and np.ndim(arg) > 2:
                shapes[p.source] = np.shape(arg)
                arg = _flattened(np.asarray(arg), p.layout, part.flatten[p.name])
            if p.kind == "value":
                bound[p.source] = from_course(arg, canonical.layout_of(part.implements, p.source), p.layout, p.name)
            elif p.kind == "dict":
                bound.update({src: arg[key] for key, src in p.keys})
            elif p.kind == "list":
                bound.update({src: item for (_, src), item in zip(p.keys, arg)})
            else:
                bound.update(arg.inputs)
        names = canonical.args(part.implements)
        out = getattr(reference, part.implements)(**{n: bound[n] for n in names})
        returns = canonical.returns[part.implements]
        outs = dict(zip(returns.names, out if returns.is_tuple else (out,)))
        result = []
        for item in part.returns.items:
            if item.name == "cache":
                result.append(CourseCache({n: bound[n] for n in names}))
            elif item.name == "_":
                result.append(None)
            else:
                value = to_course(outs[item.name], canonical.layout_of(part.implements, item.name), item.layout)
                source = item.name[1:] if item.name.startswith("d") else None
                if source in shapes:  # a flattened input's gradient comes back in its shape
                    flat = next(p for p in part.call if p.kind == "value" and p.source == source)
                    value = np.reshape(value, shapes[source], order=part.flatten[flat.name])
                result.append(value)
        return tuple(result) if part.returns.is_tuple else result[0]

    course_function.__name__ = part.name
    return course_function
