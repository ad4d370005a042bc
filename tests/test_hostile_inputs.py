"""Files built to stop the grader, each in a class of honest students.

Every case grades a real class through `grade` in a subprocess: three correct
students (a folder, a file and a notebook, all the example Alice's code) and one
hostile submission. Each must end the same way: every honest student graded with
full marks, the hostile one with its own clear message, exit status 0,
`results.json`, `grades.csv` and `index.html` whole, the grader's temporary
folders gone, and the run within its stated time and peak memory. The peak is the
largest resident set of the grader (its VmHWM) and of everything it started and
waited for (its grading processes, the child that reads large files, the workers:
RUSAGE_CHILDREN), both read by the grade process itself as it exits, since a
process's own ru_maxrss starts from its parent's (here pytest's) across fork and
exec. The bombs are built here, from code.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from grader.sandbox import bwrap_works
from grader.trees import remove_tree

ROOT = Path(__file__).resolve().parent.parent
ALICE = (ROOT / "examples" / "submissions" / "cnn" / "alice" / "cnn_layers.py").read_text()
HONEST = ["ann", "ben", "cat"]
RUN = """
import atexit, json, resource, sys
sys.path.insert(0, {root!r})

def peak():
    with open("/proc/self/status") as status:
        own = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    with open({peak!r}, "w") as out:
        json.dump([own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss], out)

