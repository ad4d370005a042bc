"""The student kit: built from the toolkit, installed in a fresh virtual environment
that has no reference, it gives the same public verdicts and diagnoses as the
instructor's run, holds no reference code and nothing of the hidden checks, and the
template grades to 0 with "not implemented yet" for every function."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import subprocess
import venv
import zipfile
from pathlib import Path

import pytest

from grader.assignment import available
from grader.cli import main
from grader.oracle import RecordingOracle
from grader.runner import run_check
from grader.testing import InProcessStudent

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = Path(__file__).parent / "submissions"


@pytest.fixture(scope="module", params=["cnn", "rnn"])
def kit(request, tmp_path_factory):
    name = request.param
    work = tmp_path_factory.mktemp(f"kit-{name}")
    folder = work / "kit"
    assert main(["kit", "--assignment", name, "--out", str(folder)]) == 0
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=True)  # fresh: no system site-packages, so no reference
    python = env_dir / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", str(folder)], capture_output=True,
                             text=True, timeout=600, env=clean_env())
    assert install.returncode == 0, install.stderr[-2000:]
    return {"name": name, "folder": folder, "zip": work / "kit.zip", "python": python, "work": work,
            "assignment": available()[name]}


def clean_env() -> dict:
    """This environment without PYTHONPATH, which may name the toolkit (and its reference)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def run_in_kit(kit, *args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(kit["python"]), *args], capture_output=True, text=True, timeout=600,
                          cwd=cwd or kit["work"], env=clean_env())


def public_view(results: dict) -> dict:
    """Per student: each public, scored check's verdict and diagnoses. Informational
    (0-point) checks are left out: the instructor's run draws other inputs than the kit's,
    and the end-to-end network's verdict on a loss that is wrong only for tiny
    probabilities (softmax_epsilon_in_log) depends on them."""
    return {s["student"]: {c["id"]: (c["passed"], c["diagnoses"]) for c in s["checks"]
                           if c["visibility"] == "public" and c["kind"] != "performance" and c["max_score"] > 0}
            for s in results["submissions"]}


def test_the_reference_is_not_importable_in_the_kit(kit):
    run = run_in_kit(kit, "-c", "import reference")
    assert run.returncode != 0 and "No module named 'reference'" in run.stderr


def test_the_kit_holds_no_reference_code(kit):
    reference = importlib.import_module(kit["assignment"].reference_module)
    # Every substantial line of the model solution's code, none of which may appear in the kit.
    solution_lines = set()
    for name in kit["assignment"].functions:
        body = inspect.getsource(getattr(reference, name)).split('"""')[-1]
        solution_lines |= {line.strip() for line in body.splitlines() if len(line.strip()) >= 25}
    assert solution_lines
    for path in kit["folder"].rglob("*"):
        assert "reference" not in path.relative_to(kit["folder"]).parts
        if path.suffix in (".py", ".ipynb", ".json", ".toml", ".md"):
            text = path.read_text(encoding="utf-8")
            leaked = [line for line in solution_lines if line in text]
            assert not leaked, (path, leaked[:3])


def test_the_kit_holds_nothing_of_the_hidden_checks(kit):
    assignment = kit["assignment"]
    hidden = [c for c in assignment.checks if c.visibility == "hidden"]
    public = [c for c in assignment.checks if c.visibility == "public"]
    assert hidden and public
    listing = run_in_kit(kit, "-c", f"import assignments.{kit['name']} as a; "
                         f"print('\\n'.join(c.id + ' ' + c.visibility for c in a.ASSIGNMENT.checks))")
    assert listing.returncode == 0, listing.stderr
    assert sorted(listing.stdout.split("\n")[:-1]) == sorted(f"{c.id} public" for c in public)
    kit_code = "\n".join(p.read_text() for p in (kit["folder"] / "assignments").rglob("*.py"))
    for check in hidden:
        assert f"def {check.run.__name__}(" not in kit_code, check.id
    # Expected values that only hidden checks ask for must not be in the recorded data.
    reference = importlib.import_module(assignment.reference_module)
    public_oracle, hidden_oracle = RecordingOracle(reference), RecordingOracle(reference)
    for checks, oracle in ((public, public_oracle), (hidden, hidden_oracle)):
        for check in checks:
            run_check(check, InProcessStudent(reference, assignment.functions), oracle,
                      __import__("grader.compare").compare.DEFAULT_TOLERANCES)
    hidden_only = set(hidden_oracle.recorded) - set(public_oracle.recorded)
    recorded = json.loads((kit["folder"] / "assignments" / kit["name"] / "recorded.json").read_text())
    assert hidden_only and not hidden_only & set(recorded)
    with zipfile.ZipFile(kit["zip"]) as archive:
        names = archive.namelist()
    assert f"assignments/{kit['name']}/recorded.json" in names and not any("reference" in n for n in names)


