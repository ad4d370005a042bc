"""A course's student kit (fman45, cs231n, cs231n_rnn, and a course of the instructor's own): built
from the toolkit, run where there is no reference, it grades the course's own example
class with the instructor's public verdicts and diagnoses, correct files to full public
marks; it holds no reference code and nothing of the hidden checks, of the course or of
the canonical assignment it is built on; the template grades to 0 with "not implemented
yet" for every function students write.

One fresh virtual environment (no system packages, so no reference) serves every kit
here: the fman45 kit is installed into it with pip, as students install it; the others
run from their folders on its Python (PYTHONPATH), which keeps this module fast.
"""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import venv
import zipfile
from pathlib import Path

import pytest
from test_contracts import _readme_blocks
from test_kit import clean_env, public_view

from grader.assignment import available, course_assignment
from grader.cli import main
from grader.compare import DEFAULT_TOLERANCES
from grader.contract.adapt import course_reference
from grader.contract.build import canonical_check_id, in_process_student
from grader.kit import COURSE_CHECKS, RECORDED
from grader.oracle import RecordingOracle
from grader.runner import run_check
from grader.testing import InProcessStudent

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "submissions"
COURSES = ["fman45", "cs231n", "cs231n_rnn"]
# The course's example class: a correct file, and a mistake with the code it must be named by.
CORRECT = {"fman45": "anna", "cs231n": "alice", "cs231n_rnn": "alice"}
MISTAKE = {"fman45": ("carin", "softmax.min_shift"), "cs231n": ("carol", "conv.flipped_kernel"),
           "cs231n_rnn": ("carol", "lstm.gate_order_wrong")}


def _clean_env(**extra) -> dict:
    """The environment without the toolkit's own path: the kit's Python must not see it."""
    return {**clean_env(), **extra}


@pytest.fixture(scope="module")
def kits(tmp_path_factory):
    work = tmp_path_factory.mktemp("course-kits")
    folders = {}
    for name in COURSES:
        folders[name] = work / f"kit-{name}"
        assert main(["kit", "--assignment", name, "--out", str(folders[name])]) == 0
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=True)  # fresh: no system site-packages, so no reference
    python = env_dir / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", str(folders["fman45"])],
                             capture_output=True, text=True, timeout=600, env=_clean_env())
    assert install.returncode == 0, install.stderr[-2000:]
    return {"work": work, "python": python, "folders": folders, "assignments": available()}


def run_in_kit(kits, name: str, *args, cwd=None) -> subprocess.CompletedProcess:
    """Python in the kits' environment: the installed fman45 kit, or another kit's folder."""
    env = _clean_env() if name == "fman45" else _clean_env(PYTHONPATH=str(kits["folders"][name]))
    return subprocess.run([str(kits["python"]), *args], capture_output=True, text=True, timeout=600,
                          cwd=cwd or kits["work"], env=env)


@pytest.mark.parametrize("name", COURSES)
def test_the_reference_is_not_importable_and_the_kit_is_the_one_run(kits, name):
    run = run_in_kit(kits, name, "-c", "import grader, reference")
    assert run.returncode != 0 and "No module named 'reference'" in run.stderr
    where = run_in_kit(kits, name, "-c", "import grader; print(grader.__file__)")
    installed = name == "fman45"
    assert ("site-packages" in where.stdout) == installed, where.stdout
    if not installed:
        assert where.stdout.startswith(str(kits["folders"][name]))


@pytest.mark.parametrize("name", COURSES)
def test_the_course_kit_holds_no_reference_code(kits, name):
    reference = importlib.import_module(kits["assignments"][name].reference_module)
    solution_lines = set()
    for function, fn in inspect.getmembers(reference, inspect.isfunction):
        if fn.__module__ != reference.__name__:
            continue
        body = inspect.getsource(fn).split('"""')[-1]
        solution_lines |= {line.strip() for line in body.splitlines() if len(line.strip()) >= 25}
    assert solution_lines
    folder = kits["folders"][name]
    for path in folder.rglob("*"):
        assert "reference" not in path.relative_to(folder).parts
        if path.suffix in (".py", ".ipynb", ".json", ".toml", ".md"):
            text = path.read_text(encoding="utf-8")
            leaked = [line for line in solution_lines if line in text]
            assert not leaked, (path, leaked[:3])


def _recorded_by(checks, student, oracle, fixtures) -> set[str]:
    for check in checks:
        run_check(check, student, oracle, DEFAULT_TOLERANCES, fixtures=fixtures)
    return set(oracle.recorded)


