"""The grader's own failures are never a student's score: a helper or worker that
fails once is retried on a fresh sandbox and costs nothing; what repeats for one
submission alone is charged to it; what cannot be attributed is status error with a
grader.* diagnosis, exits 1, and is graded again by --resume. A sandbox that cannot
run at all stops the run before anyone is graded, with one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from processes import slot_uid_processes
from toy_assignment import CORRECT, TOY

import grader.assignment
import grader.proxy
import grader.runner
import grader.sandbox
from grader.checks import Registry
from grader.cli import main
from grader.sandbox import bwrap_works

ROOT = Path(__file__).resolve().parent.parent
LINUX = sys.platform.startswith("linux")
needs_bwrap = pytest.mark.skipif(not bwrap_works(), reason="bubblewrap is not available (.ci/run installs it)")


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setattr(grader.assignment, "available", lambda: {"toy": TOY})


def a_class(tmp_path: Path, names=("ann", "bob", "cat")) -> Path:
    cls = tmp_path / "class"
    cls.mkdir()
    for name in names:
        (cls / f"{name}.py").write_text(CORRECT)
    return cls


def results(out: Path) -> dict:
    return {s["student"]: s for s in json.loads((out / "results.json").read_text())["submissions"]}


def grade(cls: Path, out: Path, *extra: str) -> int:
    return main([str(cls), "-a", "toy", "--out", str(out), "-q", "--timeout", "5", *extra])


# ----------------------------------------------------------------- once: no trace
@pytest.mark.parametrize("mode", [pytest.param("bwrap", marks=needs_bwrap), "none"])
def test_a_worker_host_killed_mid_run_costs_nobody_anything(tmp_path, toy, monkeypatch, mode):
    real = grader.sandbox.Zygote.request
    spawns = {"n": 0}

    def flaky(self, message, fds=()):
        if message.get("op") == "spawn":
            spawns["n"] += 1
            if spawns["n"] == 3:  # the helper dies under the second student's first worker
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return real(self, message, fds)

    monkeypatch.setattr(grader.sandbox.Zygote, "request", flaky)
    out = tmp_path / "out"
    assert grade(a_class(tmp_path), out, "--sandbox", mode, "--jobs", "1") == 0
    got = results(out)
    assert {s: r["score"] for s, r in got.items()} == {"ann": 3.0, "bob": 3.0, "cat": 3.0}
    assert all(r["status"] == "graded" for r in got.values())
    assert sum(any("graded again" in n for n in r["notes"]) for r in got.values()) == 1


@pytest.mark.skipif(not LINUX, reason="Linux only")
def test_a_worker_killed_from_outside_once_costs_nothing(tmp_path, toy, monkeypatch):
    """The OOM killer, say: a correct student's worker dies once, on one call."""
    real = grader.proxy.StudentSession.call
    calls = {"n": 0}

    def killed_once(self, function, args, kwargs):
        calls["n"] += 1
        if calls["n"] == 2 and self.worker is not None:
            os.kill(self.worker.pid, signal.SIGKILL)  # none mode: the worker's real pid
        return real(self, function, args, kwargs)

    monkeypatch.setattr(grader.proxy.StudentSession, "call", killed_once)
    out = tmp_path / "out"
    assert grade(a_class(tmp_path, ["ann"]), out, "--sandbox", "none", "--jobs", "1") == 0
    ann = results(out)["ann"]
    assert ann["score"] == 3.0 and ann["status"] == "graded"
    assert any("graded again" in n for n in ann["notes"])


def test_a_worker_that_dies_every_time_is_charged_to_its_submission(tmp_path, toy):
    cls = a_class(tmp_path, ["ann"])
    (cls / "dies.py").write_text(CORRECT.replace("    return x * k", "    import os\n    os._exit(3)"))
    out = tmp_path / "out"
    assert grade(cls, out, "--sandbox", "none", "--jobs", "1") == 0  # the student's doing, not ours
    dies = results(out)["dies"]
    assert dies["status"] == "graded" and dies["score"] == 2.0
    assert "submission.crashed" in dies["diagnoses"]
    assert any("charged to the submission" in n for n in dies["notes"])
    assert results(out)["ann"]["score"] == 3.0


# --------------------------------------------------------- again: the grader's
def test_a_sandbox_that_fails_twice_for_one_student_is_the_graders_failure(tmp_path, toy, monkeypatch, capsys):
    real = grader.sandbox.Slot.spawn

    def fails_for_bob(self, workdir, limits, output, cwd=None):
        if (workdir / "bob.py").exists():
            raise grader.sandbox.SandboxUnavailable("the worker host stopped responding (Broken pipe)")
        return real(self, workdir, limits, output, cwd)

    monkeypatch.setattr(grader.sandbox.Slot, "spawn", fails_for_bob)
    cls, out = a_class(tmp_path), tmp_path / "out"
    assert grade(cls, out, "--sandbox", "none", "--jobs", "1") == 1
    err = capsys.readouterr().err
    assert "could not finish 1 submission(s): bob" in err and "--resume" in err
    bob = results(out)["bob"]
    assert bob["status"] == "error" and bob["score"] == 0.0 and bob["diagnoses"] == ["grader.sandbox_failed"]
    assert "Broken pipe" in bob["message"]
    assert results(out)["ann"]["score"] == 3.0

    monkeypatch.setattr(grader.sandbox.Slot, "spawn", real)  # the machine is well again
    assert grade(cls, out, "--sandbox", "none", "--jobs", "1", "--resume") == 0
    assert results(out)["bob"]["score"] == 3.0 and results(out)["bob"]["status"] == "graded"


