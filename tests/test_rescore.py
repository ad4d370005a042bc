"""`grade rescore`, the instructor's adjustments and grades.csv's columns.

A small class from the examples (alice, carol, dave) is graded once with a fixed seed
and the adjustments file; each test works on a copy of that folder."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from grader.adjust import LateRule, StudentAdjustment, adjustment_for, apply_adjustments, load_adjustments
from grader.cli import main
from grader.models import Adjustment, CheckResult, RunResult, SubmissionResult
from grader.store import ResultStore, grades_csv

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "submissions" / "cnn"
SEED = "7"
ADJUSTMENTS = """\
[late]
per_day = 10
cap = 50

[students.carol]
points = -5
reason = "=HYPERLINK(1) a reason a spreadsheet must not run"
comment = "Come and see me."
late_days = 2

[students.zed]
comment = "not in this class"
"""
POINTS = """\
assignment = "cnn"
[points]
conv2d_forward = 30
relu_forward = 10
[visibility]
"conv2d_forward.random_values" = "hidden"
"""


def grade(*args) -> int:
    return main([*map(str, args), "--sandbox", "none", "-q", "--seed", SEED])


def results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def by_student(out: Path) -> dict:
    return {s["student"]: s for s in results(out)["submissions"]}


def csv_rows(out: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO((out / "grades.csv").read_text(), newline="")))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("rescore")
    cls = root / "class"
    cls.mkdir()
    for name in ("alice", "carol"):
        shutil.copytree(EXAMPLES / name, cls / name)
    shutil.copy(EXAMPLES / "dave.py", cls / "dave.py")
    (root / "adjustments.toml").write_text(ADJUSTMENTS)
    (root / "points.toml").write_text(POINTS)
    return SimpleNamespace(root=root, cls=cls, adjustments=root / "adjustments.toml", points=root / "points.toml")


@pytest.fixture(scope="module")
def graded(files) -> Path:
    """The class graded with the assignment's own points and the adjustments."""
    out = files.root / "graded"
    assert grade(files.cls, "--out", out, "--adjustments", files.adjustments) == 0
    return out


@pytest.fixture(scope="module")
def fresh(files) -> Path:
    """The class graded afresh with the new points, same seed, same adjustments."""
    out = files.root / "fresh"
    assert grade(files.cls, "--out", out, "--config", files.points, "--adjustments", files.adjustments) == 0
    return out


