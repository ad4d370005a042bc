"""An in-process stand-in for a student's worker, for the toolkit's own tests.

`InProcessStudent(module)` behaves like the real proxy (same exceptions, values
round-tripped through the wire codec, input mutation and timing reported) but calls
a Python module directly: check suites can be tested against many buggy
implementations in milliseconds. Never used for grading real submissions.
"""

from __future__ import annotations

import time
import types

import numpy as np

from grader.proxy import StudentCallError, StudentRaised
from grader.worker import codec
from grader.worker.handles import Handle, Kept
from grader.worker.serve import _arrays_in as _arrays


class InProcessStudent:
    def __init__(self, module: types.ModuleType | dict, functions: list[str] | tuple[str, ...]):
        self._namespace = module if isinstance(module, dict) else vars(module)
        self._functions = set(functions)
        self._last_mutated: list = []
        self._last_seconds: float | None = None
        self.calls: dict[str, int] = {}
        self._kept = Kept()

    def _mutated_inputs(self) -> list:
        return list(self._last_mutated)

    def _seconds(self) -> float | None:
        return self._last_seconds

    def __getattr__(self, name: str):
        if name.startswith("_") or name not in self._functions:
            raise AttributeError(name)
        return lambda *args, **kwargs: self._call(name, args, kwargs)

    def _call(self, name, args, kwargs, keep=()):
        fn = self._namespace.get(name)
        if fn is None or not callable(fn):
            raise StudentCallError("submission.missing_function", f"{name} is not defined")
        self.calls[name] = self.calls.get(name, 0) + 1
        handles = {i: a for i, a in enumerate(args) if isinstance(a, Handle)}
        plain = [None if i in handles else a for i, a in enumerate(args)]
        tree, buffers = codec.encode((plain, dict(kwargs)), allow_rng=True)
        args, kwargs = codec.decode(tree, buffers, allow_rng=True)
        try:
            args = self._kept.replace_in(tuple(handles.get(i, a) for i, a in enumerate(args)))
        except KeyError as exc:
            raise StudentCallError("submission.bad_return", str(exc)) from None
        before = {k: v.copy() for k, v in _arrays(args, kwargs)}
        started = time.perf_counter()
        try:
            value = fn(*args, **kwargs)
        except MemoryError:
            raise StudentCallError("submission.memory_limit", f"{name} ran out of memory") from None
        except Exception as exc:  # noqa: BLE001
            raise StudentRaised(name, type(exc).__name__, str(exc), "",
                                tuple(c.__name__ for c in type(exc).__mro__)) from None
        self._last_seconds = time.perf_counter() - started
        self._last_mutated = [k for k, v in _arrays(args, kwargs) if not np.array_equal(before[k], v,
                                                                                            equal_nan=True)]
        value = self._kept.keep_from(value, tuple(keep))
        handed = {i: v for i, v in enumerate(value) if isinstance(v, Handle)} if keep else {}
        if handed:
            value = tuple(None if i in handed else v for i, v in enumerate(value))
        try:
            tree, buffers = codec.encode(value)
            decoded = codec.decode(tree, buffers)
            return tuple(handed.get(i, v) for i, v in enumerate(decoded)) if handed else decoded
        except codec.CodecError as exc:
            raise StudentCallError("submission.bad_return", f"{name} returned {exc}") from None

