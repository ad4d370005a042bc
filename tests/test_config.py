"""Instructor configuration: validation with clear errors, and overrides applied to a
copy of the assignment."""

import textwrap

import pytest

from assignments.cnn import ASSIGNMENT as CNN
from grader.compare import DEFAULT_TOLERANCES
from grader.config import Config, apply_config, load_config, points_table
from grader.sandbox import Limits


def write(tmp_path, text):
    path = tmp_path / "grading.toml"
    path.write_text(textwrap.dedent(text))
    return path


def error_of(tmp_path, text) -> str:
    with pytest.raises(ValueError) as failure:
        config = load_config(write(tmp_path, text))
        apply_config(CNN, config)
    return str(failure.value)


def test_a_full_configuration(tmp_path):
    config = load_config(write(tmp_path, """
        assignment = "cnn"
        extra_forbidden_imports = ["sklearn"]

        [points]
        conv2d_forward = 30
        "conv2d_forward.speed" = 2

        [visibility]
        maxpool_backward = "hidden"
        "maxpool_backward.tied_maxima" = "public"

        [limits]
        timeout = 20
        memory_mb = 4096

        [tolerances]
        value_rtol = 2e-4
    """))
    graded = apply_config(CNN, config)
    forward = {c.id: c for c in graded.checks if c.function == "conv2d_forward"}
    defaults = {c.id: c for c in CNN.checks if c.function == "conv2d_forward"}
    # The function's total, in its own proportions; then the one check set exactly.
    assert sum(c.points for i, c in forward.items() if i != "conv2d_forward.speed") == pytest.approx(30)
    random, lecture = "conv2d_forward.random_values", "conv2d_forward.lecture_two_channel_example"
    assert forward[random].points / forward[lecture].points == pytest.approx(
        defaults[random].points / defaults[lecture].points)
    assert forward["conv2d_forward.speed"].points == 2
    assert graded.max_score == pytest.approx(CNN.max_score + 10 + 2)
    pool = {c.id: c.visibility for c in graded.checks if c.function == "maxpool_backward"}
    assert pool.pop("maxpool_backward.tied_maxima") == "public" and set(pool.values()) == {"hidden"}
    assert graded.forbidden_imports == CNN.forbidden_imports + ("sklearn",)
    assert config.limits_over(Limits()) == Limits(call_timeout=20, memory_mb=4096)
    assert config.tolerances_over(DEFAULT_TOLERANCES).value_rtol == 2e-4
    assert config.tolerances_over(DEFAULT_TOLERANCES).grad_rtol == DEFAULT_TOLERANCES.grad_rtol


def test_the_original_assignment_is_untouched(tmp_path):
    before = [(c.id, c.points, c.visibility) for c in CNN.checks]
    text = '[points]\nconv2d_forward = 1\n[visibility]\nrelu_forward = "hidden"\n'
    apply_config(CNN, load_config(write(tmp_path, text)))
    assert [(c.id, c.points, c.visibility) for c in CNN.checks] == before


def test_an_empty_file_changes_nothing(tmp_path):
    graded = apply_config(CNN, load_config(write(tmp_path, "")))
    assert [(c.id, c.points, c.visibility) for c in graded.checks] == [(c.id, c.points, c.visibility)
                                                                       for c in CNN.checks]
    assert graded.forbidden_imports == CNN.forbidden_imports


def test_zero_point_checks_can_be_given_points(tmp_path):
    graded = apply_config(CNN, load_config(write(tmp_path, "[points]\nnetwork = 4\n")))
    assert [c.points for c in graded.checks if c.function == "network"] == [4]


def test_forbidden_imports_can_be_replaced(tmp_path):
    graded = apply_config(CNN, load_config(write(tmp_path, 'forbidden_imports = ["torch"]\n')))
    assert graded.forbidden_imports == ("torch",)


def test_an_unknown_key_names_itself_its_line_and_the_nearest_key(tmp_path):
    message = error_of(tmp_path, """
        [limits]
        memory_mb = 100
        timout = 20
    """)
    assert "line 4" in message and "timout" in message and "did you mean 'timeout'" in message


def test_an_unknown_top_level_key_and_table(tmp_path):
    assert "did you mean 'points'" in error_of(tmp_path, "[point]\nconv2d_forward = 3\n")
    assert "line 1" in error_of(tmp_path, "forbidden = ['torch']\n")


def test_an_unknown_tolerance_lists_the_real_ones(tmp_path):
    message = error_of(tmp_path, "[tolerances]\nfd_rtol = 1e-5\nrelative = 1e-3\n")
    assert "line 3" in message and "relative" in message


def test_bad_values_are_named(tmp_path):
    assert "timeout" in error_of(tmp_path, "[limits]\ntimeout = -1\n")
    message = error_of(tmp_path, '[visibility]\nrelu_forward = "secret"\n')
    assert "relu_forward" in message and "line 2" in message
    assert "points" in error_of(tmp_path, '[points]\nrelu_forward = "many"\n')


def test_unknown_checks_and_functions_are_named_with_a_suggestion(tmp_path):
    message = error_of(tmp_path, "\n[points]\nconv2d_forwrd = 3\n")
    assert "line 3" in message and "conv2d_forwrd" in message and "did you mean 'conv2d_forward'" in message
    assert "relu_forward.nope" in error_of(tmp_path, '[visibility]\n"relu_forward.nope" = "hidden"\n')


def test_a_configuration_for_another_assignment_is_refused(tmp_path):
    assert "'rnn'" in error_of(tmp_path, 'assignment = "rnn"\n')


def test_invalid_toml_names_the_line(tmp_path):
    message = error_of(tmp_path, "[points]\nconv2d_forward = = 3\n")
    assert "not valid TOML" in message and "line 2" in message


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="cannot read"):
        load_config(tmp_path / "nope.toml")


def test_the_model_forbids_extra_keys():
    assert Config.model_config["extra"] == "forbid"


def test_points_table_totals():
    table = points_table(CNN)
    assert "| **total** | **100** |" in table and "`conv2d_forward.lecture_two_channel_example`" in table


def test_the_time_budget_is_a_limit_of_the_file_and_of_the_command_line(tmp_path):
    from grader.cli import main
    from grader.workers import DEFAULT_BUDGET

    assert Limits().budget == DEFAULT_BUDGET == 60
    config = load_config(write(tmp_path, "[limits]\nbudget = 90\ntimeout = 3\n"))
    assert config.limits_over(Limits()) == Limits(budget=90, call_timeout=3)
    assert "[limits] budget" in error_of(tmp_path, "[limits]\nbudget = 0\n")
    assert "did you mean 'budget'" in error_of(tmp_path, "[limits]\nbudgett = 5\n")
    assert main([str(tmp_path), "--budget", "0"]) == 2  # a usage error, before anything is graded
