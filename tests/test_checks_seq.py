"""The seq check suite (assignments/seq): correct variants (loops and vectorised,
float64 and float32) get full marks and no diagnosis; every buggy variant gets exactly
its diagnosis and loses only its functions' credit; every check can fail; the same
holds through the real engine and with the kit's recorded values."""

import json

import pytest
from variant_grading import (
    SUBMISSIONS,
    assert_catalogued,
    assert_every_check_can_fail,
    assert_full_marks,
    assert_points_documented,
    grade,
    student_from,
    summary,
    synthetic_students,
)

from assignments.seq import ASSIGNMENT
from grader.contract.model import Canonical
from grader.oracle import ReferenceOracle
from grader.testing import InProcessStudent

VARIANTS = SUBMISSIONS / "seq_variants"
FUNCTIONS = ASSIGNMENT.functions
README = SUBMISSIONS.parent.parent / "assignments" / "seq" / "README.md"
LSTM = {"lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward"}

# variant -> (the diagnoses it must get, the functions whose credit it loses)
BUGGY = {
    "rnn_step_tanh_derivative_wrong": ({"bptt.tanh_derivative_wrong"}, {"rnn_step_backward"}),
    "bptt_tanh_derivative_wrong": ({"bptt.tanh_derivative_wrong"}, {"rnn_backward"}),
    "bptt_no_recurrence": ({"bptt.no_recurrence"}, {"rnn_backward"}),
    "bptt_not_summed_over_time": ({"bptt.not_summed_over_time"}, {"rnn_backward"}),
    "embedding_overwritten": ({"embedding.repeated_words_overwritten"}, {"word_embedding_backward"}),
    # PyTorch's gate order, consistently: every LSTM function is wrong, and says why.
    "lstm_gate_order": ({"lstm.gate_order_wrong"}, LSTM),
    "lstm_step_gate_order_backward": ({"lstm.gate_order_wrong"}, {"lstm_step_backward"}),
    "lstm_no_forget_path": ({"lstm.no_forget_path"}, {"lstm_backward"}),
    "lstm_dc_prev_missing": ({"lstm.dc_prev_missing"}, {"lstm_step_backward"}),
    "lstm_step_mutates_dc": ({"input.mutated"}, {"lstm_step_backward"}),
}
CORRECT = sorted(p.stem for p in VARIANTS.glob("ok_*.py"))
CODES = {"bptt.no_recurrence", "bptt.tanh_derivative_wrong", "bptt.not_summed_over_time",
         "embedding.repeated_words_overwritten", "lstm.gate_order_wrong", "lstm.no_forget_path",
         "lstm.dc_prev_missing", "input.mutated"}
POINTS = {"rnn_step_forward": 8, "rnn_step_backward": 10, "rnn_forward": 8, "rnn_backward": 14,
          "word_embedding_forward": 5, "word_embedding_backward": 7, "lstm_step_forward": 10,
          "lstm_step_backward": 14, "lstm_forward": 8, "lstm_backward": 16}
SEEDS = (None, 7)  # the kit's fixed inputs, and one run's


@pytest.fixture(scope="module")
def oracle():
    return ReferenceOracle(ASSIGNMENT.reference_module)


@pytest.fixture(scope="module")
def graded(oracle):
    """Every variant, graded in-process on the kit's inputs and on one run's."""
    return {(path.stem, seed): grade(ASSIGNMENT, student_from(path, FUNCTIONS), oracle, seed=seed)
            for path in sorted(VARIANTS.glob("*.py")) for seed in SEEDS}


def test_the_variants_on_disk_are_the_ones_listed():
    assert {p.stem for p in VARIANTS.glob("*.py")} == set(BUGGY) | set(CORRECT)
    assert {"ok_loops", "ok_vectorised", "ok_float32"} <= set(CORRECT)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", CORRECT)
def test_correct_variants_get_full_marks_and_no_diagnosis(graded, name, seed):
    assert_full_marks(ASSIGNMENT, graded[name, seed])


def test_the_reference_itself_gets_full_marks(oracle):
    import reference.sequence

    assert_full_marks(ASSIGNMENT, grade(ASSIGNMENT, InProcessStudent(reference.sequence, FUNCTIONS), oracle))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", sorted(BUGGY))
def test_buggy_variants_get_exactly_their_diagnosis(graded, name, seed):
    codes, functions = BUGGY[name]
    got = summary(graded[name, seed])
    assert set(got["diagnoses"]) == codes, json.dumps(got["failed"], indent=1)
    lost = {check_id.split(".")[0] for check_id in got["lost"]}
    assert lost == functions, json.dumps(got["lost"], indent=1)


def test_every_diagnosis_has_a_buggy_variant_and_a_catalogue_entry():
    assert set().union(*(codes for codes, _ in BUGGY.values())) == CODES
    assert_catalogued(CODES)


def test_describe_finds_every_code_of_the_assignment():
    from grader.diagnoses import describe

    for code in CODES:
        assert describe(code).sentence != code, code


def test_every_check_can_fail(graded, oracle):
    failed = {check_id for name in BUGGY for check_id in summary(graded[name, None])["failed"]}
    for student in synthetic_students(ASSIGNMENT.reference_module, FUNCTIONS).values():
        failed |= set(summary(grade(ASSIGNMENT, student, oracle))["failed"])
    assert_every_check_can_fail(ASSIGNMENT, failed)


