"""Attacks on the values, not the sandbox: points without code, and gradient checks
fooled by a forward pass that behaves differently under finite differencing.

- A lookup table: the student kit records the public checks' expected values, keyed
  by a digest of each call's inputs. A submission that answers from that table scores
  in the kit's self-check (fixed inputs), but grading draws every check's inputs from
  a secret seed per run: there it earns exactly what zeros of the right shape earn.
- An anchoring forward: right at every input it is first asked about, but answering a
  near-copy of an input it has seen with that input's value, so its own finite
  differences are zero and agree with an all-zero backward. The differences that
  decide are the reference forward's: the zero backward earns nothing, a right one
  keeps full marks.
- Seeds: `--seed N` reproduces a run; other seeds give other inputs but the same
  scores and diagnoses to every variant; the seed is in results.json only.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from variant_grading import SUBMISSIONS, assert_exactly, assert_full_marks, grade, student_from, summary

from assignments.cnn import ASSIGNMENT as CNN
from assignments.rnn import ASSIGNMENT as RNN
from grader.cli import main
from grader.kit import build_kit
from grader.oracle import ReferenceOracle, load_recorded

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # softmax_unstable overflows, as it should

FD_CHECKS = {"conv2d_backward.against_own_forward", "maxpool_backward.against_own_forward",
             "relu_backward.against_own_forward", "linear_backward.against_own_forward",
             "softmax_cross_entropy.against_own_loss"}
# What each of them differentiates, by the name its messages use.
FORWARD_OF = {"conv2d_backward": "conv2d_forward", "maxpool_backward": "maxpool_forward",
              "relu_backward": "relu_forward", "linear_backward": "linear_forward", "softmax_cross_entropy": "loss"}


# ---------------------------------------------------------------- the lookup table
def _plain(value):
    """A recorded value as JSON the submission can read back without the grader."""
    if isinstance(value, np.ndarray):
        return {"array": value.ravel().tolist(), "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, (tuple, list)):
        return {"tuple": [_plain(v) for v in value]}
    return {"number": float(value)}


LOOKUP = '''"""Answers every call whose inputs the kit recorded; zeros of the right shape otherwise.
No layer is implemented."""
import hashlib
import json

import numpy as np

TABLE = json.loads(TABLE_JSON)


def _value(item):
    if "array" in item:
        return np.array(item["array"], dtype=item["dtype"]).reshape(item["shape"])
    if "tuple" in item:
        return tuple(_value(v) for v in item["tuple"])
    return item["number"]


def call_key(function, args, kwargs):
    """grader.oracle.call_key, copied."""
    digest = hashlib.sha256(function.encode())

    def feed(value):
        if isinstance(value, np.ndarray):
            digest.update(f"nd{value.dtype.str}{value.shape}".encode())
            digest.update(np.ascontiguousarray(value).tobytes())
        elif isinstance(value, np.random.Generator):
            digest.update(repr(value.bit_generator.state).encode())
        elif isinstance(value, (list, tuple)):
            digest.update(f"{type(value).__name__}{len(value)}(".encode())
            for item in value:
                feed(item)
            digest.update(b")")
        elif isinstance(value, dict):
            for key in sorted(value):
                digest.update(repr(key).encode())
                feed(value[key])
        else:
            digest.update(f"{type(value).__name__}:{value!r};".encode())

    feed(list(args))
    feed(dict(kwargs))
    return digest.hexdigest()[:32]


DEFAULTS = {"conv2d_forward": {"stride": 1, "pad": 0}, "conv2d_backward": {"stride": 1, "pad": 0},
            "maxpool_forward": {"size": 2, "stride": 2}, "maxpool_backward": {"size": 2, "stride": 2}}


def recorded(name, positional, options=None):
    """The recorded answer, however the checks spelt the call (options by keyword, all
    of them or only those that differ from the defaults, or by position)."""
    options = options or {}
    changed = {k: v for k, v in options.items() if v != DEFAULTS[name][k]}
    for args, kwargs in ((positional, options), (positional, changed), (positional + tuple(options.values()), {})):
        key = call_key(name, args, kwargs)
        if key in TABLE:
            return _value(TABLE[key])
    return None


def _out(n, f, pad, stride):
    return (n + 2 * pad - f) // stride + 1


def conv_output_size(n, f, pad=0, stride=1):
    return 0


def conv2d_forward(x, w, b, stride=1, pad=0):
    found = recorded("conv2d_forward", (x, w, b), {"stride": stride, "pad": pad})
    if found is not None:
        return found
    return np.zeros((x.shape[0], _out(x.shape[1], w.shape[0], pad, stride), _out(x.shape[2], w.shape[1], pad, stride),
                     w.shape[3]))


def conv2d_backward(dy, x, w, b, stride=1, pad=0):
    found = recorded("conv2d_backward", (dy, x, w, b), {"stride": stride, "pad": pad})
    return found if found is not None else (np.zeros(x.shape), np.zeros(w.shape), np.zeros(b.shape))


def maxpool_forward(x, size=2, stride=2):
    found = recorded("maxpool_forward", (x,), {"size": size, "stride": stride})
    if found is not None:
        return found
    return np.zeros((x.shape[0], _out(x.shape[1], size, 0, stride), _out(x.shape[2], size, 0, stride), x.shape[3]))


def maxpool_backward(dy, x, size=2, stride=2):
    found = recorded("maxpool_backward", (dy, x), {"size": size, "stride": stride})
    return found if found is not None else np.zeros(x.shape)


def relu_forward(x):
    found = recorded("relu_forward", (x,))
    return found if found is not None else np.zeros(x.shape)


def relu_backward(dy, x):
    found = recorded("relu_backward", (dy, x))
    return found if found is not None else np.zeros(x.shape)


def linear_forward(x, w, b):
    found = recorded("linear_forward", (x, w, b))
    return found if found is not None else np.zeros((x.shape[0], w.shape[1]))


def linear_backward(dy, x, w, b):
    found = recorded("linear_backward", (dy, x, w, b))
    return found if found is not None else (np.zeros(x.shape), np.zeros(w.shape), np.zeros(b.shape))


def softmax_cross_entropy(z, labels):
    found = recorded("softmax_cross_entropy", (z, labels))
    return found if found is not None else (0.0, np.zeros(z.shape))
'''


def lookup_source(table: dict) -> str:
    return f"TABLE_JSON = {json.dumps(json.dumps(table))}\n" + LOOKUP


# ---------------------------------------------------------------- the anchoring forward
ANCHORING = '''

# --- the attack: every forward answers a near-copy of an input it has seen with that
# input's value, so its own finite differences are 0.
def _near(a, b):
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        if a.shape != b.shape:
            return False
        scale = max(1.0, float(np.max(np.abs(b), initial=0.0)))
        return float(np.max(np.abs(a - b), initial=0.0)) <= 1e-3 * scale
    return type(a) is type(b) and a == b


def _anchored(fn):
    seen = []

    def forward(*args, **kwargs):
        for old_args, old_kwargs, value in seen:
            if len(old_args) == len(args) and old_kwargs.keys() == kwargs.keys() and \\
                    all(_near(a, b) for a, b in zip(args, old_args)) and \\
                    all(_near(kwargs[k], old_kwargs[k]) for k in kwargs):
                return value
        value = fn(*args, **kwargs)
        seen.append(([np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args], dict(kwargs), value))
        return value

    return forward

'''

ANCHOR_FORWARDS = '''

conv2d_forward = _anchored(conv2d_forward)
maxpool_forward = _anchored(maxpool_forward)
relu_forward = _anchored(relu_forward)
linear_forward = _anchored(linear_forward)
softmax_cross_entropy = _anchored(softmax_cross_entropy)  # the loss is its forward
'''

ZERO_BACKWARDS = '''

def conv2d_backward(dy, x, w, b, stride=1, pad=0):
    return np.zeros(x.shape), np.zeros(w.shape), np.zeros(b.shape)


def maxpool_backward(dy, x, size=2, stride=2):
    return np.zeros(x.shape)


def relu_backward(dy, x):
    return np.zeros(x.shape)


def linear_backward(dy, x, w, b):
    return np.zeros(x.shape), np.zeros(w.shape), np.zeros(b.shape)


_right_softmax = softmax_cross_entropy


def softmax_cross_entropy(z, labels):
    loss, dz = _right_softmax(z, labels)
    return loss, np.zeros(dz.shape)
'''


def results(out: Path) -> dict:
    return {s["student"]: s for s in json.loads((out / "results.json").read_text())["submissions"]}


def scored(sub: dict) -> dict:
    return {c["id"]: c for c in sub["checks"] if c["max_score"] > 0}


@pytest.fixture(scope="module")
def attacks(tmp_path_factory):
    """A kit, and one class graded by `grade` with a secret seed: the lookup table, zeros
    of the right shape, and the anchoring forward with zero and with right backwards."""
    work = tmp_path_factory.mktemp("values")
    kit = work / "kit"
    build_kit(CNN, kit)
    # Every recorded answer a call of a layer can be looked up by (the mistake models' answers,
    # dicts and lists of candidates, answer no call a student receives).
    table = {key: _plain(value) for key, value in load_recorded(kit / "assignments" / "cnn" / "recorded.json").items()
             if not isinstance(value, (dict, list)) and not (isinstance(value, tuple) and isinstance(value[0], dict))}
    correct = (SUBMISSIONS / "cnn_variants" / "ok_vectorised.py").read_text()
    sources = {"lookup": lookup_source(table), "zeros": lookup_source({}),
               "anchored_zero_backward": correct + ANCHORING + ZERO_BACKWARDS + ANCHOR_FORWARDS,
               "anchored_right_backward": correct + ANCHORING + ANCHOR_FORWARDS}
    cls = work / "class"
    for name, text in sources.items():
        (cls / name).mkdir(parents=True)
        (cls / name / "cnn_layers.py").write_text(text)
    out = work / "out"
    assert main([str(cls), "-a", "cnn", "--out", str(out), "-q", "--sandbox", "none"]) == 0
    return {"kit": kit, "class": cls, "out": out, "graded": results(out), "work": work}


def test_the_lookup_table_earns_only_what_zeros_of_the_right_shape_earn(attacks):
    graded = attacks["graded"]
    lookup, zeros = scored(graded["lookup"]), scored(graded["zeros"])
    value_free = {i for i, c in zeros.items() if c["passed"]}
    # What zeros of the right shape pass does not depend on values: shapes and behaviour.
    assert value_free and all(zeros[i]["kind"] in ("shape", "behavior") for i in value_free), value_free
    assert {i for i, c in lookup.items() if c["passed"]} <= value_free
    assert graded["lookup"]["score"] == sum(zeros[i]["max_score"] for i in value_free) == graded["zeros"]["score"]


def test_the_lookup_table_does_score_in_the_kits_self_check(attacks):
    """The kit's own `grade` (recorded values, fixed inputs) on the same files: the table
    answers there, so it is a working table that grading turns into zeros."""
    out = attacks["work"] / "kit-out"
    run = subprocess.run([sys.executable, "-m", "grader", str(attacks["class"]), "-a", "cnn", "--only", "lookup,zeros",
                          "--out", str(out), "-q"], cwd=attacks["kit"], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    in_kit = json.loads((out / "results.json").read_text())
    assert in_kit["sandbox"] == "spawn" and in_kit["seed"] is None  # the kit's own grader ran
    subs = {s["student"]: s for s in in_kit["submissions"]}
    assert subs["lookup"]["score"] >= subs["zeros"]["score"] + 40, (subs["lookup"]["score"], subs["zeros"]["score"])
    assert subs["lookup"]["score"] > attacks["graded"]["lookup"]["score"] + 40
    # The kit has only its fixed inputs: a seed there is a usage error, not a run without answers.
    refused = subprocess.run([sys.executable, "-m", "grader", str(attacks["class"] / "zeros"), "-a", "cnn",
                              "--seed", "5", "--out", str(out), "-q"], cwd=attacks["kit"], capture_output=True,
                             text=True, timeout=300)
    assert refused.returncode == 2 and "--seed" in refused.stderr


def test_a_negative_seed_is_a_usage_error(tmp_path, capsys):
    assert main([str(SUBMISSIONS / "cnn_variants" / "ok_loops.py"), "--seed", "-1", "--out", str(tmp_path)]) == 2
    assert "--seed must be at least 0" in capsys.readouterr().err


def test_an_anchoring_forward_earns_a_zero_backward_nothing(attacks):
    checks = scored(attacks["graded"]["anchored_zero_backward"])
    # The forwards are right where the checks look at them ...
    for check_id in ("conv2d_forward.random_values", "maxpool_forward.values", "relu_forward.values",
                     "linear_forward.values"):
        assert checks[check_id]["passed"], checks[check_id]["message"]
    # ... and their own differences agree with the zero backward, but they do not decide.
    gradient = {i: c for i, c in checks.items() if c["kind"] == "gradient"}
    assert FD_CHECKS <= set(gradient)
    assert all(c["score"] == 0 for c in gradient.values()), {i: c["score"] for i, c in gradient.items()}
    for check_id in FD_CHECKS:
        message = checks[check_id]["message"]
        assert "finite differences of the reference" in message, message
        forward = FORWARD_OF[check_id.split(".")[0]]
        assert f"your own {forward} agree with your gradients" in message, message


def test_an_anchoring_forward_does_not_cost_a_right_backward(attacks):
    sub = attacks["graded"]["anchored_right_backward"]
    checks = scored(sub)
    assert sub["score"] == sub["max_score"], {i: c["message"] for i, c in checks.items() if not c["passed"]}
    for check_id in FD_CHECKS:
        assert checks[check_id]["passed"] and checks[check_id]["score"] == checks[check_id]["max_score"]
        forward = FORWARD_OF[check_id.split(".")[0]]
        assert f"your own {forward} disagree with your gradients" in checks[check_id]["message"]


# ---------------------------------------------------------------- seeds
def _verdicts(out: Path) -> dict:
    """Per student, per check (timings left out): verdict, score, message, diagnoses."""
    return {s["student"]: {c["id"]: (c["passed"], c["score"], c["message"], c["diagnoses"])
                           for c in s["checks"] if c["kind"] != "performance"}
            for s in json.loads((out / "results.json").read_text())["submissions"]}


SOME = ["ok_float32", "conv_flipped_kernel", "pool_grad_overwritten", "softmax_not_averaged"]


@pytest.fixture(scope="module")
def seeded_runs(tmp_path_factory):
    work = tmp_path_factory.mktemp("seeds")
    runs = {}
    for label, seed in (("a", ["--seed", "123"]), ("b", ["--seed", "123"]), ("c", ["--seed", "58119904417"]),
                        ("secret", [])):
        out = work / label
        assert main([str(SUBMISSIONS / "cnn_variants"), "-a", "cnn", "--only", ",".join(SOME), "--out", str(out), "-q",
                     "--sandbox", "none", "--gradescope", "--student-pages", str(work / f"{label}-pages"), *seed]) == 0
        runs[label] = out
    return runs


def test_a_seed_reproduces_a_run_and_results_json_records_it(seeded_runs, tmp_path):
    assert json.loads((seeded_runs["a"] / "results.json").read_text())["seed"] == 123
    assert _verdicts(seeded_runs["a"]) == _verdicts(seeded_runs["b"])
    secret = json.loads((seeded_runs["secret"] / "results.json").read_text())["seed"]
    assert isinstance(secret, int) and secret >= 0
    again = tmp_path / "again"
    assert main([str(SUBMISSIONS / "cnn_variants"), "-a", "cnn", "--only", ",".join(SOME), "--out", str(again), "-q",
                 "--sandbox", "none", "--seed", str(secret)]) == 0
    assert _verdicts(again) == _verdicts(seeded_runs["secret"])


def test_other_seeds_give_other_inputs_and_the_same_scores(seeded_runs):
    first, other = _verdicts(seeded_runs["a"]), _verdicts(seeded_runs["c"])
    for student in SOME:
        assert {i: v[:2] for i, v in first[student].items()} == {i: v[:2] for i, v in other[student].items()}
        assert {i: v[3] for i, v in first[student].items()} == {i: v[3] for i, v in other[student].items()}
    flipped = [json.loads((seeded_runs[k] / "results.json").read_text())["submissions"] for k in ("a", "c")]
    mismatches = [next(c for c in next(s for s in run if s["student"] == "conv_flipped_kernel")["checks"]
                       if c["id"] == "conv2d_forward.random_values")["details"]["mismatch"] for run in flipped]
    assert (mismatches[0]["got"], mismatches[0]["expected"]) != (mismatches[1]["got"], mismatches[1]["expected"])
    lecture = [first["conv_flipped_kernel"]["conv2d_forward.lecture_two_channel_example"][2],
               other["conv_flipped_kernel"]["conv2d_forward.lecture_two_channel_example"][2]]
    assert lecture[0] != lecture[1]  # the lecture's example is varied too


def test_no_student_facing_file_shows_the_seed(seeded_runs):
    """The seed stays the instructor's: --resume and --only grade on it again."""
    for label in ("c", "secret"):
        out = seeded_runs[label]
        seed = str(json.loads((out / "results.json").read_text())["seed"])
        # What goes to students: Gradescope's files and the student pages. The instructor's own
        # pages show the seed in each failed public check's reproduction command.
        student_files = sorted((out / "gradescope").glob("*.json")) + sorted(out.parent.joinpath(f"{label}-pages").glob("*.html"))
        assert len(student_files) == 2 * len(SOME)
        for path in student_files:
            assert seed not in path.read_text(), path
        assert seed not in (out / "grades.csv").read_text()


