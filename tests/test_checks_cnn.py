"""The cnn check suite: correct variants get full marks and no diagnosis; every buggy
variant gets exactly its diagnosis and loses only that function's credit; every check
can fail; the same holds through the real engine and with the kit's recorded values."""

import json
import time

import numpy as np
import pytest
from variant_grading import (
    SUBMISSIONS,
    assert_catalogued,
    assert_every_check_can_fail,
    assert_exactly,
    assert_full_marks,
    assert_points_documented,
    grade,
    student_from,
    summary,
    synthetic_students,
)

from assignments.cnn import ASSIGNMENT
from assignments.cnn.cases import lecture_example
from grader.oracle import ReferenceOracle
from grader.testing import InProcessStudent

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # softmax_unstable overflows, as it should

VARIANTS = SUBMISSIONS / "cnn_variants"
FUNCTIONS = ASSIGNMENT.functions

# variant -> (the diagnoses it must get, the one function whose credit it loses)
BUGGY = {
    "conv_flipped_kernel": ({"conv.flipped_kernel"}, "conv2d_forward"),
    "conv_bias_missing": ({"conv.bias_missing"}, "conv2d_forward"),
    "conv_bias_grad_missing": ({"conv.bias_missing"}, "conv2d_backward"),
    "conv_padding_one_side": ({"conv.padding_wrong"}, "conv2d_forward"),
    "conv_padding_batch_axis": ({"conv.padding_wrong"}, "conv2d_forward"),
    # x copied into the top-left corner of the padded array: all 2*pad zeros below and right.
    "conv_padding_top_left_corner": ({"conv.padding_wrong"}, "conv2d_forward"),
    "conv_padding_top_left_corner_backward": ({"conv.padding_wrong"}, "conv2d_backward"),
    # np.pad(x, pad) pads the batch and channel axes too and raises for pad > 0.
    "conv_padding_every_axis": ({"conv.padding_wrong"}, "conv2d_forward"),
    "conv_padding_every_axis_backward": ({"conv.padding_wrong"}, "conv2d_backward"),
    "conv_stride_ignored": ({"conv.stride_ignored"}, "conv2d_forward"),
    "conv_output_size_no_plus_one": ({"conv.output_size_wrong"}, "conv_output_size"),
    "conv_output_size_no_floor": ({"conv.output_size_wrong"}, "conv_output_size"),
    "conv_forward_size_no_plus_one": ({"conv.output_size_wrong"}, "conv2d_forward"),
    # Counting the padding once gives exactly the output of padding top and left only.
    "conv_forward_size_pad_once": ({"conv.output_size_wrong", "conv.padding_wrong"}, "conv2d_forward"),
    "conv_grad_averaged": ({"conv.grad_not_summed_over_batch"}, "conv2d_backward"),
    "conv_grad_last_example": ({"conv.grad_not_summed_over_batch"}, "conv2d_backward"),
    "pool_grad_to_all": ({"pool.grad_to_all_elements"}, "maxpool_backward"),
    "pool_grad_duplicated": ({"pool.grad_duplicated_on_ties"}, "maxpool_backward"),
    "pool_grad_overwritten": ({"pool.grad_overwritten_on_overlap"}, "maxpool_backward"),
    "softmax_unstable": ({"softmax.unstable"}, "softmax_cross_entropy"),
    "softmax_min_shift": ({"softmax.min_shift"}, "softmax_cross_entropy"),
    "softmax_labels_shifted": ({"softmax.labels_shifted"}, "softmax_cross_entropy"),
    "softmax_not_averaged": ({"softmax.not_averaged"}, "softmax_cross_entropy"),
    "softmax_epsilon_in_log": ({"softmax.epsilon_in_log"}, "softmax_cross_entropy"),
    "linear_transposed": ({"linear.weights_transposed"}, "linear_forward"),
    "linear_transposed_backward": ({"linear.weights_transposed"}, "linear_backward"),
    "relu_mutates_dy": ({"input.mutated"}, "relu_backward"),
    "softmax_mutates_z": ({"input.mutated"}, "softmax_cross_entropy"),
}
CORRECT = sorted(p.name for p in VARIANTS.iterdir() if p.name.startswith("ok_"))
CONTRACT_CODES = {
    "conv.flipped_kernel", "conv.bias_missing", "conv.padding_wrong", "conv.stride_ignored",
    "conv.output_size_wrong", "conv.grad_not_summed_over_batch", "pool.grad_to_all_elements",
    "pool.grad_duplicated_on_ties", "pool.grad_overwritten_on_overlap", "softmax.unstable",
    "softmax.not_averaged", "softmax.epsilon_in_log", "linear.weights_transposed", "input.mutated",
}
POINTS = {"conv_output_size": 5, "conv2d_forward": 20, "conv2d_backward": 20, "maxpool_forward": 8,
          "maxpool_backward": 14, "relu_forward": 4, "relu_backward": 6, "linear_forward": 5,
          "linear_backward": 8, "softmax_cross_entropy": 10}


