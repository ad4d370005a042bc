"""Shared by tests/test_checks_cnn.py and tests/test_checks_rnn.py: grading variant
submissions in-process, synthetic students that every check must be able to fail,
and the assertions that a buggy variant names exactly its mistake."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np

from grader.compare import DEFAULT_TOLERANCES
from grader.config import points_table
from grader.diagnoses import CATALOGUE
from grader.runner import run_check
from grader.source import load
from grader.testing import InProcessStudent

SUBMISSIONS = Path(__file__).parent / "submissions"


def student_from(path: Path, functions) -> InProcessStudent:
    """A variant (a .py file or a notebook) as the engine would load it, run in-process."""
    code = load(path, path.name)
    namespace = {"__name__": path.stem}
    exec(compile(code.text, str(path), "exec"), namespace)  # noqa: S102 - our own test files
    return InProcessStudent(namespace, functions)


def grade(assignment, student, oracle, tolerance=DEFAULT_TOLERANCES, checks=None, seed=None, fixtures=None):
    """Every check (or `checks`); with a run `seed` as `grade --seed` draws the inputs,
    without one on the fixed inputs the kit records. `fixtures`: a course's own checks'."""
    return [run_check(c, student, oracle, tolerance, seed, fixtures) for c in (checks or assignment.checks)]


def summary(results) -> dict:
    return {
        "score": sum(r.score for r in results),
        "diagnoses": sorted({d for r in results for d in r.diagnoses}),
        "lost": {r.id: r.message for r in results if not r.passed and r.max_score > 0},
        "failed": {r.id: r.message for r in results if not r.passed},
    }


def assert_full_marks(assignment, results) -> None:
    got = summary(results)
    unexpected = {i: m for i, m in got["failed"].items() if not i.endswith(".speed")}
    assert not unexpected, json.dumps(unexpected, indent=1)
    assert got["score"] == assignment.max_score and got["diagnoses"] == []


def assert_exactly(results, codes: set[str], function: str) -> None:
    """The variant gets exactly `codes` and loses credit in `function`'s checks only."""
    got = summary(results)
    assert set(got["diagnoses"]) == codes, json.dumps(got["failed"], indent=1)
    assert got["lost"], "the mistake cost nothing"
    elsewhere = {i: m for i, m in got["lost"].items() if not i.startswith(function + ".")}
    assert not elsewhere, json.dumps(elsewhere, indent=1)


def assert_catalogued(codes) -> None:
    for code in codes:
        entry = CATALOGUE.get(code)
        assert entry is not None, code
        assert entry.sentence.endswith(".") and len(entry.hint) > 30, code


def assert_points_documented(assignment, totals: dict[str, float], readme: Path) -> None:
    by_function: dict[str, float] = {}
    for c in assignment.checks:
        by_function[c.function] = by_function.get(c.function, 0.0) + c.points
    assert {f: p for f, p in by_function.items() if p} == totals
    assert assignment.max_score == 100
    assert points_table(assignment) in readme.read_text(), "README.md's points table is out of date"


# ------------------------------------------------------------------ synthetic students
def _map_arrays(value, fn):
    if isinstance(value, np.ndarray):
        return fn(value)
    if isinstance(value, tuple):
        return tuple(_map_arrays(v, fn) for v in value)
    if isinstance(value, list):
        return [_map_arrays(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: _map_arrays(v, fn) for k, v in value.items()}
    return value


def synthetic_students(reference_module: str, functions) -> dict[str, InProcessStudent]:
    """Students that are wrong in one plain way each: right shapes but zero values (and
    no argument checks), one row too many, or the right values after writing into their
    first argument."""
    reference = importlib.import_module(reference_module)

    def zeros(name):
        def fn(*args, **kwargs):
            try:
                out = getattr(reference, name)(*args, **kwargs)
            except ValueError:  # nor does it check its arguments
                return 0
            if isinstance(out, list):  # sampled symbols
                return [0] * len(out)
            if isinstance(out, (int, float)):
                return type(out)(0)
            if isinstance(out, tuple) and isinstance(out[0], float):  # (loss, dz)
                return 0.0, np.zeros_like(out[1])
            return _map_arrays(out, np.zeros_like)
        return fn

    def misshapen(name):
        def fn(*args, **kwargs):
            out = getattr(reference, name)(*args, **kwargs)
            if isinstance(out, list):
                return out + [0]
            if isinstance(out, int):
                return out + 1
            return _map_arrays(out, lambda a: np.concatenate([a, a[:1]]) if a.ndim else a)
        return fn

    def mutating(name):
        def fn(*args, **kwargs):
            out = getattr(reference, name)(*args, **kwargs)
            for a in list(args) + list(kwargs.values()):
                if isinstance(a, np.ndarray) and a.size:
                    a.flat[0] += 1.0
                    break
            return out
        return fn

    return {kind: InProcessStudent({name: make(name) for name in functions}, functions)
            for kind, make in (("zeros", zeros), ("misshapen", misshapen), ("mutating", mutating))}


def assert_every_check_can_fail(assignment, failed_somewhere: set[str]) -> None:
    scored = {c.id for c in assignment.checks if c.points > 0}
    never = sorted(scored - failed_somewhere)
    assert not never, f"checks that no wrong submission fails: {never}"
