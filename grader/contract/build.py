"""A course's contract made into an assignment: the canonical assignment's checks,
named after the course's functions, weighted by the course's points, and only those
the course's functions can answer.

Which checks apply is not guessed: every check runs once on the canonical reference
dressed as the course's functions (`course_reference`). A check that asks for
something the course's function does not take (`NotInContract`) is dropped; every
other check must pass there, or the contract does not round-trip and is refused.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from pathlib import Path

import numpy as np

from grader.assignment import Assignment, named
from grader.checks import Check, CheckFailed, DeferredRegistry, Registry
from grader.compare import DEFAULT_TOLERANCES
from grader.contract.adapt import CourseStudent, course_reference
from grader.contract.model import Contract, ContractError
from grader.oracle import ReferenceOracle
from grader.proxy import Proxy, StudentCallError, StudentRaised
from grader.testing import InProcessStudent

# Seeds the dry run tries each check with: the kit's fixed inputs and a few runs'.
DRY_RUN_SEEDS = (None, 1, 2)


def display_name(contract: Contract, canonical_function: str) -> str:
    """The course's name(s) for a canonical function: "softmaxloss_forward + softmaxloss_backward"."""
    return " + ".join(f.name for f in contract.implementing(canonical_function, graded=True))


def in_process_student(contract: Contract, module, reference) -> Proxy:
    """Canonical calls on an in-process module of the course's functions (tests, the dry run)."""
    return _in_process(contract, module, reference)[0]


def _in_process(contract: Contract, module, reference) -> tuple[Proxy, CourseStudent]:
    inner = InProcessStudent(module, list(contract.functions))

    def call(function, args, kwargs, keep=()):
        return inner._call(function, args, kwargs, keep)

    adapter = CourseStudent(contract, reference, call, _Timing(inner))
    return Proxy(adapter.call, _proxied(contract), adapter), adapter


def course_proxy(contract: Contract, call, session=None) -> Proxy:
    """The submission's functions as the course writes them, for a course's own checks: a
    cache a function returns stays where it ran and comes back as a handle."""
    keeps = {f.name: tuple(i for i, r in enumerate(f.returns.items) if r.name == "cache")
             for f in contract.functions.values()}
    return Proxy(lambda f, a, k: call(f, a, k, keeps.get(f, ())), list(contract.functions), session)


def in_process_fixtures(contract: Contract, module, reference) -> dict:
    """A course's own checks' fixtures for an in-process module of the course's functions."""
    inner = InProcessStudent(module, list(contract.functions))
    return {"course": course_proxy(contract, inner._call),
            "course_oracle": course_reference(contract, reference)}


class _Timing:
    def __init__(self, inner):
        self._inner = inner

    @property
    def last_mutated(self):
        return self._inner._mutated_inputs()

    @property
    def last_seconds(self):
        return self._inner._seconds()


def _proxied(contract: Contract) -> list[str]:
    """Canonical functions the checks may call: those the course implements."""
    return contract.canonical_functions


