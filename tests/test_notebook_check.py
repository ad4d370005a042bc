"""The notebook check (grader/selfcheck): `check()` grades the functions as the running
kernel holds them, unsaved edits included, in a grading process of its own; it shows an
HTML summary inline in Jupyter and says nothing about the template's demo cells, which
never stop Run All; `grade NOTEBOOK` leaves every call of it out.

The kernel tests execute the notebooks with nbclient. Kernels start slowly, so one
executed cnn notebook serves most of them: the template as handed out (Run All, ending in
its check cell), then cells a student runs without saving (a fixed ReLU using a helper
and a constant from other cells, a flipped convolution, the demo cell again), then
check() and check("relu_forward").
"""

from __future__ import annotations

import html
import json
import linecache
import os
import re
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell

from grader.cli import main
from grader.diagnoses import describe
from grader.selfcheck.kernel import collect
from grader.source import load

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = {"cnn": ROOT / "assignments" / "cnn" / "template" / "cnn.ipynb",
             "rnn": ROOT / "assignments" / "rnn" / "template" / "rnn.ipynb",
             "cs231n": ROOT / "assignments" / "cs231n" / "template" / "cs231n.ipynb"}
CHECK_CELL = "from grader.selfcheck import check\n\ncheck()"


# ------------------------------------------------------- the kernel's functions
def run_cells(cells: list[str]) -> tuple[dict, list[tuple[str, str]], dict[str, str]]:
    """Run cells as IPython does: each compiled under a file name of its own whose text
    linecache holds. Returns the namespace, the history and the origin of each file."""
    namespace: dict = {"__name__": "__main__"}
    history, origins = [], {}
    for number, text in enumerate(cells, 1):
        filename = f"<test-cell-{number}-{abs(hash(text))}>"
        linecache.cache[filename] = (len(text), None, [line + "\n" for line in text.splitlines()], filename)
        exec(compile(text, filename, "exec"), namespace)  # noqa: S102 - the test's own cells
        history.append((f"In [{number}]", text))
        origins[filename] = f"In [{number}]"
    return namespace, history, origins


CELLS = [
    "import math\nimport numpy as np\nfrom numpy.lib.stride_tricks import sliding_window_view as windows",
    "EPS = 1e-12\nWEIGHTS = np.arange(3.0)\nscale = lambda v: v * 2",
    "def _positive(x):\n    return x > 0\n\n\ndef relu_forward(x):\n    return np.where(_positive(x), x, 0.0) + EPS",
    "def relu_backward(dy, x):\n    return dy * _positive(x) * WEIGHTS.sum() / WEIGHTS.sum()",
    "y = relu_forward(np.ones(3))\nprint(y)\nunused = 5",
    "def relu_forward(x):\n    # edited and run, never saved\n"
    "    return np.maximum(x, 0) + 0 * windows(np.ones(3), 2).sum() + 0 * scale(1)",
]


def test_the_module_holds_the_kernels_functions_and_what_they_use_only():
    namespace, history, origins = run_cells(CELLS)
    module = collect(namespace, ["relu_forward", "relu_backward", "linear_forward"], history, origins)
    text = module.text
    assert module.missing == ["linear_forward"] and module.notes == []
    # The version run last, not the first one; what it uses, and what relu_backward uses.
    assert "# edited and run, never saved" in text and "np.where(_positive(x), x, 0.0)" not in text
    assert "def _positive(x):" in text
    for line in ("import numpy as np", "from numpy.lib.stride_tricks import sliding_window_view as windows",
                 "WEIGHTS = np.arange(3.0)", "scale = lambda v: v * 2"):
        assert line in text.splitlines(), line
    # Nothing the functions do not use: not the demo cell, not the first version's EPS.
    for absent in ("import math", "EPS", "print(y)", "unused", "y = relu_forward"):
        assert absent not in text, absent
    # Where each part was run, to the line.
    lines = text.splitlines()
    assert lines[lines.index("WEIGHTS = np.arange(3.0)") - 1] == "# In [2]"
    assert module.where(lines.index("    # edited and run, never saved") + 1) == "In [6], line 2"
    # And it runs as the kernel's functions do.
    fresh: dict = {}
    exec(compile(text, "built.py", "exec"), fresh)  # noqa: S102 - built from the test's cells
    x = np.array([-1.0, 0.5, 2.0])
    np.testing.assert_array_equal(fresh["relu_forward"](x), namespace["relu_forward"](x))
    np.testing.assert_array_equal(fresh["relu_backward"](np.ones(3), x), [0.0, 1.0, 1.0])


