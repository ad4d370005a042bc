"""A course's contract as data: its file is read and refused with the line and what is
wrong, arrays move between its layout and the canonical one, checks the course cannot
answer are dropped, and every mistake costs, under the course's names and layouts,
exactly what it costs under the canonical assignment."""

from __future__ import annotations

import importlib
import inspect
import itertools
import json
import types
from pathlib import Path

import numpy as np
import pytest
from variant_grading import SUBMISSIONS, grade, student_from, summary

import reference.cnn
import reference.sequence
from grader.assignment import available, named
from grader.contract.adapt import course_reference
from grader.contract.build import dropped_checks, in_process_fixtures, in_process_student
from grader.contract.layout import LayoutMismatch, from_course, to_course
from grader.contract.model import Canonical, ContractError, load_contract
from grader.oracle import ReferenceOracle
from grader.source import load

ROOT = Path(__file__).resolve().parent.parent
COURSES = ["fman45", "cs231n"]  # built on cnn
ALL_COURSES = [*COURSES, "cs231n_rnn"]  # cs231n_rnn is built on seq
CNN_VARIANTS = SUBMISSIONS / "cnn_variants"
SEQ_VARIANTS = SUBMISSIONS / "seq_variants"


@pytest.fixture(scope="module")
def assignments():
    return available()


# ------------------------------------------------------------------ the language
@pytest.mark.parametrize("name, module", [("cnn", reference.cnn), ("seq", reference.sequence)])
def test_the_canonical_contract_is_the_references_own_signatures(name, module):
    canonical = Canonical.of(name)
    public = getattr(module, "__all__", None)
    if public is not None:
        assert set(canonical.calls) == set(public)  # every function of the reference, declared
    for function, params in canonical.calls.items():
        names = tuple(inspect.signature(getattr(module, function)).parameters)
        assert tuple(p.source for p in params) == names, function


@pytest.mark.parametrize("name", ["cnn", "seq"])
def test_every_gradient_has_its_inputs_layout(name):
    """A backward's `dX` is laid out like its argument `X` (the canonical contract's letters agree)."""
    canonical = Canonical.of(name)
    for function, returns in canonical.returns.items():
        arguments = {p.source: p.layout for p in canonical.calls[function]}
        for result in returns.items:
            if result.name.startswith("d") and result.name[1:] in arguments:
                assert result.layout == arguments[result.name[1:]], (function, result.name)


@pytest.mark.parametrize("canonical", ["NHWC", "HWIO", "ND", "O"])
def test_every_course_layout_round_trips(canonical):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(tuple(range(2, 2 + len(canonical))))
    for order in itertools.permutations(canonical):
        for course in ("".join(order), "".join(order) + "1", "1" + "".join(order)):
            there = to_course(x, canonical, course)
            assert there.ndim == len(course) and there.flags.c_contiguous
            assert [there.shape[course.index(c)] for c in canonical] == list(x.shape)
            back = from_course(there, canonical, course, "y")
            np.testing.assert_array_equal(back, x)


def test_an_array_not_in_the_courses_layout_is_refused_with_its_shape():
    with pytest.raises(LayoutMismatch, match=r"db has shape \(3,\); the course's layout is \(O, 1\)"):
        from_course(np.zeros(3), "O", "O1", "db")
    with pytest.raises(LayoutMismatch, match=r"shape \(3, 2\)"):
        from_course(np.zeros((3, 2)), "O", "O1", "db")


GOOD = """[course]
name = "mini"
file_name = "layers.py"
based_on = "cnn"

[functions.dense]
implements = "linear_forward"
call = "X=x:DN W=w:OD b:O1"
returns = "Z=y:ON"
points = 10
"""


