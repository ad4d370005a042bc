"""The `grade` command: usage errors, assignment detection, discovery, single-file
mode, --only and --resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from processes import descendants, still_alive
from toy_assignment import CORRECT, TOY

import grader.assignment
from grader.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "submissions"


@pytest.fixture
def toy(monkeypatch):
    real = grader.assignment.available()
    monkeypatch.setattr(grader.assignment, "available", lambda: {**real, "toy": TOY})


def results(out: Path) -> dict:
    return {s["student"]: s for s in json.loads((out / "results.json").read_text())["submissions"]}


def test_help_explains_itself(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for option in ("--assignment", "--out", "--jobs", "--timeout", "--memory", "--only", "--resume",
                   "--quiet", "--sandbox"):
        assert option in text


def test_python_dash_m_grader_works():
    run = subprocess.run([sys.executable, "-m", "grader", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0 and "usage: grade" in run.stdout


@pytest.mark.parametrize("make, args, message", [
    (lambda d: None, ["missing"], "does not exist"),
    (lambda d: (d / "notes.txt").write_text("hi"), ["notes.txt"], "not a .py or .ipynb"),
    (lambda d: (d / "empty").mkdir(), ["empty"], "holds no submissions"),
    (lambda d: (d / "x.py").write_text("def f(): pass\n"), ["x.py"], "cannot tell which assignment"),
    (lambda d: (d / "x.py").write_text("def f(): pass\n"), ["x.py", "--assignment", "nope"], "unknown assignment"),
    (lambda d: (d / "x.py").write_text(CORRECT), ["x.py", "-a", "cnn", "--jobs", "0"], "--jobs must be positive"),
    (lambda d: (d / "x.py").write_text(CORRECT), [".", "-a", "cnn", "--only", "zed"], "no submission for zed"),
])
def test_usage_errors_exit_2_with_one_clear_line(tmp_path, monkeypatch, capsys, make, args, message):
    monkeypatch.chdir(tmp_path)
    make(tmp_path)
    assert main(args + ["--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_assignment_is_inferred_from_file_names_or_functions(tmp_path, capsys):
    assert main([str(EXAMPLES / "rnn" / "dave.py"), "--out", str(tmp_path / "a"), "-q"]) == 0
    assert json.loads((tmp_path / "a" / "results.json").read_text())["assignment"] == "rnn"
    assert main([str(EXAMPLES / "cnn" / "alice"), "--out", str(tmp_path / "b"), "-q"]) == 0
    assert json.loads((tmp_path / "b" / "results.json").read_text())["assignment"] == "cnn"


def test_single_file_prints_a_summary_per_function(tmp_path, capsys):
    path = EXAMPLES / "cnn" / "carol" / "cnn_layers.py"
    assert main([str(path), "--out", str(tmp_path), "-q"]) == 0
    out = capsys.readouterr().out
    assert "cnn_layers (cnn_layers.py)" in out
    assert "conv2d_forward" in out and "FAIL" in out and "conv.flipped_kernel" in out
    assert (tmp_path / "cnn_layers.html").exists() and f"Your page: {tmp_path / 'cnn_layers.html'}" in out
    # One file is no class: no overview of one student, and none named.
    assert not (tmp_path / "index.html").exists() and "overview" not in out


def test_folder_discovery_picks_the_right_file(tmp_path, toy):
    cls = tmp_path / "class"
    (cls / "ann").mkdir(parents=True)
    (cls / "ann" / "helpers.py").write_text("import numpy as np\n\ndef relu(x):\n    return np.maximum(x, 0)\n")
    (cls / "ann" / "my_solution.py").write_text(
        CORRECT.replace("return np.maximum(x, 0)", "from helpers import relu\n    return relu(x)"))
    (cls / "ann" / "scratch.py").write_text("def scale(x, k):\n    return 0\n")
    (cls / "ann" / "__pycache__").mkdir()
    (cls / "ann" / "__pycache__" / "toy.py").write_text("raise SystemExit")
    (cls / "ann" / ".ipynb_checkpoints").mkdir()
    (cls / "ann" / ".ipynb_checkpoints" / "toy.py").write_text("raise SystemExit")
    (cls / "ben").mkdir()
    (cls / "ben" / "toy.py").write_text(CORRECT)  # the contract's file name wins
    (cls / "ben" / "aaa_more_functions.py").write_text(CORRECT)
    (cls / ".hidden.py").write_text(CORRECT)
    (cls / "cat.py").write_text(CORRECT)
    out = tmp_path / "out"
    assert main([str(cls), "-a", "toy", "--out", str(out), "-q", "--sandbox", "none"]) == 0
    got = results(out)
    assert sorted(got) == ["ann", "ben", "cat"]
    assert got["ann"]["source"] == "ann/my_solution.py" and got["ann"]["score"] == 3.0
    assert got["ben"]["source"] == "ben/toy.py"
    assert got["cat"]["source"] == "cat.py"


def test_only_and_resume(tmp_path, toy):
    cls = tmp_path / "class"
    cls.mkdir()
    for name in ("a", "b", "c"):
        (cls / f"{name}.py").write_text(CORRECT)
    out = tmp_path / "out"
    assert main([str(cls), "-a", "toy", "--out", str(out), "-q", "--only", "a,b"]) == 0
    first = results(out)
    assert sorted(first) == ["a", "b"]
    (cls / "b.py").write_text(CORRECT.replace("return x * k", "return x * k + 1"))
    assert main([str(cls), "-a", "toy", "--out", str(out), "-q", "--resume"]) == 0
    second = results(out)
    assert sorted(second) == ["a", "b", "c"]
    assert second["a"] == first["a"]  # unchanged: kept as it was, not graded again
    assert second["b"]["score"] == 2.0 and second["c"]["score"] == 3.0


@pytest.mark.parametrize("jobs", ["1", "2"])  # threads, then forked grading processes
def test_interrupt_keeps_finished_students(tmp_path, jobs):
    cls = tmp_path / "class"
    cls.mkdir()
    (cls / "a_fast.py").write_text((EXAMPLES / "rnn" / "alice" / "rnn_layers.py").read_text())
    slow = (EXAMPLES / "rnn" / "alice" / "rnn_layers.py").read_text().replace(
        "def rnn_forward(x, h0, U, W, V, b, c):\n", "def rnn_forward(x, h0, U, W, V, b, c):\n    while True: pass\n")
    (cls / "b_slow.py").write_text(slow)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "grader", str(cls), "-a", "rnn", "--out", str(out), "--jobs",
                             jobs, "--timeout", "60"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    for line in proc.stdout:
        if "a_fast" in line:
            break
    started = descendants(proc.pid)  # the run's own processes only: other runs may share the machine
    assert started  # the grading processes, zygotes and workers of this run
    proc.send_signal(2)  # SIGINT, as Ctrl-C
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    assert sorted(results(out)) == ["a_fast"]
    import time

    time.sleep(0.5)
    assert still_alive(started) == {}  # nothing the run started is left


def test_examples_show_something_real(tmp_path):
    out = tmp_path / "out"
    assert main([str(EXAMPLES / "cnn"), "--out", str(out), "-q", "--timeout", "2"]) == 0
    got = results(out)
    assert got["alice"]["score"] == got["alice"]["max_score"]
    assert got["bob"]["load_mode"] == "definitions"
    assert "conv.flipped_kernel" in got["carol"]["diagnoses"]
    assert "submission.timeout" in got["erin"]["diagnoses"]
    assert all(s["status"] == "graded" for s in got.values())


# ---------------------------------------------------------------- never lose or invent a result
def _pages(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.glob("*.html") if p.name != "index.html"}


def test_only_grades_into_the_class_results_and_keeps_the_others_byte_for_byte(tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(EXAMPLES / "cnn"), "--out", str(out), "-q", "--sandbox", "none"]) == 0
    before, pages = results(out), _pages(out)
    # Options before PATH, one student named.
    assert main(["--only", "carol", "--out", str(out), "-q", "--sandbox", "none", str(EXAMPLES / "cnn")]) == 0
    assert "Graded 1 submission(s) of 'cnn' (4 kept from a previous run)" in capsys.readouterr().out
    after = results(out)
    assert sorted(after) == sorted(before)
    for student in before:
        if student != "carol":
            assert after[student] == before[student]
            assert _pages(out)[f"{student}.html"] == pages[f"{student}.html"]
    assert after["carol"]["score"] == before["carol"]["score"]  # the same seed: the same inputs
    assert after["carol"]["seconds"] != before["carol"]["seconds"] or after["carol"] == before["carol"]
    index = (out / "index.html").read_text()
    assert all(f"{student}.html" in index for student in before)
    rows = (out / "grades.csv").read_text().splitlines()
    assert len(rows) == 1 + len(before)


def test_only_with_a_new_class_folder_says_who_has_no_result_yet(tmp_path, capsys, toy):
    cls = tmp_path / "class"
    cls.mkdir()
    for name in ("a", "b"):
        (cls / f"{name}.py").write_text(CORRECT)
    out = tmp_path / "out"
    assert main(["--only", "b", str(cls), "-a", "toy", "--out", str(out), "-q"]) == 0
    assert sorted(results(out)) == ["b"]
    assert "1 other submission(s)" in capsys.readouterr().err


def test_one_students_folder_is_one_submission_named_after_the_folder(tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(EXAMPLES / "cnn" / "carol"), "--out", str(out), "--sandbox", "none"]) == 0
    got = results(out)
    assert list(got) == ["carol"] and got["carol"]["source"] == "carol/cnn_layers.py"
    printed = capsys.readouterr().out
    assert "carol (carol/cnn_layers.py)" in printed and "conv2d_forward" in printed  # the per-function summary


def test_a_class_of_single_files_stays_a_class(tmp_path, toy):
    """Files named after students, none named like an assignment's file: a class."""
    cls = tmp_path / "class"
    cls.mkdir()
    for name in ("a", "b"):
        (cls / f"{name}.py").write_text(CORRECT)
    assert main([str(cls), "-a", "toy", "--out", str(tmp_path / "out"), "-q"]) == 0
    assert sorted(results(tmp_path / "out")) == ["a", "b"]


