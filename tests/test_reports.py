"""HTML reports: what a student's page and the class overview show, escaping,
robustness against any shape of check details, size for a large class, and the
example pages opened in headless Chromium (screenshots, no console errors)."""

from __future__ import annotations

import html
import os
import re
import time
from pathlib import Path

import pytest
from browser import chromium, console_errors, measure, needs_chromium
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.cli import main
from grader.diagnoses import describe
from grader.models import CheckResult, RunResult, SubmissionResult
from grader.report import svg
from grader.report.html import page_name, render_index, render_student, write_reports

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "submissions"
EVIL = "<script>alert('x')</script>"

LECTURE_EXPECTED = [[25, 27, 15], [0, -2, 10], [-13, -9, 23]]
LECTURE_FLIPPED = [[-5, -8, 5], [20, 33, 5], [12, 21, -17]]


def check(id_, passed, score, max_score, kind="numeric", visibility="public", **extra) -> CheckResult:
    return CheckResult(id=id_, function=id_.split(".")[0], kind=kind, visibility=visibility, passed=passed,
                       score=score, max_score=max_score, **extra)


def mismatch(got, expected, name="y", index=(0, 0, 0, 0)) -> dict:
    return {"mismatch": {"name": name, "index": list(index), "got": got[0][0], "expected": expected[0][0],
                         "max_abs_error": 40.0, "relative_error": 1.48, "n_bad": 9, "size": 9,
                         "slice": {"label": "y[0,:,:,0]", "got": got, "expected": expected}}}


def carol() -> SubmissionResult:
    return SubmissionResult(
        student="carol", source="carol/cnn_layers.py", status="graded", score=3.0, max_score=9.0,
        diagnoses=["conv.flipped_kernel", "submission.timeout"], load_mode="full",
        checks=[
            check("conv_output_size.lecture_rules", True, 1, 1, kind="shape", description="7x7 with 3x3 gives 5x5."),
            check("conv2d_forward.lecture_example", False, 0, 2, message="y[0,0,0,0] is -5, expected 25",
                  diagnoses=["conv.flipped_kernel"], details=mismatch(LECTURE_FLIPPED, LECTURE_EXPECTED)),
            check("conv2d_forward.secret_stride", False, 0, 2, visibility="hidden",
                  message="y[0,1,2,3] is 0.123456, expected 9.87654", description="SECRET-INPUTS stride 3",
                  diagnoses=["submission.timeout"],
                  details=mismatch([[0.123456, 1.0]], [[9.87654, 1.0]], index=(0, 1, 2, 3))),
            check("conv2d_backward.gradients", False, 0, 2, kind="gradient", message="dw is wrong",
                  details={"relative_errors": {"dx": 3.2e-9, "dw": 0.41, "db": 0.0}}),
            check("relu_forward.values", True, 2, 2),
        ],
        output="epoch 0\nloss 2.3\n", output_dropped_bytes=1234,
    )


def run_of(*subs: SubmissionResult, max_score: float = 9.0) -> RunResult:
    return RunResult(assignment="cnn", toolkit_version="0.1.0", graded_at="2026-11-25T17:00:00Z",
                     submissions=list(subs), sandbox="bwrap", max_score=max_score)


