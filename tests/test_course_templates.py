"""A course's students' file, written from its contract (grader/contract/template.py), and
its README's tables (grader/contract/readme.py).

The shipped courses' templates are what their contracts write now; each holds exactly the
functions students write, with the course's names and parameters, stub bodies only, and a
docstring whose every array shape is the one the course's functions really take and
return (checked by calling the reference dressed as the course, not by reading the
generator); the course's own code is named in a comment, never written. The READMEs'
tables are current, and every diagnosis code a known mistake earns under a course is one
its README lists.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import types
from pathlib import Path

import nbformat
import numpy as np
import pytest
from test_contracts import _readme_blocks
from test_templates import docstring_entries, solution_code, valid_inputs

import reference.cnn
from grader.assignment import available
from grader.contract.adapt import course_reference
from grader.contract.build import in_process_student
from grader.contract.model import ContractError, load_contract
from grader.contract.readme import BEGIN, END, course_tables
from grader.contract.template import (SELF_CHECK_CELL, course_notebook, course_template, notebook_path,
                                     template_path)
from grader.source import defined_functions, load

ROOT = Path(__file__).resolve().parent.parent
COURSES = ["fman45", "cs231n", "cs231n_rnn"]


@pytest.fixture(scope="module")
def assignments():
    return available()


def function_sources_of(source: str) -> dict[str, str]:
    return {node.name: ast.get_source_segment(source, node)
            for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)}


def _module(source: str, name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(source, name, "exec"), module.__dict__)  # noqa: S102 - our own generated file
    return module


# ------------------------------------------------------------------ the templates
@pytest.mark.parametrize("name", COURSES)
def test_the_committed_template_is_what_the_contract_writes(assignments, name):
    # If this fails: python -m grader.contract.template assignments/<name>, and commit the result.
    course = assignments[name]
    assert template_path(course.contract).read_text(encoding="utf-8") == \
        course_template(course.contract, course.forbidden_imports)


@pytest.mark.parametrize("name", COURSES)
def test_the_template_holds_the_functions_students_write_as_stubs(assignments, name):
    course = assignments[name]
    source = template_path(course.contract).read_text(encoding="utf-8")
    tree = ast.parse(source)
    defined = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    assert defined == list(course.contract.graded_functions)
    assert solution_code(source) == []
    module = _module(source, f"_template_{name}")
    for part in course.contract.functions.values():
        if not part.graded:
            continue
        params = list(inspect.signature(getattr(module, part.name)).parameters)
        assert params == [p.name for p in part.call], part.name
        with pytest.raises(NotImplementedError, match=part.name):
            getattr(module, part.name)(*[None] * len(params))
        doc = " ".join(inspect.getdoc(getattr(module, part.name)).split())
        if part.description:
            assert " ".join(part.description.split()) in doc, part.name
    doc = ast.get_docstring(tree)
    assert f"grade {course.file_name}" in doc and f"python -m grader {course.file_name}" in doc
    assert all(m in doc for m in course.forbidden_imports)


@pytest.mark.parametrize("name", COURSES)
def test_the_committed_notebook_is_what_the_contract_writes_and_the_grader_reads_it(assignments, name):
    # If this fails: python -m grader.contract.template assignments/<name>, and commit the result.
    course = assignments[name]
    path = notebook_path(course.contract)
    committed = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    nbformat.validate(committed)
    assert json.loads(path.read_text()) == json.loads(nbformat.writes(course_notebook(course.contract,
                                                                                     course.forbidden_imports)))
    stubs = function_sources_of(template_path(course.contract).read_text(encoding="utf-8"))
    cells = [c.source for c in committed.cells if c.cell_type == "code"]
    assert cells[0] == "import numpy as np" and cells[-1] == SELF_CHECK_CELL == "from grader.selfcheck import check\n\ncheck()"
    for function, source in stubs.items():
        assert cells.count(source) == 1, function
    code = load(path, path.name)
    assert set(course.functions) <= defined_functions(code.text) and code.skipped_cells == []


def test_the_course_code_is_named_in_a_comment_never_written(assignments):
    contract = assignments["fman45"].contract
    source = template_path(contract).read_text(encoding="utf-8")
    comments = "\n".join(line for line in source.splitlines() if line.startswith("#"))
    for part in contract.functions.values():
        if not part.graded:
            assert f"{part.name}({', '.join(p.name for p in part.call)})" in comments, part.name
            assert f"def {part.name}" not in source
    for name in contract.info.provided:
        assert name in comments, name


SHAPE_TEXT = re.compile(r"shape (\((?:[^()]+)\))|same shape as (the forward's input|\w+)|(any shape)")


def _documented_shapes(doc: str) -> dict[str, str]:
    """`- name: ..., shape (a, b)` entries: each name's shape text, or `=other`, or `any`."""
    found = {}
    for name, text in docstring_entries(doc).items():
        match = SHAPE_TEXT.search(text)
        if match:
            found[name] = match.group(1) or (f"={match.group(2)}" if match.group(2) else "any")
    return found


