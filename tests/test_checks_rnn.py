"""The rnn check suite: correct variants (loops, vectorised, float32, every way of
drawing, a notebook) get full marks and no diagnosis; every buggy variant gets exactly
its diagnosis and loses only that function's credit; every check can fail; the same
holds through the real engine and with the kit's recorded values."""

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

from assignments.rnn import ASSIGNMENT
from grader.compare import DEFAULT_TOLERANCES
from grader.oracle import ReferenceOracle
from grader.runner import run_check
from grader.testing import InProcessStudent

VARIANTS = SUBMISSIONS / "rnn_variants"
FUNCTIONS = ASSIGNMENT.functions

# variant -> (the diagnoses it must get, the one function whose credit it loses)
BUGGY = {
    "bptt_no_recurrence": ({"bptt.no_recurrence"}, "rnn_backward"),
    "bptt_tanh_derivative_wrong": ({"bptt.tanh_derivative_wrong"}, "rnn_backward"),
    "bptt_dW_uses_h_t": ({"bptt.dW_uses_h_t"}, "rnn_backward"),
    "bptt_not_summed_over_time": ({"bptt.not_summed_over_time"}, "rnn_backward"),
    "rnn_loss_averaged": ({"rnn.loss_averaged"}, "rnn_loss"),
    "sample_argmax": ({"sample.argmax"}, "rnn_sample"),
    "sample_global_rng": ({"sample.ignores_rng"}, "rnn_sample"),
    "sample_no_feedback": ({"sample.no_feedback"}, "rnn_sample"),
    "backward_mutates_yhat": ({"input.mutated"}, "rnn_backward"),
    # A missing key fails every backward check, named once in each; the other keys are judged.
    "backward_lacks_h0": ({"submission.bad_return"}, "rnn_backward"),
    "bptt_no_recurrence_lacks_h0": ({"bptt.no_recurrence", "submission.bad_return"}, "rnn_backward"),
    "birnn_g_forward": ({"birnn.g_not_reversed"}, "birnn_forward"),
    "birnn_g_rows_reversed": ({"birnn.g_rows_reversed"}, "birnn_forward"),
}
CORRECT = sorted(p.name for p in VARIANTS.iterdir() if p.name.startswith("ok_"))
CONTRACT_CODES = {"bptt.no_recurrence", "bptt.tanh_derivative_wrong", "bptt.dW_uses_h_t",
                  "bptt.not_summed_over_time", "rnn.loss_averaged", "sample.argmax", "input.mutated"}
POINTS = {"rnn_forward": 20, "rnn_loss": 10, "rnn_backward": 35, "rnn_sample": 20, "birnn_forward": 15}


@pytest.fixture(scope="module")
def oracle():
    return ReferenceOracle(ASSIGNMENT.reference_module)


@pytest.fixture(scope="module")
def graded(oracle):
    return {path.stem: grade(ASSIGNMENT, student_from(path, FUNCTIONS), oracle)
            for path in sorted(VARIANTS.iterdir()) if path.suffix in (".py", ".ipynb")}


def result(results, check_id):
    return next(r for r in results if r.id == check_id)


def test_the_variants_on_disk_are_the_ones_listed():
    stems = {p.stem for p in VARIANTS.iterdir() if p.suffix in (".py", ".ipynb")}
    assert stems == set(BUGGY) | {name.split(".")[0] for name in CORRECT}
    assert {"ok_loops.py", "ok_vectorised.py", "ok_float32.py", "ok_inverse_cdf.py", "ok_multinomial.py",
            "ok_gumbel.py", "ok_notebook.ipynb"} <= set(CORRECT)


@pytest.mark.parametrize("name", CORRECT)
def test_correct_variants_get_full_marks_and_no_diagnosis(graded, name):
    assert_full_marks(ASSIGNMENT, graded[name.split(".")[0]])


def test_the_reference_itself_gets_full_marks(oracle):
    import reference.rnn

    assert_full_marks(ASSIGNMENT, grade(ASSIGNMENT, InProcessStudent(reference.rnn, FUNCTIONS), oracle))


@pytest.mark.parametrize("name", sorted(BUGGY))
def test_buggy_variants_get_exactly_their_diagnosis(graded, name):
    codes, function = BUGGY[name]
    assert_exactly(graded[name], codes, function)


def test_every_contract_diagnosis_has_a_buggy_variant_and_a_catalogue_entry():
    covered = set().union(*(codes for codes, _ in BUGGY.values()))
    assert CONTRACT_CODES <= covered
    assert_catalogued(covered)


def test_every_check_can_fail(graded, oracle):
    failed = {check_id for name in BUGGY for check_id in summary(graded[name])["failed"]}
    for student in synthetic_students(ASSIGNMENT.reference_module, FUNCTIONS).values():
        failed |= set(summary(grade(ASSIGNMENT, student, oracle))["failed"])
    assert_every_check_can_fail(ASSIGNMENT, failed)


