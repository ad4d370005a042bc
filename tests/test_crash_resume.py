"""A grader killed with SIGKILL in the middle of a class loses nothing: the journal
holds every finished student, no process survives it, and --resume finishes the class
with every student exactly once and no finished student graded twice."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import descendants, still_alive
from toy_assignment import CORRECT

from grader.sandbox import bwrap_works
from grader.store import read_journal

ROOT = Path(__file__).resolve().parent.parent
RUN_TOY = (
    "import sys; sys.path.insert(0, {tests!r}); import grader.assignment as a; from toy_assignment import TOY; "
    "a.available = lambda: {{'toy': TOY}}; from grader.cli import main; sys.exit(main(sys.argv[1:]))"
)


def grade_command(cls: Path, out: Path, *extra: str) -> list[str]:
    code = RUN_TOY.format(tests=str(ROOT / "tests"))
    return [sys.executable, "-c", code, str(cls), "-a", "toy", "--out", str(out), "--jobs", "1",
            "--sandbox", "none", "--quiet", *extra]


def test_sigkill_then_resume_grades_everyone_once(tmp_path):
    cls, out = tmp_path / "class", tmp_path / "out"
    cls.mkdir()
    slow = "import time\ntime.sleep(0.4)\n" + CORRECT
    students = [f"s{i:02d}" for i in range(8)]
    for name in students:
        (cls / f"{name}.py").write_text(slow)
    journal = out / ".nngrade" / "journal-toy.jsonl"

    proc = subprocess.Popen(grade_command(cls, out), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if journal.exists() and len(read_journal(journal)) >= 3:
            break
        time.sleep(0.05)
    below = descendants(proc.pid)  # its zygote and workers (pids of this run only)
    assert below, "the grader had started no worker host"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    # A line the kill cut short is not a finished student.
    finished = {record["student"]: record for record in read_journal(journal)}
    assert 3 <= len(finished) < len(students)

    time.sleep(0.5)
    assert still_alive(below) == {}, "a process of the grader's outlived it"

    done = subprocess.run(grade_command(cls, out, "--resume"), cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    run = json.loads((out / "results.json").read_text())
    names = [s["student"] for s in run["submissions"]]
    assert sorted(names) == students  # every student, exactly once
    by_name = {s["student"]: s for s in run["submissions"]}
    for name, record in finished.items():
        assert by_name[name] == record  # kept as recorded, not graded again
    assert all(s["score"] == 3.0 for s in run["submissions"])



@pytest.mark.parametrize("mode", [pytest.param("bwrap", marks=pytest.mark.skipif(not bwrap_works(),
                                                                                  reason="no bubblewrap")),
                                  "none", "spawn"])
def test_a_grader_killed_mid_call_takes_every_process_it_started_along(tmp_path, mode):
    """Its workers, whatever uid they took, die with it, not when their call ends."""
    cls, out = tmp_path / "class", tmp_path / "out"
    cls.mkdir()
    (cls / "slow.py").write_text(CORRECT.replace("    return x * k", "    import time\n    time.sleep(60)"))
    command = [mode if arg == "none" else arg for arg in grade_command(cls, out, "--timeout", "90")]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(4.0)  # the preflight's worker comes and goes; the student's sits in its call
    below = descendants(proc.pid)
    assert below, "the grader had started no worker"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    time.sleep(1.0)
    assert still_alive(below) == {}, "a process of the grader's outlived it"
