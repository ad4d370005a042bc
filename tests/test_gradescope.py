"""Gradescope: results.json per submission (checked against Gradescope's documented
format by hand, not by our own model), --gradescope / --gradescope-out, and the
autograder zip, unpacked and run as Gradescope's container would run it."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.cli import main
from grader.diagnoses import describe
from grader.models import CheckResult, RunResult, SubmissionResult
from grader.report.gradescope import (
    GradescopeError,
    gradescope_results,
    project_files,
    tomllib,
    write_gradescope,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "submissions"

# Gradescope's autograder specification: the keys it reads and the values it accepts.
TOP_KEYS = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
            "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}
TEST_KEYS = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format",
             "tags", "visibility", "extra_data"}
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}
FORMATS = {"text", "html", "simple_format", "md", "ansi"}


def assert_gradescope_format(doc: dict) -> None:
    assert isinstance(doc, dict) and set(doc) <= TOP_KEYS, set(doc) - TOP_KEYS
    tests = doc.get("tests", [])
    assert isinstance(doc.get("score"), (int, float)) or all("score" in t for t in tests)
    for key in ("visibility", "stdout_visibility"):
        assert doc.get(key, "visible") in VISIBILITY
    for key in ("output_format", "test_output_format", "test_name_format"):
        assert doc.get(key, "text") in FORMATS
    assert isinstance(doc.get("output", ""), str) and isinstance(doc.get("extra_data", {}), dict)
    assert isinstance(doc.get("execution_time", 0), int)
    for t in tests:
        assert set(t) <= TEST_KEYS, set(t) - TEST_KEYS
        assert isinstance(t["name"], str) and t["name"]
        assert isinstance(t["score"], (int, float)) and isinstance(t["max_score"], (int, float))
        assert 0 <= t["score"] <= t["max_score"]
        assert t["status"] in ("passed", "failed")
        assert t.get("visibility", "visible") in VISIBILITY
        assert t.get("output_format", "text") in FORMATS and isinstance(t.get("output", ""), str)
    if tests:
        assert doc["score"] == pytest.approx(sum(t["score"] for t in tests))


def chk(id_, passed, score, max_score, visibility="public", **extra) -> CheckResult:
    return CheckResult(id=id_, function=id_.split(".")[0], kind=extra.pop("kind", "numeric"),
                       visibility=visibility, passed=passed, score=score, max_score=max_score, **extra)


def student(name="carol") -> SubmissionResult:
    return SubmissionResult(
        student=name, source=f"{name}/cnn_layers.py", status="graded", score=3.0, max_score=9.0,
        diagnoses=["conv.flipped_kernel", "submission.timeout"], load_mode="definitions",
        notes=["The top level ran longer than 5 s."], output="epoch 0\n",
        checks=[
            chk("conv_output_size.rules", True, 1, 1, description="7x7 with 3x3 gives 5x5."),
            chk("conv2d_forward.lecture", False, 0, 2, message="y[0,0,0,0] is -5, expected 25",
                diagnoses=["conv.flipped_kernel"],
                details={"mismatch": {"name": "y", "index": [0, 0, 0, 0], "got": -5, "expected": 25,
                                      "max_abs_error": 40, "relative_error": 1.48, "n_bad": 9, "size": 9}}),
            chk("conv2d_forward.secret", False, 0, 4, visibility="hidden", message="SECRET 0.123456",
                description="SECRET inputs", diagnoses=["submission.timeout"]),
            chk("conv2d_backward.grads", True, 2, 2, kind="gradient",
                details={"relative_errors": {"dx": 1e-9, "dw": 2e-9}}),
        ])


def run_of(*subs) -> RunResult:
    return RunResult(assignment="cnn", toolkit_version="0.1.0", graded_at="2026-11-25T17:00:00Z",
                     submissions=list(subs), max_score=9.0)


def test_results_follow_gradescope_format_with_hidden_checks_released_after_publishing():
    doc = json.loads(gradescope_results(run_of(student()), student()).model_dump_json())
    assert_gradescope_format(doc)
    assert doc["score"] == 3.0 and doc["stdout_visibility"] == "hidden"
    tests = {t["name"]: t for t in doc["tests"]}
    assert list(tests) == ["conv_output_size: rules", "conv2d_forward: lecture", "conv2d_forward: secret (hidden)",
                           "conv2d_backward: grads"]
    assert [t["number"] for t in doc["tests"]] == ["1.1", "2.1", "2.2", "3.1"]
    hidden = tests["conv2d_forward: secret (hidden)"]
    assert hidden["visibility"] == "after_published" and hidden["status"] == "failed"
    assert hidden["max_score"] == 4 and "SECRET" not in json.dumps(hidden)
    assert all(t["visibility"] == "visible" for name, t in tests.items() if "hidden" not in name)


def test_test_output_says_what_failed_why_and_where():
    doc = gradescope_results(run_of(student()), student())
    lecture = doc.tests[1].output
    flipped = describe("conv.flipped_kernel")
    assert lecture.startswith("y[0,0,0,0] is -5, expected 25")
    assert flipped.sentence in lecture and (not flipped.hint or flipped.hint in lecture)
    assert "First mismatch: y[0,0,0,0]: got -5, expected 25" in lecture and "9 of 9 values differ" in lecture
    assert doc.tests[0].output == "7x7 with 3x3 gives 5x5."
    assert "Relative error per gradient: dx 1e-09, dw 2e-09" in doc.tests[3].output


def test_overall_output_tells_how_the_file_ran_without_hidden_findings():
    output = gradescope_results(run_of(student()), student()).output
    assert "Graded file: carol/cnn_layers.py" in output and "definitions alone" in output
    assert "ran longer than 5 s" in output
    assert "epoch 0" not in output and "kept for course staff" in output  # hidden checks ran
    assert describe("conv.flipped_kernel").sentence in output
    assert describe("submission.timeout").sentence not in output  # only a hidden check found it
    assert "SECRET" not in output


def test_a_submission_that_could_not_run_gets_zero_and_the_reason():
    broken = SubmissionResult(student="zed", source="zed.py", status="error", score=0, max_score=9,
                              diagnoses=["submission.syntax_error"], message="line 3 does not parse")
    doc = json.loads(gradescope_results(run_of(broken), broken).model_dump_json())
    assert_gradescope_format(doc)
    assert doc["score"] == 0 and doc["tests"] == []
    assert "line 3 does not parse" in doc["output"] and describe("submission.syntax_error").sentence in doc["output"]


def test_write_gradescope_one_file_per_student_or_exactly_one_file(tmp_path):
    run = run_of(student("amy"), student("b o/b"))
    write_gradescope(run, tmp_path)
    assert sorted(p.name for p in (tmp_path / "gradescope").iterdir()) == ["amy.json", "b_o_b.json"]
    with pytest.raises(GradescopeError, match="one submission"):
        write_gradescope(run, None, tmp_path / "results.json")
    write_gradescope(run_of(student("amy")), None, tmp_path / "deep" / "results.json")
    assert_gradescope_format(json.loads((tmp_path / "deep" / "results.json").read_text()))


def test_cli_gradescope_writes_a_valid_file_per_student(tmp_path):
    out = tmp_path / "out"
    assert main([str(EXAMPLES / "rnn"), "--out", str(out), "--timeout", "2", "-q", "--gradescope"]) == 0
    students = {s["student"] for s in json.loads((out / "results.json").read_text())["submissions"]}
    files = {p.stem: json.loads(p.read_text()) for p in (out / "gradescope").glob("*.json")}
    assert set(files) == students and len(students) == 5
    for doc in files.values():
        assert_gradescope_format(doc)


def test_cli_gradescope_out_writes_exactly_one_file(tmp_path, capsys):
    target = tmp_path / "results" / "results.json"
    args = ["--out", str(tmp_path / "out"), "--timeout", "2", "-q", "--gradescope-out", str(target)]
    assert main([str(EXAMPLES / "rnn" / "dave.py"), *args]) == 0
    assert_gradescope_format(json.loads(target.read_text()))
    assert not (tmp_path / "out" / "gradescope").exists()
    assert main([str(EXAMPLES / "rnn"), *args]) == 2
    assert "one submission" in capsys.readouterr().err


# -- the autograder zip ----------------------------------------------------------------


def unpack(zip_path: Path, into: Path) -> Path:
    """As Gradescope unpacks it: `unzip`, which keeps the mode bits (zipfile would not)."""
    if shutil.which("unzip"):
        subprocess.run(["unzip", "-q", str(zip_path), "-d", str(into)], check=True)
    else:
        with zipfile.ZipFile(zip_path) as archive:
            for info in archive.infolist():
                archive.extract(info, into)
                os.chmod(into / info.filename, (info.external_attr >> 16) & 0o777)
    return into


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundle")
    assert main(["gradescope-bundle", "--assignment", "cnn", "--out", str(folder / "autograder.zip")]) == 0
    return folder / "autograder.zip"


def test_bundle_holds_the_scripts_and_the_toolkit_source(bundle, tmp_path):
    names = zipfile.ZipFile(bundle).namelist()
    for name in ("setup.sh", "run_autograder", "pyproject.toml", "grader/cli.py", "grader/report/gradescope.py",
                 "grader/report/templates/student.html.j2", "grader/worker/serve.py",
                 "assignments/cnn/__init__.py", "reference/cnn.py"):
        assert name in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith(("tests/", "examples/"))]
    src = unpack(bundle, tmp_path)
    for script in ("setup.sh", "run_autograder"):
        path = src / script
        assert path.stat().st_mode & stat.S_IXUSR, f"{script} is not executable"
        assert path.read_text().startswith("#!/usr/bin/env bash\n")
        subprocess.run(["bash", "-n", str(path)], check=True)  # it parses
    run = (src / "run_autograder").read_text()
    assert '-m grader "$WORK/class" --assignment cnn' in run and '--gradescope-out "$RESULTS"' in run
    assert "/autograder/submission" in run and "/autograder/results/results.json" in run
    setup = (src / "setup.sh").read_text()
    assert 'ROOT="${NNGRADE_AUTOGRADER:-/autograder}"' in setup and 'SOURCE="${NNGRADE_SOURCE:-$ROOT/source}"' in setup
    assert 'pip install --quiet "$SOURCE"' in setup


def test_bundle_is_the_same_zip_every_time_and_refuses_unknown_assignments(bundle, tmp_path, capsys):
    again = tmp_path / "again.zip"
    assert main(["gradescope-bundle", "-a", "cnn", "-o", str(again)]) == 0
    assert again.read_bytes() == bundle.read_bytes()
    assert main(["gradescope-bundle", "--assignment", "nope", "--out", str(tmp_path / "x.zip")]) == 2
    assert "unknown assignment 'nope'" in capsys.readouterr().err and not (tmp_path / "x.zip").exists()


def test_run_autograder_grades_a_submission_as_in_gradescopes_container(bundle, tmp_path):
    src = unpack(bundle, tmp_path / "source")
    root = tmp_path / "autograder"
    (root / "submission" / "extra").mkdir(parents=True)
    shutil.copy(EXAMPLES / "cnn" / "carol" / "cnn_layers.py", root / "submission")
    (root / "submission" / "extra" / "notes.txt").write_text("my notes")
    # The bundle's own copy of the toolkit runs (PYTHONPATH), with this interpreter's packages.
    env = {**os.environ, "NNGRADE_AUTOGRADER": str(root), "NNGRADE_PYTHON": sys.executable,
           "PYTHONPATH": str(src)}
    proc = subprocess.run([str(src / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                          check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((root / "results" / "results.json").read_text())
    assert_gradescope_format(doc)
    assert 0 < doc["score"] < sum(t["max_score"] for t in doc["tests"])
    assert "Graded file: submission/cnn_layers.py" in doc["output"]
    assert any(t["name"].startswith("conv2d_forward:") and t["status"] == "failed" for t in doc["tests"])
    for t in doc["tests"]:
        if t["name"].endswith("(hidden)"):
            assert t["visibility"] == "after_published" and " is " not in t["output"]  # no "y[..] is .."


def test_bundle_source_builds_into_a_complete_package(bundle, tmp_path):
    src = unpack(bundle, tmp_path / "source")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path / "wheel"), str(src)], capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    wheel = next((tmp_path / "wheel").glob("nngrade-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for name in ("grader/report/templates/student.html.j2", "grader/report/templates/gradescope/run_autograder.j2",
                 "assignments/cnn/__init__.py", "reference/rnn.py"):
        assert name in names


def test_an_installed_copy_without_pyproject_gets_one_from_its_metadata(tmp_path):
    [(name, data)] = project_files(tmp_path)
    project = tomllib.loads(data.decode())["project"]
    assert name == "pyproject.toml" and project["name"] == "nngrade"
    assert any(r.startswith("numpy") for r in project["dependencies"])
    assert not any(r.startswith("pytest") for r in project["dependencies"])