@pytest.fixture(scope="module")
def oracle():
    return ReferenceOracle(ASSIGNMENT.reference_module)


@pytest.fixture(scope="module")
def graded(oracle):
    """Every variant, graded once in-process."""
    return {path.stem: grade(ASSIGNMENT, student_from(path, FUNCTIONS), oracle)
            for path in sorted(VARIANTS.iterdir()) if path.suffix in (".py", ".ipynb")}


def test_the_variants_on_disk_are_the_ones_listed():
    stems = {p.stem for p in VARIANTS.iterdir() if p.suffix in (".py", ".ipynb")}
    assert stems == set(BUGGY) | {name.split(".")[0] for name in CORRECT}
    assert {"ok_loops.py", "ok_im2col.py", "ok_einsum_windows.py", "ok_float32.py", "ok_tie_split.py",
            "ok_tie_last.py", "ok_relu_geq.py", "ok_notebook.ipynb"} <= set(CORRECT)


@pytest.mark.parametrize("name", CORRECT)
def test_correct_variants_get_full_marks_and_no_diagnosis(graded, name):
    assert_full_marks(ASSIGNMENT, graded[name.split(".")[0]])


def test_the_reference_itself_gets_full_marks(oracle):
    import reference.cnn

    assert_full_marks(ASSIGNMENT, grade(ASSIGNMENT, InProcessStudent(reference.cnn, FUNCTIONS), oracle))


@pytest.mark.parametrize("name", sorted(BUGGY))
def test_buggy_variants_get_exactly_their_diagnosis(graded, name):
    codes, function = BUGGY[name]
    assert_exactly(graded[name], codes, function)


def test_every_contract_diagnosis_has_a_buggy_variant_and_a_catalogue_entry():
    covered = set().union(*(codes for codes, _ in BUGGY.values()))
    assert CONTRACT_CODES <= covered
    assert_catalogued(CONTRACT_CODES)


def test_every_check_can_fail(graded, oracle):
    failed = {check_id for name in BUGGY for check_id in summary(graded[name])["failed"]}
    for student in synthetic_students(ASSIGNMENT.reference_module, FUNCTIONS).values():
        failed |= set(summary(grade(ASSIGNMENT, student, oracle))["failed"])
    assert_every_check_can_fail(ASSIGNMENT, failed)


def test_points_are_documented_and_round():
    assert_points_documented(ASSIGNMENT, POINTS, VARIANTS.parent.parent.parent / "assignments" / "cnn" / "README.md")


def test_the_lecture_example_is_the_slides_numbers(oracle):
    x, w, b, y = lecture_example()
    assert y[0, 0, :2, 0].tolist() == [25, 27]  # the values the slide shows
    assert np.array_equal(oracle.conv2d_forward(x, w, b), y)