def _spy(module: types.ModuleType, seen: dict) -> dict:
    """The course's functions, each recording its arguments and what it returned."""
    def wrap(name, fn):
        def spied(*args):
            out = fn(*args)
            seen.setdefault(name, (args, out))
            return out
        return spied
    return {name: wrap(name, fn) for name, fn in vars(module).items() if callable(fn) and not name.startswith("_")}


@pytest.mark.parametrize("name", COURSES)
def test_every_documented_shape_is_the_one_the_course_passes_and_returns(assignments, name):
    """Call the canonical functions (on the test inputs of tests/test_templates.py) through the
    course's adapter onto the reference dressed as the course; each course function's arguments
    and results must fit its docstring: the right number of axes, 1 where it says 1, and every
    axis name the same size wherever it appears in that docstring."""
    course = assignments[name]
    contract = course.contract
    module = _module(template_path(contract).read_text(encoding="utf-8"), f"_template_{name}")
    seen: dict = {}
    base = contract.info.based_on
    ref = course.reference()
    student = in_process_student(contract, _spy(course_reference(contract, ref), seen), ref)
    for canonical in dict.fromkeys(p.implements for p in contract.functions.values() if p.graded):
        getattr(student, canonical)(**valid_inputs(base, canonical))
    checked = 0
    for part in contract.functions.values():
        if not part.graded:
            continue
        args, out = seen[part.name]
        values = {p.name: a for p, a in zip(part.call, args)}
        forwards = [p.cache_of for p in part.call if p.kind == "cache"]
        if forwards:  # what the cache stands for: the forward's first argument
            values["the forward's input"] = seen[forwards[0]][0][0]
        outs = out if part.returns.is_tuple else (out,)
        values.update({r.course_name: o for r, o in zip(part.returns.items, outs) if r.name not in ("cache", "_")})
        shapes = _documented_shapes(inspect.getdoc(getattr(module, part.name)))
        sizes: dict[str, int] = {}
        for array, text in shapes.items():
            got = np.shape(values[array])
            if text == "any":
                continue
            if text.startswith("="):
                assert got == np.shape(values[text[1:]]), (part.name, array)
                continue
            axes = [a.strip() for a in text.strip("()").split(",") if a.strip()]
            assert len(axes) == len(got), (part.name, array, text, got)
            for axis, size in zip(axes, got):
                if axis == "1":
                    assert size == 1, (part.name, array, text, got)
                else:
                    assert sizes.setdefault(axis, size) == size, (part.name, array, axis, text, got)
            checked += 1
        documented = {p.name for p in part.call if p.kind == "value" and isinstance(values[p.name], np.ndarray)}
        assert documented <= set(shapes), (part.name, documented - set(shapes))
    assert checked >= 10


