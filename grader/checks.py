"""Checks: small plain functions, registered with their points and visibility.

    registry = Registry()

    @registry.check("conv2d_forward", kind="numeric", points=2)
    def lecture_two_channel_example(student, oracle):
        x, w, b = ...
        expect_close(student.conv2d_forward(x, w, b), oracle.conv2d_forward(x, w, b), "y")

A check's parameters are filled by name, as pytest fills fixtures: `student`
(the proxy to the submission), `oracle` (expected values), `rng` (a NumPy
Generator seeded from the run's seed and the check's id: the same inputs for every
student of a run, other inputs in every run, so that no answer can be known ahead;
in the student kit, from the check's id alone, where the recorded values answer),
`fresh_inputs` (True when `rng` comes from a run's seed: a check with a fixed
example, such as the lecture's, then varies it with `rng`; False in the kit, which
shows the example as it is), and `tolerance` (the run's tolerances). A check fails
by raising `CheckFailed` (or any helper in `grader.compare`); calls that fail in the
worker raise `StudentCallError` / `StudentRaised`, which fail the check with their code.
Checks never touch processes or files: the same check runs live, in the student
kit, and in tests with fakes.
"""

from __future__ import annotations

import inspect
import zlib
from dataclasses import dataclass, field
from typing import Callable

KINDS = ("shape", "numeric", "gradient", "behavior", "performance")
VISIBILITIES = ("public", "hidden")


class CheckFailed(Exception):
    """The student's result is wrong. `diagnoses` are codes of mistakes that explain it;
    `details` is structured data for the report (mismatch position, errors)."""

    def __init__(self, message: str, diagnoses: list[str] | tuple[str, ...] = (), details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.diagnoses = list(diagnoses)
        self.details = details or {}


@dataclass(frozen=True)
class Check:
    id: str
    function: str
    kind: str
    points: float
    visibility: str
    run: Callable
    description: str = ""

    @property
    def seed(self) -> int:
        # Stable across runs and machines (unlike hash()): with a run's seed it gives each
        # check its own inputs; alone, the kit's fixed inputs.
        return zlib.crc32(self.id.encode())

    def call(self, **available):
        wanted = inspect.signature(self.run).parameters
        missing = [name for name in wanted if name not in available]
        if missing:
            raise TypeError(f"check {self.id} asks for unknown fixtures {missing}")
        return self.run(**{name: available[name] for name in wanted})


@dataclass
class Registry:
    checks: list[Check] = field(default_factory=list)

    def check(self, function: str, *, kind: str, points: float, visibility: str = "public",
              name: str | None = None):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if visibility not in VISIBILITIES:
            raise ValueError(f"visibility must be one of {VISIBILITIES}, not {visibility!r}")

        def register(fn: Callable) -> Callable:
            check_id = f"{function}.{name or fn.__name__}"
            if any(c.id == check_id for c in self.checks):
                raise ValueError(f"two checks are named {check_id}")
            doc = inspect.getdoc(fn) or ""
            self.checks.append(Check(check_id, function, kind, float(points), visibility, fn, doc))
            return fn

        return register


class DeferredRegistry:
    """A registry whose checks are worked out on first use: a course's dry run (each
    canonical check once on the reference) costs its time only in runs that grade the
    course, not in every run that lists the assignments."""

    def __init__(self, build: Callable[[], list[Check]]):
        self._build = build
        self._checks: list[Check] | None = None

    @property
    def checks(self) -> list[Check]:
        if self._checks is None:
            self._checks = list(self._build())
        return self._checks