def test_messages_report_a_relative_error_per_gradient(graded):
    result = next(r for r in graded["conv_grad_averaged"] if r.id == "conv2d_backward.against_reference")
    assert set(result.details["relative_errors"]) == {"dx", "dw", "db"}
    assert "dx: 0" in result.message and "dw: 0.5" in result.message


def test_the_speed_check_costs_nothing_and_names_python_loops(graded):
    loops = next(r for r in graded["ok_loops"] if r.id == "conv2d_forward.speed")
    assert loops.max_score == 0 and "probably looping" in loops.message
    assert loops.details["ratio"] > 50
    assert loops.passed  # reported, never failed: correct loop code shows no failure
    fast = next(r for r in graded["ok_im2col"] if r.id == "conv2d_forward.speed")
    assert fast.passed and "probably looping" not in fast.message


def test_the_speed_note_never_says_0x():
    from assignments.cnn.checks_network import speed_ratio

    # "0x the reference's 13.78 ms" was a layer faster than the reference, rounded to nothing.
    assert [speed_ratio(r) for r in (0.3, 1.0, 2.14, 174.2)] == ["faster than", "about as fast as", "2.1x", "174x"]


def test_grading_through_the_real_engine(tmp_path):
    """One run of `grade` over every variant, each in its own worker."""
    from grader.cli import main

    started = time.perf_counter()
    assert main([str(VARIANTS), "--assignment", "cnn", "--out", str(tmp_path), "--quiet", "--jobs", "4",
                 "--sandbox", "none"]) == 0
    elapsed = time.perf_counter() - started
    run = json.loads((tmp_path / "results.json").read_text())
    subs = {s["student"]: s for s in run["submissions"]}
    assert len(subs) == len(BUGGY) + len(CORRECT)
    for name in CORRECT:
        sub = subs[name.split(".")[0]]
        assert (sub["score"], sub["diagnoses"]) == (sub["max_score"], []), (name, sub["diagnoses"])
    for name, (codes, function) in BUGGY.items():
        sub = subs[name]
        assert set(sub["diagnoses"]) == codes, (name, sub["diagnoses"])
        lost = [c["function"] for c in sub["checks"] if not c["passed"] and c["max_score"] > 0]
        assert lost and set(lost) == {function}, (name, lost)
    assert max(s["seconds"] for s in subs.values()) < 2.0
    assert elapsed < 30


def test_the_kit_answers_every_public_check_from_recorded_values():
    """The student kit holds no reference: the values the checks ask for are recorded
    ahead of time. No variant may hit a question the recording did not foresee."""
    from grader.kit import record_public
    from grader.oracle import RecordedOracle

    recorded = RecordedOracle(record_public(ASSIGNMENT))
    public = [c for c in ASSIGNMENT.checks if c.visibility == "public"]
    for path in sorted(VARIANTS.iterdir()):
        if path.suffix not in (".py", ".ipynb"):
            continue
        results = grade(ASSIGNMENT, student_from(path, FUNCTIONS), recorded, checks=public)
        assert not [r.id for r in results if "grader.not_recorded" in r.diagnoses], path.name
        if path.name in CORRECT:
            assert all(r.passed for r in results if r.kind != "performance"), path.name
        else:
            codes, _ = BUGGY[path.stem]
            assert set(summary(results)["diagnoses"]) <= codes, path.name


# ------------------------------------------------------------------ small probabilities
def _softmax(dtype, form: str, rows: bool, eps: float = 0.0):
    """softmax_cross_entropy in `dtype`, the loss from the probabilities or from the
    log-softmax, vectorised or one row at a time, optionally with `eps` inside the log."""
    def one(z, label):
        shifted = z - z.max()
        e = np.exp(shifted)
        p = e / e.sum()
        loss = -np.log(p[label] + eps) if form == "probabilities" else np.log(e.sum()) - shifted[label]
        dz = p.copy()
        dz[label] -= 1
        return loss, dz

    def fn(z, labels):
        z = np.asarray(z, dtype=dtype)
        n = z.shape[0]
        if rows:
            parts = [one(z[i], labels[i]) for i in range(n)]
            return dtype(sum(loss for loss, _ in parts) / n), np.stack([dz for _, dz in parts]) / dtype(n)
        shifted = z - z.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        p = e / e.sum(axis=1, keepdims=True)
        picked = np.arange(n), labels
        loss = -np.log(p[picked] + eps) if form == "probabilities" else np.log(e.sum(axis=1)) - shifted[picked]
        dz = p.copy()
        dz[picked] -= 1
        return dtype(loss.mean()), dz / dtype(n)
    return fn


