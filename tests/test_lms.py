"""From the LMS and back: Canvas and Moodle downloads keep their ids through grading,
and `grade export` writes what Canvas's and Moodle's own importers read. The files are
held to the platforms' matching rules, written out here as their source code has them
(canvas-lms lib/gradebook_importer.rb and app/models/assignment.rb; moodle
mod/assign/feedback/offline/importgradeslib.php and feedback/file/importziplib.php)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from toy_assignment import CORRECT, TOY

import grader.assignment
from grader.cli import main
from grader.models import RunResult
from grader.report.html import render_student
from grader.store import read_journal

WRONG_SCALE = CORRECT.replace("return x * k", "return x")  # public check fails: 2 / 3
WRONG_TOTAL = CORRECT.replace("return float(x.sum())", "return float(x.sum()) + 1")  # hidden check fails: 2 / 3
HELPER = "def unused():\n    return 0\n"


@pytest.fixture(autouse=True)
def toy(monkeypatch):
    monkeypatch.setattr(grader.assignment, "available", lambda: {"toy": TOY})


def grade(path: Path, out: Path, *extra: str) -> dict:
    assert main([str(path), "-a", "toy", "--out", str(out), "-q", "--sandbox", "none", *extra]) == 0
    return {s["student"]: s for s in json.loads((out / "results.json").read_text())["submissions"]}


def make_zip(path: Path, entries: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in entries.items():
            archive.writestr(name, text)
    return path


# -- the platforms' own rules, as their source has them ------------------------------------


def canvas_gradebook(text: str, column: str) -> tuple[float, dict[str, str]]:
    """Canvas's GradebookImporter: the header, the Points Possible row, and each student's
    cell in `column`, keyed by the ID column (the Canvas user id, matched first)."""
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    assert len(header) > 3 and "Student" in header[0] and "ID" in header[1]  # row_has_student_headers?
    assert re.search(r"SIS\s+Login\s+ID", header[2])  # then 4 student columns
    assert "Section" in header[3]  # last_student_info_column
    assert header[4:] == [column]
    assert "Points Possible" in rows[1][0]
    points_possible = float(rows[1][4])
    students = {}
    for row in rows[2:]:
        assert row[1] not in students, "one row per Canvas user"
        students[row[1]] = row[4]
    return points_possible, students


def canvas_reupload(name: str) -> tuple[str, str] | None:
    """Assignment#infer_comment_context_from_filename: the first two all-digit parts of
    the file's base name are the user id and the attachment id."""
    base = name.rsplit("/", 1)[-1]
    parts = base.split("_")
    digits = [p for p in parts if re.fullmatch(r"\d+", p)][:2]
    if len(digits) < 2 or re.match(r"link", parts[-1]) or base.startswith("._"):
        return None
    return digits[0], digits[1]


def moodle_worksheet(text: str) -> dict[str, dict[str, str]]:
    """assignfeedback_offline_grade_importer: columns found by exact English header, the
    participant id is what follows "Participant "."""
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    for required in ("Identifier", "Grade", "Last modified (grade)"):
        assert required in header
    feedback = header.index("Feedback comments")
    assert feedback > 0  # the importer skips a feedback column at index 0 (`!empty($details['index'])`)
    found = {}
    for row in rows[1:]:
        record = dict(zip(header, row))
        assert record["Identifier"].startswith("Participant ")
        found[record["Identifier"][len("Participant "):]] = record
    return found


def moodle_feedback_participant(name: str) -> str | None:
    """assignfeedback_file_zip_importer::is_valid_filename_for_import: the first path part
    that splits (on "_", at most 5 pieces) into name, a numeric id, a plugin type and name."""
    parts = name.split("/")
    if parts[-1].startswith((".", "~")):
        return None
    while parts:
        info = parts.pop(0).split("_", 4)  # PHP explode('_', $part, 5)
        if len(info) < 4 or not info[1].isdigit():
            continue
        if (info[2], info[3]) != ("assignfeedback", "file"):
            continue
        return info[1]
    return None


# -- Canvas ----------------------------------------------------------------------------------


@pytest.fixture
def canvas_class(tmp_path):
    """A Canvas 'Download Submissions' zip: flat names, a LATE file, a '-1' rename, a
    student with two files, and a name a spreadsheet would run."""
    return make_zip(tmp_path / "course-assignment_3 submissions.zip", {
        "smithbob_4501_90001_toy.py": CORRECT,
        "doejane_LATE_4502_90002_toy.py": WRONG_TOTAL,
        "leeann_4503_90014_helpers.py": HELPER,  # sorts first: the graded file is toy-1.py
        "leeann_4503_90013_toy-1.py": WRONG_SCALE,
        "=cmd_4504_90005_toy.py": CORRECT,
    })


