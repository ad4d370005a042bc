"""The engine against submissions written to break it: each must end with the exact
outcome, the student's other functions keep their credit, and every student is in
results.json. Graded once per sandbox mode through the real CLI (module fixture)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from processes import sleepers
from toy_assignment import TOY

import grader.assignment
from grader.cli import main
from grader.sandbox import bwrap_works

SUBMISSIONS = Path(__file__).parent / "submissions" / "engine"
FUNCTIONS = ("scale", "relu_forward", "total")
MODES = ["none", "spawn",
         pytest.param("bwrap", marks=pytest.mark.skipif(not bwrap_works(), reason="no bubblewrap"))]


def _tree_digest(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module", params=MODES)
def graded(request, tmp_path_factory):
    mode = request.param
    work = tmp_path_factory.mktemp(f"engine-{mode}")
    folder = work / "class"
    shutil.copytree(SUBMISSIONS, folder)
    out = work / "out"
    before = _tree_digest(folder)
    mp = pytest.MonkeyPatch()
    mp.setattr(grader.assignment, "available", lambda: {"toy": TOY})
    try:
        code = main([str(folder), "--assignment", "toy", "--out", str(out), "--jobs", "2", "--timeout", "4",
                     "--load-timeout", "2", "--memory", "512", "--sandbox", mode, "--quiet"])
    finally:
        mp.undo()
    results = json.loads((out / "results.json").read_text())
    return {
        "mode": mode, "code": code, "folder": folder, "out": out, "run": results, "before": before,
        "after": _tree_digest(folder), "by_student": {s["student"]: s for s in results["submissions"]},
    }


def outcome(graded, student):
    sub = graded["by_student"][student]
    return sub, {c["function"]: c for c in sub["checks"]}


def assert_only_failure(graded, student, function, code):
    """`function`'s check fails with `code`; every other function keeps its credit."""
    sub, checks = outcome(graded, student)
    assert sub["status"] == "graded", sub["message"]
    assert not checks[function]["passed"]
    assert code in checks[function]["diagnoses"], checks[function]
    for other in FUNCTIONS:
        if other != function:
            assert checks[other]["passed"], (other, checks[other]["message"])
    assert sub["score"] == 2.0
    assert code in sub["diagnoses"]


def test_every_submission_appears_exactly_once(graded):
    students = [s["student"] for s in graded["run"]["submissions"]]
    expected = sorted(p.stem for p in SUBMISSIONS.iterdir() if p.suffix in (".py", ".ipynb"))
    assert sorted(students) == expected
    assert len(students) == len(set(students))
    assert graded["code"] == 0


def test_results_files_follow_the_spec(graded):
    run = graded["run"]
    assert run["assignment"] == "toy" and run["toolkit_version"] and run["graded_at"].endswith("Z")
    for sub in run["submissions"]:
        assert set(sub) >= {"student", "source", "status", "score", "max_score", "diagnoses", "checks"}
        assert sub["max_score"] == 3.0
        for check in sub["checks"]:
            assert set(check) >= {"id", "function", "kind", "visibility", "passed", "score", "max_score",
                                  "message", "diagnoses"}
    lines = (graded["out"] / "grades.csv").read_text().splitlines()
    assert lines[0].startswith("student,score,max_score,status")  # the spec's columns first, then more
    assert len(lines) == len(run["submissions"]) + 1
    assert (graded["out"] / "index.html").exists() and (graded["out"] / "correct.html").exists()


def test_correct_submission_gets_full_marks(graded):
    sub, checks = outcome(graded, "correct")
    assert sub["score"] == 3.0 and sub["diagnoses"] == [] and sub["load_mode"] == "full"


def test_hang_times_out_and_the_rest_is_graded(graded):
    assert_only_failure(graded, "hang", "scale", "submission.timeout")


@pytest.mark.parametrize("student", ["exit_os", "exit_sys"])
def test_exit_is_a_crash_and_the_rest_is_graded(graded, student):
    assert_only_failure(graded, student, "scale", "submission.crashed")


