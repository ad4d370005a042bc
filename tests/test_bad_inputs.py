"""Inputs that are not what a grader hopes for: each student gets a clear message and
the run goes on. Class zips with hostile entries never write outside their folder."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import nbformat
import pytest
from toy_assignment import CORRECT, TOY

import grader.assignment
from grader.cli import main


@pytest.fixture(autouse=True)
def toy(monkeypatch):
    monkeypatch.setattr(grader.assignment, "available", lambda: {"toy": TOY})


def grade(path: Path, out: Path, *extra: str) -> dict:
    assert main([str(path), "-a", "toy", "--out", str(out), "-q", "--sandbox", "none", *extra]) == 0
    return {s["student"]: s for s in json.loads((out / "results.json").read_text())["submissions"]}


def test_bad_files_each_get_a_clear_message(tmp_path):
    cls = tmp_path / "class"
    cls.mkdir()
    (cls / "ok.py").write_text(CORRECT)
    nb3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": []}]}
    (cls / "old_notebook.ipynb").write_text(json.dumps(nb3))
    (cls / "huge.py").write_text(CORRECT + "#" * (11 * 1024 * 1024))
    (cls / "latin1_no_cookie.py").write_bytes(("# Fran\xe7ois\n" + CORRECT).encode("latin-1"))
    (cls / "Jos\u00e9 N\u00fa\u00f1ez.py").write_text(CORRECT)
    outside = tmp_path / "outside.py"
    outside.write_text(CORRECT)
    (cls / "linked.py").symlink_to(outside)
    (cls / "folder_with_link").mkdir()
    (cls / "folder_with_link" / "toy.py").symlink_to(outside)
    got = grade(cls, tmp_path / "out")
    assert got["ok"]["score"] == 3.0
    expectations = {
        "old_notebook": ("submission.unreadable", "version 3 notebook"),
        "huge": ("submission.unreadable", "over 10 MB"),
        "latin1_no_cookie": ("submission.unreadable", "not valid UTF-8"),
        "linked": ("submission.unreadable", "symbolic link"),
        "folder_with_link": ("submission.empty", "no .py or .ipynb"),
    }
    for student, (code, words) in expectations.items():
        assert got[student]["status"] == "error", student
        assert got[student]["diagnoses"] == [code], student
        assert words in got[student]["message"], (student, got[student]["message"])
    assert got["Jos\u00e9 N\u00fa\u00f1ez"]["score"] == 3.0
    assert (tmp_path / "out" / "Jos\u00e9_N\u00fa\u00f1ez.html").exists()


def test_notebook_cell_that_does_not_parse_is_left_out_and_named(tmp_path):
    cells = [nbformat.v4.new_code_cell("import numpy as np\n\ndef scale(x, k):\n    return x * k"),
             nbformat.v4.new_code_cell("def broken(:\n    pass"),
             nbformat.v4.new_code_cell("def relu_forward(x):\n    return np.maximum(x, 0)\n\n"
                                       "def total(x):\n    return float(x.sum())")]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    got = grade(path, tmp_path / "out")["nb"]
    assert got["score"] == 3.0 and "submission.syntax_error" in got["diagnoses"]
    assert any("code cell 2 does not parse" in note for note in got["notes"])


def test_notebook_defining_a_function_twice_uses_the_later(tmp_path):
    cells = [nbformat.v4.new_code_cell(CORRECT.replace("return x * k", "return x * 0")),
             nbformat.v4.new_code_cell("def scale(x, k):\n    return x * k")]
    path = tmp_path / "twice.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    assert grade(path, tmp_path / "out")["twice"]["score"] == 3.0


def _zip_with(entries: list[tuple[str, str, int | None]], path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text, mode in entries:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            archive.writestr(info, text)
    return path


def test_class_zip_with_zip_slip_entries_never_writes_outside(tmp_path):
    work = tmp_path / "deep" / "er"
    work.mkdir(parents=True)
    zip_path = _zip_with([
        ("ann/toy.py", CORRECT, None),
        ("bob.py", CORRECT, None),
        ("../escaped.py", "print('slipped')", None),
        ("../../escaped2.py", "print('slipped')", None),
        ("/tmp/nngrade_abs_escape.py", "print('slipped')", None),
        ("C:/windows_escape.py", "print('slipped')", None),
        ("sneaky.py", "/etc/passwd", stat.S_IFLNK | 0o777),
    ], work / "class.zip")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    out = tmp_path / "out"
    assert main([str(zip_path), "-a", "toy", "--out", str(out), "-q", "--sandbox", "none"]) == 0
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if out not in p.parents and p != out)
    assert after == before
    assert not Path("/tmp/nngrade_abs_escape.py").exists()
    run = json.loads((out / "results.json").read_text())
    assert sorted(s["student"] for s in run["submissions"]) == ["ann", "bob"]
    assert all(s["score"] == 3.0 for s in run["submissions"])
    refused = " ".join(run["warnings"])
    for name in ("../escaped.py", "../../escaped2.py", "/tmp/nngrade_abs_escape.py", "C:/windows_escape.py",
                 "sneaky.py"):
        assert name in refused


def test_canvas_and_moodle_names_give_the_student(tmp_path):
    helper = "def relu(x):\n    import numpy as np\n    return np.maximum(x, 0)\n"
    uses_helper = CORRECT.replace("    return np.maximum(x, 0)", "    from helpers import relu\n    return relu(x)")
    zip_path = _zip_with([
        ("submissions/smith_12345_67890_toy.py", uses_helper, None),
        ("submissions/smith_12345_67890_helpers.py", helper, None),
        ("submissions/jones_LATE_222_333_toy-1.py", CORRECT, None),
        ("submissions/smith_999_444_toy.py", CORRECT.replace("return x * k", "return x"), None),
        ("submissions/Ann Lee_555_assignsubmission_file_/toy.py", CORRECT, None),
    ], tmp_path / "canvas.zip")
    got = grade(zip_path, tmp_path / "out")
    assert sorted(got) == ["Ann Lee", "jones", "smith", "smith_999"]
    assert got["smith"]["score"] == 3.0  # its helper module travelled with it, under its own name
    assert got["jones"]["score"] == 3.0
    assert got["smith_999"]["score"] == 2.0
    assert got["Ann Lee"]["score"] == 3.0


def test_two_entries_for_one_student_keep_the_first_and_name_the_other(tmp_path):
    cls = tmp_path / "class"
    (cls / "Ann Lee_555_assignsubmission_file_").mkdir(parents=True)
    (cls / "Ann Lee_555_assignsubmission_file_" / "toy.py").write_text(CORRECT.replace("x * k", "x"))
    (cls / "Ann Lee.py").write_text(CORRECT)  # sorts first: '.' < '_'
    (cls / "bob.py").write_text(CORRECT)
    (cls / "bob.ipynb").write_text("{}")
    got = grade(cls, tmp_path / "out")
    assert sorted(got) == ["Ann Lee", "bob"]
    assert got["Ann Lee"]["source"] == "Ann Lee.py" and got["Ann Lee"]["score"] == 3.0
    assert any("Ann Lee_555_assignsubmission_file_ was not graded" in n for n in got["Ann Lee"]["notes"])
    assert any("bob.py was not graded" in n for n in got["bob"]["notes"])


def test_names_and_messages_that_are_not_valid_text_lose_nothing(tmp_path):
    cls = tmp_path / "class"
    cls.mkdir()
    (cls / "ok.py").write_text(CORRECT)
    # A file name in Latin-1 (a zip made on an old Windows machine): not UTF-8.
    with open(bytes(cls) + b"/caf\xe9.py", "w") as f:
        f.write(CORRECT)
    # An exception message holding a lone surrogate, which JSON cannot carry.
    (cls / "odd.py").write_text(CORRECT.replace("    return x * k", '    raise ValueError("\\udce9 odd")'))
    got = grade(cls, tmp_path / "out")
    assert sorted(got) == ["caf\ufffd", "odd", "ok"]
    assert got["caf\ufffd"]["score"] == 3.0 and got["caf\ufffd"]["source"] == "caf\ufffd.py"
    checks = {c["function"]: c for c in got["odd"]["checks"]}
    assert got["odd"]["status"] == "graded" and got["odd"]["score"] == 2.0
    assert "ValueError: \ufffd odd" in checks["scale"]["message"]
    assert (tmp_path / "out" / "index.html").exists()
