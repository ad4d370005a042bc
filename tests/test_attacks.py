"""The attack suite: submissions written by a determined student who knows the
machine's paths and has read our source, graded in every sandbox mode of this
machine (bubblewrap; without it, as root; a fresh interpreter per submission; as an
ordinary user in test_attacks_user.py; Gradescope's container in test_gradescope.py).
For each: the attacked function scores as wrong or absent, the other functions keep
their credit, no file outside the student's temporary copy changes, no process is
left, the grader survives, and every student is in results.json."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from attack_expectations import (
    ATTACKS,
    CONTAINED,
    ON_THE_GRADER,
    OUT_OF_REACH,
    SCALE_FAILS_WITH,
    STUDENTS,
    by_student,
    digest,
    expect_forbidden_import_flagged,
    expect_full_marks,
    expect_import_routes_blocked,
    expect_output_bounded,
    expect_reads_refused,
    expect_scale_fails,
    expect_turned_away,
    leaks,
    lost_protections,
    toolkit_digest,
    write_class,
)
from processes import sleepers, slot_uid_processes, zygotes
from toy_assignment import TOY

import grader.assignment
import grader.sandbox
from grader.cli import main
from grader.sandbox import SandboxConfig, bwrap_works
from grader.store import read_journal

LINUX = sys.platform.startswith("linux")
MODES = [pytest.param("bwrap", marks=pytest.mark.skipif(not bwrap_works(), reason="bubblewrap is not available "
                                                         "(.ci/run installs it)")),
         pytest.param("none", marks=pytest.mark.skipif(not LINUX, reason="Linux only")),
         "spawn"]

ROOT = Path(__file__).resolve().parent.parent
HOME = Path.home()
CANARY = HOME / ".nngrade_canary"


@pytest.fixture(scope="module", params=MODES)
def attacked(request, tmp_path_factory):
    mode = request.param
    work = tmp_path_factory.mktemp(f"attacks-{mode}")
    cls, out = work / "class", work / "out"
    cls.mkdir()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    accepted = []

    def accept_loop():
        while not stop.is_set():
            try:
                accepted.append(listener.accept())
            except OSError:
                pass

    stop = threading.Event()
    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    write_class(cls, {"@CLASS@": cls, "@OUT@": out, "@TOOLKIT@": ROOT, "@HOME@": HOME, "@PORT@": port})
    CANARY.write_text("canary")
    zygotes_before = zygotes()
    before = {"class": digest(cls), "toolkit": toolkit_digest(ROOT)}
    mp = pytest.MonkeyPatch()
    mp.setattr(grader.assignment, "available", lambda: {"toy": TOY})
    try:
        code = main([str(cls), "-a", "toy", "--out", str(out), "--jobs", "2", "--timeout", "3",
                     "--memory", "1024", "--sandbox", mode, "--quiet"])
    finally:
        mp.undo()
        stop.set()
        thread.join()
        listener.close()
    after = {"class": digest(cls), "toolkit": toolkit_digest(ROOT)}
    canary = CANARY.read_text() if CANARY.exists() else None
    CANARY.unlink(missing_ok=True)
    run = json.loads((out / "results.json").read_text())
    yield {"mode": mode, "code": code, "run": run, "by": by_student(run), "out": out,
           "before": before, "after": after, "canary": canary, "accepted": accepted,
           "zygotes_before": zygotes_before}
    for conn, _ in accepted:
        conn.close()


@pytest.mark.parametrize("student, code", SCALE_FAILS_WITH)
def test_attacked_function_fails_with_its_code_and_the_rest_keeps_credit(attacked, student, code):
    expect_scale_fails(attacked["by"][student], code)


@pytest.mark.parametrize("student", CONTAINED)
def test_contained_attacks_cost_nothing_by_themselves(attacked, student):
    expect_full_marks(attacked["by"][student])


def test_reading_other_students_and_the_solution_is_refused(attacked):
    expect_reads_refused(attacked["by"]["files_read"])


def test_import_routes_to_the_solution_are_all_blocked(attacked):
    expect_import_routes_blocked(attacked["by"]["import_routes"])


def test_network_is_unreachable(attacked):
    assert attacked["accepted"] == []
    assert "network refused 127.0.0.1" in attacked["by"]["network"]["output"]


def test_output_flood_is_bounded(attacked):
    expect_output_bounded(attacked["by"]["output_flood"])


def test_no_file_outside_the_temporary_copies_changed(attacked):
    assert attacked["after"]["class"] == attacked["before"]["class"]
    assert attacked["after"]["toolkit"] == attacked["before"]["toolkit"]
    assert attacked["canary"] == "canary"
    assert not (HOME / "pwned").exists()


def test_results_are_the_graders_own(attacked):
    victim = attacked["by"]["victim"]
    assert victim["score"] == 3.0 and victim["status"] == "graded"
    journal = read_journal(attacked["out"] / ".nngrade" / "journal-toy.jsonl")
    assert all(record["score"] <= 3.0 for record in journal)
    assert len(journal) == len(attacked["by"])


def test_no_process_is_left(attacked):
    assert sleepers() == {}
    assert slot_uid_processes() == {}, "a process of a slot's uid outlived the run"
    # Forked workers, and everything a fork bomb forks from them, carry the zygote's
    # command line: none may outlive the run.
    assert zygotes() - attacked["zygotes_before"] == set()


def test_every_student_is_in_the_results(attacked):
    assert sorted(attacked["by"]) == STUDENTS
    assert attacked["code"] == 0


# --------------------------------------------------------------- issue 10's attacks
def test_no_attack_got_through(attacked):
    assert leaks(attacked["run"]) == {}


def test_every_protection_held_but_namespaces_outside_bubblewrap(attacked):
    lost = lost_protections(attacked["run"])
    assert lost == ([] if attacked["mode"] == "bwrap" else ["own_namespace"]), attacked["run"]["protections"]


@pytest.mark.parametrize("student", ON_THE_GRADER)
def test_attacks_on_the_grader_and_its_helpers_cost_nothing_and_change_nothing(attacked, student):
    expect_full_marks(attacked["by"][student])
    expect_turned_away(attacked["by"][student])
    assert attacked["code"] == 0  # the grader survived to write every result


@pytest.mark.parametrize("student", OUT_OF_REACH)
def test_the_solution_forbidden_packages_and_the_record_are_out_of_reach(attacked, student):
    expect_scale_fails(attacked["by"][student])  # correct only if its attack had worked
    expect_turned_away(attacked["by"][student])


def test_a_forbidden_import_with_the_hooks_removed_is_still_flagged(attacked):
    expect_forbidden_import_flagged(attacked["by"]["import_hook_removed"])


@pytest.mark.parametrize("mode", MODES)
def test_classmates_graded_after_a_saboteur_in_the_same_slot_get_full_marks(tmp_path, mode):
    """One job slot: the saboteur goes first and leaves a killer behind; each classmate
    after it must be graded as if it had never been there."""
    cls, out = tmp_path / "class", tmp_path / "out"
    cls.mkdir()
    (cls / "a_saboteur.py").write_text((ATTACKS / "helper_sabotage.py").read_text())
    victims = [f"b_victim{i}" for i in range(4)]
    for name in victims:
        (cls / f"{name}.py").write_text((ATTACKS / "victim.py").read_text())
    mp = pytest.MonkeyPatch()
    mp.setattr(grader.assignment, "available", lambda: {"toy": TOY})
    try:
        code = main([str(cls), "-a", "toy", "--out", str(out), "--jobs", "1", "--timeout", "3",
                     "--sandbox", mode, "--quiet"])
    finally:
        mp.undo()
    assert code == 0
    by = {s["student"]: s for s in json.loads((out / "results.json").read_text())["submissions"]}
    for name in victims:
        assert by[name]["score"] == 3.0 and by[name]["status"] == "graded", by[name]
        assert not any("attempt" in note for note in by[name]["notes"]), by[name]["notes"]
    assert slot_uid_processes() == {}


@pytest.mark.skipif(not bwrap_works(), reason="bubblewrap is not available (.ci/run installs it)")
def test_bubblewrap_hides_every_toolkit_package_installed_side_by_side(tmp_path, monkeypatch):
    """A toolkit installed with pip puts its packages (and the forbidden ones) side by
    side in one site-packages: each must vanish from the workers' view, not only the
    last one hidden (each was hidden by a tmpfs over the folder that put its siblings,
    the others among them, back)."""
    site = tmp_path / "lib" / "site-packages"
    for name in ("assignments", "grader", "numpy", "reference", "scipy", "scipy/signal", "scipy/linalg"):
        (site / name).mkdir(parents=True)
        (site / name / "__init__.py").write_text("SECRET = 1\n")
    interpreter = grader.sandbox.interpreter_dirs()
    monkeypatch.setattr(grader.sandbox, "interpreter_dirs", lambda: [*interpreter, site])  # a library folder
    config = SandboxConfig("bwrap")
    config.toolkit_paths = [site / name for name in ("assignments", "grader", "reference")]
    config.forbidden_paths = [site / "scipy" / "signal"]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    command = config.bwrap_prefix(scratch) + ["--", "sh", "-c", f"ls {site}; ls {site}/scipy"]
    seen = subprocess.run(command, capture_output=True, text=True, check=True, timeout=30).stdout.split()
    assert seen == ["numpy", "scipy", "__init__.py", "linalg"]