@pytest.mark.parametrize("name", COURSES)
def test_the_course_kit_holds_nothing_of_the_hidden_checks(kits, name):
    course = kits["assignments"][name]
    base = kits["assignments"][course.contract.info.based_on]
    public = [c for c in course.checks if c.visibility == "public"]
    # In the kit: exactly the course's public checks, with their points.
    listing = run_in_kit(kits, name, "-c", "from grader.assignment import available; "
                         f"a = available()['{name}']; "
                         "print('\\n'.join(f'{c.id} {c.visibility} {c.points:g}' for c in a.checks))")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.split("\n")[:-1] == [f"{c.id} public {c.points:g}" for c in public]
    # No code of a hidden check, the course's or the canonical assignment's; and no code of
    # a check the course does not use.
    used = {canonical_check_id(course.contract, c.id) for c in public}
    absent = [c for c in base.checks if c.id not in used]
    assert any(c.visibility == "hidden" for c in absent)
    for check in absent:
        module = check.run.__module__.split(".")
        kit_file = kits["folders"][name].joinpath(*module[:-1], module[-1] + ".py")
        assert kit_file.is_file(), kit_file
        assert f"def {check.run.__name__}(" not in kit_file.read_text(), check.id
    # No expected value that only hidden checks ask for (the course's, through its adapter,
    # and the canonical assignment's: both ask the reference canonical calls).
    reference = importlib.import_module(course.reference_module)
    module = course_reference(course.contract, reference)
    fixtures = {"course": InProcessStudent(module, list(course.contract.functions)), "course_oracle": module}
    hidden = [c for c in course.checks if c.visibility == "hidden"]
    hidden_oracle = RecordingOracle(reference)
    _recorded_by(hidden, in_process_student(course.contract, module, hidden_oracle), hidden_oracle, fixtures)
    _recorded_by([c for c in base.checks if c.visibility == "hidden"], InProcessStudent(reference, base.functions),
                 hidden_oracle, {})
    public_oracle = RecordingOracle(reference)
    _recorded_by(public, in_process_student(course.contract, module, public_oracle), public_oracle, fixtures)
    hidden_only = set(hidden_oracle.recorded) - set(public_oracle.recorded)
    recorded = json.loads((kits["folders"][name] / "assignments" / name / RECORDED).read_text())
    assert hidden_only and not hidden_only & set(recorded)
    with zipfile.ZipFile(kits["work"] / f"kit-{name}.zip") as archive:
        names = archive.namelist()
    for file in (RECORDED, COURSE_CHECKS, "contract.toml"):
        assert f"assignments/{name}/{file}" in names
    assert course.file_name in names and not any("reference" in n for n in names)


@pytest.mark.parametrize("name", COURSES)
def test_the_course_kit_gives_the_instructors_public_verdicts_and_diagnoses(kits, name, tmp_path):
    instructor_out, kit_out = tmp_path / "instructor", tmp_path / "kit"
    # A fixed seed: the instructor's inputs are not the kit's, and a directional gradient check
    # can miss a discrete mistake on a few seeds (david's shifted labels, about 1 in 40).
    assert main([str(EXAMPLES / name), "-a", name, "--out", str(instructor_out), "-q", "--sandbox", "none",
                 "--seed", "1"]) == 0
    run = run_in_kit(kits, name, "-m", "grader", str(EXAMPLES / name), "--out", str(kit_out), "-q")
    assert run.returncode == 0, run.stderr
    instructor = json.loads((instructor_out / "results.json").read_text())
    in_kit = json.loads((kit_out / "results.json").read_text())
    assert in_kit["sandbox"] == "spawn" and in_kit["assignment"] == name
    assert public_view(in_kit) == public_view(instructor)
    got = {s["student"]: s for s in in_kit["submissions"]}
    public_total = sum(c.points for c in kits["assignments"][name].checks if c.visibility == "public")
    correct = got[CORRECT[name]]
    assert correct["score"] == pytest.approx(correct["max_score"]) == pytest.approx(public_total)
    assert all(c["passed"] for c in correct["checks"])
    student, code = MISTAKE[name]
    assert code in got[student]["diagnoses"] and got[student]["score"] < public_total
    for sub in in_kit["submissions"]:
        assert "grader.not_recorded" not in sub["diagnoses"], sub["student"]


@pytest.mark.parametrize("name", COURSES)
def test_the_course_template_grades_to_zero_with_not_implemented_yet(kits, name):
    folder = kits["folders"][name]
    course = kits["assignments"][name]
    assert (folder / course.file_name).read_text() == \
        (ROOT / "assignments" / name / "template" / course.file_name).read_text()
    run = run_in_kit(kits, name, "-m", "grader", course.file_name, "--out", "template-report", cwd=folder)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    result = json.loads((folder / "template-report" / "results.json").read_text())["submissions"][0]
    assert result["status"] == "graded" and result["score"] == 0.0
    # Each function's checks fail on the first stub they reach: the loss of a function split
    # in two (softmaxloss_forward + softmaxloss_backward) is asked first, and a backward that
    # takes its forward's cache cannot be called before that forward works.
    for shown in {c.function for c in course.checks if c.points}:
        parts = [course.contract.functions[p] for p in shown.split(" + ")]
        forwards = [q.cache_of for p in parts for q in p.call if q.kind == "cache"]
        assert any(f"{p.name} is not implemented yet" in run.stdout for p in parts) or all(
            f"{f}, whose cache it takes, failed on the same inputs ({f} raised NotImplementedError" in run.stdout
            for f in forwards) and forwards, shown
    assert {p for c in result["checks"] if c["max_score"] for p in c["function"].split(" + ")} == \
        set(course.functions)
    # The notebook too: the same stubs, graded from the saved file.
    notebook = run_in_kit(kits, name, "-m", "grader", f"{name}.ipynb", "--out", "notebook-report", cwd=folder)
    assert notebook.returncode == 0, notebook.stderr
    result = json.loads((folder / "notebook-report" / "results.json").read_text())["submissions"][0]
    assert result["status"] == "graded" and result["score"] == 0.0 and result["source"] == f"{name}.ipynb"