def test_what_cannot_be_carried_is_named_and_never_touched():
    # An object of the notebook's own class, made where no history shows how: the module
    # cannot hold it, says so, and none of its code ran to find that out.
    cells = ["class Spy:\n    touched = []\n\n    def __getattribute__(self, name):\n"
             "        Spy.touched.append(name)\n        raise RuntimeError(name)\n\n"
             "    def __repr__(self):\n        Spy.touched.append('repr')\n        return 'spy'",
             "def relu_forward(x):\n    return THING(x)"]
    namespace, history, origins = run_cells(cells)
    namespace["THING"] = namespace["Spy"]()
    module = collect(namespace, ["relu_forward"], history, origins)
    assert namespace["Spy"].touched == []
    assert len(module.notes) == 1 and "`THING`" in module.notes[0] and "cannot carry it" in module.notes[0]
    assert "def relu_forward(x):" in module.text


def test_check_outside_jupyter_prints_text_and_returns_the_report(tmp_path, capsys, monkeypatch):
    from grader.selfcheck import check

    monkeypatch.chdir(tmp_path)
    namespace, _, _ = run_cells(CELLS[:4])  # no cell history here: WEIGHTS cannot be carried
    report = check("relu_forward", "relu_backward", namespace=namespace, assignment="cnn")
    printed = capsys.readouterr().out
    assert re.search(r"ok +relu_forward +4/4", printed) and re.search(r"FAIL relu_backward +0/6", printed)
    assert "NameError: name 'WEIGHTS' is not defined" in printed and "note: `WEIGHTS`" in printed
    assert report.score == 4 and report.max_score == 10 and report.result.status == "graded"
    assert "Full page: reports/" in printed and (tmp_path / "reports" / "results.json").is_file()
    with pytest.raises(ValueError, match="did you mean 'relu_forward'"):
        check("relu_foward", namespace=namespace, assignment="cnn")
    # When grading cannot run, it says why, and there is no result.
    (tmp_path / "taken").write_text("a file, not a folder")
    failed = check(namespace=namespace, assignment="cnn", out=tmp_path / "taken")
    assert failed.result is None and "cannot create the output folder" in failed.summary.error
    assert "could not run" in capsys.readouterr().out


# ---------------------------------------------------- grading the notebook itself
def test_the_grader_leaves_every_self_check_statement_out(tmp_path):
    cells = ["import numpy as np\nfrom grader.selfcheck import check, run as saved  # the check",
             "def relu_forward(x):\n    return np.maximum(x, 0)",
             "check()\nx = 5",
             'check("relu_forward")',
             'import math; saved("cnn.ipynb"); y = 3',
             "import grader.selfcheck as sc\nsc.check()\nreport = check()",
             "report\nprint(report.score); z = 1"]  # what check() returned goes too
    path = tmp_path / "student.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[new_code_cell(c) for c in cells]), path)
    code = load(path, path.name)
    assert "check(" not in code.text and "selfcheck" not in code.text and "saved(" not in code.text
    assert "report" not in code.text and "pass; z = 1" in code.text
    assert "import numpy as np" in code.text and "import math; pass; y = 3" in code.text
    assert code.skipped_cells == [] and code.notes == []
    # Lines stay where they were: x = 5 is still line 2 of code cell 3.
    line = code.text.splitlines().index("x = 5") + 1
    assert code.where(line) == "cell 3, line 2"
    # A function of the student's own called check is the student's: kept.
    own = tmp_path / "own.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[new_code_cell("def check(v):\n    return v"),
                                                   new_code_cell("check(3)")]), own)
    assert "check(3)" in load(own, own.name).text