def test_points_are_documented_and_round():
    assert_points_documented(ASSIGNMENT, POINTS, VARIANTS.parent.parent.parent / "assignments" / "rnn" / "README.md")


def test_one_step_tells_a_recurrence_mistake_from_a_per_step_mistake(graded):
    for name in ("bptt_no_recurrence", "bptt_not_summed_over_time"):
        assert result(graded[name], "rnn_backward.single_step").passed, name
        assert not result(graded[name], "rnn_backward.through_time").passed, name
    for name in ("bptt_tanh_derivative_wrong", "bptt_dW_uses_h_t"):
        assert not result(graded[name], "rnn_backward.single_step").passed, name


def test_gradient_messages_report_a_relative_error_per_gradient(graded):
    through = result(graded["bptt_no_recurrence"], "rnn_backward.through_time")
    assert set(through.details["relative_errors"]) == {"dU", "dW", "dV", "db", "dc", "dh0"}
    own = result(graded["bptt_no_recurrence"], "rnn_backward.against_own_forward")
    assert own.details["relative_errors"]["dV"] < 1e-8 < own.details["relative_errors"]["dW"]


def test_a_missing_key_is_named_once_and_the_other_gradients_are_judged(graded):
    """A dict without "h0": every backward check names the key once; the other five
    gradients are still compared, and a mistake in them is still named."""
    for check in ("single_step", "through_time", "against_own_forward"):
        right = result(graded["backward_lacks_h0"], f"rnn_backward.{check}")
        assert right.message.count("'h0'") == 1 and right.diagnoses == ["submission.bad_return"], right.message
        assert set(right.details["relative_errors"]) == {"dU", "dW", "dV", "db", "dc"}
        assert max(right.details["relative_errors"].values()) < 1e-8
    wrong = result(graded["bptt_no_recurrence_lacks_h0"], "rnn_backward.through_time")
    assert wrong.diagnoses == ["bptt.no_recurrence", "submission.bad_return"]
    assert "dh0: not judged" in wrong.message and wrong.details["relative_errors"]["dW"] > 0.1
    own = result(graded["bptt_no_recurrence_lacks_h0"], "rnn_backward.against_own_forward")
    assert own.details["relative_errors"]["dV"] < 1e-8 < own.details["relative_errors"]["dW"]


def test_the_own_forward_check_calls_rnn_forward_a_handful_of_times(oracle):
    """1 call at the base point + 2 directions x 2 sides for each of the 6 gradients."""
    import reference.rnn

    student = InProcessStudent(reference.rnn, FUNCTIONS)
    check = next(c for c in ASSIGNMENT.checks if c.id == "rnn_backward.against_own_forward")
    assert run_check(check, student, oracle, DEFAULT_TOLERANCES).passed
    assert student.calls == {"rnn_backward": 1, "rnn_forward": 1 + 4 * 6}


def test_sampling_accepts_every_way_of_drawing_and_only_the_distribution_counts(graded):
    sequences = set()
    for name in ("ok_loops", "ok_multinomial", "ok_gumbel"):
        for check_id in ("rnn_sample.first_draws", "rnn_sample.feeds_back_each_draw", "rnn_sample.reproducible"):
            assert result(graded[name], check_id).passed, (name, check_id)
    import reference.rnn

    params = (np.zeros(3), 0, 30, np.eye(3), 0.5 * np.eye(3), np.eye(3), np.zeros(3), np.zeros(3))
    for name in ("ok_loops", "ok_multinomial", "ok_gumbel"):
        module = {}
        exec((VARIANTS / f"{name}.py").read_text(), module)  # noqa: S102 - our own test file
        sequences.add(tuple(int(s) for s in module["rnn_sample"](*params, np.random.default_rng(5))))
    assert len(sequences) == 3  # three methods, three different sequences, all accepted
    assert reference.rnn  # the reference draws with rng.choice, like ok_loops


def test_argmax_sampling_is_named_by_every_sampling_check(graded):
    for check_id in ("rnn_sample.first_draws", "rnn_sample.feeds_back_each_draw", "rnn_sample.reproducible"):
        assert result(graded["sample_argmax"], check_id).diagnoses == ["sample.argmax"]


def test_grading_through_the_real_engine(tmp_path):
    from grader.cli import main

    started = time.perf_counter()
    assert main([str(VARIANTS), "--assignment", "rnn", "--out", str(tmp_path), "--quiet", "--jobs", "4",
                 "--sandbox", "none"]) == 0
    elapsed = time.perf_counter() - started
    subs = {s["student"]: s for s in json.loads((tmp_path / "results.json").read_text())["submissions"]}
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
            assert all(r.passed for r in results), path.name
        else:
            assert set(summary(results)["diagnoses"]) <= BUGGY[path.stem][0], path.name
