"""A student's result read in ten seconds, on the page and in the terminal: failed
checks first and passed ones folded, identical failures said once, the points each
mistake cost, informational checks never shown as failures, one line per function
not yet written, and the terminal saying what the page says (sentence, hint, cost,
the student's own page, the hidden points a self-check does not hold)."""

from __future__ import annotations

import html
import re
from pathlib import Path

from test_reports import carol, check, run_of, text_of

from grader.cli import main
from grader.diagnoses import describe
from grader.models import SubmissionResult
from grader.report.html import render_student
from grader.report.text import summary_lines

VARIANTS = Path(__file__).parent / "submissions"
TIMEOUT = "conv2d_forward was not called again: it ran past 10 s on earlier checks"


def hang() -> SubmissionResult:
    """A stride-2 hang, as the grader records it: one timeout, then the same message for
    every later call; an unwritten function; a 0-point network check failing after it."""
    checks = [check("conv2d_forward.output_shapes", False, 0, 4, message="conv2d_forward ran past the 10 s limit",
                    diagnoses=["submission.timeout"]),
              *[check(f"conv2d_forward.{name}", False, 0, points, message=TIMEOUT, diagnoses=["submission.timeout"])
                for name, points in (("random_values", 4), ("leaves_inputs_alone", 3))],
              check("conv2d_forward.speed", False, 0, 0, kind="performance", message=TIMEOUT,
                    diagnoses=["submission.timeout"]),
              check("relu_forward.values", True, 2, 2)]
    for function in ("maxpool_backward", "linear_backward"):
        checks += [check(f"{function}.{name}", False, 0, 2, message=f"{function} is not defined in erin.py",
                         diagnoses=["submission.missing_function"]) for name in ("shapes", "values", "grads")]
    checks.append(check("network.end_to_end", False, 0, 0, kind="gradient",
                        message="the network's forward pass parts from the reference's at conv2d_forward"))
    return SubmissionResult(student="erin", source="erin.py", status="graded", score=2, max_score=25,
                            diagnoses=["submission.missing_function", "submission.timeout"], load_mode="full",
                            checks=checks)


def readable(page: str) -> str:
    return html.unescape(text_of(page))


def test_failed_checks_come_first_and_passed_ones_are_folded():
    page = render_student(run_of(carol()), carol())
    folded = page.index('<details class="passed-all">')
    assert page.index("Failed checks") < page.index('class="card failed"') < folded
    assert page.count('class="card failed"') == 3 and page.count('class="card pass"') == 2
    assert page.rindex('class="card failed"') < folded < page.index('class="card pass"')
    assert "<details open" not in page and 'class="passed-all" open' not in page


def test_repeated_failures_are_said_once_and_unwritten_functions_take_one_line_each():
    sub = hang()
    page = render_student(run_of(sub, max_score=25), sub)
    text = readable(page)
    unfolded = readable(page.split('<details class="passed-all">')[0])
    assert unfolded.count(TIMEOUT) == 1 and "random_values, leaves_inputs_alone failed 2 checks, one message" in text
    assert "0 / 7 pts" in text  # the two checks' points together
    for function in ("maxpool_backward", "linear_backward"):
        assert text.count(f"{function} is not defined in erin.py") == 1, function
        assert f"{function} is not defined in erin.py (0 / 6 points)" in text
    lines = summary_lines(sub)
    assert sum(TIMEOUT in line for line in lines) == 1
    assert [line.split() for line in lines if "is not defined in" in line] == [
        ["TODO", "maxpool_backward", "0/6", "maxpool_backward", "is", "not", "defined", "in", "erin.py"],
        ["TODO", "linear_backward", "0/6", "linear_backward", "is", "not", "defined", "in", "erin.py"]]