def build_assignment(contract: Contract, canonical: dict[str, Assignment] | None = None,
                     extra_checks: Path | None = None, kit: dict | None = None) -> Assignment:
    """`extra_checks`: a course's own checks (a `checks.py` defining `registry`), written
    with the fixtures `course` (the submission's functions as the course writes them) and
    `course_oracle` (the reference answering the same calls).

    `kit`: in a student kit, what the instructor's toolkit recorded when it built the kit
    (grader/kit.py): the course's public checks with their points, in order, and the
    reference's signatures. A kit holds no reference, so no dry run can decide there which
    checks apply: the ones the instructor's dry run kept are taken as they are, and the
    recorded answers stand in for the reference wherever the adapter asks it."""
    if canonical is not None and contract.info.based_on in canonical:
        base = canonical[contract.info.based_on]
    else:
        base = named(contract.info.based_on)
    implemented = {f.implements for f in contract.functions.values() if f.graded}
    candidates = []
    for c in base.checks:
        if c.function in implemented:
            short = c.id.split(".", 1)[1]
            candidates.append(dataclasses.replace(c, id=f"{contract.implementing(c.function, graded=True)[0].name}.{short}",
                                                  function=display_name(contract, c.function)))
        elif c.points == 0 and c.function not in contract.canonical_functions:
            candidates.append(c)  # a check across layers (the whole network): the dry run decides
    own = _own_checks(contract, extra_checks) if extra_checks is not None else []
    if kit is not None:
        return _from_kit(contract, base, candidates + own, kit)

    def checks() -> list[Check]:
        reference = importlib.import_module(base.reference_module)
        kept = _applicable(contract, candidates, reference)
        kept += _applicable(contract, own, reference, own=True)
        # Each function's checks share the course's points for it, in the canonical proportions;
        # the largest absorbs the rounding, so that the function's total is exact.
        points = {c.id: c.points for c in kept}
        for function in implemented:
            mine = [c for c in kept if c.function == display_name(contract, function) and c not in own]
            total = sum(c.points for c in mine)
            target = sum(p.points for p in contract.implementing(function, graded=True))
            if not mine or not total:
                continue
            for c in mine:
                points[c.id] = round(target * c.points / total, 6)
            largest = max(mine, key=lambda c: c.points)
            points[largest.id] = round(points[largest.id] + target - sum(points[c.id] for c in mine), 6)
        return [dataclasses.replace(c, points=points[c.id]) if c not in own else c for c in kept]

    # The dry run runs when the course's checks are first asked for, not when it is listed.
    registry = DeferredRegistry(checks)
    return Assignment(
        name=contract.name, title=contract.info.title or contract.name, file_name=contract.info.file_name,
        functions=tuple(contract.graded_functions), registry=registry, reference_module=base.reference_module,
        forbidden_imports=tuple(contract.info.forbidden_imports or base.forbidden_imports),
        notes=list(base.notes), contract=contract,
    )


def _from_kit(contract: Contract, base: Assignment, candidates: list[Check], kit: dict) -> Assignment:
    """The course as its kit recorded it: the instructor's public checks and points."""
    from grader.oracle import RecordedOracle

    by_id = {c.id: c for c in candidates}
    missing = [i for i, _ in kit["checks"] if i not in by_id]
    if missing:
        raise ContractError(f"{contract.path}: this kit is incomplete: it records the check(s) "
                            f"{', '.join(missing)}, whose code it does not hold")
    registry = Registry([dataclasses.replace(by_id[i], points=float(points), visibility="public")
                         for i, points in kit["checks"]])
    return Assignment(
        name=contract.name, title=contract.info.title or contract.name, file_name=contract.info.file_name,
        functions=tuple(contract.graded_functions), registry=registry, reference_module=base.reference_module,
        forbidden_imports=tuple(kit.get("forbidden_imports") or contract.info.forbidden_imports
                                or base.forbidden_imports),
        notes=list(base.notes), contract=contract,
        answers=RecordedOracle(kit["recorded"], kit["signatures"]),
    )


def canonical_check_id(contract: Contract, check_id: str) -> str:
    """The id a course's check has in its canonical assignment ("linear_forward.values"
    for fman45's "fully_connected_forward.values"); a check across layers keeps its own."""
    function, short = check_id.split(".", 1)
    part = contract.functions.get(function)
    return f"{part.implements}.{short}" if part is not None and part.graded else check_id


def dropped_checks(contract: Contract) -> dict[str, str]:
    """The canonical checks of the functions students write that do not apply to the
    course, by id, each with why (for its README)."""
    base = named(contract.info.based_on)
    reference = importlib.import_module(base.reference_module)
    graded = {f.implements for f in contract.functions.values() if f.graded}
    built = {canonical_check_id(contract, c.id) for c in build_assignment(contract).checks}
    module = course_reference(contract, reference)
    oracle = ReferenceOracle(reference.__name__)
    dropped = {}
    for c in base.checks:
        if c.function in graded and c.id not in built:
            check = dataclasses.replace(c, id=f"{contract.implementing(c.function, graded=True)[0].name}."
                                        f"{c.id.split('.', 1)[1]}", function=display_name(contract, c.function))
            outcome, why = _dry_run(check, contract, module, reference, oracle)
            dropped[c.id] = why if outcome == "drop" else outcome
    return dropped


