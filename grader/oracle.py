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
