"""Shards for job arrays (`grade PATH --shard K/N --seed S`) and `grade merge`: the merge
of a class's shards is what one run of the class writes, apart from what is measured
(timings, and the worker uid, which comes from the grader's pid); bad shards are
refused with one line naming them."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from grader.cli import main
from grader.merge import MergeError, merge_runs, read_shard
from grader.models import RunResult
from grader.shard import class_digest, parse_shard, shard_of

ROOT = Path(__file__).resolve().parent.parent
CNN = ROOT / "examples" / "submissions" / "cnn"
SEED = "20261205"
# erin hangs and bob's top level sleeps: shorter limits keep the four runs short, and the
# same limits in every run keep them comparable.
FLAGS = ["--sandbox", "none", "--seed", SEED, "--timeout", "4", "--load-timeout", "2", "-q"]
N = 3


def grade(cls: Path, out: Path, *extra: str) -> int:
    return main([str(cls), "--out", str(out), *FLAGS, *extra])


def merge(*folders: Path, out: Path) -> int:
    return main(["merge", *map(str, folders), "--out", str(out)])


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """One run of the class, and its three shards, all with the same seed."""
    base = tmp_path_factory.mktemp("shards")
    assert grade(CNN, base / "single") == 0
    for k in range(1, N + 1):
        assert grade(CNN, base / f"shard{k}", "--shard", f"{k}/{N}") == 0
    return base


def shards(base: Path) -> list[Path]:
    return [base / f"shard{k}" for k in range(1, N + 1)]


def measured_out(results: dict) -> dict:
    """results.json without what is measured rather than computed."""
    results = json.loads(json.dumps(results))
    results.pop("graded_at")
    for sub in results["submissions"]:
        sub.pop("seconds"), sub.pop("graded_at", None)
        if any("ran longer than" in note for note in sub["notes"]):
            sub.pop("output")  # what the top level printed before its time was up
        for check in sub["checks"]:
            check.pop("seconds")
            if check["kind"] == "performance":  # the student's and the reference's times
                check.pop("message"), check.pop("details")
    for protection in results["protections"]:
        protection["how"] = re.sub(r"uid \d+", "uid", protection["how"])
    return results


def page_measured_out(html: str, graded_at: str) -> str:
    html = re.sub(r"graded \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "graded GRADED_AT", html.replace(graded_at, "GRADED_AT"))
    html = re.sub(r"[\d.]+ ms|\d+x the|[\d.]+\s*×|[\d.]+x|faster than|about as fast as|slower than", "#", html)
    html = re.sub(r"(<dt>(student_seconds|reference_seconds|ratio)</dt><dd>)[^<]*", r"\1", html)
    return re.sub(r"(?m)^epoch[^\n<]*\n?", "", html)  # bob's training prints until its time runs out


def load(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text(encoding="utf-8"))


def test_three_shards_merged_equal_one_run_of_the_class(graded, tmp_path, capsys):
    parts = [load(folder) for folder in shards(graded)]
    assert all(part["shard"]["class_students"] == 5 and part["seed"] == int(SEED) for part in parts)
    assert sum(len(part["submissions"]) for part in parts) == 5
    assert all(part["submissions"] for part in parts), "each of the 3 shards holds some of the 5 students"

    out = tmp_path / "merged"
    assert merge(*reversed(shards(graded)), out=out) == 0  # in any order
    assert "Merged 3 shard(s)" in capsys.readouterr().out
    single, merged = load(graded / "single"), load(out)
    assert merged["shard"] is None and single["shard"] is None
    assert [s["student"] for s in merged["submissions"]] == ["alice", "bob", "carol", "dave", "erin"]
    assert measured_out(merged) == measured_out(single)
    assert (out / "grades.csv").read_text() == (graded / "single" / "grades.csv").read_text()
    for student in ("alice", "bob", "carol", "dave", "erin"):
        assert (page_measured_out((out / f"{student}.html").read_text(), merged["graded_at"])
                == page_measured_out((graded / "single" / f"{student}.html").read_text(), single["graded_at"]))
    assert (page_measured_out((out / "index.html").read_text(), merged["graded_at"])
            == page_measured_out((graded / "single" / "index.html").read_text(), single["graded_at"]))

    # The merged folder has its own key and digest: --resume there keeps everyone and the seed.
    read_shard(out)  # verifies
    assert main([str(CNN), "--out", str(out), "--resume", *[f for f in FLAGS if f not in ("--seed", SEED)]]) == 0
    resumed = load(out)
    assert resumed["seed"] == int(SEED)
    assert resumed["submissions"] == merged["submissions"]  # kept, not graded again (same seconds)


def test_the_split_is_stable_when_students_are_added():
    class_ = [f"s{i:04d}" for i in range(300)] + ["ümlaut", "a b", "=cmd"]
    before = {s: shard_of(s, 8) for s in class_}
    assert set(before.values()) == set(range(1, 9))
    assert all(20 <= list(before.values()).count(k) <= 60 for k in range(1, 9))  # about 1/8 each
    after = {s: shard_of(s, 8) for s in class_ + ["late_student", "another"]}
    assert all(after[s] == before[s] for s in class_)
    assert class_digest(class_) == class_digest(reversed(class_)) != class_digest(class_ + ["late_student"])
    # The documented hash, the same in every process (Python's hash() of a str is not).
    assert all(shard_of(s, 8) == int.from_bytes(hashlib.sha256(s.encode()).digest()[:8], "big") % 8 + 1
               for s in class_)


@pytest.mark.parametrize("value", ["0/3", "4/3", "3", "a/b", "1/0", "-1/3", "1/3/3"])
def test_bad_shard_values_are_refused_in_one_line(tmp_path, capsys, value):
    assert grade(CNN, tmp_path / "out", f"--shard={value}") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--shard takes K/N with 1 <= K <= N" in err[0] and value in err[0]
    with pytest.raises(ValueError):
        parse_shard(value)


def test_a_shard_without_a_seed_is_refused(tmp_path, capsys):
    assert main([str(CNN), "--out", str(tmp_path / "out"), "--sandbox", "none", "--shard", "1/3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["grade: error: --shard needs --seed: every shard of a class must grade on the same inputs"]
    assert not (tmp_path / "out").exists()


def refused(capsys, *folders: Path, out: Path) -> str:
    capsys.readouterr()
    assert merge(*folders, out=out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("grade merge: error: "), err
    assert not (out / "results.json").exists()
    return err[0]


def test_a_missing_shard_is_refused_naming_it(graded, tmp_path, capsys):
    one, two, three = shards(graded)
    assert "shard 2/3 missing" in refused(capsys, one, three, out=tmp_path / "m")
    assert "shards 1/3, 3/3 missing" in refused(capsys, two, out=tmp_path / "m")


def test_a_duplicated_shard_is_refused_naming_it(graded, tmp_path, capsys):
    one, two, three = shards(graded)
    copy = tmp_path / "copy-of-2"
    shutil.copytree(two, copy)
    line = refused(capsys, one, two, copy, three, out=tmp_path / "m")
    assert f"{copy}: shard 2/3 again ({two} is shard 2/3 too)" in line
    assert f"{two}: given twice" in refused(capsys, one, two, three, two, out=tmp_path / "m")
    before = (three / "results.json").read_bytes()
    assert merge(one, two, three, out=three) == 2
    assert "is one of the shards" in capsys.readouterr().err
    assert (three / "results.json").read_bytes() == before


def test_a_tampered_shard_is_refused_naming_it(graded, tmp_path, capsys):
    one, two, three = shards(graded)
    forged = tmp_path / "forged-3"
    shutil.copytree(three, forged)
    text = (forged / "results.json").read_text(encoding="utf-8")
    assert '"score": 0.0' in text
    (forged / "results.json").write_text(text.replace('"score": 0.0', '"score": 2.0', 1), encoding="utf-8")
    line = refused(capsys, one, two, forged, out=tmp_path / "m")
    assert str(forged) in line and "does not match its digest" in line

    unkeyed = tmp_path / "unkeyed-3"
    shutil.copytree(three, unkeyed)
    shutil.rmtree(unkeyed / ".nngrade")  # uploaded without its hidden folder
    line = refused(capsys, one, two, unkeyed, out=tmp_path / "m")
    assert str(unkeyed) in line and "no key and digest" in line


def test_shards_that_do_not_make_one_class_are_refused(graded):
    runs = [(folder, RunResult.model_validate(load(folder))) for folder in shards(graded)]
    (one, r1), (two, r2), (three, r3) = runs

    def refusal(*pairs) -> str:
        with pytest.raises(MergeError) as error:
            merge_runs(list(pairs))
        return str(error.value)

    assert merge_runs(runs).submissions  # the unchanged shards merge
    stray = r1.submissions[0]
    moved = r2.model_copy(update={"submissions": r2.submissions + [stray],
                                  "shard": r2.shard.model_copy(update={"students": r2.shard.students + 1})})
    assert f"{two}: student {stray.student!r} is also in {one}" in refusal((one, r1), (two, moved), (three, r3))
    wrong = r2.model_copy(update={"submissions": [stray]})
    assert f"{two}: student {stray.student!r} does not belong to shard 2/3" in refusal(
        (one, r1.model_copy(update={"submissions": [], "shard": r1.shard.model_copy(update={"students": 0})})),
        (two, wrong), (three, r3))
    assert f"{two}: graded with seed 1" in refusal((one, r1), (two, r2.model_copy(update={"seed": 1})), (three, r3))
    other = r3.shard.model_copy(update={"class_students": 6})
    assert f"{three}: a shard of another class" in refusal((one, r1), (two, r2),
                                                            (three, r3.model_copy(update={"shard": other})))
    split = r3.shard.model_copy(update={"count": 4})
    assert f"{three}: shard 3/4, but {one} is shard 1/3" in refusal((one, r1), (two, r2),
                                                                    (three, r3.model_copy(update={"shard": split})))
    cut = r3.model_copy(update={"submissions": r3.submissions[:-1]})
    assert f"{three}: shard 3/3 is incomplete" in refusal((one, r1), (two, r2), (three, cut))
    assert f"{three}: not a shard" in refusal((one, r1), (two, r2), (three, r3.model_copy(update={"shard": None})))


def test_an_empty_shard_is_a_shard(tmp_path, capsys):
    """With one student and two shards, one shard is empty: it is graded, recorded and merged."""
    outs = [tmp_path / f"s{k}" for k in (1, 2)]
    one = tmp_path / "class"
    one.mkdir()
    (one / "dave.py").write_text((CNN / "dave.py").read_text())
    for k, out in enumerate(outs, 1):
        assert grade(one, out, "--shard", f"{k}/2") == 0
    sizes = sorted(load(out)["shard"]["students"] for out in outs)
    assert sizes == [0, 1]
    assert merge(*outs, out=tmp_path / "m") == 0
    assert [s["student"] for s in load(tmp_path / "m")["submissions"]] == ["dave"]
    empty = next(out for out in outs if load(out)["shard"]["students"] == 0)
    assert f"shard {load(empty)['shard']['index']}/2 missing" in refused(
        capsys, *[o for o in outs if o != empty], out=tmp_path / "m2")
