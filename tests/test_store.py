"""The run's record: --resume keeps only what this grader wrote (each journal line
carries a keyed digest), no character a student prints can split a record, and a
student the grader failed to finish is graded again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from toy_assignment import CORRECT, TOY

import grader.assignment
from grader.cli import main
from grader.models import SubmissionResult
from grader.store import ResultStore, read_journal

JOURNAL = Path(".nngrade") / "journal-toy.jsonl"


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setattr(grader.assignment, "available", lambda: {"toy": TOY})


def grade(cls: Path, out: Path, *extra: str) -> dict:
    assert main([str(cls), "-a", "toy", "--out", str(out), "-q", "--sandbox", "none", "--jobs", "1",
                 *extra]) == 0
    return {s["student"]: s for s in json.loads((out / "results.json").read_text())["submissions"]}


def a_class(tmp_path: Path, **sources: str) -> Path:
    cls = tmp_path / "class"
    cls.mkdir()
    for name, text in sources.items():
        (cls / f"{name}.py").write_text(text)
    return cls


WRONG = CORRECT.replace("return x * k", "return x * k + 1")


def test_a_forged_journal_line_is_refused_by_resume(tmp_path, toy, capsys):
    cls, out = a_class(tmp_path, ann=CORRECT, bob=WRONG), tmp_path / "out"
    first = grade(cls, out)
    assert first["bob"]["score"] == 2.0
    journal = out / JOURNAL
    forged = dict(first["bob"], score=3.0, checks=[dict(c, passed=True, score=c["max_score"])
                                                    for c in first["bob"]["checks"]])
    # Plain JSON, as before digests; then a line with a made-up digest; then one digested
    # with another output folder's key.
    other = ResultStore(tmp_path / "elsewhere", "toy", resume=False)
    other_line = other._line(SubmissionResult.model_validate(forged)).decode()
    with open(journal, "a", encoding="utf-8") as f:
        f.write(json.dumps(forged) + "\n")
        f.write("0" * 64 + " " + json.dumps(forged) + "\n")
        f.write(other_line)
    capsys.readouterr()
    second = grade(cls, out, "--resume")
    assert second["bob"]["score"] == 2.0  # graded again, not the forgery
    assert second["ann"] == first["ann"]  # a genuine record is kept
    assert "3 record(s)" in capsys.readouterr().err


def test_an_edited_results_json_is_not_trusted(tmp_path, toy):
    cls, out = a_class(tmp_path, bob=WRONG), tmp_path / "out"
    grade(cls, out)
    (out / JOURNAL).unlink()  # resume must fall back to results.json
    doc = json.loads((out / "results.json").read_text())
    doc["submissions"][0]["score"] = 3.0
    (out / "results.json").write_text(json.dumps(doc, indent=2))
    assert grade(cls, out, "--resume")["bob"]["score"] == 2.0


def test_an_unedited_results_json_is_kept_when_the_journal_is_gone(tmp_path, toy):
    cls, out = a_class(tmp_path, bob=WRONG), tmp_path / "out"
    first = grade(cls, out)
    (out / JOURNAL).unlink()
    assert grade(cls, out, "--resume")["bob"] == first["bob"]


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\x0c", "\x1c", "\x85", "\r"])
def test_no_printed_character_splits_a_record(tmp_path, toy, char):
    noisy = f"print('before' + chr({ord(char)}) + 'after')\n" + CORRECT
    cls, out = a_class(tmp_path, ann=noisy), tmp_path / "out"
    first = grade(cls, out)
    assert char in first["ann"]["output"]
    assert [r["student"] for r in read_journal(out / JOURNAL)] == ["ann"]
    store = ResultStore(out, "toy", resume=True)
    assert store.refused == 0 and store.previous["ann"].output == first["ann"]["output"]


def test_a_grader_failure_is_graded_again_by_resume(tmp_path, toy):
    cls, out = a_class(tmp_path, ann=CORRECT), tmp_path / "out"
    first = grade(cls, out)
    store = ResultStore(out, "toy", resume=True)
    failed = SubmissionResult.model_validate(dict(first["ann"], status="error", score=0.0, checks=[],
                                                  diagnoses=["grader.internal_error"]))
    store.add(failed)
    assert ResultStore(out, "toy", resume=True).reusable("ann", failed.content_hash) is None
    assert grade(cls, out, "--resume")["ann"]["score"] == 3.0


def test_the_key_is_private_to_its_owner(tmp_path):
    store = ResultStore(tmp_path / "out", "toy", resume=False)
    assert (store.state / "key").stat().st_mode & 0o077 == 0
    assert store.state.stat().st_mode & 0o077 == 0


def test_a_resumed_run_keeps_the_seed_of_the_run_it_resumes(tmp_path, toy):
    cls, out = a_class(tmp_path, ann=CORRECT, bob=WRONG), tmp_path / "out"
    grade(cls, out, "--only", "ann")
    first = json.loads((out / "results.json").read_text())["seed"]
    grade(cls, out, "--resume")
    assert json.loads((out / "results.json").read_text())["seed"] == first
    grade(cls, out)  # a fresh run: a fresh secret
    assert json.loads((out / "results.json").read_text())["seed"] != first
    seed_file = out / ".nngrade" / "seed-toy"
    seed_file.write_text("0" * 64 + " 42\n")  # not written by the grader: not trusted
    grade(cls, out, "--resume")
    assert json.loads((out / "results.json").read_text())["seed"] != 42
