"""Tests of the student templates in assignments/<name>/template/.

The .py templates must offer every contract function with the reference's exact
signature, document every array's shape, and hold no solution: each body only
raises NotImplementedError. The notebooks must be valid version-4 notebooks,
equal to what their notebook.py builds now (so they cannot drift from the .py
templates), carry the same stubs, and end with the self-check call.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import inspect
import io
import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from assignments.cnn import ASSIGNMENT as CNN
from assignments.rnn import ASSIGNMENT as RNN
from grader.source import defined_functions, load

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = {a.name: a for a in (CNN, RNN)}
NAMES = sorted(ASSIGNMENTS)

# Parameters that are numbers or a random generator, not arrays: their docstring
# entries need no shape.
NOT_ARRAYS = {"n", "f", "pad", "stride", "size", "x0", "rng"}

LECTURE_X1 = [[1, -2, 0, 5], [7, 0, 1, -3], [2, -2, 2, -2], [-5, -4, 3, 1]]
LECTURE_X2 = [[0, -1, 2, 0], [-4, 9, 6, 5], [3, 2, 1, 0], [0, 1, 3, -3]]
LECTURE_FILTER = [[1, -2], [3, 1]]
LECTURE_Y = [[25, 27, 15], [0, -2, 10], [-13, -9, 23]]


# ---------------------------------------------------------------------- helpers
def template_dir(name: str) -> Path:
    return ROOT / "assignments" / name / "template"


def template_path(name: str) -> Path:
    return template_dir(name) / ASSIGNMENTS[name].file_name


def notebook_path(name: str) -> Path:
    return template_dir(name) / f"{name}.ipynb"


def load_file(path: Path, module_name: str):
    """Import a file that is not on the import path (templates, notebook builders)."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def template_module(name: str):
    return load_file(template_path(name), f"_template_{name}")


def builder(name: str):
    return load_file(template_dir(name) / "notebook.py", f"_notebook_{name}")


def reference(name: str):
    return importlib.import_module(ASSIGNMENTS[name].reference_module)


def function_sources(path: Path) -> dict[str, str]:
    """Each top-level function's source text, by name, as ast cuts it out."""
    source = path.read_text(encoding="utf-8")
    return {node.name: ast.get_source_segment(source, node)
            for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)}


def solution_code(source: str) -> list[str]:
    """What in a module's source goes beyond a stub: one line per finding.

    A stub function holds its docstring and one `raise NotImplementedError("...")`
    with a message, nothing else; no `return` with a value appears anywhere.
    """
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Return) and node.value is not None:
            found.append(f"line {node.lineno}: return with a value")
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        body = node.body
        has_doc = (bool(body) and isinstance(body[0], ast.Expr)
                   and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str))
        rest = body[1:] if has_doc else body
        raised = rest[0].exc if len(rest) == 1 and isinstance(rest[0], ast.Raise) else None
        is_stub = (isinstance(raised, ast.Call) and isinstance(raised.func, ast.Name)
                   and raised.func.id == "NotImplementedError" and len(raised.args) == 1
                   and isinstance(raised.args[0], ast.Constant)
                   and isinstance(raised.args[0].value, str) and raised.args[0].value.strip())
        if not has_doc:
            found.append(f"{node.name}: no docstring")
        if not is_stub:
            found.append(f"{node.name}: the body is more than raise NotImplementedError(\"...\")")
    return found


def docstring_entries(doc: str) -> dict[str, str]:
    """The `- name: text` entries of a CS231n-style docstring, continuation lines joined."""
    entries, current = {}, None
    for line in doc.splitlines():
        match = re.match(r"- (\w+): (.*)", line)
        if match:
            current = match.group(1)
            entries[current] = match.group(2)
        elif current and line.startswith("  "):
            entries[current] += " " + line.strip()
        else:
            current = None
    return entries


SHAPE = re.compile(r"\((?:[^()]*,)+[^()]*\)|same shape as \w+")


