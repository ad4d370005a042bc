"""An assignment: the contract functions, the checks, the reference that answers
for them. Each lives in its own folder `assignments/<name>/`, whose package defines
`ASSIGNMENT`; adding an assignment touches that folder only."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path, PurePosixPath
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
    contract: object | None = None  # a course's contract (grader.contract.model.Contract), or None
    # In a course's student kit, which holds no reference code: the recorded answers that
    # stand in for the reference where a course's adapter asks it (grader/kit.py).
    answers: object | None = None

    def reference(self):
        """What answers as the reference in this process: its module, or in a course's kit
        the recorded answers."""
        if self.answers is not None:
            return self.answers
        return importlib.import_module(self.reference_module)

    def provided_copies(self, beside: PurePosixPath, present: set[str]) -> list[tuple[Path, str]]:
        """A course's helper modules that students import but do not write (CS231n's
        im2col, say), placed beside the graded file unless the submission brings its own."""
        if self.contract is None:
            return []
        folder = self.contract.path.parent
        found = []
        for rel in self.contract.info.provided_files:
            name = (beside / rel).as_posix()
            if name not in present:
                found.append((folder / rel, name))
        return found

    @property
    def callable_functions(self) -> tuple[str, ...]:
        """Every function of the submission the checks may call: those students write and,
        for a course, the course's own code in the same file."""
        return self.functions if self.contract is None else tuple(self.contract.functions)

    def course_fixtures(self, call, session=None) -> dict:
        """For a course's own checks: `course` calls the submission's functions as the course
        writes them (its names, layouts, caches as handles), `course_oracle` answers the same
        calls from the reference. Empty for a canonical assignment."""
        if self.contract is None:
            return {}
        from grader.contract.adapt import course_reference
        from grader.contract.build import course_proxy

        return {"course": course_proxy(self.contract, call, session),
                "course_oracle": course_reference(self.contract, self.reference())}

    def student(self, call, session=None):
        """What the checks call `student`: the canonical functions, turned into a course's
        own calls when the assignment is a course's contract. `call(function, args,
        kwargs, keep=())` calls the submission's function."""
        from grader.proxy import Proxy

        if self.contract is None:
            return Proxy(lambda f, a, k: call(f, a, k), list(self.functions), session)
        from grader.contract.adapt import CourseStudent

        adapter = CourseStudent(self.contract, self.reference(), call, session)
        return Proxy(adapter.call, list(self.contract.canonical_functions), adapter)

    @property
    def checks(self) -> list[Check]:
        return list(self.registry.checks)

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.checks)


def available() -> dict[str, Assignment]:
    """Every assignment the toolkit ships: a package defining ASSIGNMENT (the canonical
    ones), or a folder holding a course's `contract.toml` (built on a canonical one)."""
    import assignments

    found: dict[str, Assignment] = {}
    courses = []
    for info in pkgutil.iter_modules(assignments.__path__):
        if info.ispkg:
            module = importlib.import_module(f"assignments.{info.name}")
            assignment = getattr(module, "ASSIGNMENT", None)
            if isinstance(assignment, Assignment):
                found[assignment.name] = assignment
    for folder in sorted(Path(assignments.__path__[0]).iterdir()):
        if (folder / CONTRACT_FILE).is_file():
            courses.append(folder / CONTRACT_FILE)
    for path in courses:
        course = course_assignment(path, found)
        found[course.name] = course
    return found


CONTRACT_FILE = "contract.toml"
_built: dict[tuple, Assignment] = {}


def course_assignment(path: Path, canonical: dict[str, Assignment] | None = None) -> Assignment:
    """The assignment a course's folder (or its contract file) describes: the contract, and
    the course's own checks in `checks.py` beside it when there is one (built once per
    version of the files)."""
    from grader.contract.build import build_assignment
    from grader.contract.model import load_contract

    folder = path if path.is_dir() else path.parent
    contract_path = folder / CONTRACT_FILE
    extra = folder / "checks.py"
    key = (str(folder.resolve()), contract_path.stat().st_mtime, extra.stat().st_mtime if extra.is_file() else 0)
    if key not in _built:
        from grader.kit import course_kit_data

        # In a student kit, the checks the instructor's run keeps for the course are recorded
        # there: the kit has no reference to run them on (see grader/kit.py).
        _built[key] = build_assignment(load_contract(contract_path), canonical,
                                       extra if extra.is_file() else None, kit=course_kit_data(folder))
    return _built[key]


class UnknownAssignment(ValueError):
    """No assignment has that name; the message lists the ones there are."""


def named(name: str, assignments: dict[str, Assignment] | None = None) -> Assignment:
    """The assignment called `name` (among `assignments`, default: all available)."""
    assignments = available() if assignments is None else assignments
    if name not in assignments:
        raise UnknownAssignment(f"unknown assignment {name!r}; choose {' or '.join(sorted(assignments))}")
    return assignments[name]