def test_memory_hogs_hit_the_limit(graded):
    sub, checks = outcome(graded, "memory_hog")
    assert checks["scale"]["diagnoses"] == ["submission.memory_limit"]
    assert checks["relu_forward"]["diagnoses"] == ["submission.memory_limit"]
    assert checks["total"]["passed"]


def test_monkeypatching_numpy_changes_nothing(graded):
    sub, checks = outcome(graded, "monkeypatch")
    assert not checks["scale"]["passed"] and "expected" in checks["scale"]["message"]
    assert checks["relu_forward"]["diagnoses"] == ["submission.bad_return"]  # the ndarray subclass
    assert checks["total"]["passed"]
    assert sub["score"] == 1.0


def test_fake_results_are_only_output(graded):
    sub, checks = outcome(graded, "fake_results")
    assert not checks["scale"]["passed"]
    assert checks["relu_forward"]["passed"] and checks["total"]["passed"]
    assert sub["score"] == 2.0
    assert '"score": 1000.0' in sub["output"]
    assert sub["output_dropped_bytes"] > 0 and len(sub["output"].encode()) <= 64 * 1024
    assert graded["by_student"]["correct"]["score"] == 3.0
    assert not (graded["out"].parent / "results.json").exists()


def test_background_processes_do_not_survive(graded):
    sub, checks = outcome(graded, "background")
    assert sub["score"] == 3.0
    left = sleepers()
    if graded["mode"] == "spawn":
        # The portable path has no subreaper: children that detach into a session of
        # their own outlive it (documented); children in the worker's group do not.
        for pid in left:
            os.kill(pid, 9)
        assert [cmd for cmd in left.values() if cmd.startswith("sleep 987")] == []
    else:
        assert left == {}


def test_forbidden_imports_are_refused_and_named(graded):
    sub, checks = outcome(graded, "forbidden")
    assert "submission.forbidden_import" in sub["diagnoses"]
    assert not checks["scale"]["passed"] and "torch" in checks["scale"]["message"]
    assert checks["relu_forward"]["passed"] and checks["total"]["passed"]
    assert "reference" in sub["forbidden_imports"] and "torch" in sub["forbidden_imports"]


def test_slow_notebook_falls_back_to_definitions(graded):
    sub, _ = outcome(graded, "slow_notebook")
    assert sub["score"] == 3.0 and sub["load_mode"] == "definitions"
    assert any("definitions alone" in note for note in sub["notes"])


@pytest.mark.parametrize("student", ["bom_cookie", "latin1_cookie"])
def test_encodings_are_decoded_as_python_does(graded, student):
    assert graded["by_student"][student]["score"] == 3.0


def test_exit_at_top_level_falls_back(graded):
    sub, _ = outcome(graded, "exits_at_top")
    assert sub["score"] == 3.0 and sub["load_mode"] == "definitions"


def test_bad_returns(graded):
    sub, checks = outcome(graded, "bad_return")
    assert checks["scale"]["diagnoses"] == ["submission.bad_return"]
    assert checks["relu_forward"]["diagnoses"] == ["submission.bad_return"]
    assert checks["total"]["passed"]


@pytest.mark.parametrize("student, code, where", [
    ("syntax_error", "submission.syntax_error", "syntax_error.py, line 8"),
    ("empty", "submission.empty", "empty.py"),
    ("comments_only", "submission.empty", "comments_only.py"),
    ("utf16", "submission.unreadable", "UTF-16"),
    ("binary", "submission.unreadable", "binary"),
    ("broken_notebook", "submission.unreadable", "not a valid notebook"),
])
def test_files_that_cannot_run_are_errors(graded, student, code, where):
    sub = graded["by_student"][student]
    assert sub["status"] == "error" and sub["score"] == 0.0
    assert sub["diagnoses"] == [code]
    assert where in sub["message"]


def test_the_class_folder_is_untouched(graded):
    assert graded["after"] == graded["before"]


def test_sandbox_mode_is_recorded(graded):
    assert graded["run"]["sandbox"] == graded["mode"]