def valid_inputs(name: str, function: str) -> dict:
    """Keyword arguments of the documented shapes for one contract function."""
    rng = np.random.default_rng(0)
    if name == "seq":  # N 2, T 3, D 4, H 5, K 6 words
        x, h0, words = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 5)), rng.integers(0, 6, size=(2, 3))
        U, W, b = rng.normal(size=(5, 4)), rng.normal(size=(5, 5)), rng.normal(size=5)
        Ug, Wg, bg = rng.normal(size=(20, 4)), rng.normal(size=(20, 5)), rng.normal(size=20)
        step = dict(x=x[:, 0], h_prev=h0, U=U, W=W, b=b)
        lstm_step = dict(x=x[:, 0], h_prev=h0, c_prev=rng.normal(size=(2, 5)), U=Ug, W=Wg, b=bg)
        return {
            "rnn_step_forward": step,
            "rnn_step_backward": dict(dh=rng.normal(size=(2, 5)), **step),
            "rnn_forward": dict(x=x, h0=h0, U=U, W=W, b=b),
            "rnn_backward": dict(dh=rng.normal(size=(2, 3, 5)), x=x, h0=h0, U=U, W=W, b=b),
            "word_embedding_forward": dict(x=words, E=rng.normal(size=(6, 4))),
            "word_embedding_backward": dict(dout=rng.normal(size=(2, 3, 4)), x=words, E=rng.normal(size=(6, 4))),
            "lstm_step_forward": lstm_step,
            "lstm_step_backward": dict(dh=rng.normal(size=(2, 5)), dc=rng.normal(size=(2, 5)), **lstm_step),
            "lstm_forward": dict(x=x, h0=h0, U=Ug, W=Wg, b=bg),
            "lstm_backward": dict(dh=rng.normal(size=(2, 3, 5)), x=x, h0=h0, U=Ug, W=Wg, b=bg),
        }[function]
    if name == "cnn":
        x = rng.normal(size=(2, 5, 5, 3))
        w, b = rng.normal(size=(3, 3, 3, 4)), rng.normal(size=4)
        pool_x = rng.normal(size=(2, 4, 4, 3))
        lin_x, lin_w, lin_b = rng.normal(size=(2, 6)), rng.normal(size=(6, 4)), rng.normal(size=4)
        return {
            "conv_output_size": dict(n=7, f=3, pad=1, stride=2),
            "conv2d_forward": dict(x=x, w=w, b=b, stride=1, pad=1),
            "conv2d_backward": dict(dy=rng.normal(size=(2, 5, 5, 4)), x=x, w=w, b=b, stride=1, pad=1),
            "maxpool_forward": dict(x=pool_x, size=2, stride=2),
            "maxpool_backward": dict(dy=rng.normal(size=(2, 2, 2, 3)), x=pool_x, size=2, stride=2),
            "relu_forward": dict(x=lin_x),
            "relu_backward": dict(dy=rng.normal(size=(2, 6)), x=lin_x),
            "linear_forward": dict(x=lin_x, w=lin_w, b=lin_b),
            "linear_backward": dict(dy=rng.normal(size=(2, 4)), x=lin_x, w=lin_w, b=lin_b),
            "softmax_cross_entropy": dict(z=rng.normal(size=(2, 4)), labels=np.array([1, 3])),
        }[function]
    T, D, H, K = 4, 3, 5, 3  # D == K so that the same weights also serve rnn_sample
    p = dict(h0=rng.normal(size=H), U=rng.normal(size=(H, D)), W=rng.normal(size=(H, H)),
             V=rng.normal(size=(K, H)), b=rng.normal(size=H), c=rng.normal(size=K))
    x, y = rng.normal(size=(T, D)), rng.integers(0, K, size=T)
    # rnn_loss and rnn_backward take the forward outputs; the reference makes
    # them consistent (rows of yhat that are probability distributions).
    h, yhat = reference("rnn").rnn_forward(x, **p)
    return {
        "rnn_forward": dict(x=x, **p),
        "rnn_loss": dict(yhat=yhat, y=y),
        "rnn_backward": dict(x=x, y=y, h=h, yhat=yhat, **p),
        "rnn_sample": dict(x0=1, n=4, rng=np.random.default_rng(1), **p),
        "birnn_forward": dict(x=x, h0=p["h0"], g0=rng.normal(size=H), Uf=p["U"], Wf=p["W"], bf=p["b"],
                              Ub=rng.normal(size=(H, D)), Wb=rng.normal(size=(H, H)),
                              bb=rng.normal(size=H), V=rng.normal(size=(K, 2 * H)), c=p["c"]),
    }[function]