def test_a_wrong_assignment_stops_with_one_line_naming_the_right_one(tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(EXAMPLES / "cnn"), "--assignment", "rnn", "--out", str(out), "-q", "--sandbox", "none"]) == 2
    err = capsys.readouterr().err
    assert "no submission defines any function of 'rnn'" in err and "--assignment cnn" in err
    assert len(err.strip().splitlines()) == 1 and not (out / "results.json").exists()


def test_files_that_look_like_nothing_are_still_graded_under_the_assignment_named(tmp_path):
    """An empty file or a syntax error with --assignment: graded, its page says what is wrong."""
    (tmp_path / "broken.py").write_text("def conv2d_forward(x, w, b:\n")
    assert main([str(tmp_path / "broken.py"), "-a", "cnn", "--out", str(tmp_path / "out"), "-q",
                 "--sandbox", "none"]) == 0
    assert results(tmp_path / "out")["broken"]["diagnoses"] == ["submission.syntax_error"]


def test_resume_with_nothing_changed_says_everyone_was_kept(tmp_path, capsys, toy):
    cls = tmp_path / "class"
    cls.mkdir()
    (cls / "a.py").write_text(CORRECT)
    out = tmp_path / "out"
    assert main([str(cls), "-a", "toy", "--out", str(out), "-q"]) == 0
    capsys.readouterr()
    assert main([str(cls), "-a", "toy", "--out", str(out), "-q", "--resume"]) == 0
    assert "Graded 0 submission(s) of 'toy' (1 kept from a previous run)" in capsys.readouterr().out


def test_help_lists_every_subcommand_and_grade_help_shows_each(capsys):
    from grader.cli import subcommands

    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for name in subcommands():
        assert f"grade {name}" in text
    assert main(["help"]) == 0 and "usage: grade PATH" in capsys.readouterr().out
    for name in subcommands():
        if name != "help":
            assert main(["help", name]) == 0
            assert f"usage: grade {name}" in capsys.readouterr().out
    assert main(["help", "nope"]) == 2 and "no subcommand 'nope'" in capsys.readouterr().err