@pytest.mark.parametrize("change, line, words", [
    (('call = "X=x:DN W=w:OD b:O1"', 'call = "X=x:DQ W=w:OD b:O1"'), 8, "does not hold the axes 'ND'"),
    (('call = "X=x:DN W=w:OD b:O1"', 'call = "X=x:DN W=w:OD b:O1 stride"'), 8, "has no argument 'stride'"),
    (('call = "X=x:DN W=w:OD b:O1"', 'call = "X=x:DN W=w:OD"'), 8, "b reach no parameter"),
    (('implements = "linear_forward"', 'implements = "linear_forwards"'), 7, "did you mean 'linear_forward'"),
    (('returns = "Z=y:ON"', 'returns = "Z=y:ON"\nstrides = 2'), 10, "unknown key 'strides'"),
    (('points = 10\n', 'points = 10\n\n[functions.dense]\nimplements = "relu_forward"\n'), 12, "not valid TOML"),
    (('based_on = "cnn"', 'based_on = "cnm"'), 4, "no canonical contract"),
    (('call = "X=x:DN W=w:OD b:O1"', 'call = "X=x:DN X=w:OD b:O1"'), 8, "listed twice"),
])
def test_a_contract_with_an_error_is_refused_with_its_line(tmp_path, change, line, words):
    path = tmp_path / "contract.toml"
    path.write_text(GOOD.replace(*change))
    with pytest.raises(ContractError) as caught:
        load_contract(path)
    assert words in str(caught.value)
    assert f"line {line}" in str(caught.value), str(caught.value)


def test_the_good_contract_loads(tmp_path):
    (tmp_path / "contract.toml").write_text(GOOD)
    contract = load_contract(tmp_path / "contract.toml")
    assert list(contract.functions) == ["dense"]


# ------------------------------------------------------------------ the shipped courses
def test_the_shipped_courses_weigh_100_points_and_name_their_own_functions(assignments):
    for name in ALL_COURSES:
        course = assignments[name]
        assert abs(course.max_score - 100) < 1e-6
        by_function = {}
        for check in course.checks:
            by_function[check.function] = by_function.get(check.function, 0) + check.points
        for function, spec in course.contract.functions.items():
            if not spec.graded:
                assert not any(function in f.split(" + ") for f in by_function), function
                continue
            shown = next(f for f in by_function if function in f.split(" + "))
            base = {c.id.split(".", 1)[1] for c in assignments[course.contract.info.based_on].checks}
            own = sum(c.points for c in course.checks if c.function == shown and c.id.split(".", 1)[1] not in base)
            expected = sum(p.points for p in course.contract.implementing(spec.implements, graded=True)) + own
            assert abs(by_function[shown] - expected) < 1e-4, function


def test_checks_the_course_cannot_answer_are_dropped_and_named(assignments, tmp_path):
    text = (ROOT / "assignments" / "cs231n" / "contract.toml").read_text()
    # A course whose pooling takes no stride and no size: only 2x2, stride 2.
    text = text.replace('call = "x:NCHW pool_param={pool_height:size,pool_width:size,stride}"',
                        'call = "x:NCHW"\nfixed = { size = 3, stride = 3 }')
    (tmp_path / "contract.toml").write_text(text)
    contract = load_contract(tmp_path / "contract.toml")
    shipped = dropped_checks(assignments["cs231n"].contract)
    assert list(shipped) == ["conv2d_backward.against_own_forward"]  # its stride never fits (assignments/cs231n/README.md)
    dropped = {check: why for check, why in dropped_checks(contract).items() if check not in shipped}
    assert dropped and all(d.startswith("maxpool_") for d in dropped)
    assert all("max_pool_forward_naive takes only" in why for why in dropped.values()), dropped


def test_a_check_dropped_for_one_function_is_named_though_another_keeps_its_name(assignments):
    """cs231n's naive convolution is defined only where the stride fits: conv2d_backward's
    check against its forward's differences (stride 2 over a width it does not divide) is
    dropped, while maxpool_backward keeps its check of the same name."""
    assert "conv2d_backward.against_own_forward" in dropped_checks(assignments["cs231n"].contract)
    assert "max_pool_backward_naive.against_own_forward" in {c.id for c in assignments["cs231n"].checks}


def test_cs231n_rnn_keeps_every_check_of_seq(assignments):
    """Every canonical call has its CS231n form (README, "Courses"): nothing is dropped."""
    assert not dropped_checks(assignments["cs231n_rnn"].contract)
    assert len(assignments["cs231n_rnn"].checks) == len(assignments["seq"].checks)