def test_canvas_zip_round_trip_matches_user_and_attachment_ids(tmp_path, canvas_class, capsys):
    out, pages_dir = tmp_path / "out", tmp_path / "for-students"
    got = grade(canvas_class, out, "--student-pages", str(pages_dir))
    assert {s: (r["lms"]["user_id"], r["lms"]["attachment_id"], r["lms"]["late"]) for s, r in got.items()} == {
        "smithbob": ("4501", "90001", False), "doejane": ("4502", "90002", True),
        "leeann": ("4503", "90013", False), "=cmd": ("4504", "90005", False)}
    assert got["leeann"]["source"] == "leeann_4503_90013_toy-1.py" and got["leeann"]["score"] == 2.0
    capsys.readouterr()
    assert main(["export", "canvas", str(out), "--assignment-title", "Assignment 3"]) == 0
    printed = capsys.readouterr()
    assert "canvas-grades.csv" in printed.out and "warning" not in printed.err
    text = (out / "canvas-grades.csv").read_text(encoding="utf-8")
    points_possible, cells = canvas_gradebook(text, "Assignment 3")
    assert points_possible == 3.0
    assert cells == {"4501": "3", "4502": "2", "4503": "2", "4504": "3"}
    assert "'=cmd" in text and ",=cmd" not in text  # neutralised against formula injection

    with zipfile.ZipFile(out / "canvas-feedback.zip") as archive:
        pages = {canvas_reupload(n): archive.read(n).decode() for n in archive.namelist()}
    assert set(pages) == {("4501", "90001"), ("4502", "90002"), ("4503", "90013"), ("4504", "90005")}
    assert "Class overview" not in pages[("4501", "90001")]  # the student's page, not the instructor's
    assert "<h1>doejane</h1>" in pages[("4502", "90002")]
    assert pages[("4502", "90002")] == (pages_dir / "doejane.html").read_text()  # the same page, either way


def test_canvas_column_can_name_the_assignment_id(tmp_path, canvas_class, capsys):
    out = tmp_path / "out"
    grade(canvas_class, out)
    assert main(["export", "canvas", str(out), "--assignment-title", "Assignment 3", "--assignment-id", "777"]) == 0
    text = (out / "canvas-grades.csv").read_text()
    assert canvas_gradebook(text, "Assignment 3 (777)")[1]["4501"] == "3"
    # Canvas's Assignment.title_and_id reads the id back from the header
    assert re.fullmatch(r"(.*)\s\((\d+)\)", "Assignment 3 (777)").groups() == ("Assignment 3", "777")
    assert main(["export", "canvas", str(out), "--assignment-title", "A", "--assignment-id", "x1"]) == 2
    assert "--assignment-id" in capsys.readouterr().err


def test_student_without_canvas_id_is_not_invented(tmp_path, capsys):
    cls = tmp_path / "class"
    cls.mkdir()
    (cls / "smithbob_4501_90001_toy.py").write_text(CORRECT)
    (cls / "carol.py").write_text(CORRECT)  # handed in by mail: no Canvas id
    (cls / "dave").mkdir()
    (cls / "dave" / "toy.py").write_text(WRONG_SCALE)
    # Anonymous grading: "anon_<anonymous id>_<attachment id>_<file>"; the id is no user id,
    # even when it happens to be all digits.
    (cls / "anon_12345_90009_toy.py").write_text(CORRECT)
    out = tmp_path / "out"
    got = grade(cls, out)
    assert got["carol"]["lms"] is None and got["dave"]["lms"] is None
    assert got["anon_12345_90009_toy"]["lms"] is None
    capsys.readouterr()
    assert main(["export", "canvas", str(out), "--assignment-title", "Assignment 3"]) == 0
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if "without a Canvas user id" in line]) == 1
    assert "carol" in err and "dave" in err and "anon_12345" in err
    rows = list(csv.reader(io.StringIO((out / "canvas-grades.csv").read_text())))
    assert [row[:2] for row in rows[2:]] == [["smithbob", "4501"]]
    with zipfile.ZipFile(out / "canvas-feedback.zip") as archive:
        assert [canvas_reupload(n) for n in archive.namelist()] == [("4501", "90001")]