def test_a_hidden_check_is_never_grouped_on_a_students_page():
    sub = hang()
    secret = check("conv2d_forward.secret", False, 0, 5, visibility="hidden", message=TIMEOUT,
                   diagnoses=["submission.timeout"])
    sub = sub.model_copy(update={"checks": [*sub.checks, secret]})
    student = readable(render_student(run_of(sub), sub, student_view=True))
    assert "random_values, leaves_inputs_alone failed 2 checks" in student and "secret failed hidden" in student
    instructor = readable(render_student(run_of(sub), sub))
    assert "random_values, leaves_inputs_alone, secret failed 3 checks" in instructor


def test_informational_checks_are_never_shown_as_failures():
    sub = hang()
    page = render_student(run_of(sub, max_score=25), sub)
    failed = page.split("<h2>Failed checks")[1].split("<h2>")[0]
    assert "speed" not in failed and "end_to_end" not in failed
    assert readable(page).count("Failed checks 3 ") == 1  # output_shapes, and the two said once
    info = page.split("<h2>For your information")[1].split("<h2>")[0]
    # The network's note; the speed check's says what a failure said already, so it is folded.
    assert info.count('class="card info"') == 1 and 'badge fail' not in info and "parts from the reference" in info
    folded = page.split('<details class="passed-all">')[1]
    assert "speed" in folded and 'badge fail' not in folded and "conv2d_forward 1 note" in readable(folded)
    network_row = page.split('href="#fn-network"')[1].split("</tr>")[0]
    assert "fail" not in network_row and "no points" in network_row
    lines = summary_lines(sub)
    assert any(line.split()[:2] == ["info", "network"] for line in lines)
    assert not any(line.startswith("  FAIL") and "network" in line for line in lines)
    assert any("end_to_end (no points): the network's forward" in line for line in lines)


def test_each_diagnosis_says_the_points_it_cost():
    sub = hang()
    text = readable(render_student(run_of(sub, max_score=25), sub))
    timeout, missing = describe("submission.timeout"), describe("submission.missing_function")
    assert re.search(rf"\u221211 points {re.escape(timeout.sentence)}", text)  # 4 + 4 + 3; the speed check is free
    assert re.search(rf"\u221212 points {re.escape(missing.sentence)}", text)
    # A diagnosis's sentence and hint are said once; a failed check names it in a line that links to it.
    assert text.count(timeout.hint) == 1 and 'href="#d-submission.timeout"' in render_student(run_of(sub), sub)
    lines = summary_lines(sub)
    assert f"  - {timeout.sentence} [submission.timeout, -11 points]" in lines
    assert f"    Hint: {timeout.hint}" in lines


def test_the_self_check_says_how_many_points_the_hidden_checks_hold():
    sub = carol().model_copy(update={"max_score": 89.0, "score": 80.0})
    lines = summary_lines(sub, "reports/carol.html", hidden_points=11)
    assert lines[-3:] == ["89 public points checked; 11 more are in hidden checks at grading.", "",
                          "Your page: reports/carol.html"]
    page = readable(render_student(run_of(sub), sub, hidden_points=11))
    assert "89 public points checked here; 11 more are in hidden checks at grading." in page
    assert "hidden checks at grading" not in "\n".join(summary_lines(sub))


def test_the_terminal_names_a_flipped_kernel_with_its_sentence_hint_and_cost(tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(VARIANTS / "cnn_variants" / "conv_flipped_kernel.py"), "--out", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    flipped = describe("conv.flipped_kernel")
    assert printed.count(flipped.sentence) == 1 and printed.count(flipped.hint) == 1
    assert re.search(r"\[conv\.flipped_kernel, -\d+ points\]", printed)
    assert re.search(r"FAIL conv2d_forward +\d+/20", printed) and re.search(r"ok +conv2d_backward +20/20", printed)
    # The student's own page, which exists; no class overview of one.
    page = out / "conv_flipped_kernel.html"
    assert f"Your page: {page}" in printed and page.is_file()
    assert not (out / "index.html").exists() and "index.html" not in printed
    assert "Class overview" not in page.read_text()