def test_a_bug_in_a_check_scores_nothing_and_exits_1(tmp_path, monkeypatch, capsys):
    registry = Registry()
    for check in TOY.registry.checks:
        registry.checks.append(check)

    @registry.check("total", kind="numeric", points=1, name="broken")
    def broken(student, rng):
        return {"ratio": rng.standard_normal(3)}["ration"]  # a bug of ours: KeyError

    import dataclasses

    buggy = dataclasses.replace(TOY, registry=registry)
    monkeypatch.setattr(grader.assignment, "available", lambda: {"toy": buggy})
    out = tmp_path / "out"
    assert grade(a_class(tmp_path, ["ann"]), out, "--sandbox", "none") == 1
    ann = results(out)["ann"]
    assert ann["status"] == "error" and ann["score"] == 0.0 and "grader.internal_error" in ann["diagnoses"]
    assert "total.broken" in ann["message"]
    assert "could not finish 1 submission(s): ann" in capsys.readouterr().err


@pytest.mark.skipif(not LINUX, reason="forked grading processes are Linux only")
def test_a_grading_process_that_dies_once_is_replaced_and_twice_is_charged(tmp_path, toy, monkeypatch):
    real = grader.runner.grade_submission
    marker = tmp_path / "died-once"

    def dying(sub, *args, **kwargs):
        if sub.student == "bob" and not marker.exists():
            marker.write_text("x")
            os._exit(9)  # the grading process dies under bob, once
        if sub.student == "cat":
            os._exit(9)  # ... and always under cat
        return real(sub, *args, **kwargs)

    monkeypatch.setattr(grader.runner, "grade_submission", dying)
    out = tmp_path / "out"
    assert grade(a_class(tmp_path), out, "--sandbox", "none", "--jobs", "2") == 0
    got = results(out)
    assert got["ann"]["score"] == 3.0 and got["bob"]["score"] == 3.0
    assert got["cat"]["status"] == "error" and got["cat"]["diagnoses"] == ["submission.crashed"]
    assert "twice" in got["cat"]["message"]


# ------------------------------------------------------------- before anyone
@needs_bwrap
def test_a_sandbox_that_cannot_run_a_worker_stops_the_run_with_one_line(tmp_path, toy, monkeypatch, capsys):
    real = grader.sandbox.SandboxConfig.bwrap_prefix

    def hides_the_interpreter(self, scratch):
        return real(self, scratch) + ["--tmpfs", sys.base_prefix]

    monkeypatch.setattr(grader.sandbox.SandboxConfig, "bwrap_prefix", hides_the_interpreter)
    out = tmp_path / "out"
    assert grade(a_class(tmp_path), out, "--sandbox", "bwrap") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("grade: error: the 'bwrap' sandbox cannot run student code")
    assert not (out / "results.json").exists()  # nobody was graded, so nobody got a score


@needs_bwrap
def test_a_virtualenv_under_tmp_works_under_bubblewrap(tmp_path):
    venv = tmp_path / "venv"  # pytest's tmp_path is under /tmp, which bubblewrap replaces
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    cls, out = a_class(tmp_path), tmp_path / "out"
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'tests')!r}); import grader.assignment as a; "
            "from toy_assignment import TOY; a.available = lambda: {'toy': TOY}; "
            "from grader.cli import main; sys.exit(main(sys.argv[1:]))")
    run = subprocess.run([str(venv / "bin" / "python"), "-c", code, str(cls), "-a", "toy", "--out", str(out),
                          "--sandbox", "bwrap", "-q"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert {s: r["score"] for s, r in results(out).items()} == {"ann": 3.0, "bob": 3.0, "cat": 3.0}
    assert slot_uid_processes() == {}


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device", "index.html"), RuntimeError("a bug")])
def test_a_failure_while_writing_reports_is_one_line_and_keeps_the_journal(tmp_path, toy, monkeypatch, capsys,
                                                                          failure):
    import grader.report.html

    def failing(*args, **kwargs):
        raise failure

    monkeypatch.setattr(grader.report.html, "write_reports", failing)
    out = tmp_path / "out"
    assert grade(a_class(tmp_path), out, "--sandbox", "none") == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") <= 3, err
    assert ("No space left on device" if isinstance(failure, OSError) else "internal error") in err
    monkeypatch.undo()
    monkeypatch.setattr(grader.assignment, "available", lambda: {"toy": TOY})
    assert grade(tmp_path / "class", out, "--sandbox", "none", "--resume") == 0
    assert {s: r["score"] for s, r in results(out).items()} == {"ann": 3.0, "bob": 3.0, "cat": 3.0}
