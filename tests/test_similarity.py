"""`grade similarity OUT --submissions PATH`: a class is graded, then its submissions
are ranked by how alike their code is, the template's code left out.

The class: two distinct correct solutions (alice, bob); dave, a copy of alice's with
every name renamed, the comments changed and the functions in reverse order; erin, a
notebook holding bob's code renamed the same way, one function a cell; tina, who
handed in the untouched template; uma and vic, who kept the template's docstrings and
stubs and each wrote two different functions; and a copy of uma's whose id and code
carry markup.
"""

from __future__ import annotations

import ast
import builtins
import json
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader import similarity
from grader.cli import main

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ROOT / "tests" / "submissions" / "cnn_variants"
TEMPLATE = ROOT / "assignments" / "cnn" / "template" / "cnn_layers.py"
HOSTILE = "</script><script>alert(1)</script>"
HOSTILE_ID = "<img src=x onerror=alert(2)>"
CONTRACT = {"conv_output_size", "conv2d_forward", "conv2d_backward", "maxpool_forward", "maxpool_backward",
            "relu_forward", "relu_backward", "linear_forward", "linear_backward", "softmax_cross_entropy"}


class _Rename(ast.NodeTransformer):
    """Every name the student chose gets another spelling; the contract's and NumPy's stay."""

    @staticmethod
    def _new(name: str) -> str:
        keep = name in CONTRACT or name == "np" or hasattr(builtins, name)
        return name if keep else f"my_{name.lower()}_v"

    def visit_Name(self, node):
        node.id = self._new(node.id)
        return node

    def visit_arg(self, node):
        node.arg = self._new(node.arg)
        return node

    def visit_keyword(self, node):
        self.generic_visit(node)
        if node.arg is not None and node.arg in ("stride", "pad", "size"):
            node.arg = self._new(node.arg)
        return node


def disguised_functions(path: Path) -> list[str]:
    """The file's functions, renamed, reformatted, recommented, last one first."""
    tree = _Rename().visit(ast.parse(path.read_text(encoding="utf-8")))
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    return [re.sub(r"^(def .*:)$", r"\1\n    # worked this out on my own, see my notes", ast.unparse(f),
                   count=1, flags=re.M) for f in reversed(functions)]


def fill_template(bodies: dict[str, str]) -> str:
    """The template with its docstrings and stubs, and these functions' bodies written in."""
    text = TEMPLATE.read_text(encoding="utf-8")
    for name, body in bodies.items():
        text, n = re.subn(rf'    raise NotImplementedError\("{name}:[^\n]*', body, text)
        assert n == 1, name
    return text


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class graded (--sandbox none, fast) and compared; the overview read before comparing."""
    work = tmp_path_factory.mktemp("similarity")
    subs = work / "class"
    subs.mkdir()

    def put(student: str, text: str, name: str = "cnn_layers.py") -> None:
        (subs / student).mkdir()
        (subs / student / name).write_text(text, encoding="utf-8")

    put("alice", (VARIANTS / "ok_loops.py").read_text())
    put("bob", (VARIANTS / "ok_im2col.py").read_text())
    put("dave", '"""Dave\'s layers, all my own."""\nimport numpy as np\n\n\n'
        + "\n\n\n".join(disguised_functions(VARIANTS / "ok_loops.py")) + "\n")
    cells = [new_markdown_cell("# Erin's CNN"), new_code_cell("import numpy as np")]
    cells += [new_code_cell(f) for f in disguised_functions(VARIANTS / "ok_im2col.py")]
    nbformat.write(new_notebook(cells=cells), subs / "erin.ipynb")
    put("tina", TEMPLATE.read_text())
    uma = {"conv_output_size": "    if f > n + 2 * pad or stride < 1 or pad < 0:\n        raise ValueError('no fit')\n"
                               "    return (n + 2 * pad - f) // stride + 1",
           "relu_forward": "    return np.where(x > 0, x, 0.0)"}
    put("uma", fill_template(uma))
    put("vic", fill_template({
        "linear_forward": "    out = np.dot(x, w)\n    return out + b[None, :]",
        "relu_backward": "    grad = dy.copy()\n    grad[x <= 0] = 0\n    return grad"}))
    put(HOSTILE_ID, fill_template({
        "conv_output_size": uma["conv_output_size"].replace("'no fit'", repr(HOSTILE)),
        "relu_forward": uma["relu_forward"] + f"  # {HOSTILE}"}))

    out = work / "out"
    assert main([str(subs), "--assignment", "cnn", "--sandbox", "none", "--out", str(out), "--quiet"]) == 0
    overview_before = (out / "index.html").read_text()
    assert main(["similarity", str(out), "--submissions", str(subs)]) == 0
    data = json.loads((out / "similarity.json").read_text())
    return {"out": out, "subs": subs, "data": data, "overview_before": overview_before}


def pair_of(data: dict, a: str, b: str) -> dict | None:
    return next((p for p in data["pairs"] if {p["a"], p["b"]} == {a, b}), None)