def _dressed(contract, path: Path) -> types.ModuleType:
    """A canonical cnn variant, rewritten (by the adapter's inverse) in the course's convention."""
    code = load(path, path.name)
    namespace = types.ModuleType(path.stem)
    exec(compile(code.text, str(path), "exec"), namespace.__dict__)  # noqa: S102 - our own test files
    return course_reference(contract, namespace)


@pytest.mark.parametrize("course", COURSES)
@pytest.mark.parametrize("variant", sorted(p.name for p in CNN_VARIANTS.glob("*.py")))
def test_every_mistake_costs_the_same_under_the_courses_names_and_layouts(assignments, course, variant):
    """Each cnn variant, dressed in the course's convention, fails the same checks (of the
    functions the course has) with the same diagnoses as under cnn."""
    _costs_the_same(assignments, course, CNN_VARIANTS / variant)


@pytest.mark.parametrize("variant", sorted(p.name for p in SEQ_VARIANTS.glob("*.py")))
def test_every_seq_mistake_costs_the_same_under_cs231ns_names_and_layouts(assignments, variant):
    """Each seq variant, dressed in CS231n's assignment 3 convention ((in, out) weights,
    (out, cache) pairs, backward(dout, cache)), fails the same checks with the same
    diagnoses as under seq."""
    _costs_the_same(assignments, "cs231n_rnn", SEQ_VARIANTS / variant)


def _costs_the_same(assignments, course: str, path: Path) -> None:
    graded_course = assignments[course]
    contract = graded_course.contract
    base = assignments[contract.info.based_on]
    reference = importlib.import_module(base.reference_module)
    oracle = ReferenceOracle(base.reference_module)
    canonical = grade(base, student_from(path, base.functions), oracle, seed=11)
    module = _dressed(contract, path)
    dressed = in_process_student(contract, module, reference)
    base_names = {c.id.split(".", 1)[1] for c in base.checks}
    results = [r for r in grade(graded_course, dressed, oracle, seed=11,
                                fixtures=in_process_fixtures(contract, module, reference))
               if r.id.split(".", 1)[1] in base_names]  # the course's own checks have no twin in the base

    def key(check_id: str) -> tuple[str, str]:  # (canonical function, check name)
        function, name = check_id.split(".", 1)
        return (contract.functions[function].implements if function in contract.functions else function, name)

    kept = {key(c.id) for c in graded_course.checks}
    # A backward that takes its forward's cache cannot be called where that forward fails:
    # it loses its checks too, named as such (submission.forward_failed), and nothing else.
    cascaded = {key(r.id) for r in results if r.diagnoses == ["submission.forward_failed"]}
    lost = {key(r.id) for r in results if not r.passed and r.max_score > 0} - cascaded
    expected = {(r.function, r.id.split(".", 1)[1]) for r in canonical if not r.passed and r.max_score > 0}
    assert lost == expected & kept, json.dumps(summary(results)["failed"], indent=1)
    forwards_lost = {f for f, _ in expected}
    for function, _ in cascaded:
        takes = [p.cache_of for part in contract.implementing(function) for p in part.call if p.kind == "cache"]
        assert any(contract.functions[f].implements in forwards_lost for f in takes), function
    codes = {d for r in results if key(r.id) in expected for d in r.diagnoses}
    assert codes == {d for r in canonical if (r.function, r.id.split(".", 1)[1]) in lost for d in r.diagnoses}
    # Every code a mistake earns under the course is one its README lists for that function.
    listed = contract.canonical.diagnoses
    for r in results:
        function = key(r.id)[0]
        for code in r.diagnoses:
            assert code in listed.get(function, []) or code.startswith("submission."), (r.id, code)
    if not lost:
        assert sum(r.score for r in results) == pytest.approx(sum(r.max_score for r in results))