def test_points_are_documented_and_round():
    assert_points_documented(ASSIGNMENT, POINTS, README)


def test_the_canonical_contract_lists_the_functions_students_write():
    assert set(FUNCTIONS) <= set(Canonical.of("seq").calls)


def test_grading_through_the_real_engine(tmp_path):
    """One run of `grade` over every variant, each in its own worker."""
    from grader.cli import main

    assert main([str(VARIANTS), "--assignment", "seq", "--out", str(tmp_path), "--quiet", "--jobs", "2",
                 "--sandbox", "none", "--seed", "3"]) == 0
    subs = {s["student"]: s for s in json.loads((tmp_path / "results.json").read_text())["submissions"]}
    assert set(subs) == set(BUGGY) | set(CORRECT)
    for name in CORRECT:
        assert (subs[name]["score"], subs[name]["diagnoses"]) == (subs[name]["max_score"], []), name
    for name, (codes, functions) in BUGGY.items():
        assert set(subs[name]["diagnoses"]) == codes, (name, subs[name]["diagnoses"])
        lost = {c["function"] for c in subs[name]["checks"] if not c["passed"] and c["max_score"] > 0}
        assert lost == functions, (name, lost)


def test_the_kit_answers_every_public_check_from_recorded_values():
    """The values the public checks ask for can be recorded ahead of time: no variant
    hits a question the recording did not foresee."""
    from grader.kit import record_public
    from grader.oracle import RecordedOracle

    recorded = RecordedOracle(record_public(ASSIGNMENT))
    public = [c for c in ASSIGNMENT.checks if c.visibility == "public"]
    for path in sorted(VARIANTS.glob("*.py")):
        results = grade(ASSIGNMENT, student_from(path, FUNCTIONS), recorded, checks=public)
        assert not [r.id for r in results if "grader.not_recorded" in r.diagnoses], path.name
        if path.stem in CORRECT:
            assert all(r.passed for r in results), path.name
        else:
            assert set(summary(results)["diagnoses"]) <= BUGGY[path.stem][0], path.name


def test_a_tuple_of_the_wrong_length_still_has_its_parts_judged(oracle):
    """rnn_backward without the recurrence, leaving db out of its tuple: each backward check
    says once that db is missing, the four others are still compared by position, and the
    recurrence is still named; a correct one leaving db out loses only what db costs them."""
    from grader.source import load

    def without_db(variant: str) -> InProcessStudent:
        path = VARIANTS / f"{variant}.py"
        namespace = {"__name__": variant}
        exec(compile(load(path, path.name).text, str(path), "exec"), namespace)  # noqa: S102 - our own file
        full = namespace["rnn_backward"]
        namespace["rnn_backward"] = lambda *args: full(*args)[:4]
        return InProcessStudent(namespace, FUNCTIONS)

    checks = [c for c in ASSIGNMENT.checks if c.function == "rnn_backward"]
    wrong = {r.id: r for r in grade(ASSIGNMENT, without_db("bptt_no_recurrence"), oracle, checks=checks)}
    right = {r.id: r for r in grade(ASSIGNMENT, without_db("ok_vectorised"), oracle, checks=checks)}
    for check_id in ("rnn_backward.single_step", "rnn_backward.through_time", "rnn_backward.against_own_forward"):
        for results in (wrong, right):
            assert results[check_id].message.count("db missing") == 1, results[check_id].message
            assert set(results[check_id].details["relative_errors"]) == {"dx", "dh0", "dU", "dW"}
        assert max(right[check_id].details["relative_errors"].values()) < 1e-8
        assert right[check_id].diagnoses == ["submission.bad_return"]
    assert wrong["rnn_backward.through_time"].diagnoses == ["bptt.no_recurrence", "submission.bad_return"]
    assert wrong["rnn_backward.through_time"].details["relative_errors"]["dh0"] > 0.01


def test_the_network_check_names_the_layer_whose_output_first_went_wrong(graded, oracle):
    """An rnn_backward whose dx is a stub's None is named, not the word_embedding_backward
    that would choke on it; a wrong embedding gradient is told from a wrong recurrence."""
    from grader.source import load

    path = VARIANTS / "ok_vectorised.py"
    namespace = {"__name__": "stub"}
    exec(compile(load(path, path.name).text, str(path), "exec"), namespace)  # noqa: S102 - our own file
    full = namespace["rnn_backward"]
    namespace["rnn_backward"] = lambda *args: (None, *full(*args)[1:])
    check = [c for c in ASSIGNMENT.checks if c.id == "network.captioning_end_to_end"]
    stub = grade(ASSIGNMENT, InProcessStudent(namespace, FUNCTIONS), oracle, checks=check)[0]
    assert not stub.passed, stub.message
    assert "goes wrong at rnn_backward: dx should be a NumPy array, got NoneType" in stub.message, stub.message
    network = {name: next(r.message for r in graded[name, None] if r.id == "network.captioning_end_to_end")
               for name in ("embedding_overwritten", "bptt_no_recurrence", "lstm_gate_order")}
    assert network["embedding_overwritten"].endswith("in what word_embedding_backward returns")
    assert network["bptt_no_recurrence"].endswith("in what rnn_backward returns")
    assert "parts from the reference's at lstm_forward" in network["lstm_gate_order"]