def text_of(page: str) -> str:
    """The page's text as a reader sees it (tags dropped, entities kept)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def test_student_page_shows_score_checks_diagnoses_and_where_values_differ():
    page = render_student(run_of(carol()), carol())
    text = text_of(page)
    assert "carol" in text and "3 / 9" in text and "carol/cnn_layers.py" in text
    for function in ("conv_output_size", "conv2d_forward", "conv2d_backward", "relu_forward"):
        assert f'id="fn-{function}"' in page
    assert "lecture_rules" in text and "7x7 with 3x3 gives 5x5." in text
    assert text.count("passed") >= 2 and "failed" in text
    timeout = describe("submission.timeout")
    assert timeout.sentence in text and timeout.hint in text  # sentence and the lecture hint
    # Where the first mismatch is, got vs expected, both errors and how many differ.
    assert "y[0,0,0,0]" in text and "9 of 9" in text
    for label in ("first mismatch", "got", "expected", "max abs error", "relative error"):
        assert label in text
    assert "1.48" in text and "40" in text


def test_failed_slice_is_drawn_as_three_heatmaps_with_one_shared_scale():
    page = render_student(run_of(carol()), carol())
    lecture = page.split('id="fn-conv2d_forward"')[1].split("secret_stride")[0]
    assert lecture.count("<svg") == 3
    assert "expected" in lecture and "got - expected" in lecture
    # Every value of both matrices is a cell; the largest magnitude (33) is the scale's end.
    for value in (25, 27, -13, 33, -17):
        assert f"<title>{value}</title>" in lecture
    assert f'fill="{svg.colour(33, 33)}"' in lecture and svg.colour(33, 33) == "#b2182b"
    assert "(&plusmn;33)" in lecture


def test_gradient_checks_show_the_relative_error_of_each_gradient():
    page = render_student(run_of(carol()), carol())
    gradients = text_of(page.split('id="fn-conv2d_backward"')[1])
    assert re.search(r"dx 3\.2e-09 dw 0\.41 \(too large\) db 0 ", gradients)


def test_hidden_checks_show_everything_to_instructors_but_only_name_and_result_to_students():
    sub = carol()
    instructor = text_of(render_student(run_of(sub), sub))
    student = text_of(render_student(run_of(sub), sub, student_view=True))
    for secret in ("SECRET-INPUTS", "0.123456", "9.87654", "y[0,1,2,3]"):
        assert secret in instructor
        assert secret not in student
    assert "secret_stride" in student and "hidden" in student
    # The timeout was only found by the hidden check: saying so would tell what it tests.
    assert describe("submission.timeout").sentence not in student
    assert "conv.flipped_kernel" in student  # found by a public check: shown
    assert "y[0,0,0,0]" in student
    # What the code printed could hold a hidden check's inputs: staff only.
    assert "epoch 0" in instructor and "epoch 0" not in student
    public_only = sub.model_copy(update={"checks": [c for c in sub.checks if c.visibility == "public"]})
    assert "epoch 0" in text_of(render_student(run_of(public_only), public_only, student_view=True))


def test_load_mode_notes_and_captured_output_are_shown():
    sub = carol().model_copy(update={
        "load_mode": "definitions", "notes": ["The top level of bob.ipynb ran longer than 5 s."],
        "files": ["carol/cnn_layers.py", "carol/helpers.py"]})
    text = text_of(render_student(run_of(sub), sub))
    assert "graded from its definitions alone" in text and "ran longer than 5 s" in text
    assert "carol/helpers.py" in text
    assert "epoch 0 loss 2.3" in text and "1234 more bytes" in text


def test_student_printing_html_sees_it_as_text_everywhere():
    sub = carol().model_copy(update={
        "student": EVIL, "source": f"{EVIL}/cnn_layers.py", "output": f"{EVIL}\n", "notes": [EVIL],
        "message": EVIL, "status": "error",
        "checks": [check("conv2d_forward.x", False, 0, 1, message=EVIL, description=EVIL,
                         details={"note": EVIL, "mismatch": {"name": EVIL, "index": [0, 0]}})]})
    run = run_of(sub).model_copy(update={"warnings": [EVIL]})
    for page in (render_student(run, sub), render_student(run, sub, student_view=True), render_index(run)):
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert(" in page
    assert re.fullmatch(r"[\w.-]+\.html", page_name(EVIL)) and page_name("../../etc") == "etc.html"


def test_details_of_unexpected_shapes_become_a_small_table_or_are_left_out():
    odd = {"tolerance_used": 1e-4, "direction": "g", "passes": 3, "exact": True, "shape": [2, 3],
           "mismatch": "not a dict", "relative_errors": [1, 2], "nested": {"a": {"deep": 1}, "b": 2},
           "ragged": [[1, 2], [3]], "none": None}
    sub = carol().model_copy(update={"checks": [check("f.odd", False, 0, 1, details=odd)]})
    text = text_of(render_student(run_of(sub), sub))
    # Keys read as words, values as a reader wants them: never a Python repr.
    for shown in ("tolerance used 0.0001", "direction g", "passes 3", "exact yes", "shape (2, 3)",
                  "mismatch not a dict", "nested: b 2"):
        assert shown in text
    assert "ragged" not in text and "deep" not in text
    assert "[2, 3]" not in text and "True" not in text and "tolerance_used" not in text


def test_details_are_labelled_numbers_never_dumps():
    speed = {"student_seconds": 0.004567, "reference_seconds": 0.01378, "ratio": 0.3, "note": "took 4.6 ms",
             "notes": ["your forward pass differs"], "got_shape": [2, 3, 2, 4], "expected_shape": [2, 7, 7, 2],
             "mutated": ["dy", "x"], "counts": [3000, 0, 12.5]}
    sub = carol().model_copy(update={"checks": [
        check("conv2d_forward.speed", True, 0, 0, kind="performance", message="took 4.6 ms", details=speed),
        check("conv2d_backward.own", True, 2, 2, kind="gradient",
              details={"relative_errors": {"dx": 1e-9, "dw": 2e-9}, "own_forward_relative_errors": {"dx": 0.5},
                       "differentiated": "reference", "tolerance": 1e-5})]})
    page = render_student(run_of(sub), sub)
    text = html.unescape(text_of(page))
    for shown in ("your time 4.57 ms", "the reference's time 13.8 ms", "your time / the reference's 0.3\u00d7",
                  "note your forward pass differs", "your shape (2, 3, 2, 4)", "expected shape (2, 7, 7, 2)",
                  "inputs your function changed dy, x", "counts 3000, 0, 12.5", "tolerance 1e-05",
                  "judged by differences of the reference's forward"):
        assert shown in text, shown
    assert text.count("took 4.6 ms") == 1  # the note the message already says is not repeated
    # The student's own forward's differences, beside the reference's, per gradient.
    assert re.search(r"gradient relative error with your forward dx 1e-09 0\.5 dw 2e-09 - ", text)
    for dump in ("student_seconds", "own_forward_relative_errors", "['", "[2, ", "{'"):
        assert dump not in text, dump


def test_a_slice_that_is_not_a_matrix_costs_the_picture_only():
    details = mismatch([[1.0, 2.0], [3.0]], [[1.0, 2.0], [3.0, 4.0]])
    sub = carol().model_copy(update={"checks": [check("f.ragged", False, 0, 1, details=details)]})
    page = render_student(run_of(sub), sub)
    assert "<svg" not in page and "y[0,0,0,0]" in page and "9 of 9" in page


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)


@settings(max_examples=60, deadline=None)
@given(details=st.dictionaries(st.sampled_from(["mismatch", "relative_errors", "slice", "x"]) | st.text(max_size=8),
                               JSON, max_size=5))
def test_no_details_break_a_page(details):
    sub = carol().model_copy(update={"checks": [check("f.any", False, 0, 1, details=details)]})
    for page in (render_student(run_of(sub), sub), render_student(run_of(sub), sub, student_view=True)):
        text = text_of(page)
        assert "carol" in text and "any" in text and "failed" in text  # the check is still shown


def test_heatmaps_crop_large_slices_around_the_first_mismatch_and_outline_bad_cells():
    expected = [[float(i + j) for j in range(64)] for i in range(40)]
    got = [row[:] for row in expected]
    got[30][50] += 5.0
    maps = svg.heatmaps("y", got, expected, focus=(30, 50))
    assert all((m.rows, m.cols) == (24, 24) for m in maps.maps)
    assert "rows 16-39" in maps.note and "columns 38-61" in maps.note
    assert [c.value for c in maps.maps[2].cells if c.bad] == ["5"]
    with pytest.raises(ValueError):
        svg.heatmaps("y", [[1.0]], [[1.0, 2.0]])


def test_colours_run_from_blue_through_white_to_red():
    assert svg.colour(-2, 2) == "#2166ac" and svg.colour(0, 2) == "#f7f7f7" and svg.colour(5, 2) == "#b2182b"
    assert svg.colour(float("nan"), 1) == svg.MISSING
    assert svg.ink("#2166ac") == "#ffffff" and svg.ink("#f7f7f7") == "#000000"


def test_overview_lists_errors_first_with_histogram_pass_rates_and_common_mistakes():
    broken = SubmissionResult(student="zed", source="zed.py", status="error", score=0, max_score=9,
                              diagnoses=["submission.syntax_error"], message="line 3 does not parse")
    full = carol().model_copy(update={"student": "amy", "score": 9.0, "diagnoses": [],
                                      "checks": [c.model_copy(update={"passed": True, "score": c.max_score})
                                                 for c in carol().checks]})
    page = render_index(run_of(full, carol(), broken))
    text = text_of(page)
    students = page.split('id="students"')[1]
    assert students.index("zed.html") < students.index("amy.html") < students.index("carol.html")
    assert "line 3 does not parse" in text and "1 could not be graded" in text
    assert "mean 4, median 3 of 9 points; 1 with full marks" in text
    # One bar per point of a 9-point assignment, and counts over the bars.
    histogram = page.split("histogram of scores: ")[1].split('"')[0]
    assert histogram.startswith("0: 1, 1: 0, 2: 0, 3: 1,") and histogram.endswith("9: 1")
    assert re.search(r"conv2d_forward\s*</code>\.lecture_example.*?1 / 2", page, re.DOTALL)
    assert describe("submission.syntax_error").sentence in text
    assert re.search(r"1 \(33%\) carol", text)


def test_every_student_gets_a_page_of_their_own_and_the_overview_links_it(tmp_path):
    ids = ["a b", "a_b", "A_B", "index", "../up", ""]
    run = run_of(*[carol().model_copy(update={"student": s}) for s in ids])
    write_reports(run, tmp_path)
    pages = sorted(p.name for p in tmp_path.iterdir())
    assert pages == sorted(["a_b.html", "a_b-2.html", "A_B-3.html", "index.html", "index-2.html", "up.html",
                            "student.html"])
    index = (tmp_path / "index.html").read_text()
    assert all(f'href="{p}"' in index for p in pages if p != "index.html")
    assert "<h1>index</h1>" in (tmp_path / "index-2.html").read_text()


def test_pages_are_self_contained_and_light_for_a_class_of_300(tmp_path):
    subs = [carol().model_copy(update={"student": f"student{i:03d}", "score": float(i % 10)})
            for i in range(300)]
    run = run_of(*subs)
    started = time.perf_counter()
    write_reports(run, tmp_path)
    assert time.perf_counter() - started < 20
    index = (tmp_path / "index.html").read_text()
    assert len(index) < 400_000
    assert "student299.html" in index and "300 (100%)" in text_of(index)
    for page in (index, (tmp_path / "student000.html").read_text()):
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing fetched
        assert "<link" not in page and "@import" not in page
        assert len(page) < 400_000


# -- in a browser ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def example_pages(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    assert main([str(EXAMPLES / "cnn"), "--out", str(out), "--timeout", "2", "-q"]) == 0
    return out


@needs_chromium
def test_the_console_check_catches_a_broken_page(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><p>x</p><script>notDefined();</script>")
    proc = chromium(page.as_uri(), "--dump-dom")
    assert any("notDefined" in line for line in console_errors(proc))


@needs_chromium
@pytest.mark.parametrize("page, size, name", [("index.html", "1000,1400", "class-overview"),
                                              ("carol.html", "1000,1800", "student-report"),
                                              ("alice.html", "1000,1100", "student-report-passed"),
                                              ("carol.html", "390,1200", "student-report-phone")])
def test_example_pages_render_in_chromium_without_console_errors(example_pages, tmp_path, page, size, name):
    # NNGRADE_SCREENSHOTS=docs keeps the named shots: that is how docs/*.png are made.
    keep = os.environ.get("NNGRADE_SCREENSHOTS")
    shot = Path(keep) / f"{name}.png" if keep and name else tmp_path / f"{Path(page).stem}-{size}.png"
    proc = chromium((example_pages / page).as_uri(), f"--window-size={size}", f"--screenshot={shot}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert console_errors(proc) == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000  # a drawn page, not a blank one


@needs_chromium
def test_clicking_a_column_sorts_the_student_table(example_pages, tmp_path):
    clicked = tmp_path / "index.html"
    page = (example_pages / "index.html").read_text()
    # Click "score" once (ascending), as a person would, then read the rows' order back.
    clicker = "<script>document.querySelectorAll('#students th button')[1].click();</script></body>"
    clicked.write_text(page.replace("</body>", clicker))
    proc = chromium(clicked.as_uri(), "--dump-dom")
    assert console_errors(proc) == []
    body = proc.stdout.split('id="students"')[1]
    order = re.findall(r'<td class="n" data-v="([^"]+)"', body)[::2]
    assert len(order) == 5 and order == sorted(order, key=float)
    assert 'aria-sort="ascending"' in body


@needs_chromium
def test_the_overflow_check_catches_a_page_wider_than_a_phone(tmp_path):
    wide = "<!doctype html><body><p>x</p><div style='width: 600px'>wide</div></body>"
    clipped = "<!doctype html><body><div style='overflow-x: auto'><table><tr><td style='min-width: 700px'>c" \
              "</td></tr></table></div></body>"
    assert measure(wide, tmp_path, 390)["scrollWidth"] > 390
    assert any(w.startswith("div.") or w.startswith("div:") for w in measure(clipped, tmp_path, 390)["wide"])


def long_everything() -> SubmissionResult:
    """A page with every part at its widest: a long id and path, a course's two-part
    function, a long check name, a message with no spaces, an 8x8 slice with numbers."""
    grid = [[float(i * 8 + j) - 31.5 for j in range(8)] for i in range(8)]
    return carol().model_copy(update={
        "student": "s" * 70, "source": "submissions/" + "deeply_nested_folder/" * 5 + "cnn_layers.py",
        "checks": carol().checks + [
            check("softmaxloss_forward + softmaxloss_backward.lecture_example_with_a_rather_long_name", False, 0, 3,
                  message="expected_" + "x" * 120, diagnoses=["conv.flipped_kernel"],
                  details={**mismatch([[-v for v in row] for row in grid], grid), "got_shape": [2, 3, 2, 4],
                           "mutated": ["dy", "x"], "notes": ["n" * 150]}),
            check("conv2d_backward.own", True, 2, 2, kind="gradient",
                  details={"relative_errors": {"dx": 1e-9, "dw": 2e-9}, "own_forward_relative_errors": {"dx": 0.5}}),
            check("network.end_to_end", False, 0, 0, kind="gradient", message="parts from the reference's"),
        ]})


@needs_chromium
@pytest.mark.parametrize("page", ["carol.html", "bob.html", "erin.html", "long"])
def test_student_pages_fit_a_phone_with_nothing_clipped(example_pages, tmp_path, page):
    sub = long_everything()
    text = render_student(run_of(sub), sub) if page == "long" else (example_pages / page).read_text()
    found = measure(text, tmp_path, 390, open_folds=True)  # every fold open: the widest it gets
    assert found["width"] == 390 and found["scrollWidth"] <= 390, found
    assert found["wide"] == [], found["wide"]


@needs_chromium
def test_a_page_with_every_check_passed_is_short(example_pages, tmp_path):
    page = (example_pages / "alice.html").read_text()
    assert "Failed checks" not in page and "alice" in page
    folded = measure(page, tmp_path, 1000)
    unfolded = measure(page, tmp_path, 1000, open_folds=True)
    # Score, the table per function and the speed note: about one screen. Unfolded, the
    # 45 passed checks are several screens: the folding is what keeps it short.
    assert folded["height"] < 1300, folded
    assert unfolded["height"] > 3 * folded["height"], (folded, unfolded)