def test_the_handouts_shapes_as_the_courses_write_them(assignments):
    """The course's own layout and names, as issue 12 spells them out."""
    def entries(name, function):
        contract = assignments[name].contract
        module = _module(template_path(contract).read_text(encoding="utf-8"), f"_{name}")
        doc = inspect.getdoc(getattr(module, function))
        return docstring_entries(doc), doc

    fc, _ = entries("fman45", "fully_connected_forward")
    assert "shape (features, N)" in fc["X"] and "shape (out, features)" in fc["W"]
    assert "shape (out, 1)" in fc["b"] and "shape (out, N)" in fc["Z"]
    conv, doc = entries("cs231n", "conv_forward_naive")
    assert "shape (N, C, H, W)" in conv["x"] and "shape (F, C, HH, WW)" in conv["w"]
    assert "'stride'" in conv["conv_param"] and "'pad'" in conv["conv_param"]
    assert "Returns a tuple (out, cache):" in doc and "shape (N, F, H', W')" in conv["out"]
    assert "conv_backward_naive" in conv["cache"]
    back, _ = entries("cs231n", "conv_backward_naive")
    assert "conv_forward_naive" in back["cache"] and "shape (F, C, HH, WW)" in back["dw"]


def test_a_course_of_ones_own_gets_a_template_in_the_canonical_names(tmp_path):
    folder = tmp_path / "course"
    folder.mkdir()
    (folder / "contract.toml").write_text(_readme_blocks("Your own course")["toml"])
    contract = load_contract(folder / "contract.toml")
    source = course_template(contract, ("torch",))
    module = _module(source, "_dense")
    entries = docstring_entries(inspect.getdoc(module.dense_forward))
    assert "shape (D_in, N)" in entries["X"] and "shape (D_out, 1)" in entries["b"]
    assert "shape (D_out, N)" in entries["Z"]
    assert solution_code(source) == []


def test_course_axis_names_that_name_no_axis_are_refused_with_the_line(tmp_path):
    text = (ROOT / "assignments" / "fman45" / "contract.toml").read_text()
    text = text.replace('dims = { D_in = "features"', 'dims = { D_inn = "features"')
    (tmp_path / "contract.toml").write_text(text)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if row.startswith("dims ="))
    with pytest.raises(ContractError, match=rf"line {line}: 'D_inn' names no axis of 'cnn'; did you mean 'D_in'"):
        load_contract(tmp_path / "contract.toml")


def test_the_template_command_writes_the_file(tmp_path, capsys):
    from grader.contract.template import main

    out = tmp_path / "layers.py"
    assert main([str(ROOT / "assignments" / "cs231n"), "--out", str(out)]) == 0
    assert out.read_text() == template_path(available()["cs231n"].contract).read_text()
    assert main([str(tmp_path)]) == 2 and "no contract.toml" in capsys.readouterr().err


# ------------------------------------------------------------------ the READMEs
@pytest.mark.parametrize("name", COURSES)
def test_the_course_readme_tables_are_current(assignments, name):
    # If this fails: python -m grader.contract.readme assignments/<name>, and commit the result.
    readme = (ROOT / "assignments" / name / "README.md").read_text()
    tables = course_tables(assignments[name])
    assert tables in readme and readme.count(BEGIN) == readme.count(END) == 1
    assert f"**{assignments[name].max_score:g}**" in tables


def test_the_cs231n_readme_names_the_dropped_check_and_why():
    readme = (ROOT / "assignments" / "cs231n" / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `conv2d_backward.against_own_forward`"))
    assert "conv_forward_naive is defined only where" in row and "(stride 2, pad 1)" in row
    fman45 = (ROOT / "assignments" / "fman45" / "README.md").read_text()
    assert "None: every check of `cnn`" in fman45
    assert "`conv2d_forward` (the course's own `conv_with_padding_forward`)" in fman45


def test_the_declared_codes_are_the_catalogues():
    """canonical.toml's `diagnoses` (what a course's README lists) name codes the catalogue has,
    each under a function whose checks can name it (tests/test_contracts.py grades every known
    mistake under each course and checks that every code it earns is listed)."""
    from grader.contract.model import Canonical
    from grader.diagnoses import CATALOGUE, describe

    describe("input.mutated")  # loads every assignment's catalogue
    declared = Canonical.of("cnn").diagnoses
    codes = {c for codes in declared.values() for c in codes}
    cnn_codes = {c for c in CATALOGUE if c.split(".")[0] in ("conv", "pool", "softmax", "linear", "input")}
    assert codes == cnn_codes