@pytest.fixture
def out(graded, tmp_path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(graded, copy)
    return copy


def without_timings(run: dict) -> dict:
    """A run as far as grading decides it: no times, no time-measuring check's report, and
    not the sandbox's self-test (its uid is drawn per run)."""
    run = json.loads(json.dumps(run))
    for key in ("graded_at", "rescored_at", "warnings", "protections"):
        run.pop(key, None)
    for sub in run["submissions"]:
        sub.pop("seconds"), sub.pop("graded_at", None)  # a result's own time, where results carry it
        for check in sub["checks"]:
            check.pop("seconds")
            if check["kind"] == "performance":
                check.pop("message"), check.pop("details")
    return run


def folder_bytes(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


# -- rescore ----------------------------------------------------------------------------


def test_rescore_with_changed_points_equals_a_fresh_run_with_them(out, graded, fresh, files, capsys):
    before = by_student(graded)
    assert main(["rescore", str(out), "--config", str(files.points)]) == 0
    assert "Rescored 3 submission(s)" in capsys.readouterr().out
    rescored = results(out)
    assert rescored["rescored_at"] and rescored["seed"] == int(SEED)
    assert without_timings(rescored) == without_timings(results(fresh))
    assert (out / "grades.csv").read_text() == (fresh / "grades.csv").read_text()
    # ... and the points did change: 116 in all, conv2d_forward's checks scaled to 30.
    after = by_student(out)
    assert rescored["max_score"] == 116 and before["alice"]["score"] == 100 and after["alice"]["score"] == 116
    assert after["carol"]["score"] != before["carol"]["score"]
    conv = [c for c in after["alice"]["checks"] if c["function"] == "conv2d_forward"]
    assert sum(c["max_score"] for c in conv) == pytest.approx(30)
    hidden = next(c for c in after["alice"]["checks"] if c["id"] == "conv2d_forward.random_values")
    assert hidden["visibility"] == "hidden"
    assert (out / "alice.html").read_text() != (graded / "alice.html").read_text()
    assert "116" in (out / "alice.html").read_text()


def test_after_a_rescore_resume_with_the_new_config_keeps_everyone(out, files, capsys):
    assert main(["rescore", str(out), "--config", str(files.points)]) == 0
    rescored = results(out)
    store = ResultStore(out, "cnn", resume=True)
    assert store.refused == 0 and set(store.previous) == {"alice", "carol", "dave"}
    assert all(store.previous[s["student"]].score == s["score"] for s in rescored["submissions"])
    # Nothing is graded again: every record (its timings too) is the rescored one.
    assert grade(files.cls, "--out", out, "--resume", "--config", files.points) == 0
    assert results(out)["submissions"] == rescored["submissions"]
    assert "refused" not in capsys.readouterr().err


def test_rescore_without_a_config_keeps_the_points(out, graded):
    assert main(["rescore", str(out)]) == 0
    assert results(out)["submissions"] == results(graded)["submissions"]
    assert results(out)["rescored_at"] is None


@pytest.mark.parametrize("config, named", [
    ("[tolerances]\nvalue_rtol = 2e-4\n", "tolerances.value_rtol (graded with 0.0001, now 0.0002)"),
    ("[limits]\ntimeout = 20\n", "limits.timeout (graded with 10, now 20)"),
    ('extra_forbidden_imports = ["sklearn"]\n', "the forbidden imports (+sklearn)"),
    ('forbidden_imports = ["torch"]\n', "the forbidden imports (-jax, -scipy.signal, -tensorflow)"),
    ("[points]\n\"conv2d_forward.nope\" = 3\n", "neither a check nor a function"),
])
def test_rescore_refuses_what_needs_a_real_run_and_changes_nothing(out, tmp_path, capsys, config, named):
    (tmp_path / "c.toml").write_text(config)
    before = folder_bytes(out)
    assert main(["rescore", str(out), "--config", str(tmp_path / "c.toml")]) == 2
    err = capsys.readouterr().err.strip()
    assert named in err and len(err.splitlines()) == 1
    assert folder_bytes(out) == before


def test_rescore_refuses_a_check_the_results_do_not_hold(out, files, capsys):
    # Results graded before a check existed: written through the store, so they verify.
    store = ResultStore(out, "cnn", resume=True)
    run = store.verified_run()
    for sub in run.submissions:
        sub.checks = [c for c in sub.checks if c.id != "relu_forward.values"]
    store.rewrite_journal(run.submissions)
    store.write(run)
    assert main(["rescore", str(out), "--config", str(files.points)]) == 2
    err = capsys.readouterr().err
    assert "relu_forward.values not in the results" in err and "needs a real run" in err


def test_rescore_refuses_results_the_grader_did_not_write(out, files, capsys):
    data = results(out)
    data["submissions"][0]["score"] = 1000
    (out / "results.json").write_text(json.dumps(data))
    assert main(["rescore", str(out), "--config", str(files.points)]) == 2
    assert "digest does not verify" in capsys.readouterr().err
    assert main(["rescore", str(out.parent / "nothing-here")]) == 2


def test_rescore_refuses_an_unfinished_run(out, files, capsys):
    store = ResultStore(out, "cnn", resume=True)
    store.rewrite_journal(list(store.previous.values())[:2])  # as a killed --resume leaves it
    assert main(["rescore", str(out), "--config", str(files.points)]) == 2
    assert "unfinished run" in capsys.readouterr().err


# -- adjustments ------------------------------------------------------------------------


def test_adjustments_are_applied_apart_from_the_graded_score(graded, capsys):
    subs = by_student(graded)
    carol = subs["carol"]
    adjustment = carol["adjustment"]
    assert carol["score"] < 100  # the graded score, untouched
    assert adjustment["points"] == -5 and adjustment["late_days"] == 2 and adjustment["late_from"] == "adjustments"
    assert adjustment["late_penalty"] == 20  # 10% of 100 per day, 2 days
    assert adjustment["final_score"] == carol["score"] - 25
    assert subs["alice"]["adjustment"] is None and subs["dave"]["adjustment"] is None
    assert (graded / "adjustments.toml").read_text() == ADJUSTMENTS
    page = (graded / "carol.html").read_text()
    assert "Come and see me." in page and "=HYPERLINK(1)" in page and "Final score" in page
    assert "Final score" not in (graded / "alice.html").read_text()


def test_an_adjustment_for_a_student_not_in_the_class_is_reported_not_invented(graded):
    run = results(graded)
    assert "zed" not in by_student(graded)
    assert any("no student 'zed'" in w and "line 11" in w for w in run["warnings"])
    assert "zed" not in {row["student"] for row in csv_rows(graded)}


def test_adjustments_survive_a_rerun_resume_and_rescore(out, files):
    def carol() -> dict:
        return by_student(out)["carol"]["adjustment"]

    first = carol()
    assert grade(files.cls, "--out", out) == 0  # a full rerun, no --adjustments: OUT's copy
    assert carol() == first
    assert grade(files.cls, "--out", out, "--resume") == 0
    assert carol() == first
    assert main(["rescore", str(out)]) == 0
    assert carol() == first
    # Changed in OUT, the next rescore applies it; and a warning is not repeated.
    (out / "adjustments.toml").write_text(ADJUSTMENTS.replace("points = -5", "points = 3"))
    assert main(["rescore", str(out)]) == 0
    assert carol()["points"] == 3 and carol()["final_score"] == by_student(out)["carol"]["score"] + 3 - 20
    assert sum("no student 'zed'" in w for w in results(out)["warnings"]) == 1
    row = next(r for r in csv_rows(out) if r["student"] == "carol")
    assert row["adjustment"] == "3" and row["late_penalty"] == "20"


def test_a_bad_adjustments_file_is_a_usage_error_naming_the_line(files, tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[students.carol]\npoints = -5\nreason = "x"\npionts = 2\n')
    assert grade(files.cls, "--out", tmp_path / "out", "--adjustments", bad) == 2
    err = capsys.readouterr().err
    assert "line 4" in err and "'pionts'" in err and "did you mean 'points'" in err
    assert not (tmp_path / "out" / "results.json").exists()


@pytest.mark.parametrize("text, message", [
    ("[students.carol]\npoints = -5\n", "line 1: students.carol: points = -5 needs a reason"),
    ("[students.carol]\nlate_days = 2\n", "line 2: late_days = 2 needs a [late] rule"),
    ("[late]\nper_day = 150\n", "line 2: late.per_day"),
    ('assignment = "rnn"\n', "for assignment 'rnn', not 'cnn'"),
])
def test_adjustments_are_validated(tmp_path, text, message):
    from grader.adjust import for_output

    path = tmp_path / "a.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=None) as error:
        for_output(tmp_path, path, "cnn")
    assert message in str(error.value)
    assert not (tmp_path / "adjustments.toml").exists()  # a file that does not validate is not kept


def record(student="ann", score=60.0, status="graded", diagnoses=(), lms=None):
    sub = SubmissionResult(student=student, source=f"{student}.py", status=status, score=score, max_score=100.0,
                           diagnoses=list(diagnoses))
    if lms is None:
        return sub
    return SimpleNamespace(**{name: getattr(sub, name) for name in type(sub).model_fields if name != "lms"}, lms=lms)


def test_a_late_flag_from_the_lms_counts_when_the_file_does_not_say():
    rule = LateRule(per_day=10, cap=25, flagged_days=1)
    adjustments = SimpleNamespace(students={}, late=rule)
    canvas_late = SimpleNamespace(system="canvas", late=True)
    got = adjustment_for(record(lms=canvas_late), adjustments)
    assert (got.late_days, got.late_from, got.late_penalty, got.final_score) == (1, "canvas", 10, 50)
    days = SimpleNamespace(system="moodle", late=True, late_days=4.2)  # every started day counts, up to the cap
    assert adjustment_for(record(lms=days), adjustments).late_penalty == 25
    excused = SimpleNamespace(students={"ann": StudentAdjustment(late_days=0)}, late=rule)
    assert adjustment_for(record(lms=canvas_late), excused).late_penalty == 0
    assert adjustment_for(record(lms=SimpleNamespace(system="canvas", late=False)), adjustments) is None
    assert adjustment_for(record(), adjustments) is None  # no LMS record, no entry: nothing


def test_an_adjustment_never_gives_a_score_to_a_submission_the_grader_could_not_finish():
    adjustments = SimpleNamespace(students={"ann": StudentAdjustment(points=10, reason="r")}, late=None)
    failed = record(score=0.0, status="error", diagnoses=["grader.sandbox_failed"])
    assert adjustment_for(failed, adjustments).final_score is None
    own_fault = record(score=0.0, status="error", diagnoses=["submission.syntax_error"])
    assert adjustment_for(own_fault, adjustments).final_score == 10
    low = SimpleNamespace(students={"ann": StudentAdjustment(points=-80, reason="r")}, late=None)
    assert adjustment_for(record(), low).final_score == 0  # never below 0


def test_the_example_adjustments_file_is_valid():
    adjustments = load_adjustments(ROOT / "examples" / "config" / "adjustments.toml")
    assert adjustments.late is not None and adjustments.students


# -- grades.csv -------------------------------------------------------------------------


def check(function, name, score, max_score):
    return CheckResult(id=f"{function}.{name}", function=function, kind="numeric", visibility="public",
                       passed=score == max_score, score=score, max_score=max_score)


def test_grades_csv_has_a_column_per_function_after_the_spec_columns():
    ann = record().model_copy(update={"checks": [check("f", "a", 2, 2), check("f", "b", 0, 3),
                                                 check("g + h", "c", 1.5, 1.5)], "score": 3.5})
    ann.adjustment = Adjustment(points=-1, reason="-1 for style", late_penalty=0.5, final_score=2.0)
    broken = record("=bob", score=0.0, status="error", diagnoses=["grader.sandbox_failed"])
    run = RunResult(assignment="toy", toolkit_version="0", graded_at="now", submissions=[ann, broken])
    rows = list(csv.reader(io.StringIO(grades_csv(run), newline="")))
    assert rows[0] == ["student", "score", "max_score", "status", "f", "g + h", "lms_id", "adjustment",
                       "late_penalty", "final_score", "adjustment_reason"]
    assert rows[1] == ["ann", "3.5", "100", "graded", "2", "1.5", "", "-1", "0.5", "2", "'-1 for style"]
    # The grader's failure: no per-function scores and no final score, not zeros.
    assert rows[2] == ["'=bob", "0", "100", "error", "", "", "", "", "", "", ""]


def test_grades_csv_columns_of_a_graded_class(graded):
    rows = csv_rows(graded)
    subs = by_student(graded)
    for row in rows:
        sub = subs[row["student"]]
        functions = {c["function"] for c in sub["checks"]}
        assert sum(float(row[f]) for f in functions) == pytest.approx(sub["score"])
        assert float(row["final_score"]) == (sub["adjustment"] or {"final_score": sub["score"]})["final_score"]
    carol = next(r for r in rows if r["student"] == "carol")
    assert carol["adjustment_reason"].startswith("'=HYPERLINK")  # neutralised
    assert by_student(graded)["carol"]["adjustment"]["reason"].startswith("=HYPERLINK")  # raw in results.json


def test_adjustments_copy_records_and_leave_the_originals():
    ann = record()
    adjustments = SimpleNamespace(students={"ann": StudentAdjustment(points=2, reason="r")}, late=None,
                                  where=lambda *parts: "f")
    (adjusted,), warnings = apply_adjustments([ann], adjustments)
    assert adjusted.adjustment.final_score == 62 and ann.adjustment is None and warnings == []