def test_grader_failures_get_no_grade_and_a_class_without_ids_is_refused(tmp_path, canvas_class, capsys):
    out = tmp_path / "out"
    grade(canvas_class, out)
    run = json.loads((out / "results.json").read_text())
    for sub in run["submissions"]:
        if sub["student"] == "smithbob":  # as the grader records a sandbox that failed twice
            sub.update(status="error", score=0.0, diagnoses=["grader.sandbox_failed"], checks=[])
    (out / "results.json").write_text(json.dumps(run))
    assert main(["export", "canvas", str(out), "--assignment-title", "Assignment 3"]) == 0
    assert "could not finish: smithbob" in capsys.readouterr().err
    cells = canvas_gradebook((out / "canvas-grades.csv").read_text(), "Assignment 3")[1]
    assert "4501" not in cells and cells["4502"] == "2"

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "ann.py").write_text(CORRECT)
    grade(plain, tmp_path / "out2")
    assert main(["export", "canvas", str(tmp_path / "out2"), "--assignment-title", "A"]) == 2
    assert main(["export", "moodle", str(tmp_path / "out2")]) == 2
    assert "no student" in capsys.readouterr().err
    assert main(["export", "moodle", str(tmp_path / "nothing")]) == 2


def test_resume_keeps_the_ids_and_takes_new_ones_from_the_new_download(tmp_path, canvas_class):
    out = tmp_path / "out"
    first = grade(canvas_class, out)
    journal = {r["student"]: r for r in read_journal(out / ".nngrade" / "journal-toy.jsonl")}
    assert journal["doejane"]["lms"] == {"system": "canvas", "name": "doejane", "user_id": "4502",
                                         "attachment_id": "90002", "late": True, "participant_id": ""}
    kept = grade(canvas_class, out, "--resume")
    assert kept == first  # nothing changed: every record kept as it was, ids included
    # Downloaded again after doejane uploaded the same file anew (a new attachment id, on time).
    again = make_zip(tmp_path / "again.zip", {
        "smithbob_4501_90001_toy.py": CORRECT,
        "doejane_4502_99999_toy-1.py": WRONG_TOTAL,
        "leeann_4503_90014_helpers.py": HELPER,
        "leeann_4503_90013_toy-1.py": WRONG_SCALE,
        "=cmd_4504_90005_toy.py": CORRECT,
    })
    got = grade(again, out, "--resume")
    assert (got["doejane"]["lms"]["attachment_id"], got["doejane"]["lms"]["late"]) == ("99999", False)
    assert got["smithbob"] == first["smithbob"]


# -- Moodle ----------------------------------------------------------------------------------