# ----------------------------------------------------------------- the kernel
def execute(nb, folder: Path):
    """Run every cell of `nb` in a fresh kernel working in `folder`; stops at an error."""
    from nbclient import NotebookClient

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute(env=env)
    return nb


def outputs_of(nb, source: str) -> list:
    cells = [c for c in nb.cells if c.cell_type == "code" and c.source == source]
    assert len(cells) >= 1, source
    return cells[-1].outputs


def the_html(outputs) -> str:
    shown = [o for o in outputs if o.output_type == "display_data" and "text/html" in o.data]
    assert len(shown) == 1, outputs
    return shown[0].data["text/html"]


FIXED_RELU = """\
def relu_forward(x):
    return np.where(positive(x), x, SLOPE * x)


def relu_backward(dy, x):
    return np.where(positive(x), dy, SLOPE * dy) + NOTHING[0]"""

# A constant, an array (only the cell history says how it was made) and a helper.
HELPERS = "SLOPE = 0.0\nNOTHING = np.zeros(1)\n\n\ndef positive(x):\n    return x > 0"

RAISING = "def linear_forward(x, w, b):\n    return x @ w + b + x[10000]"

FLIPPED_CONV = """\
def conv2d_forward(x, w, b, stride=1, pad=0):
    N, H, W, C = x.shape
    f_h, f_w, _, C_out = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    H_out, W_out = (H + 2 * pad - f_h) // stride + 1, (W + 2 * pad - f_w) // stride + 1
    y = np.zeros((N, H_out, W_out, C_out))
    flipped = w[::-1, ::-1]  # true convolution: the lecture's layer does not rotate the filter
    for i in range(H_out):
        for j in range(W_out):
            patch = xp[:, i * stride:i * stride + f_h, j * stride:j * stride + f_w, :]
            y[:, i, j, :] = np.tensordot(patch, flipped, axes=([1, 2, 3], [0, 1, 2])) + b
    return y"""

ONE_FUNCTION = 'report = check("relu_forward")'


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    """The cnn template run top to bottom, then a student's unsaved work and its checks."""
    folder = tmp_path_factory.mktemp("notebook-cnn")
    shutil.copyfile(TEMPLATES["cnn"], folder / "cnn.ipynb")  # on disk: the stubs, all along
    nb = nbformat.read(TEMPLATES["cnn"], as_version=4)
    demo = next(c.source for c in nb.cells if "y = conv2d_forward(x, w, b)" in c.source)
    template_cells = len(nb.cells)
    nb.cells += [new_code_cell(HELPERS), new_code_cell(FIXED_RELU), new_code_cell(FLIPPED_CONV),
                 new_code_cell(demo), new_code_cell(RAISING), new_code_cell("check()"),
                 new_code_cell(ONE_FUNCTION), new_code_cell("report")]
    execute(nb, folder)
    return {"nb": nb, "folder": folder, "template_cells": template_cells, "demo": demo}


def test_the_template_runs_top_to_bottom_to_its_check(cnn_run):
    nb = cnn_run["nb"]
    template = nb.cells[:cnn_run["template_cells"]]
    assert template[-1].source == CHECK_CELL
    for cell in template:
        if cell.cell_type == "code":
            assert cell.execution_count is not None, cell.source  # it ran: nothing stopped Run All
            assert not [o for o in cell.outputs if o.output_type == "error"], cell.source
    printed = "".join(o.get("text", "") for c in template if c.cell_type == "code" for o in c.outputs)
    assert "conv_output_size is not written yet" in printed and "conv2d_forward is not written yet" in printed
    assert "Traceback" not in printed


def test_the_template_check_says_what_is_not_written_and_nothing_of_the_demo_cells(cnn_run):
    outputs = cnn_run["nb"].cells[cnn_run["template_cells"] - 1].outputs
    # One display and nothing else: no stray 0 (an exit status), no printed grader output.
    assert [o.output_type for o in outputs] == ["display_data"]
    text, page = outputs[0].data["text/plain"], html.unescape(the_html(outputs))
    for function in ("conv_output_size", "conv2d_forward", "softmax_cross_entropy"):
        assert re.search(rf"{function} +0/\d+ +not written yet", text), function
    for said in (text, page):
        assert "cell" not in said.replace("its cell", "") and "statement" not in said
    assert "Notebook check: 0 / 100" in page


