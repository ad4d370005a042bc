"""What a submission brings by name and by string never breaks the run or the files it
writes: long folder names, ids a spreadsheet would run as formulas, a 4 MB exception
class name, and a class folder whose files shadow the grader's own imports."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from toy_assignment import CORRECT, TOY

import grader.assignment
from grader.cli import main
from grader.models import MAX_NAME_CHARS, MAX_TEXT_CHARS

ROOT = Path(__file__).resolve().parent.parent
HONEST = ["alice", "bob"]


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setattr(grader.assignment, "available", lambda: {"toy": TOY})


def honest_class(root: Path) -> Path:
    root.mkdir()
    for name in HONEST:
        (root / f"{name}.py").write_text(CORRECT)
    return root


def grade(path: Path, out: Path) -> dict:
    assert main([str(path), "-a", "toy", "--out", str(out), "-q", "--sandbox", "none"]) == 0
    return {s["student"]: s for s in json.loads((out / "results.json").read_text())["submissions"]}


def test_a_folder_name_of_245_bytes_gets_a_page_and_keeps_its_id(tmp_path, toy):
    cls = honest_class(tmp_path / "class")
    long_ids = ["\u00e9" * 100 + "a" * 45, "\u00e9" * 100 + "b" * 45]  # 245 bytes each, one beginning
    for student in long_ids:
        (cls / student).mkdir()
        (cls / student / "toy.py").write_text(CORRECT)
    out = tmp_path / "out"
    got = grade(cls, out)
    pages = {p.name for p in out.glob("*.html")}
    assert "index.html" in pages and len(pages) == 1 + len(HONEST) + len(long_ids)
    assert all(len(p.encode()) <= 255 for p in pages)
    index = (out / "index.html").read_text()
    for student in long_ids + HONEST:
        assert got[student]["score"] == 3.0  # kept whole in results.json
        assert student in index
    rows = list(csv.reader(io.StringIO((out / "grades.csv").read_text())))
    assert sorted(r[0] for r in rows[1:]) == sorted(long_ids + HONEST)


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_ids_a_spreadsheet_would_run_are_neutralised_in_grades_csv_only(tmp_path, toy, start):
    cls = honest_class(tmp_path / "class")
    student = f"{start}HYPERLINK(\"evil.example\",\"x\")"
    (cls / student).mkdir()
    (cls / student / "toy.py").write_text(CORRECT)
    out = tmp_path / "out"
    got = grade(cls, out)
    assert got[student]["score"] == 3.0  # the raw id in results.json
    rows = {r[0]: r for r in csv.reader(io.StringIO((out / "grades.csv").read_bytes().decode(), newline=""))}
    assert "'" + student in rows and student not in rows
    assert {"alice", "bob"} <= set(rows)  # ordinary ids as they are


def test_a_4_mb_exception_class_name_is_cut_everywhere(tmp_path, toy):
    cls = honest_class(tmp_path / "class")
    (cls / "mallory.py").write_text(
        CORRECT + "\nraise type('E' * 4_000_000, (Exception,), {})('m' * 4_000_000)\n")
    (cls / "trudy.py").write_text(
        CORRECT.replace("def scale(x, k):", "def scale(x, k):\n    raise type('F' * 4_000_000, (ValueError,), {})('n' * 4_000_000)"))
    out = tmp_path / "out"
    got = grade(cls, out)
    assert got["alice"]["score"] == got["bob"]["score"] == 3.0
    for student in ("mallory", "trudy"):
        record = json.dumps(got[student])
        assert "E" * (MAX_NAME_CHARS + 1) not in record and "F" * (MAX_NAME_CHARS + 1) not in record
        for text in [got[student]["message"], *got[student]["notes"], *(c["message"] for c in got[student]["checks"])]:
            assert len(text) <= MAX_TEXT_CHARS
    assert got["trudy"]["score"] == 2.0  # scale raised; the rest keeps its credit
    for page in out.glob("*.html"):
        assert page.stat().st_size < 200_000, page.name


def _class_that_shadows_the_graders_imports(root: Path) -> Path:
    """A class folder with a correct cnn student and files named after what the grader
    imports: run in the grader's process, each writes a marker."""
    root.mkdir()
    shutil.copy(ROOT / "examples" / "submissions" / "cnn" / "dave.py", root / "dave.py")
    for module in ("jinja2", "pydantic", "nbformat", "tqdm", "scipy", "markupsafe"):
        (root / f"{module}.py").write_text(
            "import os\n"
            f"open(os.path.join({str(root)!r}, '..', 'RAN-{module}'), 'w').write('ran')\n")
    return root


def _grade_commands():
    script = shutil.which("grade", path=str(Path(sys.executable).parent)) or shutil.which("grade")
    assert script, "the `grade` console script is not installed (pip install -e '.[dev]')"
    return {"python -m grader": [sys.executable, "-m", "grader"], "grade": [script]}


@pytest.mark.parametrize("command", ["python -m grader", "grade"])
def test_the_grader_never_imports_from_where_it_is_run(tmp_path, command):
    cls = _class_that_shadows_the_graders_imports(tmp_path / "class")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    done = subprocess.run([*_grade_commands()[command], ".", "-a", "cnn", "--out", str(tmp_path / "out"),
                           "-q", "--sandbox", "none"], cwd=cls, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not list(tmp_path.glob("RAN-*")), sorted(p.name for p in tmp_path.glob("RAN-*"))
    results = {s["student"]: s for s in json.loads((tmp_path / "out" / "results.json").read_text())["submissions"]}
    assert results["dave"]["score"] == 91  # the example's missing-bias student, as always
    assert all(results[m]["score"] == 0 for m in ("jinja2", "pydantic", "nbformat"))