@pytest.mark.parametrize("assignment", [CNN, RNN], ids=["cnn", "rnn"])
def test_every_variant_keeps_its_score_and_diagnosis_under_random_seeds(assignment):
    """The false-failure guard: no correct variant loses a point under any seed, and every
    buggy one gets exactly its diagnosis, loses only its function's credit, and scores
    the same under every seed."""
    tests = __import__(f"test_checks_{assignment.name}")
    oracle = ReferenceOracle(assignment.reference_module)
    variants = sorted(p for p in (SUBMISSIONS / f"{assignment.name}_variants").iterdir()
                      if p.suffix in (".py", ".ipynb"))
    students = {p.stem: student_from(p, assignment.functions) for p in variants}
    scores: dict[str, set] = {stem: set() for stem in students}
    for seed in [secrets.randbelow(2**53) for _ in range(3)]:
        for stem, student in students.items():
            graded = grade(assignment, student, oracle, seed=seed)
            try:
                if stem.startswith("ok_"):
                    assert_full_marks(assignment, graded)
                else:
                    codes, function = tests.BUGGY[stem]
                    assert_exactly(graded, codes, function)
            except AssertionError as failure:
                raise AssertionError(f"{stem} under --seed {seed}: {failure}") from None
            found = summary(graded)
            scores[stem].add((found["score"], tuple(found["diagnoses"]), tuple(sorted(found["lost"]))))
    assert {stem: len(s) for stem, s in scores.items() if len(s) > 1} == {}