def test_check_sees_work_that_was_run_but_never_saved(cnn_run):
    nb, folder = cnn_run["nb"], cnn_run["folder"]
    # The file on disk still holds the stubs: what the check saw came from the kernel.
    on_disk = nbformat.read(folder / "cnn.ipynb", as_version=4)
    assert not any("SLOPE" in c.source for c in on_disk.cells)
    outputs = outputs_of(nb, "check()")
    text, page = outputs[0].data["text/plain"], html.unescape(the_html(outputs))
    assert re.search(r"ok +relu_forward +4/4", text) and re.search(r"ok +relu_backward +6/6", text)
    flipped = describe("conv.flipped_kernel")
    assert flipped.sentence in page and flipped.hint in page and flipped.sentence in text
    assert re.search(r"FAIL conv2d_forward", text)
    assert "reports/cnn_layers.html" in page and (folder / "reports" / "cnn_layers.html").is_file()
    results = json.loads((folder / "reports" / "results.json").read_text())["submissions"][0]
    relu = [c for c in results["checks"] if c["function"] in ("relu_forward", "relu_backward")]
    assert relu and all(c["passed"] for c in relu)
    # A failing line is named in the cell that was run: In [n], line 2 of linear_forward's cell.
    raising = next(c for c in nb.cells if c.source == RAISING)
    assert re.search(rf"linear_forward raised IndexError.*\(In \[{raising.execution_count}\], line 2\)", text), text
    # Re-running the demo cell with the flipped layer prints the comparison, and goes on.
    demo_output = "".join(o.get("text", "") for o in nb.cells[cnn_run["template_cells"] + 3].outputs)
    assert "y(1,1,1) = " in demo_output
    assert "differ from the slide" in demo_output


def test_check_of_one_function_shows_that_function(cnn_run):
    outputs = outputs_of(cnn_run["nb"], ONE_FUNCTION)
    assert [o.output_type for o in outputs] == ["display_data"]
    text = outputs[0].data["text/plain"]
    assert re.search(r"ok +relu_forward +4/4", text) and "conv2d_forward" not in text
    assert "Notebook check: 4 / 4" in html.unescape(the_html(outputs))
    # The report it returned shows again where it is asked for, once.
    again = outputs_of(cnn_run["nb"], "report")
    assert [o.output_type for o in again] == ["display_data"] and again[0].data == outputs[0].data


def test_grading_the_executed_notebook_leaves_the_checks_out(cnn_run, tmp_path):
    path = tmp_path / "cnn.ipynb"
    nbformat.write(cnn_run["nb"], path)
    assert main([str(path), "--out", str(tmp_path / "out"), "-q"]) == 0
    result = json.loads((tmp_path / "out" / "results.json").read_text())["submissions"][0]
    # The demo cells no longer stop the top level, and no check() call reaches the worker.
    assert result["load_mode"] == "full" and result["notes"] == []
    scores = {c["id"]: c["passed"] for c in result["checks"]}
    assert scores["relu_forward.values"] and not scores["conv2d_forward.random_values"]


@pytest.mark.parametrize("name", ["rnn", "cs231n"])
def test_other_templates_run_top_to_bottom_to_their_check(name, tmp_path):
    nb = execute(nbformat.read(TEMPLATES[name], as_version=4), tmp_path)
    assert nb.cells[-1].source == CHECK_CELL
    assert all(c.execution_count is not None for c in nb.cells if c.cell_type == "code")
    outputs = nb.cells[-1].outputs
    assert [o.output_type for o in outputs] == ["display_data"]
    text = outputs[0].data["text/plain"]
    assert f"Notebook check ({name})" in text and "not written yet" in text
    assert "<table" in the_html(outputs)