def test_the_kit_gives_the_instructors_public_verdicts_and_diagnoses(kit, tmp_path):
    variants = VARIANTS / f"{kit['name']}_variants"
    instructor_out, kit_out = tmp_path / "instructor", tmp_path / "kit"
    assert main([str(variants), "-a", kit["name"], "--out", str(instructor_out), "-q"]) == 0
    run = run_in_kit(kit, "-m", "grader", str(variants), "--out", str(kit_out), "-q")
    assert run.returncode == 0, run.stderr
    instructor = json.loads((instructor_out / "results.json").read_text())
    in_kit = json.loads((kit_out / "results.json").read_text())
    assert in_kit["sandbox"] == "spawn"
    assert public_view(in_kit) == public_view(instructor)
    assert any(not passed for student in public_view(in_kit).values() for passed, _ in student.values())
    for sub in in_kit["submissions"]:
        assert "grader.not_recorded" not in sub["diagnoses"], sub["student"]


def test_the_template_grades_to_zero_with_not_implemented_yet(kit):
    file_name = kit["assignment"].file_name
    run = run_in_kit(kit, "-m", "grader", file_name, "--out", "template-report", cwd=kit["folder"])
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    result = json.loads((kit["folder"] / "template-report" / "results.json").read_text())["submissions"][0]
    assert result["status"] == "graded" and result["score"] == 0.0
    for function in kit["assignment"].functions:
        assert f"{function} is not implemented yet" in run.stdout, function
    # The self-check's score is not the whole: it says what the hidden checks hold, and
    # names the student's own page (no class overview of one).
    checks = kit["assignment"].checks
    public = sum(c.points for c in checks if c.visibility == "public")
    hidden = sum(c.points for c in checks if c.visibility == "hidden")
    assert hidden > 0 and f"{public:g} public points checked; {hidden:g} more are in hidden checks at grading" \
        in run.stdout
    page = kit["folder"] / "template-report" / f"{Path(file_name).stem}.html"
    assert f"Your page: {page.relative_to(kit['folder'])}" in run.stdout and page.is_file()
    assert not (kit["folder"] / "template-report" / "index.html").exists()


# What a student who reads the kit finds: mistake models that compute from the inputs hold
# a correct solution with their switches off (bptt with recurrence=True is backpropagation
# through time), so the kit carries their recorded answers and a stub, never their code.
SOLUTION_HELPERS = {"cnn": ["naive_softmax_cross_entropy", "pool_backward_models"],
                    "rnn": ["forward_states", "bptt", "softmax_rows", "_first_step_probabilities"]}


