"""Where expected values come from.

`ReferenceOracle` calls the model solution in `reference/` (in the grader's own
process) and memoises by the call's arguments, so expected values are computed once
per run however many students there are. The kit's `RecordedOracle` answers the same
calls from values recorded ahead of time, so the same checks run without any
reference code.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import threading
from contextvars import ContextVar

import numpy as np


def call_key(function: str, args: tuple, kwargs: dict) -> str:
    """A stable key for one call: the function and a digest of every argument."""
    digest = hashlib.sha256(function.encode())

    def feed(value):
        if isinstance(value, np.ndarray):
            digest.update(f"nd{value.dtype.str}{value.shape}".encode())
            digest.update(np.ascontiguousarray(value).tobytes())
        elif isinstance(value, np.random.Generator):
            digest.update(repr(value.bit_generator.state).encode())
        elif isinstance(value, (list, tuple)):
            digest.update(f"{type(value).__name__}{len(value)}(".encode())
            for item in value:
                feed(item)
            digest.update(b")")
        elif isinstance(value, dict):
            for key in sorted(value):
                digest.update(repr(key).encode())
                feed(value[key])
        else:
            digest.update(f"{type(value).__name__}:{value!r};".encode())

    feed(list(args))
    feed(dict(kwargs))
    return digest.hexdigest()[:32]


def _read_only(value):
    if isinstance(value, np.ndarray):
        value = value.copy()
        value.setflags(write=False)
        return value
    if isinstance(value, tuple):
        return tuple(_read_only(v) for v in value)
    if isinstance(value, list):
        return [_read_only(v) for v in value]
    if isinstance(value, dict):
        return {k: _read_only(v) for k, v in value.items()}
    return value


# The oracle of the check running in this thread (set by runner.run_check); None outside
# checks and inside a recorded function (whose own calls are its business).
ACTIVE_ORACLE: ContextVar = ContextVar("active_oracle", default=None)


def kit_recorded(fn):
    """Mark a function of an assignment's check code whose answers a student kit records
    instead of carrying its code (it computes from the check's inputs what only a
    solution knows). Its arguments must come from the check's inputs and the reference's
    answers, never from the student's values, and a check calls it whatever the student
    returns: the kit has answers for the calls its recording made only. So called, it is
    computed once per run (memoised like the reference), however many students."""

    @functools.wraps(fn)
    def recorded(*args, **kwargs):
        oracle = ACTIVE_ORACLE.get()
        if getattr(oracle, "recorded_call", None) is None:
            return fn(*args, **kwargs)
        token = ACTIVE_ORACLE.set(None)
        try:
            return oracle.recorded_call(f"{fn.__module__}.{fn.__qualname__}", fn, args, kwargs)
        finally:
            ACTIVE_ORACLE.reset(token)

    recorded.kit_recorded = True
    return recorded


def kit_shipped(fn):
    """Mark a function of a mistakes module that a kit carries as it is: a test of the
    student's output that holds no solution. The kit drops every other unmarked function
    of a `*mistakes.py` module (helpers of recorded models, which hold solutions)."""
    return fn


MODEL_MEMO = 100_000
_UNKNOWN = object()


def _model_key(name: str, args: tuple, kwargs: dict) -> str:
    return call_key(f"model:{name}", args, kwargs)


def _unshared(value):
    """A copy of a recorded model's answer that its caller may change, as it could the
    function's own (containers and arrays copied)."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (tuple, list)):
        return type(value)(_unshared(v) for v in value)
    if isinstance(value, dict):
        return {k: _unshared(v) for k, v in value.items()}
    return value