def read_notebook(name: str) -> nbformat.NotebookNode:
    return nbformat.read(notebook_path(name), as_version=nbformat.NO_CONVERT)


def code_cells(nb) -> list[str]:
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def run_cells(nb, name: str, functions: dict | None = None) -> tuple[dict, str]:
    """Run the notebook's code cells in order, as a student whose functions are
    `functions` (default: the reference's) would; the self-check cell is left out,
    since grader.selfcheck is not what these tests are about. Returns the
    namespace and everything printed."""
    functions = functions or {f: getattr(reference(name), f) for f in ASSIGNMENTS[name].functions}
    stubs = set(function_sources(template_path(name)).values())
    namespace, out = {}, io.StringIO()
    with contextlib.redirect_stdout(out):
        for source in code_cells(nb):
            if source in stubs or "grader.selfcheck" in source:
                continue
            exec(compile(source, f"<{name}.ipynb>", "exec"), namespace)  # noqa: S102 - our own notebook
            namespace.update(functions)  # the student's functions, defined by the skipped stub cells
    return namespace, out.getvalue()


# ------------------------------------------------------------- .py templates
@pytest.mark.parametrize("name", NAMES)
def test_template_defines_exactly_the_contract(name):
    tree = ast.parse(template_path(name).read_text(encoding="utf-8"))
    functions = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    assert sorted(functions) == sorted(ASSIGNMENTS[name].functions)
    # Besides the functions: the module docstring and `import numpy as np`, nothing else.
    others = [node for node in tree.body if not isinstance(node, ast.FunctionDef)]
    assert ast.get_docstring(tree)
    assert [ast.unparse(node) for node in others[1:]] == ["import numpy as np"]


@pytest.mark.parametrize("name", NAMES)
def test_signatures_equal_the_reference(name):
    template, ref = template_module(name), reference(name)
    for function in ASSIGNMENTS[name].functions:
        ours = inspect.signature(getattr(template, function)).parameters.values()
        theirs = inspect.signature(getattr(ref, function)).parameters.values()
        assert [(p.name, p.kind, p.default) for p in ours] == \
               [(p.name, p.kind, p.default) for p in theirs], function