def test_the_kit_carries_no_mistake_model_that_computes_a_solution(kit):
    import ast

    name = kit["name"]
    code = {p.name: p.read_text() for p in (kit["folder"] / "assignments" / name).glob("*.py")}
    defined = {}
    for file, text in code.items():
        for node in ast.parse(text).body:
            if isinstance(node, ast.FunctionDef):
                defined[node.name] = (file, node)
    for helper in SOLUTION_HELPERS[name]:
        if helper not in defined:
            continue  # dropped from the kit altogether
        file, node = defined[helper]
        body = [n for n in node.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
        assert len(body) == 1 and isinstance(body[0], ast.Raise), (file, helper)  # a stub
    # In the toolkit the same helpers compute; in the kit, a student calling them gets nothing.
    probe = ("import numpy as np\nfrom assignments.{n} import mistakes\n"
             "print(sorted(f for f in dir(mistakes) if callable(getattr(mistakes, f)) and not f[0].isupper()))\n")
    run = run_in_kit(kit, "-c", probe.format(n=name))
    assert run.returncode == 0, run.stderr
    present = set(eval(run.stdout))  # noqa: S307 - a list of names printed by the probe above
    assert "bptt" not in present and "forward_states" not in present
    if name == "rnn":
        attack = ("import numpy as np\nfrom assignments.rnn import mistakes\nr = np.random.default_rng(0)\n"
                  "T, D, H, K = 3, 4, 5, 4\nx, h0 = r.normal(size=(T, D)), r.normal(size=H)\n"
                  "U, W, V = r.normal(size=(H, D)), r.normal(size=(H, H)), r.normal(size=(K, H))\n"
                  "b, c, y = r.normal(size=H), r.normal(size=K), np.arange(T) % K\n"
                  "try:\n    mistakes.backward_models(x, y, h0, np.zeros((T, H)), np.zeros((T, K)), U, W, V, b, c)\n"
                  "except NotImplementedError as e:\n    print('stub:', e)\n")
        run = run_in_kit(kit, "-c", attack)
        assert run.returncode == 0 and run.stdout.startswith("stub:"), run.stdout + run.stderr


# One function written right, for the notebook check in the kit.
WRITTEN = {"cnn": ("relu_forward", "def relu_forward(x):\n    return np.maximum(x, 0)\n"),
           "rnn": ("rnn_loss", "def rnn_loss(yhat, y):\n    return -np.sum(np.log(yhat[np.arange(len(y)), y]))\n")}


def test_the_notebook_check_works_in_the_kit(kit, tmp_path):
    # check() outside Jupyter (a script: plain text), in the kit: the kit's assignment,
    # the spawn sandbox, the recorded values; the functions as the running process holds them.
    function, source = WRITTEN[kit["name"]]
    script = tmp_path / "work.py"
    script.write_text("import numpy as np\n\n" + source + "\nfrom grader.selfcheck import check\n\n"
                      f"report = check({function!r})\nprint(f'score {{report.score:g}} of {{report.max_score:g}}')\n")
    run = run_in_kit(kit, str(script), cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    points = sum(c.points for c in kit["assignment"].checks
                 if c.function == function and c.visibility == "public")
    assert f"score {points:g} of {points:g}" in run.stdout and "Traceback" not in run.stderr
    assert re.search(rf"ok +{function} +{points:g}/{points:g}", run.stdout), run.stdout
    results = json.loads((tmp_path / "reports" / "results.json").read_text())
    assert results["sandbox"] == "spawn" and results["seed"] is None  # the kit's run: recorded values
    checks = [c for c in results["submissions"][0]["checks"] if c["function"] == function]
    assert checks and all(c["passed"] for c in checks)


FAILING = {"cnn": "cnn_variants/conv_flipped_kernel.py", "rnn": "rnn_variants/bptt_no_recurrence.py"}


def test_the_pages_reproduction_runs_in_the_kit_with_the_recorded_values(kit, tmp_path):
    """A failed public check's page shows `grade FILE --check ID --show` (no seed: the kit's
    inputs are fixed); run in the kit, it prints the numbers the page shows."""
    import html
    import re
    import shutil

    folder = tmp_path / "mine"
    folder.mkdir()
    shutil.copy(VARIANTS / FAILING[kit["name"]], folder / kit["assignment"].file_name)
    run = run_in_kit(kit, "-m", "grader", kit["assignment"].file_name, "--out", "out", "-q", cwd=folder)
    assert run.returncode == 0, run.stderr
    result = json.loads((folder / "out" / "results.json").read_text())["submissions"][0]
    check = next(c for c in result["checks"] if not c["passed"] and "mismatch" in c["details"])
    page = (folder / "out" / f"{Path(kit['assignment'].file_name).stem}.html").read_text()
    entry = page[page.index(f"<h3>{check['id'].split('.', 1)[1]}</h3>"):]
    entry = entry[:entry.index("</section>")]
    command = html.unescape(re.search(r"<pre><code>(grade [^<]+)</code></pre>", entry).group(1))
    assert command.endswith(f"--check {check['id']} --show") and "--seed" not in command
    shown = run_in_kit(kit, "-m", "grader", *command.split()[1:], cwd=folder)
    assert shown.returncode == 0, shown.stderr
    assert "the kit's fixed inputs" in shown.stdout.splitlines()[0]
    assert "expected (the reference, on the same inputs):" in shown.stdout
    numbers = dict(re.findall(r"<dt>([^<]+)</dt><dd>(?:<code>)?([^<]+)", entry))
    for label in ("first mismatch", "got", "expected"):
        assert f"  {label}: {numbers[label]}\n" in shown.stdout, (label, shown.stdout[-1500:])
    hidden = run_in_kit(kit, "-m", "grader", kit["assignment"].file_name, "--check", "no_such.check", cwd=folder)
    assert hidden.returncode == 2 and hidden.stderr.count("\n") == 1