def test_a_kit_of_the_instructors_own_course_runs_its_own_public_checks(kits, tmp_path):
    """`grade kit --course FOLDER`: the README's own course, its own check in checks.py (public)
    and one more that is hidden, which the kit must leave out."""
    blocks = _readme_blocks("Your own course")
    folder = tmp_path / "course"
    folder.mkdir()
    (folder / "contract.toml").write_text(blocks["toml"])
    hidden = blocks["python"].replace('kind="numeric", points=10)', 'kind="numeric", points=5, visibility="hidden")') \
        .replace("def one_example_as_a_column(", "def secret_two_examples(")
    assert "visibility=\"hidden\"" in hidden
    (folder / "checks.py").write_text(blocks["python"] + "\n\n" + hidden.split("registry = Registry()", 1)[1])
    kit = tmp_path / "kit-dense"
    assert main(["kit", "--course", str(folder), "--out", str(kit)]) == 0
    course = course_assignment(folder)
    assert {c.id for c in course.checks if c.visibility == "hidden"} == {"dense_forward.secret_two_examples"}
    kit_checks = (kit / "assignments" / "dense" / "checks.py").read_text()
    assert "one_example_as_a_column" in kit_checks and "secret_two_examples" not in kit_checks
    assert (kit / "dense.py").is_file() and "def dense_forward(X, W, b)" in (kit / "dense.py").read_text()
    cls = tmp_path / "class"
    for student, forward in (("right", "W @ X + b"), ("no_bias", "W @ X")):
        (cls / student).mkdir(parents=True)
        (cls / student / "dense.py").write_text(
            "import numpy as np\n\n"
            f"def dense_forward(X, W, b):\n    return {forward}\n\n"
            "def dense_backward(dZ, X, W, b):\n    return W.T @ dZ, dZ @ X.T, dZ.sum(axis=1, keepdims=True)\n")
    run = subprocess.run([str(kits["python"]), "-m", "grader", str(cls), "--out", str(tmp_path / "out"), "-q"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path,
                         env=_clean_env(PYTHONPATH=str(kit)))
    assert run.returncode == 0, run.stderr
    got = {s["student"]: s for s in json.loads((tmp_path / "out" / "results.json").read_text())["submissions"]}
    public_total = sum(c.points for c in course.checks if c.visibility == "public")
    assert got["right"]["score"] == got["right"]["max_score"] == pytest.approx(public_total)
    lost = {c["id"] for c in got["no_bias"]["checks"] if not c["passed"]}
    assert "dense_forward.one_example_as_a_column" in lost and all(i.startswith("dense_forward.") for i in lost)
    assert not any("grader.not_recorded" in s["diagnoses"] for s in got.values())


def test_a_course_named_like_the_assignment_it_is_built_on_gets_no_kit(tmp_path, capsys):
    folder = tmp_path / "course"
    folder.mkdir()
    (folder / "contract.toml").write_text(_readme_blocks("Your own course")["toml"].replace('name = "dense"',
                                                                                          'name = "cnn"'))
    assert main(["kit", "--course", str(folder), "--out", str(tmp_path / "kit")]) == 2
    assert "named like the assignment it is built on ('cnn')" in capsys.readouterr().err
    assert not (tmp_path / "kit").exists()
    assert main(["kit", "--out", str(tmp_path / "kit")]) == 2
    assert "--assignment NAME, or --course FOLDER" in capsys.readouterr().err


@pytest.mark.parametrize("name", COURSES)
def test_the_course_kit_mistake_modules_hold_stubs_and_output_tests_only(kits, name):
    """seq's LSTM models are an LSTM with a switch per mistake: with the switches off, the
    solution. In a kit, every function of a mistakes module is a stub answered from the
    recording, or marked @kit_shipped (a test of the student's output, no solution)."""
    import ast

    files = sorted((kits["folders"][name] / "assignments").rglob("*mistakes.py"))
    assert files
    for path in files:
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.FunctionDef):
                continue
            marks = {getattr(d, "id", None) for d in node.decorator_list}
            body = [n for n in node.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
            stub = len(body) == 1 and isinstance(body[0], ast.Raise)
            assert (marks == {"kit_recorded"} and stub) or marks == {"kit_shipped"}, (path.name, node.name)
    if name == "cs231n_rnn":
        text = (kits["folders"][name] / "assignments" / "seq" / "lstm_mistakes.py").read_text()
        for helper in ("def _step(", "def step_backward(", "def backward(", "def _run("):
            assert helper not in text