class ReferenceOracle:
    """`oracle.conv2d_forward(x, w, b)` -> the reference's answer, memoised (thread-safe).
    Results are read-only arrays: a check cannot corrupt another check's expectation."""

    def __init__(self, module):
        self.module = importlib.import_module(module) if isinstance(module, str) else module
        self._memo: dict[str, object] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        fn = getattr(self.module, name)

        @functools.wraps(fn)  # its signature too: a course's adapter binds canonical calls by it
        def call(*args, **kwargs):
            key = call_key(name, args, kwargs)
            with self._lock:
                if key in self._memo:
                    return self._memo[key]
            value = _read_only(fn(*args, **kwargs))
            with self._lock:
                self._memo[key] = value
            return value

        return call

    def recorded_call(self, name: str, fn, args: tuple, kwargs: dict):
        """A `@kit_recorded` function's answer, computed once per run: its arguments come
        from the check's inputs, the same for every student (at most MODEL_MEMO answers
        are kept, should a check break that rule)."""
        key = _model_key(name, args, kwargs)
        with self._lock:
            value = self._memo.get(key, _UNKNOWN)
        if value is _UNKNOWN:
            value = _read_only(fn(*args, **kwargs))
            with self._lock:
                if len(self._memo) < MODEL_MEMO:
                    self._memo[key] = value
        return _unshared(value)


class OracleMissing(Exception):
    """The kit has no recorded answer for this call: the check asked the reference
    something that depends on the student's own values. Never the student's fault."""


class RecordingOracle(ReferenceOracle):
    """The reference, remembering every answer it gives: what a student kit ships."""

    def __init__(self, module):
        super().__init__(module)
        self.recorded: dict[str, object] = {}

    def __getattr__(self, name: str):
        live = super().__getattr__(name)

        @functools.wraps(live)
        def call(*args, **kwargs):
            value = live(*args, **kwargs)
            self.recorded[call_key(name, args, kwargs)] = value
            return value

        return call

    def recorded_call(self, name: str, fn, args: tuple, kwargs: dict):
        value = super().recorded_call(name, fn, args, kwargs)
        self.recorded[_model_key(name, args, kwargs)] = _read_only(value)
        return value


class RecordedOracle:
    """Answers calls from recorded values (the student kit holds no reference code).

    `signatures` (optional): the reference functions' signatures, as `signature_data`
    writes them, so that a course's adapter can bind canonical calls to them as it binds
    them to the reference's (a course's kit)."""

    def __init__(self, recorded: dict[str, object], signatures: dict[str, list] | None = None):
        self._recorded = recorded
        self._signatures = {name: _signature(params) for name, params in (signatures or {}).items()}

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)

        def call(*args, **kwargs):
            key = call_key(name, args, kwargs)
            if key not in self._recorded:
                raise OracleMissing(f"no recorded answer for {name}; this check runs in full when you submit")
            return self._recorded[key]

        call.__name__ = name
        if name in self._signatures:
            call.__signature__ = self._signatures[name]
        return call

    def recorded_call(self, name: str, fn, args: tuple, kwargs: dict):
        key = _model_key(name, args, kwargs)
        if key not in self._recorded:
            raise OracleMissing(f"no recorded answer for {name.rsplit('.', 1)[-1]}; this check runs in full "
                                f"when you submit")
        return _unshared(self._recorded[key])


def signature_data(module, functions) -> dict[str, list]:
    """Each function's parameters as data: [name] or [name, default] (JSON-safe defaults)."""
    out = {}
    for name in functions:
        params = inspect.signature(getattr(module, name)).parameters.values()
        out[name] = [[p.name] if p.default is inspect.Parameter.empty else [p.name, p.default] for p in params]
    return out


def _signature(params: list) -> inspect.Signature:
    return inspect.Signature([inspect.Parameter(p[0], inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                default=p[1] if len(p) > 1 else inspect.Parameter.empty)
                              for p in params])


def save_recorded(recorded: dict[str, object], path) -> None:
    """One JSON file: each answer encoded with the wire codec, arrays as base64."""
    import base64
    import json

    from grader.worker import codec

    out = {}
    for key, value in recorded.items():
        tree, buffers = codec.encode(value)
        out[key] = {"tree": tree, "buffers": [base64.b64encode(b).decode() for b in buffers]}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, separators=(",", ":"))


def load_recorded(path) -> dict[str, object]:
    import base64
    import json

    from grader.worker import codec

    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    return {key: _read_only(codec.decode(item["tree"], [base64.b64decode(b) for b in item["buffers"]]))
            for key, item in raw.items()}