# ------------------------------------------------------------------ the bundled example classes
EXPECTED_EXAMPLES = {
    "fman45": {
        "anna": (100, []),  # vectorised, float64
        "bertil": (100, []),  # loops, float32, np.heaviside at 0
        "carin": (None, ["softmax.min_shift"]),  # the skeleton's minimum
        "david": (None, ["input.mutated", "softmax.labels_shifted"]),  # the skeleton's labels -= 1
        "erik": (None, ["submission.bad_return"]),  # dldb of shape (out,), not (out, 1)
        "fredrik": (99, []),  # takes labels of shape (N,) only: fman45's own check (checks.py)
    },
    "cs231n": {
        "alice": (100, []),  # naive loops
        "bob": (100, []),  # caches holding closures and a class instance
        "carol": (None, ["conv.flipped_kernel"]),
        "dave": (None, ["pool.grad_overwritten_on_overlap"]),  # = instead of += on overlapping windows
    },
}

EXPECTED_EXAMPLES["cs231n_rnn"] = {
    "alice": (100, []),  # the handout's layout: sequences loop over their step functions
    "bob": (100, []),  # vectorised, caches as dicts holding a closure
    "carol": (None, ["lstm.gate_order_wrong"]),  # PyTorch's i, f, g, o
    "dave": (None, ["lstm.no_forget_path"]),  # lstm_backward hands each step a zero dnext_c
    # dprev_c left at zero: lstm_backward, built on the step, carries no cell gradient back either
    "erin": (None, ["lstm.dc_prev_missing", "lstm.no_forget_path"]),
    "frank": (None, ["input.mutated"]),  # dnext_c += ... (seen in a student's code)
}


@pytest.mark.parametrize("mode", [pytest.param("bwrap", marks=pytest.mark.skipif(
    not __import__("grader.sandbox", fromlist=["bwrap_works"]).bwrap_works(), reason="no bubblewrap")), "none"])
@pytest.mark.parametrize("course", ALL_COURSES)
def test_the_bundled_course_examples_grade_as_their_files_say(tmp_path, course, mode):
    from grader.cli import main

    out = tmp_path / "out"
    assert main([str(ROOT / "examples" / "submissions" / course), "-a", course, "--out", str(out), "-q",
                 "--sandbox", mode]) == 0
    got = {s["student"]: s for s in json.loads((out / "results.json").read_text())["submissions"]}
    assert set(got) == set(EXPECTED_EXAMPLES[course])
    for student, (score, codes) in EXPECTED_EXAMPLES[course].items():
        assert got[student]["diagnoses"] == codes, (student, got[student]["diagnoses"])
        if score is not None:
            assert got[student]["score"] == pytest.approx(score), student
        else:
            assert 50 < got[student]["score"] < 100, student


# ------------------------------------------------------------------ your own course, from the README
def _readme_blocks(section: str) -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    body = text[text.index(f"### {section}"):]
    body = body[:body.index("\n## ")]
    import re

    return {lang: code for lang, code in re.findall(r"```(\w+)\n(.*?)```", body, flags=re.S)}


def test_a_course_built_from_the_readme_alone_grades_like_a_shipped_one(tmp_path):
    from grader.cli import main

    blocks = _readme_blocks("Your own course")
    folder = tmp_path / "course"
    folder.mkdir()
    (folder / "contract.toml").write_text(blocks["toml"])
    (folder / "checks.py").write_text(blocks["python"])
    cls = tmp_path / "class"
    for student, forward in (("right", "W @ X + b"), ("no_bias", "W @ X")):
        (cls / student).mkdir(parents=True)
        (cls / student / "dense.py").write_text(
            "import numpy as np\n\n"
            f"def dense_forward(X, W, b):\n    return {forward}\n\n"
            "def dense_backward(dZ, X, W, b):\n    return W.T @ dZ, dZ @ X.T, dZ.sum(axis=1, keepdims=True)\n")
    out = tmp_path / "out"
    assert main([str(cls), "--course", str(folder), "--out", str(out), "-q", "--sandbox", "none"]) == 0
    got = {s["student"]: s for s in json.loads((out / "results.json").read_text())["submissions"]}
    assert got["right"]["score"] == got["right"]["max_score"] == 110  # 100 in the contract, 10 of its own
    lost = {c["id"] for c in got["no_bias"]["checks"] if not c["passed"]}
    assert "dense_forward.one_example_as_a_column" in lost and all(i.startswith("dense_forward.") for i in lost)


