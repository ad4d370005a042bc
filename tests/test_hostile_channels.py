"""A class around one hostile submission, in every sandbox mode of this machine (issue 11,
items 3 and 4): every honest classmate keeps full marks, the hostile one fails with a
clear message and the right code, the run exits 0, and its wall time and the grading
process's memory stay within the bounds stated here.

- Floods (item 3): a worker whose background thread writes frames on the grader's
  channel, with ids no call has: one declaring 500 MB, endless well-formed 4 MiB ones
  while a call waits, and endless 4 MiB ones after a call has been answered (a spawned
  worker's reader must not read them ahead). The grader is run in a child process
  that reports its own peak RSS: an honest class first, then the class with the
  floods. The hostile bytes are written from code, never committed.
- Slow on purpose (item 4): a correct cnn submission whose every function sleeps 85% of
  the per-call limit before answering. No call times out; the time budget stops it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from toy_assignment import CORRECT, TOY

import grader.assignment
from assignments.cnn import ASSIGNMENT as CNN
from grader.cli import main
from grader.sandbox import bwrap_works
from grader.worker import codec

LINUX = sys.platform.startswith("linux")
MODES = [pytest.param("bwrap", marks=pytest.mark.skipif(not bwrap_works(), reason="bubblewrap is not available "
                                                         "(.ci/run installs it)")),
         pytest.param("none", marks=pytest.mark.skipif(not LINUX, reason="Linux only")),
         "spawn"]
ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
MIB = 1024 * 1024

# ------------------------------------------------------------------ floods (item 3)
# The worker's channel is found as a student who has read our source would: the serving
# Worker object holds it; the codec module keeps its place in sys.modules under another
# name. Sends go through one lock, so that the flood's frames are well formed.
FLOOD = '''
import gc, json, struct, sys, threading
import numpy as np

_codec = sys.modules["_nngrade_codec"]
_lock = threading.Lock()
_replied = threading.Event()
_send = _codec.send_message


def _locked_send(sock, header, buffers=()):
    with _lock:
        _send(sock, header, buffers)
    _replied.set()


_codec.send_message = _locked_send


def _channel():
    return next(o.sock for o in gc.get_objects() if type(o).__name__ == "Worker" and hasattr(o, "finders"))


def _flood(channel, size, sent, after_reply):
    if after_reply:
        _replied.wait()  # the call that started it has been answered
    head = json.dumps({"id": -7, "ok": True, "value": None}).encode()
    chunk = bytes(1 << 20)
    while True:
        with _lock:
            channel.sendall(struct.pack("!QII", 8 + len(head) + 8 + size, len(head), 1) + head
                            + struct.pack("!Q", size))
            for _ in range(size >> 20):
                channel.sendall(chunk)
        sent.set()


_sent = threading.Event()


def _start(size, after_reply=False):
    _replied.clear()
    threading.Thread(target=_flood, args=(_channel(), size, _sent, after_reply), daemon=True).start()


def scale(x, k):
    @@SCALE@@
    return x * k


def relu_forward(x):
    @@RELU@@
    return np.maximum(x, 0)


def total(x):
    return float(x.sum())
'''
# What `scale` and `relu_forward` do before answering, and which function then fails.
FLOODS = {
    # One frame declaring 500 MB: refused by its length, before any buffer exists (scale
    # waits for all of it to be sent: never).
    "flood_huge": ("_start(500 * 1024 * 1024); _sent.wait()", "pass", "scale"),
    # 4 MiB frames with a forged id, forever, while scale's call waits: each is under
    # the frame limit, together they pass the call's.
    "flood_stale": ("_start(4 * 1024 * 1024); threading.Event().wait()", "pass", "scale"),
    # scale answers; from the moment its answer is sent, 4 MiB frames forever, between
    # calls (the grader works for a while before the next: see DRIVER). They must wait in
    # the channel, not be read ahead, and count against the next call (relu_forward,
    # which never answers).
    "flood_between_calls": ("_start(4 * 1024 * 1024, after_reply=True)", "threading.Event().wait()",
                            "relu_forward"),
}
HONEST = ["honest_a", "honest_b", "honest_c"]
# The grading process may grow by this much over an honest class's run: one frame at
# its limit and its decoded copy, plus slack for the allocator. Before these limits,
# flood_huge alone made it grow by 1 GB (2 GB in spawn mode).
GROWTH_BOUND = codec.MAX_REPLY_BYTES * 2 + 16 * MIB
FLOOD_WALL_BOUND = 60.0  # seconds, for both runs, sandbox start-ups included

DRIVER = '''
import json, resource, sys, time
sys.path.insert(0, {tests!r})
import grader.assignment as a
import dataclasses
from grader.checks import Registry
from toy_assignment import TOY


def unhurried(check):
    def run(student, oracle, rng):
        time.sleep(0.3)  # the grader's own work before its next call: a flood meanwhile waits
        return check.run(student=student, oracle=oracle, rng=rng)
    return dataclasses.replace(check, run=run)


TOY = dataclasses.replace(TOY, registry=Registry([unhurried(c) if c.function == "relu_forward" else c
                                                  for c in TOY.checks]))
a.available = lambda: {{"toy": TOY}}
from grader.cli import main

report = {{}}
for name, folder in (("honest", sys.argv[1]), ("hostile", sys.argv[2])):
    started = time.monotonic()
    code = main([folder, "-a", "toy", "--out", folder + "-out", "--jobs", "1", "--timeout", "3",
                 "--memory", "1024", "--sandbox", sys.argv[3], "--quiet"])
    report[name] = {{"code": code, "seconds": time.monotonic() - started,
                     "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}
print("REPORT " + json.dumps(report))
'''


def test_a_frame_is_refused_by_its_declared_length_before_it_is_read():
    """The grader learns a frame's length from its first 8 bytes: past the limit (of a
    reply, or of what is left of the call's), it stops there, allocating nothing for
    it: here the rest never comes, and reading on would wait for the deadline."""
    import socket
    import struct

    ours, theirs = socket.socketpair()
    try:
        for declared, room in ((500 * MIB, codec.MAX_CALL_BYTES), (2 * MIB, MIB)):
            theirs.sendall(struct.pack("!Q", declared))
            started = time.monotonic()
            with pytest.raises(codec.FrameTooLarge) as refused:
                codec.recv_reply(ours, time.monotonic() + 5, room)
            assert time.monotonic() - started < 1
            assert refused.value.size == 8 + declared and refused.value.limit == min(room, codec.MAX_REPLY_BYTES)
    finally:
        ours.close()
        theirs.close()


def _class(folder: Path, students: dict[str, str]) -> str:
    folder.mkdir()
    for name, text in students.items():
        (folder / f"{name}.py").write_text(text)
    return str(folder)


@pytest.mark.skipif(not LINUX, reason="ru_maxrss in KiB, the sandbox's floods: Linux")
@pytest.mark.parametrize("mode", MODES)
def test_floods_from_a_worker_are_cut_off_and_the_graders_memory_stays_flat(tmp_path, mode):
    honest = {name: CORRECT for name in HONEST}
    hostile = {**honest, **{name: FLOOD.replace("@@SCALE@@", scale).replace("@@RELU@@", relu)
                            for name, (scale, relu, _) in FLOODS.items()}}
    folders = [_class(tmp_path / "honest", honest), _class(tmp_path / "class", hostile)]
    # --jobs 1: the class is graded in this child process itself, whose RUSAGE_SELF is
    # then the grading process's own peak (not a worker's: those are other processes).
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-c", DRIVER.format(tests=str(TESTS)), *folders, mode],
                         capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    wall = time.monotonic() - started
    lines = [line for line in run.stdout.splitlines() if line.startswith("REPORT ")]
    assert run.returncode == 0 and lines, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(lines[-1][len("REPORT "):])
    assert report["honest"]["code"] == 0 and report["hostile"]["code"] == 0, report

    by = {s["student"]: s for s in json.loads((tmp_path / "class-out" / "results.json").read_text())["submissions"]}
    assert sorted(by) == sorted(hostile)
    for name in HONEST:
        assert by[name]["status"] == "graded" and by[name]["score"] == 3.0, by[name]
    for name, (_, _, function) in FLOODS.items():
        checks = {c["function"]: c for c in by[name]["checks"]}
        failed = checks[function]
        assert not failed["passed"] and failed["diagnoses"] == ["submission.bad_return"], (name, failed)
        assert failed["message"].startswith(f"{function}: its worker sent "), failed["message"]
        assert "MiB" in failed["message"] and "the worker was stopped" in failed["message"], failed["message"]
        # Its worker was killed; the next call got a fresh one: the rest keeps its credit.
        assert by[name]["score"] == 2.0, [(c["function"], c["message"]) for c in by[name]["checks"]]
    assert "a reply of 500 MiB, more than the 16 MiB one reply may hold" in \
        {c["function"]: c for c in by["flood_huge"]["checks"]}["scale"]["message"]
    for name in ("flood_stale", "flood_between_calls"):
        function = FLOODS[name][2]
        assert "more than the 32 MiB one call may send" in \
            {c["function"]: c for c in by[name]["checks"]}[function]["message"]

    growth = (report["hostile"]["maxrss_kib"] - report["honest"]["maxrss_kib"]) * 1024
    print(f"\n[{mode}] floods: grading process peak RSS {report['honest']['maxrss_kib'] / 1024:.0f} MiB after "
          f"an honest class, {report['hostile']['maxrss_kib'] / 1024:.0f} MiB after the floods "
          f"(+{growth / MIB:.1f} MiB); runs {report['honest']['seconds']:.1f} s + "
          f"{report['hostile']['seconds']:.1f} s")
    assert growth < GROWTH_BOUND, f"the grading process grew by {growth / MIB:.0f} MiB"
    assert wall < FLOOD_WALL_BOUND, f"{wall:.1f} s"


# ------------------------------------------------------------------ the time budget (item 4)
CNN_CORRECT = [ROOT / "examples" / "submissions" / "cnn" / "alice" / "cnn_layers.py",  # loops
               TESTS / "submissions" / "cnn_variants" / "ok_vectorised.py",
               TESTS / "submissions" / "cnn_variants" / "ok_im2col.py"]
TIMEOUT, BUDGET = 1.0, 4.0
SLEEPY = '''

import functools as _functools
import time as _time


def _slow(function):
    @_functools.wraps(function)
    def slow(*args, **kwargs):
        _time.sleep({sleep})  # 85% of the per-call limit: no call times out
        return function(*args, **kwargs)
    return slow


for _name in {functions!r}:
    globals()[_name] = _slow(globals()[_name])
'''
# ~185 calls x 0.85 s = ~160 s without a budget; with it: the budget, one call cut short,
# and the first load (under --load-timeout), with room for a busy machine.
SLEEPY_BOUND = BUDGET + TIMEOUT + 5.0
BUDGET_WALL_BOUND = 45.0  # the whole run: three honest students, the sleepy one, start-up


@pytest.mark.parametrize("mode", MODES)
def test_a_submission_that_answers_just_in_time_is_stopped_by_its_budget(tmp_path, mode, monkeypatch):
    cls, out = tmp_path / "class", tmp_path / "out"
    cls.mkdir()
    for path in CNN_CORRECT:
        (cls / f"honest_{path.parent.name if path.name == 'cnn_layers.py' else path.stem}.py").write_text(
            path.read_text())
    sleepy = CNN_CORRECT[1].read_text() + SLEEPY.format(sleep=0.85 * TIMEOUT, functions=list(CNN.functions))
    (cls / "sleepy.py").write_text(sleepy)
    # The budget comes from the course configuration here, from --budget in the other modes.
    budget = ["--budget", f"{BUDGET:g}"]
    if mode == "spawn":
        (tmp_path / "course.toml").write_text(f"[limits]\nbudget = {BUDGET:g}\n")
        budget = ["--config", str(tmp_path / "course.toml")]
    started = time.monotonic()
    code = main([str(cls), "-a", "cnn", "--out", str(out), "--jobs", "2", "--timeout", f"{TIMEOUT:g}",
                 *budget, "--sandbox", mode, "--quiet"])
    wall = time.monotonic() - started
    assert code == 0
    by = {s["student"]: s for s in json.loads((out / "results.json").read_text())["submissions"]}
    assert sorted(by) == sorted(p.stem for p in cls.glob("*.py"))
    for name, sub in by.items():
        if name.startswith("honest"):
            assert sub["status"] == "graded" and sub["score"] == 100.0, \
                (name, [c["message"] for c in sub["checks"] if not c["passed"]])

    sub = by["sleepy"]
    assert sub["status"] == "graded"
    passed = [c for c in sub["checks"] if c["passed"]]
    failed = [c for c in sub["checks"] if not c["passed"]]
    assert failed and sub["score"] < 100.0  # only what it answered in time can earn credit
    assert all(c["diagnoses"] == ["submission.timeout"] for c in failed), \
        [(c["id"], c["message"]) for c in failed if c["diagnoses"] != ["submission.timeout"]]
    messages = [c["message"] for c in failed]
    assert not any(f"ran past the {TIMEOUT:g} s limit" in m for m in messages), messages  # no call timed out
    # One call was cut short by the budget (not by its own limit); the later ones never ran.
    assert sum(f"was stopped: the submission's time budget of {BUDGET:g} s ran out during this call" in m
               for m in messages) == 1, messages
    assert any(f"was not called: the submission had used up its time budget of {BUDGET:g} s" in m
               for m in messages), messages
    assert all("time budget" in m and "the time all of its calls may take together" in m for m in messages), messages
    assert any(note.startswith(f"Its time budget of {BUDGET:g} s") for note in sub["notes"]), sub["notes"]
    print(f"\n[{mode}] budget: the sleepy submission took {sub['seconds']:.1f} s ({len(passed)} checks passed, "
          f"{len(failed)} stopped); the class {wall:.1f} s")
    assert sub["seconds"] < SLEEPY_BOUND, sub["seconds"]
    assert wall < BUDGET_WALL_BOUND, wall