atexit.register(peak)
from grader.cli import main
sys.exit(main(sys.argv[1:]))
"""
MB = 1024 * 1024


def notebook(*sources: str, outputs: dict[int, list] | None = None) -> str:
    cells = [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None,
              "outputs": (outputs or {}).get(i, []), "source": source} for i, source in enumerate(sources)]
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells})


def honest_students(folder: Path) -> None:
    (folder / "ann").mkdir(parents=True)
    (folder / "ann" / "cnn_layers.py").write_text(ALICE)
    (folder / "ben.py").write_text(ALICE)
    (folder / "cat.ipynb").write_text(notebook(ALICE))


@dataclass
class Run:
    code: int
    seconds: float
    own_mb: float  # the grade process
    peak_mb: float  # the grade process and everything it waited for
    stderr: str
    out: Path
    by_student: dict


def grade(tmp_path: Path, path: Path, *extra: str, limit: float = 120) -> Run:
    """`grade PATH -a cnn` in a subprocess, its temporary folders under tmp_path/tmp."""
    out, scratch, peak = tmp_path / "out", tmp_path / "tmp", tmp_path / "peak.json"
    scratch.mkdir()
    command = [sys.executable, "-c", RUN.format(root=str(ROOT), peak=str(peak)), str(path), "-a", "cnn",
               "--out", str(out), "--quiet", "--jobs", "2", *extra]
    env = {**os.environ, "TMPDIR": str(scratch)}
    started = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=limit)
    except subprocess.TimeoutExpired:
        pytest.fail(f"grade ran past {limit} s")
    seconds = time.monotonic() - started
    own_kb, children_kb = json.loads(peak.read_text())
    results = json.loads((out / "results.json").read_text())
    assert list(scratch.iterdir()) == [], "the grader left temporary files behind"
    return Run(done.returncode, seconds, own_kb / 1024, max(own_kb, children_kb) / 1024, done.stderr, out,
               {s["student"]: s for s in results["submissions"]})


def assert_class_graded(run: Run, hostile: list[str], seconds: float, peak_mb: float,
                        honest: tuple[str, ...] = (), own_mb: float = 300) -> None:
    """Everyone once, the honest ones (HONEST and `honest`) with full marks, whole
    reports, within bounds: `peak_mb` for the grader and all it started, `own_mb` for
    the grade process alone."""
    assert run.code == 0, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    honest = HONEST + list(honest)
    students = sorted(honest + hostile)
    assert sorted(run.by_student) == students
    for name in honest:
        assert run.by_student[name]["status"] == "graded", run.by_student[name]["message"]
        assert run.by_student[name]["score"] == 100.0, run.by_student[name]["message"]
    with open(run.out / "grades.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert len(rows) == 1 + len(students) and all(len(row) == len(rows[0]) for row in rows)
    assert sorted(row[0] for row in rows[1:]) == students
    index = (run.out / "index.html").read_text()
    assert index.rstrip().endswith("</html>") and all(name in index for name in students)
    assert run.seconds < seconds, f"took {run.seconds:.1f} s"
    assert run.peak_mb < peak_mb, f"peak resident memory {run.peak_mb:.0f} MB"
    assert run.own_mb < own_mb, f"the grade process's peak resident memory {run.own_mb:.0f} MB"
    case = os.environ.get("PYTEST_CURRENT_TEST", "").split("::")[-1].split(" ")[0]
    print(f"\n{case}: {run.seconds:.1f} s, peak {run.peak_mb:.0f} MB (grade process {run.own_mb:.0f} MB)")


def assert_refused(run: Run, student: str, code: str, *words: str) -> None:
    sub = run.by_student[student]
    assert sub["status"] == "error" and sub["diagnoses"] == [code], sub
    assert sub["score"] == 0.0
    for word in words:
        assert word in sub["message"], sub["message"]
    assert len(sub["message"]) < 400


def deep_folders(top: Path, depth: int, name: str = "d") -> Path:
    """`depth` nested folders under `top` (which exists), made without recursion."""
    folder = top
    for _ in range(depth):
        folder = folder / name
        folder.mkdir()
    return folder


@pytest.fixture
def cls(tmp_path):
    folder = tmp_path / "class"
    honest_students(folder)
    yield folder
    remove_tree(tmp_path)  # pytest's own clean-up recurses once per folder


# ------------------------------------------------------------------ parse bombs
def test_parse_bomb_costs_seconds_and_under_1_gb(cls, tmp_path):
    # 9.3 MB, under the 10 MB limit: one list display of 3.1 million names. Parsed
    # by ast in the grader's process, it held over 8 GB within 40 s.
    (cls / "bomb.py").write_text("x = [" + "a, " * 3_100_000 + "]\n")
    run = grade(tmp_path, cls)
    assert_class_graded(run, ["bomb"], seconds=40, peak_mb=1024)
    assert_refused(run, "bomb", "submission.too_complex", "bomb.py is too large to parse", "512 MB")


def test_notebook_parse_bomb_costs_seconds_and_under_1_gb(cls, tmp_path):
    # The code joined from cells goes through the same bound: a correct cell, then a bomb.
    (cls / "nbomb.ipynb").write_text(notebook(ALICE, "y = (" + "a, " * 3_000_000 + ")\n"))
    run = grade(tmp_path, cls)
    assert_class_graded(run, ["nbomb"], seconds=40, peak_mb=1024)
    assert_refused(run, "nbomb", "submission.too_complex", "nbomb.ipynb is too large to parse")


def test_slow_to_decode_stops_at_the_cpu_limit(cls, tmp_path):
    # Python's punycode decoder is quadratic: this 1 MB file takes ~40 s to decode,
    # on every Python version. The reading child is stopped after 5 s of CPU time.
    (cls / "slow.py").write_bytes(b"# -*- coding: punycode -*-\n" + b"a" * 500_000 + b"-" + b"b" * 500_000)
    run = grade(tmp_path, cls)
    assert_class_graded(run, ["slow"], seconds=45, peak_mb=1024)
    assert_refused(run, "slow", "submission.too_slow_to_parse", "slow.py could not be read in time", "5 s")


def test_notebook_nested_100000_levels_deep(cls, tmp_path):
    (cls / "nested.ipynb").write_text('{"nbformat": 4, "cells": ' + "[" * 100_000 + "]" * 100_000 + "}")
    run = grade(tmp_path, cls)
    assert_class_graded(run, ["nested"], seconds=30, peak_mb=1024)
    assert_refused(run, "nested", "submission.unreadable", "nested.ipynb is not a valid notebook",
                   "recursion")


def test_notebook_of_10000_cells_with_an_8_mb_output_is_graded(cls, tmp_path):
    sources = [ALICE] + [f"x{i} = {i}\n" for i in range(9_999)]
    output = [{"output_type": "stream", "name": "stdout", "text": "0123456789abcdef\n" * (8 * MB // 17)}]
    (cls / "many.ipynb").write_text(notebook(*sources, outputs={5: output}))
    assert (cls / "many.ipynb").stat().st_size > 8 * MB
    run = grade(tmp_path, cls)
    assert_class_graded(run, [], seconds=30, peak_mb=1024, honest=("many",))  # however long: full marks


def test_nul_byte_past_the_first_4_kb(cls, tmp_path):
    (cls / "nul.py").write_bytes(b"#" * 4200 + b"\n" + ALICE.encode() + b"\n# a NUL: \x00\n")
    run = grade(tmp_path, cls)
    assert_class_graded(run, ["nul"], seconds=30, peak_mb=1024)
    line = 2 + ALICE.count("\n") + 1
    assert_refused(run, "nul", "submission.syntax_error", f"nul.py, line {line}", "NUL byte")


# ------------------------------------------------------------------ deep paths
def _deep_notes(sub: dict) -> list[str]:
    return [note for note in sub["notes"] if "more than 32 folders deep were not looked at" in note]


def test_class_folder_with_a_file_1000_folders_down(cls, tmp_path):
    # deep: its only file is 1,000 folders down. dora: a correct file at the top, and
    # a folder 1,000 deep beside it.
    (cls / "deep").mkdir()
    (deep_folders(cls / "deep", 1000) / "cnn_layers.py").write_text(ALICE)
    (cls / "dora").mkdir()
    (cls / "dora" / "cnn_layers.py").write_text(ALICE)
    (deep_folders(cls / "dora", 1000) / "notes.txt").write_text("deep")
    run = grade(tmp_path, cls)
    assert_class_graded(run, ["deep"], seconds=30, peak_mb=1024, honest=("dora",))
    assert_refused(run, "deep", "submission.empty", "holds no .py or .ipynb file")
    assert _deep_notes(run.by_student["deep"]) and _deep_notes(run.by_student["dora"])


def test_class_zip_with_a_file_1000_folders_down(tmp_path):
    cls = tmp_path / "class"
    honest_students(cls)
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(cls.rglob("*")):
            if path.is_file():
                zf.write(path, "course/" + path.relative_to(cls).as_posix())
        zf.writestr("course/deep/" + "d/" * 1000 + "cnn_layers.py", ALICE)
        zf.writestr("course/dora/cnn_layers.py", ALICE)
        for depth in range(1, 1001):  # the folder entries `zip -r` writes too
            zf.writestr("course/dora/" + "d/" * depth, "")
        zf.writestr("course/dora/" + "d/" * 1000 + "notes.txt", "deep")
    remove_tree(cls)
    run = grade(tmp_path, archive)
    assert_class_graded(run, ["deep"], seconds=30, peak_mb=1024, honest=("dora",))
    assert_refused(run, "deep", "submission.empty", "holds no .py or .ipynb file")
    assert _deep_notes(run.by_student["deep"]) and _deep_notes(run.by_student["dora"])
    refused = [line for line in run.stderr.splitlines() if "more than 40 folders deep" in line]
    # One line: deep's file, dora's folder entries 39 to 1,000 below it (course/dora/ is
    # 2 more) and dora's notes.txt.
    assert len(refused) == 1 and f"refused {1 + 962 + 1} entries" in refused[0], run.stderr


BUILDER = ALICE + '''
import os

def _build_deep_tree():
    # 3,000 folders of 100 characters, one inside the next: no path to the bottom
    # fits in PATH_MAX, so only descriptor-relative calls can remove it.
    here = os.getcwd()
    for _ in range(3000):
        os.mkdir("f" * 100)
        os.chdir("f" * 100)
    open("leaf.txt", "w").close()
    os.chdir(here)

_build_deep_tree()
'''


@pytest.mark.parametrize("mode", ["none", pytest.param("bwrap", marks=pytest.mark.skipif(
    not bwrap_works(), reason="no bubblewrap"))])
def test_tree_built_at_run_time_is_removed(cls, tmp_path, mode):
    # Not an input, but the same hazard: code that builds a tree 3,000 folders deep in
    # its working copy. Its copy is removed after grading like any other, and the
    # student keeps the marks its functions earn.
    (cls / "builder.py").write_text(BUILDER)
    run = grade(tmp_path, cls, "--sandbox", mode)
    assert_class_graded(run, [], seconds=40, peak_mb=1024, honest=("builder",))


# ------------------------------------------------------------------ the bounds
def test_the_worst_file_read_in_the_graders_process_costs_under_100_mb():
    # The densest tree ast builds is one name per two bytes (~0.9 KB per byte of
    # source): a file at the in-process threshold must stay far under the grader's budget.
    from grader.source import PARSE_IN_PROCESS_BYTES

    code = ("import ast, resource, sys\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "from grader import reader\n"
            f"answer = reader.read('python', b'a\\n' * ({PARSE_IN_PROCESS_BYTES} // 2), 'x.py')\n"
            "assert answer['ok'], answer\n"
            "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) < 100, f"{float(done.stdout):.0f} MB"


def test_reading_in_the_child_gives_what_reading_here_gives():
    from grader import reader
    from grader.source import _read_in_child

    cells = ["%matplotlib inline\nimport numpy as np", "def f(:\n    pass", "help?\n" + ALICE, "x = f'{1}'"]
    for kind, raw in [("python", ALICE.encode()), ("notebook", notebook(*cells).encode()),
                      ("python", b"# -*- coding: latin-1 -*-\nname = '\xe9'\n"), ("python", b"def f(:\n"),
                      ("text", "s = '\ud800'\n".encode("utf-8", "surrogatepass"))]:
        here = reader.read(kind, raw, "x")
        assert json.loads(json.dumps(here)) == _read_in_child(kind, raw, "x"), kind


def test_remove_tree_takes_any_depth_and_follows_no_link(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    top = tmp_path / "top"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY)
    try:  # 3,000 folders of 100 characters: 300 kB of path, past PATH_MAX
        for i in range(3000):
            os.mkdir("f" * 100, dir_fd=fd)
            if i == 1500:
                os.symlink(outside, "link", dir_fd=fd)
                os.mkdir("locked", dir_fd=fd)
                os.close(os.open("locked/file", os.O_CREAT | os.O_WRONLY, dir_fd=fd))
                os.chmod("locked", 0, dir_fd=fd)
            child = os.open("f" * 100, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = child
    finally:
        os.close(fd)
    remove_tree(top)
    assert not top.exists()
    assert (outside / "keep.txt").read_text() == "keep"


def test_a_fifo_named_like_code_is_refused_without_blocking(tmp_path):
    import threading

    from grader.discover import discover
    from grader.source import SourceError, load

    os.mkfifo(tmp_path / "fifo.py")
    (tmp_path / "ok.py").write_text(ALICE)
    outcome = {}

    def read():
        sub = next(s for s in discover(tmp_path) if s.student == "fifo")
        outcome["hash"] = sub.content_hash()
        try:
            load(sub.root, "fifo.py")
        except SourceError as exc:
            outcome["error"] = (exc.code, exc.message)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "reading a FIFO blocked"
    assert outcome["error"] == ("submission.unreadable", "fifo.py is not a regular file")