def _own_checks(contract: Contract, path: Path) -> list[Check]:
    """The checks of a course's `checks.py` (its `registry`), each of a function students write."""
    spec = importlib.util.spec_from_file_location(f"nngrade_course_{contract.name}_checks", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)  # the instructor's own file, in the grader's process
    except Exception as exc:  # noqa: BLE001 - any error in it is the file's: say where
        raise ContractError(f"{path}: cannot be loaded: {type(exc).__name__}: {exc}") from None
    registry = getattr(module, "registry", None)
    if not isinstance(registry, Registry):
        raise ContractError(f"{path}: defines no `registry = Registry()` holding its checks")
    graded = set(contract.graded_functions)
    for check in registry.checks:
        if check.function not in graded:
            raise ContractError(f"{path}: check {check.id} is of {check.function!r}, not a function students "
                                f"write in this course ({', '.join(sorted(graded))})")
    return list(registry.checks)


def _applicable(contract: Contract, checks: list[Check], reference, own: bool = False) -> list[Check]:
    module = course_reference(contract, reference)
    oracle = ReferenceOracle(reference.__name__)
    kept = []
    for check in checks:
        outcome, _ = _dry_run(check, contract, module, reference, oracle, own)
        if outcome == "drop":
            continue
        if outcome != "pass":
            raise ContractError(f"{contract.path}: the contract does not round-trip: check {check.id} fails "
                                f"on the reference dressed as the course's functions ({outcome})")
        kept.append(check)
    return kept


def _dry_run(check: Check, contract: Contract, module, reference, oracle, own: bool = False) -> tuple[str, str]:
    """("pass", ""), ("drop", why: no call of the check is one the course defines), or
    (what failed, "")."""
    answered = 0
    outside: list[str] = []
    for seed in DRY_RUN_SEEDS:
        student, adapter = _in_process(contract, module, reference)
        rng = np.random.default_rng(check.seed if seed is None else [seed, check.seed])
        try:
            check.call(student=student, oracle=oracle, rng=rng, tolerance=DEFAULT_TOLERANCES,
                       fresh_inputs=seed is not None, **in_process_fixtures(contract, module, reference))
            if own:
                answered += 1  # a course's own check calls the course's functions directly
        except AttributeError as exc:  # a canonical function the course does not have
            if check.points == 0:
                return "drop", f"it calls {exc}, which the course does not define"
            return f"{type(exc).__name__}: {exc}", ""
        except (CheckFailed, StudentCallError, StudentRaised) as exc:
            return f"{type(exc).__name__}: {getattr(exc, 'message', exc)}", ""
        outside += [r for r in adapter.outside_reasons if r not in outside]
        if adapter.out_of_contract and not adapter.in_contract:
            return "drop", _outside(outside)
        answered += adapter.in_contract
    if answered or check.kind == "performance":
        return "pass", ""
    return "drop", _outside(outside) if outside else "it makes no call the course defines"


def _outside(reasons: list[str]) -> str:
    return "every call it makes is one the course does not define: " + "; ".join(reasons)


def layout_note(contract: Contract, functions: set[str]) -> str | None:
    """For a page: the messages of the failed `functions` (course names) give shapes and
    positions in the canonical layout; say how each array's axes map to the course's."""
    pairs = []
    for name in sorted(functions):
        part = contract.functions.get(name)
        if part is None:
            continue
        for p in part.call:
            if p.kind == "value" and p.layout:
                canonical = contract.canonical.layout_of(part.implements, p.source)
                if canonical != p.layout:
                    pairs.append(f"{name}'s {p.name} ({', '.join(p.layout)}) is {p.source} "
                                 f"({', '.join(canonical)})")
    if not pairs:
        return None
    return ("Shapes and positions in the messages below are in nngrade's canonical layout, "
            "not the course's: " + "; ".join(pairs) + ".")