def test_moodle_folder_round_trip_matches_participant_ids(tmp_path, capsys):
    cls = tmp_path / "download"
    folders = {
        "Bob Smith_1234567_assignsubmission_file": CORRECT,
        "Ann Lee_7654321_assignsubmission_file_": WRONG_TOTAL,  # before Moodle 4.1: a trailing "_"
        "Sam Park_1000001_assignsubmission_file": CORRECT,
        "Sam Park_1000002_assignsubmission_file": WRONG_SCALE,  # two students, one name
        "=SUM(A1)_42_assignsubmission_file": CORRECT,
    }
    for folder, text in folders.items():
        (cls / folder / "work").mkdir(parents=True)
        (cls / folder / "work" / "toy.py").write_text(text)
    (cls / "Kim Ng_555_assignsubmission_file_toy.py").write_text(WRONG_SCALE)  # the flat layout
    out = tmp_path / "out"
    got = grade(cls, out)
    assert {s: r["lms"]["participant_id"] for s, r in got.items()} == {
        "Bob Smith": "1234567", "Ann Lee": "7654321", "Sam Park": "1000001", "Sam Park_1000002": "1000002",
        "=SUM(A1)": "42", "Kim Ng": "555"}
    assert got["Sam Park_1000002"]["lms"]["name"] == "Sam Park"

    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    capsys.readouterr()
    assert main(["export", "moodle", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err
    text = (out / "moodle-grades.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == ("Identifier,Full name,Grade,Maximum grade,Last modified (grade),"
                                    "Feedback comments")
    sheet = moodle_worksheet(text)
    assert {pid: row["Grade"] for pid, row in sheet.items()} == {
        "1234567": "3", "7654321": "2", "1000001": "3", "1000002": "2", "42": "3", "555": "2"}
    assert sheet["1000002"]["Full name"] == "Sam Park" and sheet["42"]["Full name"] == "'=SUM(A1)"
    assert all(row["Maximum grade"] == "3" for row in sheet.values())
    modified = dt.datetime.fromisoformat(sheet["42"]["Last modified (grade)"])
    assert now <= modified <= now + dt.timedelta(minutes=5)  # not stale: Moodle applies it

    with zipfile.ZipFile(out / "moodle-feedback.zip") as archive:
        names = archive.namelist()
        pages = {moodle_feedback_participant(n): archive.read(n).decode() for n in names}
    assert set(pages) == set(sheet)
    assert "Sam Park_1000002_assignfeedback_file/toy-report.html" in names
    assert "<h1>Sam Park_1000002</h1>" in pages["1000002"]


# -- what a student may see --------------------------------------------------------------------


SECRETS = ("SECRET-MESSAGE-31337", "271.828", "SECRET-DETAIL-4242", "SECRET-PRINT-777")


def test_feedback_pages_hold_no_hidden_check_details(tmp_path, canvas_class, capsys):
    out, pages_dir = tmp_path / "out", tmp_path / "for-students"
    got = grade(canvas_class, out, "--student-pages", str(pages_dir))
    hidden = next(c for c in got["doejane"]["checks"] if c["visibility"] == "hidden")
    assert not hidden["passed"] and hidden["message"]
    assert hidden["message"] in (out / "doejane.html").read_text()  # the instructor sees it
    for page in pages_dir.iterdir():
        assert hidden["message"] not in page.read_text()
    assert sorted(p.name for p in pages_dir.iterdir()) == ["cmd.html", "doejane.html", "leeann.html",
                                                           "smithbob.html"]

    # A hidden check whose message, numbers and details would give its inputs away.
    run = json.loads((out / "results.json").read_text())
    sub = next(s for s in run["submissions"] if s["student"] == "doejane")
    check = next(c for c in sub["checks"] if c["visibility"] == "hidden")
    check.update(message=SECRETS[0], details={"mismatch": {"name": "y", "index": [0], "got": 271.828,
                                                           "expected": 1.0}, "input": SECRETS[2]},
                 diagnoses=["numeric.off_by_one"])
    sub.update(output=SECRETS[3], diagnoses=sorted(set(sub["diagnoses"]) | {"numeric.off_by_one"}))
    (out / "results.json").write_text(json.dumps(run))
    changed = RunResult.model_validate(run)
    instructor = render_student(changed, next(s for s in changed.submissions if s.student == "doejane"))
    assert all(secret in instructor for secret in SECRETS)  # the test can see them when they are there

    assert main(["export", "canvas", str(out), "--assignment-title", "Assignment 3"]) == 0
    capsys.readouterr()
    with zipfile.ZipFile(out / "canvas-feedback.zip") as archive:
        page = next(archive.read(n).decode() for n in archive.namelist() if canvas_reupload(n)[0] == "4502")
    assert "hidden" in page and check["id"].split(".", 1)[1] in page  # named, with its result
    for secret in SECRETS:
        assert secret not in page
    for line in (out / "canvas-grades.csv").read_text().splitlines():
        assert not any(secret in line for secret in SECRETS)

    assert main([str(canvas_class), "-a", "toy", "--out", str(out), "-q", "--sandbox", "none",
                 "--student-pages", str(out)]) == 2  # would replace the instructor's pages


def test_moodle_feedback_comments_hold_no_hidden_check_details(tmp_path):
    cls = tmp_path / "download"
    (cls / "Ann Lee_7654321_assignsubmission_file").mkdir(parents=True)
    (cls / "Ann Lee_7654321_assignsubmission_file" / "toy.py").write_text(WRONG_TOTAL)
    out = tmp_path / "out"
    got = grade(cls, out)
    hidden = next(c for c in got["Ann Lee"]["checks"] if c["visibility"] == "hidden")
    assert main(["export", "moodle", str(out)]) == 0
    row = moodle_worksheet((out / "moodle-grades.csv").read_text())["7654321"]
    assert row["Grade"] == "2"
    assert "total 0/1" in row["Feedback comments"] and "scale 1/1" in row["Feedback comments"]
    assert hidden["message"] not in row["Feedback comments"]
    with zipfile.ZipFile(out / "moodle-feedback.zip") as archive:
        assert all(hidden["message"] not in archive.read(n).decode() for n in archive.namelist())


def test_the_gradebook_gets_the_adjusted_score_and_the_graded_one_stays_in_results(tmp_path, canvas_class):
    """An instructor's adjustment and a late penalty reach Canvas; results.json keeps the
    graded score apart."""
    adjustments = tmp_path / "adjustments.toml"
    adjustments.write_text('[late]\nper_day = 10\n\n[students.smithbob]\npoints = -1\nreason = "copied a helper"\n')
    out = tmp_path / "out"
    got = grade(canvas_class, out, "--adjustments", str(adjustments))
    assert got["smithbob"]["score"] == 3.0 and got["smithbob"]["adjustment"]["final_score"] == 2.0
    assert got["doejane"]["adjustment"]["late_penalty"] > 0  # Canvas marked her file LATE
    assert main(["export", "canvas", str(out), "--assignment-title", "Assignment 3"]) == 0
    _, cells = canvas_gradebook((out / "canvas-grades.csv").read_text(encoding="utf-8"), "Assignment 3")
    assert float(cells["4501"]) == 2.0
    assert float(cells["4502"]) == got["doejane"]["adjustment"]["final_score"] < 2.0
    assert float(cells["4504"]) == 3.0
