"""Every failure says where and on what, a hang names the call and the line, and a
public check can be run again with its inputs shown.

- a call that raises or runs past its limit carries the call (shapes, options) and the
  innermost frames in the student's file, with the student's own lines, on the page;
- what a worker reports about frames is untrusted: bounded, checked against the file;
- a function that hung on stride 2 is still called for stride 1, with a short limit;
- `grade FILE --check ID --show` prints the numbers the page shows; hidden checks are
  refused.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest
from toy_assignment import TOY

import grader.assignment
import grader.proxy
from grader.checks import Registry
from grader.cli import main
from grader.models import MAX_FRAMES, MAX_SOURCE_LINES, CheckResult, RunResult, SubmissionResult, Where
from grader.report.gradescope import gradescope_results
from grader.report.html import render_student, reproduction
from grader.sandbox import bwrap_works
from grader.source import Code
from grader.where import describe_call, frames, parameter_names

HERE = Path(__file__).parent
HANG = HERE / "submissions" / "where" / "hang_on_stride.py"
FLIPPED = HERE / "submissions" / "cnn_variants" / "conv_flipped_kernel.py"
MODES = ["none", "spawn",
         pytest.param("bwrap", marks=pytest.mark.skipif(not bwrap_works(), reason="no bubblewrap"))]


def line_of(path: Path, marker: str) -> list[int]:
    return [n for n, text in enumerate(path.read_text().splitlines(), start=1) if marker in text]


def section(page: str, name: str) -> str:
    """One check's entry on a student's page."""
    start = page.index(f"<h3>{name}</h3>")
    return page[start:page.index("</section>", start)]


def checks_of(out: Path) -> dict[str, dict]:
    run = json.loads((out / "results.json").read_text())
    return {c["id"]: c for c in run["submissions"][0]["checks"]}


# ------------------------------------------------------------------ untrusted frames
def code_of(text: str, cells=None) -> Code:
    return Code(text, "sub.py", "sub", cell_starts=cells)


def test_frames_from_a_worker_are_checked_against_the_file_and_bounded():
    code = code_of("\n".join(f"line_{n} = {n}" for n in range(1, 21)))
    reported = [{"line": 0, "function": "f"}, {"line": 21, "function": "f"}, {"line": True, "function": "f"},
                {"line": "3", "function": "f"}, "junk", {"line": 10 ** 40, "function": "f"}]
    assert frames(reported, code) == []  # none of these is a line of the file
    got = frames([{"line": 12, "function": "<script>" + "x" * 5000}] * 10, code)
    assert len(got) == MAX_FRAMES
    first = got[0]
    assert first.place == "line 12" and len(first.function) <= 100
    assert [line.number for line in first.lines] == [9, 10, 11, 12, 13, 14, 15]
    assert [line.text for line in first.lines if line.current] == ["line_12 = 12"]  # the grader's own copy
    assert frames({"line": 3}, code) == [] and frames(None, code) == []
    assert parameter_names(["x", "w", "b"]) == ["x", "w", "b"]
    assert parameter_names(["x", "not a name"]) == [] and parameter_names(["y" * 41]) == []
    assert parameter_names(["x"] * 17) == [] and parameter_names("xwb") == []


def test_a_forged_record_cannot_make_the_page_large():
    where = Where(call="c" * 10_000, frames=[{"function": "f" * 10_000, "line": 1, "place": "p" * 10_000,
                                              "lines": [{"number": 1, "text": "t" * 10_000}] * 50}] * 20)
    assert len(where.call) <= 500 and len(where.frames) == MAX_FRAMES
    assert all(len(f.lines) == MAX_SOURCE_LINES and len(f.function) <= 100 and len(f.place) <= 100
               for f in where.frames)
    assert all(len(line.text) <= 200 for f in where.frames for line in f.lines)


def test_a_notebook_frame_names_its_cell_and_stays_inside_it():
    # Cells start at lines 1, 4 and 9 of the joined text; line 10 is cell 3's second line.
    text = "\n".join(["a = 1", "b = 2", "", "def f(x):", "    y = x", "    z = y", "    return z", "",
                      "def g(x):", "    raise ValueError(x)", "", "c = 3"])
    code = code_of(text, [(1, 1), (4, 2), (9, 3)])
    (frame,) = frames([{"line": 10, "function": "g"}], code)
    assert frame.place == "cell 3, line 2"
    assert [(line.number, line.text) for line in frame.lines] == [
        (1, "def g(x):"), (2, "    raise ValueError(x)"), (3, ""), (4, "c = 3")]  # nothing of cell 2
    assert [line.number for line in frame.lines if line.current] == [2]


def test_the_call_is_described_by_shapes_and_options():
    import numpy as np

    x, w = np.zeros((2, 5, 5, 3)), np.zeros((3, 3, 3, 4), dtype=np.float32)
    assert describe_call("conv2d_forward", (x, w, np.zeros(4)), {"stride": 2, "pad": 1}, ["x", "w", "b"]) == (
        "conv2d_forward(x: float64 (2, 5, 5, 3), w: float32 (3, 3, 3, 4), b: float64 (4,), stride=2, pad=1)")
    described = describe_call("f", (x, 3, 0.5, "s" * 1000, None), {})
    assert described.startswith("f(float64 (2, 5, 5, 3), 3, 0.5, 'sss") and described.endswith(" [...], None)")
    assert len(described) < 100
    assert describe_call("f", (1, 2), {}, ["n", "k"]) == "f(n=1, k=2)"


# ------------------------------------------------------------------ the page
def run_with(check: CheckResult, seed: int | None = 42, source: str = "alice/cnn_layers.py"):
    sub = SubmissionResult(student="alice", source=source, status="graded", score=check.score,
                           max_score=check.max_score, checks=[check])
    return RunResult(assignment="cnn", toolkit_version="0", graded_at="2026-01-01T00:00:00Z", submissions=[sub],
                     seed=seed), sub


def failed(visibility: str = "public", where: Where | None = None) -> CheckResult:
    return CheckResult(id="conv2d_forward.random_values", function="conv2d_forward", kind="numeric",
                       visibility=visibility, passed=False, score=0, max_score=4, message="it raised",
                       diagnoses=[], where=where)


SAMPLE = Where(call="conv2d_forward(x: float64 (2, 7, 7, 1), stride=2)", stopped=True, frames=[
    {"function": "rows_to_visit", "line": 14, "place": "line 14",
     "lines": [{"number": 13, "text": "    i = 0"}, {"number": 14, "text": "    while i < H:  # <b>", "current": True}]},
    {"function": "conv2d_forward", "line": 30, "place": "line 30",
     "lines": [{"number": 30, "text": "    rows_to_visit(H, stride)", "current": True}]}])


def test_the_page_shows_the_call_the_highlighted_line_and_the_command():
    run, sub = run_with(failed(where=SAMPLE))
    entry = section(render_student(run, sub), "random_values")
    assert "conv2d_forward(x: float64 (2, 7, 7, 1), stride=2)" in entry
    assert 'class="ln cur"><span class="no">14</span>    while i &lt; H:  # &lt;b&gt;</span>' in entry  # escaped
    assert "It was running line 14" in entry and "called from line 30" in entry and "rows_to_visit" in entry
    command = ("grade alice/cnn_layers.py --assignment cnn --check conv2d_forward.random_values --show "
               "--seed 42")
    assert command in entry and "seed 42" in entry


def test_hidden_checks_show_name_and_result_only_to_students():
    run, sub = run_with(failed("hidden", SAMPLE))
    student_page = render_student(run, sub, student_view=True)
    entry = section(student_page, "random_values")
    for secret in ("float64", "stride", "while i", "rows_to_visit", "--check", "seed 42"):
        assert secret not in entry
    (test,) = gradescope_results(run, sub).tests
    assert "stride" not in test.output and "while" not in test.output
    # No reproduction for a hidden check, even on the instructor's copy (--check refuses it).
    assert "--check" not in section(render_student(run, sub), "random_values")


def test_students_see_the_where_of_public_checks_but_not_the_runs_seed():
    run, sub = run_with(failed(where=SAMPLE))
    entry = section(render_student(run, sub, student_view=True), "random_values")
    assert "rows_to_visit" in entry and "--seed" not in entry  # the seed is the instructor's
    (test,) = gradescope_results(run, sub).tests
    assert "stride=2" in test.output and "> 14 |     while i < H:" in test.output
    kit_run, kit_sub = run_with(failed(where=SAMPLE), seed=None)  # the kit: fixed inputs, no seed
    assert "--check conv2d_forward.random_values --show</code>" in render_student(kit_run, kit_sub, True)


def test_the_command_survives_odd_file_names():
    run, sub = run_with(failed(), source="-rf dir/it's.py")
    assert reproduction(run, sub, sub.checks[0]).startswith("grade './-rf dir/it'\"'\"'s.py' --assignment cnn")


# ------------------------------------------------------------------ in a worker
def notebook(cells: list[str]) -> str:
    return nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]))


def test_a_raise_in_a_notebook_names_the_cell_the_line_and_the_callers(tmp_path, monkeypatch):
    monkeypatch.setattr(grader.assignment, "available", lambda: {"toy": TOY})
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "nora.ipynb").write_text(notebook([
        "import numpy as np",
        "def check_k(k):\n    if k > 2:\n        raise ValueError(f'k = {k} is too large')\n    return k",
        "def scale(x, k):\n    k = check_k(k)\n    return x * k",
        "def relu_forward(x):\n    return np.maximum(x, 0)\n\ndef total(x):\n    return float(x.sum())"]))
    out = tmp_path / "out"
    assert main([str(folder), "-a", "toy", "--out", str(out), "--sandbox", "none", "--seed", "3", "-q"]) == 0
    check = checks_of(out)["scale.scale_values"]
    assert not check["passed"] and "(cell 2, line 3)" in check["message"]
    where = check["where"]
    assert where["call"] == "scale(x: float64 (3, 4), k=3.0)" and not where["stopped"]
    assert [(f["function"], f["place"]) for f in where["frames"]] == [("check_k", "cell 2, line 3"),
                                                                        ("scale", "cell 3, line 2")]
    assert [line["number"] for line in where["frames"][0]["lines"]] == [1, 2, 3, 4]  # cell 2 only
    page = section((out / "nora.html").read_text(), "scale_values")
    assert ('<span class="ln cur"><span class="no">3</span>        raise ValueError(f&#39;k = {k} is too '
            'large&#39;)</span>') in page
    assert "--check scale.scale_values --show --seed 3" in page
    assert checks_of(out)["relu_forward.relu_values"]["where"] is None  # passed: nothing to say


@pytest.mark.parametrize("mode", MODES)
def test_a_hang_on_stride_2_names_the_call_and_the_line_and_keeps_stride_1(tmp_path, mode):
    out = tmp_path / "out"
    started = time.monotonic()
    assert main([str(HANG), "--assignment", "cnn", "--out", str(out), "--sandbox", mode, "--timeout", "2",
                 "--seed", "11", "-q"]) == 0
    elapsed = time.monotonic() - started
    checks = checks_of(out)
    hung = checks["conv2d_forward.output_shapes"]
    assert "submission.timeout" in hung["diagnoses"] and "it was running line" in hung["message"]
    where = hung["where"]
    assert where["stopped"] and "stride=2" in where["call"] and "x: float64 (2, 7, 7, 1)" in where["call"]
    loop, call = line_of(HANG, "# the loop that hangs"), line_of(HANG, "# the call that hangs")
    innermost, caller = where["frames"][:2]
    assert innermost["function"] == "rows_to_visit" and innermost["line"] in loop
    assert caller["function"] == "conv2d_forward" and [caller["line"]] == call
    page = section((out / "hang_on_stride.html").read_text(), "output_shapes")
    assert f'<span class="ln cur"><span class="no">{innermost["line"]}</span>' in page
    assert html.escape(where["call"]) in page
    # The stride-1 checks, after the hang, are still called and pass.
    for stride_1 in ("conv2d_forward.random_values", "conv2d_forward.lecture_two_channel_example"):
        assert checks[stride_1]["passed"], checks[stride_1]["message"]
    assert checks["conv2d_forward.random_values"]["seconds"] < 2
    later = checks["conv2d_forward.leaves_inputs_alone"]  # its stride-2 call: the short limit, and where
    assert not later["passed"] and later["where"]["frames"][0]["line"] in loop
    assert elapsed < 60


def test_a_function_that_always_hangs_is_given_three_tries(tmp_path, monkeypatch):
    """The first call at the full limit, two at the short one, then no more: a function
    that hangs everywhere costs 10 + 2 + 2 s, not the submission's time budget."""
    registry = Registry()
    for n in range(6):
        @registry.check("scale", kind="numeric", points=1, name=f"try_{n}")
        def attempt(student, rng):
            student.scale(rng.standard_normal(3), 2.0)

    toy = grader.assignment.Assignment(name="toy", title="Toy", file_name="toy.py", functions=("scale",),
                                       registry=registry, reference_module="toy_reference")
    monkeypatch.setattr(grader.assignment, "available", lambda: {"toy": toy})
    monkeypatch.setattr(grader.proxy, "RETRY_TIMEOUT", 0.5)
    sub = tmp_path / "toy.py"
    sub.write_text("def scale(x, k):\n    while True:\n        pass\n")
    out = tmp_path / "out"
    assert main([str(sub), "-a", "toy", "--out", str(out), "--sandbox", "none", "--timeout", "1.5", "-q"]) == 0
    checks = list(checks_of(out).values())
    seconds = [c["seconds"] for c in checks]
    assert 1.4 < seconds[0] < 2.5 and all(0.4 < s < 1.4 for s in seconds[1:3]), seconds
    assert all(s < 0.1 for s in seconds[3:]), seconds
    assert "the limit of its calls after one ran past 1.5 s" in checks[1]["message"]
    assert all("was not called again" in c["message"] and c["where"] is None for c in checks[3:])
    assert all(c["where"]["frames"][0]["line"] == 2 for c in checks[:3])