def test_confidently_wrong_rows_fail_an_epsilon_in_the_log_and_no_correct_loss(oracle):
    """Every correct loss passes (float32 and float64, from the probabilities or the
    log-softmax, vectorised or by rows, on the kit's inputs and on three runs'); a 1e-7, 1e-8
    or 1e-10 inside the log fails with softmax.epsilon_in_log; 1e-12 changes the loss by less
    than the tolerance there and passes."""
    from grader.compare import DEFAULT_TOLERANCES
    from grader.runner import run_check

    check = next(c for c in ASSIGNMENT.checks if c.id == "softmax_cross_entropy.confidently_wrong")

    def run(fn, seed):
        return run_check(check, InProcessStudent({"softmax_cross_entropy": fn}, FUNCTIONS), oracle,
                         DEFAULT_TOLERANCES, seed)

    for seed in (None, 1, 2, 3):
        for dtype in (np.float32, np.float64):
            for form in ("probabilities", "log-softmax"):
                for rows in (False, True):
                    result = run(_softmax(dtype, form, rows), seed)
                    assert result.passed, (seed, dtype, form, rows, result.message)
            for eps in (1e-7, 1e-8, 1e-10):
                result = run(_softmax(dtype, "probabilities", False, eps), seed)
                assert not result.passed and result.diagnoses == ["softmax.epsilon_in_log"], (seed, eps, result)
            assert run(_softmax(dtype, "probabilities", True, 1e-12), seed).passed


# ------------------------------------------------------------------ the network
def test_the_network_check_names_the_layer_whose_output_first_went_wrong(graded, oracle):
    """A maxpool_backward stub returning None is named, not the relu_backward that would
    choke on it; a conv2d_forward of the wrong shape is named, not the linear_forward that
    would; a wrong value in a forward layer is named where it first appears."""
    from grader.source import load

    path = VARIANTS / "ok_vectorised.py"
    namespace = {"__name__": "stub"}
    exec(compile(load(path, path.name).text, str(path), "exec"), namespace)  # noqa: S102 - our own file
    namespace["maxpool_backward"] = lambda dy, x, size=2, stride=2: None  # a stub: `pass`
    check = [c for c in ASSIGNMENT.checks if c.id == "network.typical_cnn_end_to_end"]
    stub = grade(ASSIGNMENT, InProcessStudent(namespace, FUNCTIONS), oracle, checks=check)[0]
    assert not stub.passed and "at maxpool_backward: it returned None" in stub.message, stub.message
    assert "relu_backward" not in stub.message
    for name in ("conv_padding_one_side", "conv_flipped_kernel"):
        network = next(r for r in graded[name] if r.id == "network.typical_cnn_end_to_end")
        assert "parts from the reference's at conv2d_forward" in network.message, network.message
    assert "shape (2, 7, 7, 4)" in next(r.message for r in graded["conv_padding_one_side"]
                                        if r.id == "network.typical_cnn_end_to_end")


def test_a_gradient_check_against_the_forward_says_which_forward_decided(graded):
    """The reference forward's differences decide; the student's own are reported as such."""
    own = next(r for r in graded["conv_grad_averaged"] if r.id == "conv2d_backward.against_own_forward")
    assert "differences of the reference conv2d_forward, which decide" in own.message, own.message
    assert "those of your own conv2d_forward (reported, not scored): dx: 0" in own.message, own.message
    assert own.details["differentiated"] == "reference"