def test_a_course_whose_own_check_fails_on_the_reference_is_refused(tmp_path, capsys):
    from grader.cli import main

    blocks = _readme_blocks("Your own course")
    folder = tmp_path / "course"
    folder.mkdir()
    (folder / "contract.toml").write_text(blocks["toml"])
    (folder / "checks.py").write_text(blocks["python"].replace("np.allclose(got, expected)",
                                                                "np.allclose(got, expected + 1)"))
    (tmp_path / "class").mkdir()
    assert main([str(tmp_path / "class"), "--course", str(folder), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "one_example_as_a_column" in err and "Traceback" not in err


def test_a_courses_helper_module_is_placed_beside_the_graded_file(tmp_path):
    """CS231n students import course modules they do not write (im2col, fast_layers): a
    course's provided_files travel with every submission, unless it brings its own."""
    from grader.cli import main

    folder = tmp_path / "course"
    folder.mkdir()
    contract = _readme_blocks("Your own course")["toml"].replace(
        'based_on = "cnn"', 'based_on = "cnn"\nprovided_files = ["helpers.py"]')
    (folder / "contract.toml").write_text(contract)
    (folder / "helpers.py").write_text("def times(W, X):\n    return W @ X\n")
    body = ("import numpy as np\nfrom helpers import times\n\n"
            "def dense_forward(X, W, b):\n    return times(W, X) + b\n\n"
            "def dense_backward(dZ, X, W, b):\n    return W.T @ dZ, dZ @ X.T, dZ.sum(axis=1, keepdims=True)\n")
    cls = tmp_path / "class"
    (cls / "uses_it").mkdir(parents=True)
    (cls / "uses_it" / "dense.py").write_text(body)
    (cls / "own_copy").mkdir()
    (cls / "own_copy" / "dense.py").write_text(body)
    (cls / "own_copy" / "helpers.py").write_text("def times(W, X):\n    return 2 * (W @ X)\n")  # theirs wins
    out = tmp_path / "out"
    assert main([str(cls), "--course", str(folder), "--out", str(out), "-q", "--sandbox", "none"]) == 0
    got = {s["student"]: s for s in json.loads((out / "results.json").read_text())["submissions"]}
    assert got["uses_it"]["score"] == 100
    assert got["own_copy"]["score"] < 100


def test_a_provided_file_outside_the_course_folder_is_refused(tmp_path):
    (tmp_path / "contract.toml").write_text(GOOD.replace('based_on = "cnn"',
                                                          'based_on = "cnn"\nprovided_files = ["../x.py"]'))
    with pytest.raises(ContractError, match="line 5.*not a file inside"):
        load_contract(tmp_path / "contract.toml")


def test_no_kit_is_built_for_checks_that_import_the_reference(tmp_path, capsys):
    """A course whose own checks import the reference outside a @kit_recorded function
    would carry the solution in its kit: none is built, and the output folder stays empty."""
    from grader.cli import main

    course = tmp_path / "course"
    course.mkdir()
    (course / "contract.toml").write_text(GOOD)
    (course / "checks.py").write_text(
        "from reference import cnn as solution  # the whole model solution, at the top of the file\n"
        "from grader.checks import Registry\n\nregistry = Registry()\n\n\n"
        "@registry.check('dense', kind='numeric', points=1)\n"
        "def same_as_solution(course, rng):\n"
        "    x, w, b = rng.standard_normal((3, 2)), rng.standard_normal((4, 3)), rng.standard_normal((4, 1))\n"
        "    course.dense(x, w, b)\n")
    assert main(["kit", "--course", str(course), "--out", str(tmp_path / "kit")]) == 2
    err = capsys.readouterr().err
    assert "import the reference" in err and "checks.py" in err
    assert not (tmp_path / "kit").exists() or not any((tmp_path / "kit").iterdir())