@pytest.mark.parametrize("name", NAMES)
def test_template_holds_no_solution_code(name):
    assert solution_code(template_path(name).read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("name", NAMES)
def test_the_solution_check_catches_real_code(name):
    # The check above must be able to fail: on the model solution it flags
    # every contract function, and the returns.
    source = (ROOT / "reference" / f"{name}.py").read_text(encoding="utf-8")
    found = solution_code(source)
    assert any("return with a value" in f for f in found)
    for function in ASSIGNMENTS[name].functions:
        assert any(f.startswith(f"{function}: the body") for f in found), function


@pytest.mark.parametrize("name", NAMES)
def test_stubs_raise_not_implemented_on_valid_inputs(name):
    template, ref = template_module(name), reference(name)
    for function in ASSIGNMENTS[name].functions:
        # The reference accepts the inputs, so they are valid ones.
        getattr(ref, function)(**valid_inputs(name, function))
        with pytest.raises(NotImplementedError, match=function):
            getattr(template, function)(**valid_inputs(name, function))


@pytest.mark.parametrize("name", NAMES)
def test_docstrings_document_every_argument_and_array_shape(name):
    template = template_module(name)
    for function in ASSIGNMENTS[name].functions:
        fn = getattr(template, function)
        doc = inspect.getdoc(fn)
        entries = docstring_entries(doc)
        for param in inspect.signature(fn).parameters:
            assert param in entries, f"{function}: no '- {param}:' entry"
            if param not in NOT_ARRAYS:
                assert SHAPE.search(entries[param]), f"{function}: {param}'s entry gives no shape"
        returns = doc[doc.index("Returns"):]
        assert SHAPE.search(returns) or function in ("conv_output_size", "rnn_loss", "rnn_sample"), \
            f"{function}: the returned arrays' shapes are missing"


def test_docstring_entry_parser_sees_missing_shapes():
    # The shape test above relies on this parser; a shapeless entry must show.
    entries = docstring_entries("Inputs:\n- x: input images\n- w: filters,\n  shape (f_h, f_w)\n")
    assert entries == {"x": "input images", "w": "filters, shape (f_h, f_w)"}
    assert not SHAPE.search(entries["x"]) and SHAPE.search(entries["w"])


@pytest.mark.parametrize("name, must_say", [
    ("cnn", ["(N, H, W, C)", "(f_h, f_w, C_in, C_out)", "NumPy", "Never write into an input array",
             "grade cnn_layers.py", "python -m grader cnn_layers.py"]),
    ("rnn", ["a(t)    = b + W h(t-1) + U x(t)", "h(t)    = tanh(a(t))", "o(t)    = c + V h(t)",
             "yhat(t) = softmax(o(t))", "L       = sum_t -log yhat(t)[y(t)]", "NumPy",
             "Never write into an input array", "grade rnn_layers.py", "python -m grader rnn_layers.py"]),
])
def test_module_docstring_states_the_conventions(name, must_say):
    doc = ast.get_docstring(ast.parse(template_path(name).read_text(encoding="utf-8")))
    for text in must_say:
        assert text in doc, text


# ------------------------------------------------------------------ notebooks
@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_a_valid_version_4_notebook(name):
    nb = read_notebook(name)
    assert nb.nbformat == 4
    nbformat.validate(nb)


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_equals_a_fresh_build(name):
    # If this fails, run `python assignments/<name>/template/notebook.py` and commit the result.
    committed = json.loads(notebook_path(name).read_text(encoding="utf-8"))
    assert committed == json.loads(nbformat.writes(builder(name).build()))


@pytest.mark.parametrize("name", NAMES)
def test_notebook_carries_every_stub_of_the_template(name):
    cells = code_cells(read_notebook(name))
    assert cells[0] == "import numpy as np"
    for function, source in function_sources(template_path(name)).items():
        assert cells.count(source) == 1, function


@pytest.mark.parametrize("name", NAMES)
def test_build_refuses_a_template_function_it_leaves_out(name, tmp_path, monkeypatch):
    module = builder(name)
    extended = tmp_path / ASSIGNMENTS[name].file_name
    extended.write_text(template_path(name).read_text(encoding="utf-8")
                        + '\n\ndef extra(x):\n    """New."""\n    raise NotImplementedError("extra")\n')
    monkeypatch.setattr(module, "TEMPLATE", extended)
    with pytest.raises(ValueError, match="extra"):
        module.build()


@pytest.mark.parametrize("name", NAMES)
def test_grader_finds_every_contract_function_in_the_notebook(name):
    code = load(notebook_path(name), f"{name}.ipynb")
    assert set(ASSIGNMENTS[name].functions) <= defined_functions(code.text)
    assert code.skipped_cells == []


@pytest.mark.parametrize("name", NAMES)
def test_notebook_ends_with_the_self_check(name):
    cells = read_notebook(name).cells
    assert cells[-1].cell_type == "code"
    assert cells[-1].source == "from grader.selfcheck import check\n\ncheck()"
    # It checks the kernel's functions: nothing asks the student to save first.
    assert cells[-2].cell_type == "markdown" and "saved or not" in cells[-2].source
    assert "Save the notebook" not in nbformat.writes(read_notebook(name))


@pytest.mark.parametrize("name", NAMES)
def test_demo_cells_run_through_with_the_stubs(name):
    # Run All on the template as handed out: each demo cell that calls the student's
    # functions says what is not written yet (or what it waits for), and none stops
    # the run before the check at the end.
    template = template_module(name)
    namespace = {f: getattr(template, f) for f in ASSIGNMENTS[name].functions}
    stubs = set(function_sources(template_path(name)).values())
    demos = 0
    for source in code_cells(read_notebook(name)):
        if source in stubs or "grader.selfcheck" in source:
            continue
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            exec(compile(source, f"<{name}.ipynb>", "exec"), namespace)  # noqa: S102 - our own notebook
        if any(f"{f}(" in source for f in ASSIGNMENTS[name].functions):
            demos += 1
            assert re.search(r"is not written yet|This needs", out.getvalue()), source
        assert "Traceback" not in out.getvalue()
    assert demos == {"cnn": 2, "rnn": 4}[name]


@pytest.mark.parametrize("name", NAMES)
def test_demo_cells_report_a_raising_function_and_go_on(name, capsys):
    # A mistake that raises shows Python's report of it (with the line), and Run All goes on.
    ref = reference(name)
    functions = {f: getattr(ref, f) for f in ASSIGNMENTS[name].functions}
    broken = "conv2d_forward" if name == "cnn" else "rnn_forward"

    def raising(*args, **kwargs):
        raise IndexError("index 9 is out of bounds")

    functions[broken] = raising
    run_cells(read_notebook(name), name, functions)
    assert "IndexError: index 9 is out of bounds" in capsys.readouterr().err


@pytest.mark.parametrize("name", NAMES)
def test_example_cells_run_with_a_correct_solution(name):
    # A student whose functions are right must get through every cell.
    _, printed = run_cells(read_notebook(name), name)
    if name == "cnn":
        assert "5 7 3" in printed
    else:
        differences = [float(v) for v in re.findall(r"largest difference (\S+)", printed)]
        assert len(differences) == 6 and max(differences) < 1e-6


def test_cnn_first_exercise_is_the_two_channel_example_by_hand():
    cells = read_notebook("cnn").cells
    exercises = [c.source for c in cells if c.cell_type == "markdown" and c.source.startswith("## Exercise")]
    first = exercises[0]
    assert first.startswith("## Exercise 1:") and "two-channel" in first
    for row in LECTURE_X1 + LECTURE_X2 + LECTURE_FILTER:
        assert " & ".join(map(str, row)) in first, row
    assert "y(1,1,1)" in first and "y(1,2,1)" in first
    # The answer is for the student to find: no markdown cell gives it away.
    for cell in cells:
        if cell.cell_type == "markdown":
            assert not re.search(r"\b25\b", cell.source) and not re.search(r"\b27\b", cell.source)


def test_cnn_exercise_1_code_builds_the_example_and_prints_the_output():
    nb = read_notebook("cnn")
    sources = [c.source for c in nb.cells]
    check = next(i for i, s in enumerate(sources) if "y = conv2d_forward(x, w, b)" in s)
    # In notebook order it comes after exercise 1 and after the stub it calls.
    assert sources.index(function_sources(template_path("cnn"))["conv2d_forward"]) < check
    assert next(i for i, s in enumerate(sources) if s.startswith("## Exercise 1:")) < check

    namespace, printed = run_cells(nb, "cnn")
    x, w, b = namespace["x"], namespace["w"], namespace["b"]
    assert x.shape == (1, 4, 4, 2) and w.shape == (2, 2, 2, 1) and b.shape == (1,)
    np.testing.assert_array_equal(x[0, :, :, 0], LECTURE_X1)
    np.testing.assert_array_equal(x[0, :, :, 1], LECTURE_X2)
    np.testing.assert_array_equal(w[:, :, 0, 0], LECTURE_FILTER)
    np.testing.assert_array_equal(w[:, :, 1, 0], LECTURE_FILTER)
    np.testing.assert_array_equal(b, [0])
    expected = str(np.array(LECTURE_Y, dtype=float))
    assert expected in printed


def test_cnn_exercise_1_code_flags_a_flipped_kernel_and_goes_on():
    # The cell's comparison with 25 and 27 must catch the classic mistake, true
    # convolution with the filter rotated by 180 degrees, without stopping Run All.
    ref = reference("cnn")
    functions = {f: getattr(ref, f) for f in CNN.functions}
    _, right = run_cells(read_notebook("cnn"), "cnn", functions)
    functions["conv2d_forward"] = lambda x, w, b, stride=1, pad=0: \
        ref.conv2d_forward(x, w[::-1, ::-1], b, stride, pad)
    _, flipped = run_cells(read_notebook("cnn"), "cnn", functions)
    assert "y(1,1,1) = 25 (the slide: 25), y(1,2,1) = 27 (the slide: 27)" in right
    assert "differ from the slide" not in right
    assert "differ from the slide" in flipped and "(the slide: 25)" in flipped
