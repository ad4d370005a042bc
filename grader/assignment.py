"""An assignment: the contract functions, the checks, the reference that answers
for them. Each lives in its own folder `assignments/<name>/`, whose package defines
`ASSIGNMENT`; adding an assignment touches that folder only."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field

from grader.checks import Check, Registry

DEFAULT_FORBIDDEN = ("torch", "tensorflow", "jax", "scipy.signal")
# The toolkit's own packages are kept from student code by where they are (hidden or
# unreadable in every sandbox), never by name: a student's own reference.py imports.
TOOLKIT_PACKAGES = ("reference", "assignments", "grader")


@dataclass
class Assignment:
    name: str
    file_name: str  # the contract's file name, e.g. cnn_layers.py
    functions: tuple[str, ...]
    registry: Registry
    reference_module: str  # e.g. reference.cnn
    title: str = ""
    forbidden_imports: tuple[str, ...] = DEFAULT_FORBIDDEN
    notes: list[str] = field(default_factory=list)

    @property
    def checks(self) -> list[Check]:
        return list(self.registry.checks)

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.checks)


def available() -> dict[str, Assignment]:
    import assignments

    found = {}
    for info in pkgutil.iter_modules(assignments.__path__):
        if info.ispkg:
            module = importlib.import_module(f"assignments.{info.name}")
            assignment = getattr(module, "ASSIGNMENT", None)
            if isinstance(assignment, Assignment):
                found[assignment.name] = assignment
    return found


class UnknownAssignment(ValueError):
    """No assignment has that name; the message lists the ones there are."""


def named(name: str, assignments: dict[str, Assignment] | None = None) -> Assignment:
    """The assignment called `name` (among `assignments`, default: all available)."""
    assignments = available() if assignments is None else assignments
    if name not in assignments:
        raise UnknownAssignment(f"unknown assignment {name!r}; choose {' or '.join(sorted(assignments))}")
    return assignments[name]