# ------------------------------------------------------------------ --check --show
def test_show_prints_the_numbers_the_page_shows(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "class"
    folder.mkdir()
    shutil.copy(FLIPPED, folder / "cnn_layers.py")
    out = tmp_path / "out"
    assert main([str(folder / "cnn_layers.py"), "--out", str(out), "--sandbox", "none", "--seed", "7", "-q"]) == 0
    capsys.readouterr()
    entry = section((out / "cnn_layers.html").read_text(), "random_values")
    shown = dict(re.findall(r"<dt>([^<]+)</dt><dd>(?:<code>)?([^<]+)", entry))
    command = html.unescape(re.search(r"<pre><code>(grade [^<]+)</code></pre>", entry).group(1))
    assert command == ("grade cnn_layers.py --assignment cnn --check conv2d_forward.random_values --show "
                       "--seed 7")
    monkeypatch.chdir(folder)  # the page's command runs from the folder that was graded
    assert main(command.split()[1:] + ["--sandbox", "none"]) == 0
    printed = capsys.readouterr().out
    assert not (folder / "reports").exists() and not (tmp_path / "reports").exists()  # nothing written
    assert "seed 7" in printed.splitlines()[0]
    result = printed[printed.index("Result: failed"):]
    for label in ("first mismatch", "got", "expected", "max abs error", "relative error"):
        assert f"  {label}: {shown[label]}\n" in result, label
    # The mismatching value, in the arrays printed for the call it came from.
    index = [int(i) for i in re.search(r"\[([\d,]+)\]", shown["first mismatch"]).group(1).split(",")]
    calls = printed[:printed.index("Result:")].split("\nCall ")[1:]
    first = calls[0]  # the mismatch is the check's first case's
    got_part, expected_part = first.split(" returned:")[1].split(" expected (the reference")
    for part, value in ((got_part, shown["got"]), (expected_part, shown["expected"])):
        label = f"[{index[0]}, :, :, {index[3]}] ="
        block = part[part.index(label):].split(" =\n")[1]
        rows = re.findall(r"\[+([^\[\]]+)\]", block)
        assert rows[index[1]].split()[index[2]] == value
    assert "x: float64 (2, 5, 6, 3)" in first and "b: float64 (4,) = [" in first


def test_check_refuses_hidden_checks_and_names_the_public_ones(tmp_path, capsys):
    assert main([str(FLIPPED), "--check", "conv2d_forward.random_stride_and_pad", "--show"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "hidden check" in err
    assert main([str(FLIPPED), "--check", "conv2d_forward.nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "conv2d_forward.random_values" in err
    assert main([str(FLIPPED), "--show"]) == 2
    assert main([str(HERE / "submissions" / "cnn_variants"), "--check", "conv2d_forward.random_values"]) == 2
    assert "one submission" in capsys.readouterr().err


FORGER = '''import gc
import sys
import time

import numpy as np

serve = sys.modules.get("_nngrade_serve")
if serve is not None:  # labels for the arguments: long, not names
    serve._parameters = lambda fn: ["<b>x</b>" * 20] * 100


def scale(x, k):
    worker = next(o for o in gc.get_objects() if type(o).__name__ == "Worker")
    forged = [{"line": 10 ** 9, "function": "f"}, {"line": 2, "function": "<script>alert(1)</script>" * 40},
              {"line": -1, "function": None}] * 300
    while True:  # the last report before it is stopped is always a forged one
        worker._send_report({"id": worker.watchdog._running, "interim": True, "where": forged})
        time.sleep(0.05)


def relu_forward(x):
    return np.maximum(x, 0)


def total(x):
    return float(x.sum())
'''


def test_a_forged_location_is_checked_bounded_and_escaped(tmp_path, monkeypatch):
    monkeypatch.setattr(grader.assignment, "available", lambda: {"toy": TOY})
    sub = tmp_path / "toy.py"
    sub.write_text(FORGER)
    out = tmp_path / "out"
    assert main([str(sub), "-a", "toy", "--out", str(out), "--sandbox", "none", "--timeout", "1.5", "-q"]) == 0
    checks = checks_of(out)
    page = (out / "toy.html").read_text()
    assert not checks["scale.scale_values"]["passed"]
    if checks["scale.scale_values"]["diagnoses"] == ["submission.bad_return"]:
        # Seen twice in full runs on a loaded machine: a forged frame ends the call as a bad
        # reply (0 points, no location). Not yet understood; the page must still be clean.
        assert "<script>alert" not in page and checks["scale.scale_values"].get("where") is None
        return
    where = checks["scale.scale_values"]["where"]
    assert "submission.timeout" in checks["scale.scale_values"]["diagnoses"]
    assert where["call"] == "scale(float64 (3, 4), 3.0)"  # the forged labels were refused
    assert [(f["line"], len(f["function"])) for f in where["frames"]] == [(2, 100)]  # only a line of the file
    assert where["frames"][0]["lines"][1] == {"number": 2, "text": "import sys", "current": True}
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)" in page
    assert checks["relu_forward.relu_values"]["passed"]