def test_renamed_reordered_copies_top_the_list(graded):
    data = graded["data"]
    alice = (graded["subs"] / "alice" / "cnn_layers.py").read_text().splitlines()
    dave = (graded["subs"] / "dave" / "cnn_layers.py").read_text().splitlines()
    # The disguise is real: hardly a line of alice's code is still there as it was.
    same = {line.strip() for line in alice if line.strip()} & {line.strip() for line in dave if line.strip()}
    assert same <= {"import numpy as np", "return y", "return dx", "return dx, dw, db", "return dx, dw, db"}, same
    top = {frozenset((p["a"], p["b"])) for p in data["pairs"][:3]}
    assert top == {frozenset(("alice", "dave")), frozenset(("bob", "erin")), frozenset(("uma", HOSTILE_ID))}, \
        data["pairs"][:4]
    for copy in data["pairs"][:3]:
        assert copy["similarity"] >= 0.9 and min(copy["share_a"], copy["share_b"]) >= 0.85, copy
    # Every other pair is clearly less alike: alice's loops and bob's im2col share their small layers.
    assert all(p["similarity"] <= 0.7 for p in data["pairs"][3:]), data["pairs"][3:5]
    # The notebook's code cells were compared, and its passages point into them.
    erin = pair_of(data, "bob", "erin")
    assert erin["file_b" if erin["b"] == "erin" else "file_a"] == "erin.ipynb" and erin["passages"]


def test_the_template_is_no_ones_code(graded):
    data = graded["data"]
    assert "tina" not in data["compared"]
    assert [n["reason"] for n in data["not_compared"] if n["student"] == "tina"] == [
        "tina/cnn_layers.py holds no code of its own beyond the template"]
    assert not [p for p in data["pairs"] if "tina" in (p["a"], p["b"])]
    # uma and vic kept the whole template, docstrings and stubs: none of it makes them alike.
    assert {"uma", "vic"} <= set(data["compared"])
    assert pair_of(data, "uma", "vic") is None, pair_of(data, "uma", "vic")
    assert data["template"] == ["assignments/cnn/template/cnn_layers.py", "assignments/cnn/template/cnn.ipynb"]


def test_without_the_template_left_out_uma_and_vic_would_look_alike():
    """The check above can fail: the template's stubs alone make them alike."""
    uma = fill_template({"relu_forward": "    return np.where(x > 0, x, 0.0)"})
    vic = fill_template({"relu_backward": "    grad = dy.copy()\n    grad[x <= 0] = 0\n    return grad"})
    bare = similarity.compare(similarity.fingerprint("uma", uma, set()), similarity.fingerprint("vic", vic, set()))
    assert bare is not None and bare.similarity > 0.5
    template = similarity.template_prints([TEMPLATE.read_text()])
    assert similarity.compare(similarity.fingerprint("uma", uma, template),
                              similarity.fingerprint("vic", vic, template)) is None


def test_the_templates_stubs_in_another_order_are_still_no_ones_code():
    tree = ast.parse(TEMPLATE.read_text())
    tree.body = tree.body[:2] + list(reversed(tree.body[2:]))  # docstring, import, then the stubs reversed
    shuffled = ast.unparse(tree)
    template = similarity.template_prints([TEMPLATE.read_text()])
    assert similarity.fingerprint("tina", shuffled, template).hashes == {}
    assert similarity.fingerprint("tina", shuffled, set()).hashes != {}


def test_the_page_shows_hostile_code_and_names_as_text(graded):
    page = (graded["out"] / "similarity.html").read_text()
    assert pair_of(graded["data"], "uma", HOSTILE_ID) is not None
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "<script" not in page and "<img" not in page


def test_the_page_says_it_is_no_verdict_and_only_the_overview_links_it(graded):
    out = graded["out"]
    page = (out / "similarity.html").read_text()
    assert "A list to look at, not a verdict." in page
    assert 'id="pair-1"' in page and "alice" in page and "dave" in page
    assert "similarity.html" not in graded["overview_before"]
    assert 'href="similarity.html"' in (out / "index.html").read_text()
    for student_page in out.glob("*.html"):
        if student_page.name not in ("index.html", "similarity.html"):
            assert "similarity" not in student_page.read_text(), student_page.name


def test_a_student_called_similarity_does_not_take_the_pages_name():
    from grader.report.view import file_names

    assert file_names(["similarity", "Similarity"], ".html") == {"similarity": "similarity-2.html",
                                                                 "Similarity": "Similarity-3.html"}


def test_names_and_literals_do_not_matter_the_structure_does():
    code = "def f(x, k=2):\n    # square it\n    y = x ** k + 1.5\n    return y\n"
    renamed = 'def g(inp, power=3):\n    """Docs."""\n    out = inp ** power + 7\n    return out\n'
    assert [kind for kind, _ in similarity.nodes(code)] == [kind for kind, _ in similarity.nodes(renamed)]
    other = "def f(x, k=2):\n    y = x * k + 1.5\n    return y\n"
    assert [kind for kind, _ in similarity.nodes(code)] != [kind for kind, _ in similarity.nodes(other)]


@pytest.mark.parametrize("make, args, message", [
    (lambda d: None, ["{d}/none", "--submissions", "{d}"], "grade the class first"),
    (lambda d: (d / "results.json").write_text('{"assignment": "cnn"}'), ["{d}", "--submissions", "{d}"],
     "not a results file"),
    (lambda d: (d / "results.json").write_text(
        '{"assignment": "nope", "toolkit_version": "0", "graded_at": "x"}'), ["{d}", "--submissions", "{d}"],
     "pass its --course FOLDER"),
    (lambda d: (d / "results.json").write_text(
        '{"assignment": "cnn", "toolkit_version": "0", "graded_at": "x"}'), ["{d}", "--submissions", "{d}/x.txt"],
     "not a folder or a .zip"),
])
def test_usage_errors_exit_2_with_one_line(tmp_path, capsys, make, args, message):
    make(tmp_path)
    assert main(["similarity"] + [a.format(d=tmp_path) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
