"""The attack suite with `--sandbox none` run by an ordinary user (uid 1000), as a
course's staff member without root would run it: the grader is that user, so are
its workers (no uid of their own), and what holds student code is Landlock (reads,
writes, TCP, signal scoping) and seccomp alone. kill(-1) from a worker would reach
every process of that user, the grader included, unless they hold.

The grader runs in a subprocess as uid 1000, from a virtualenv built once from
Debian's /usr/bin/python3 (an interpreter every user can read) with the project's
runtime dependencies, the toolkit on PYTHONPATH and the toy assignment patched in."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from attack_expectations import (
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

from grader.store import read_journal

ROOT = Path(__file__).resolve().parent.parent
UID = 1000
SYSTEM_PYTHON = "/usr/bin/python3"
RUNTIME = ["numpy", "scipy", "pydantic", "jinja2", "nbformat", "tqdm"]
DRIVER = (
    "import sys; sys.path.insert(0, {tests!r}); import grader.assignment as a; from toy_assignment import TOY; "
    "a.available = lambda: {{'toy': TOY}}; from grader.cli import main; sys.exit(main(sys.argv[1:]))"
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def _user() -> pwd.struct_passwd:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("running the grader as another user needs root")
    try:
        return pwd.getpwuid(UID)
    except KeyError:
        pytest.skip(f"no user with uid {UID} on this machine")


def _usable_by_others(path: Path) -> bool:
    """Whether a user of no group can read everything under `path` (and reach it)."""
    if not all(parent.stat().st_mode & 0o001 for parent in path.parents):
        return False
    for folder, dirs, files in os.walk(path):
        if os.stat(folder).st_mode & 0o005 != 0o005:
            return False
        if any(os.stat(os.path.join(folder, f)).st_mode & 0o004 == 0 for f in files):
            return False
    return True


def _as_user(user: pwd.struct_passwd) -> dict:
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _processes_of(uid: int) -> dict[int, str]:
    """pid -> command line of every live (not zombie) process of `uid`."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != uid:
                continue
            stat = Path(f"/proc/{entry}/stat").read_bytes()
            if stat[stat.rfind(b")") + 2:].split()[0] in (b"Z", b"X"):
                continue
            found[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
    return found


@pytest.fixture(scope="session")
def user_python():
    """A virtualenv of Debian's Python with the project's runtime dependencies, in a
    folder every user can read: -> (user, its python, the toolkit folder to run)."""
    user = _user()
    if not os.path.exists(SYSTEM_PYTHON):
        pytest.skip(f"{SYSTEM_PYTHON} does not exist")
    if subprocess.run([SYSTEM_PYTHON, "-c", "import venv, ensurepip"], capture_output=True).returncode != 0:
        pytest.skip(f"{SYSTEM_PYTHON} has no venv module (apt-get install python3-venv)")
    base = Path(tempfile.mkdtemp(prefix="nngrade-user-venv-"))
    os.chmod(base, 0o755)
    try:
        venv = base / "venv"
        made = subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(venv)], capture_output=True, text=True, timeout=120)
        if made.returncode != 0:
            pytest.skip(f"{SYSTEM_PYTHON} -m venv failed: {made.stderr.strip()[-500:]}")
        python = venv / "bin" / "python"
        modern = subprocess.run([str(python), "-c", "import sys; sys.exit(sys.version_info < (3, 11))"])
        packages = RUNTIME + ([] if modern.returncode == 0 else ["tomli"])
        installed = subprocess.run([str(python), "-m", "pip", "install", "-q", *packages],
                                   capture_output=True, text=True, timeout=300)
        if installed.returncode != 0:
            pytest.skip(f"could not install {' '.join(packages)} into a venv (no network or package index?): "
                        f"{installed.stderr.strip()[-500:]}")
        # The checkout itself where uid 1000 can read it; otherwise a copy that it can.
        toolkit = ROOT
        if not all(_usable_by_others(ROOT / folder) for folder in ("grader", "reference", "assignments", "tests")):
            toolkit = base / "toolkit"
            for folder in ("grader", "reference", "assignments", "tests"):
                shutil.copytree(ROOT / folder, toolkit / folder, ignore=shutil.ignore_patterns("__pycache__"))
            subprocess.run(["chmod", "-R", "a+rX", str(base / "toolkit")], check=True)
        yield user, python, toolkit
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def run_as_user(user_python):
    user, python, toolkit = user_python
    work = Path(tempfile.mkdtemp(prefix="nngrade-user-run-"))
    os.chmod(work, 0o755)
    cls, out, home = work / "class", work / "out", work / "home"
    for folder in (cls, out, home):
        folder.mkdir()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    accepted, stop = [], threading.Event()

    def accept_loop():
        while not stop.is_set():
            try:
                accepted.append(listener.accept())
            except OSError:
                pass

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    write_class(cls, {"@CLASS@": cls, "@OUT@": out, "@TOOLKIT@": toolkit, "@HOME@": home, "@PORT@": port})
    (home / ".nngrade_canary").write_text("canary")
    for path in [cls, out, home, *cls.iterdir(), *home.iterdir()]:
        os.chown(path, user.pw_uid, user.pw_gid)
    os.chmod(home, 0o700)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "USER": user.pw_name,
           "PYTHONPATH": str(toolkit), "PYTHONDONTWRITEBYTECODE": "1"}
    env.update({k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ})
    command = [str(python), "-c", DRIVER.format(tests=str(toolkit / "tests")), str(cls), "-a", "toy", "--out",
               str(out), "--jobs", "2", "--timeout", "3", "--memory", "1024", "--sandbox", "none", "--quiet"]
    # Another process of the same user, not the run's: kill(-1) from a worker reaches
    # it (and the grader) unless signals are scoped.
    bystander = subprocess.Popen(["sleep", "600"], **_as_user(user), start_new_session=True)
    try:
        before = {"class": digest(cls), "home": digest(home), "toolkit": toolkit_digest(toolkit),
                  "processes": _processes_of(user.pw_uid)}
        started = time.monotonic()
        try:
            proc = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=180,
                                  **_as_user(user))
        finally:
            stop.set()
            thread.join()
            listener.close()
        seconds = time.monotonic() - started
        after = {"class": digest(cls), "home": digest(home), "toolkit": toolkit_digest(toolkit),
                 "processes": _processes_of(user.pw_uid)}
        bystander_alive = bystander.poll() is None
        results = out / "results.json"
        run = json.loads(results.read_text()) if results.exists() else {"submissions": [], "protections": []}
        yield {"proc": proc, "run": run, "by": by_student(run), "out": out, "home": home, "before": before,
               "after": after, "accepted": accepted, "bystander_alive": bystander_alive, "seconds": seconds}
    finally:
        bystander.kill()
        bystander.wait()
        for conn, _ in accepted:
            conn.close()
        shutil.rmtree(work, ignore_errors=True)


def graded(run_as_user, student: str) -> dict:
    assert student in run_as_user["by"], f"{student} is not in results.json (did the grader die?)"
    return run_as_user["by"][student]


def test_grading_ran_and_every_student_is_in_the_results(run_as_user):
    proc = run_as_user["proc"]
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert sorted(run_as_user["by"]) == STUDENTS


def test_no_attack_got_through(run_as_user):
    assert leaks(run_as_user["run"]) == {}
    assert "LEAK" not in run_as_user["proc"].stdout + run_as_user["proc"].stderr


@pytest.mark.parametrize("student, code", SCALE_FAILS_WITH)
def test_attacked_function_fails_with_its_code_and_the_rest_keeps_credit(run_as_user, student, code):
    expect_scale_fails(graded(run_as_user, student), code)


@pytest.mark.parametrize("student", CONTAINED)
def test_contained_attacks_cost_nothing_by_themselves(run_as_user, student):
    expect_full_marks(graded(run_as_user, student))


@pytest.mark.parametrize("student", OUT_OF_REACH)
def test_the_solution_forbidden_packages_and_the_record_are_out_of_reach(run_as_user, student):
    expect_scale_fails(graded(run_as_user, student))  # correct only if its attack had worked
    expect_turned_away(graded(run_as_user, student))


def test_reading_other_students_and_the_solution_is_refused(run_as_user):
    expect_reads_refused(graded(run_as_user, "files_read"))


def test_import_routes_to_the_solution_are_all_blocked(run_as_user):
    expect_import_routes_blocked(graded(run_as_user, "import_routes"))


def test_a_forbidden_import_with_the_hooks_removed_is_still_flagged(run_as_user):
    expect_forbidden_import_flagged(graded(run_as_user, "import_hook_removed"))


def test_network_is_unreachable(run_as_user):
    assert run_as_user["accepted"] == []
    assert "network refused 127.0.0.1" in graded(run_as_user, "network")["output"]


def test_output_flood_is_bounded(run_as_user):
    expect_output_bounded(graded(run_as_user, "output_flood"))


def test_every_protection_held_but_namespaces(run_as_user):
    run = run_as_user["run"]
    assert lost_protections(run) == ["own_namespace"], run["protections"]


def test_no_file_outside_the_temporary_copies_changed(run_as_user):
    before, after = run_as_user["before"], run_as_user["after"]
    assert after["class"] == before["class"]
    assert after["toolkit"] == before["toolkit"]
    assert after["home"] == before["home"] and (run_as_user["home"] / ".nngrade_canary").read_text() == "canary"
    assert not (run_as_user["home"] / "pwned").exists()


def test_results_are_the_graders_own(run_as_user):
    victim = graded(run_as_user, "victim")
    assert victim["score"] == 3.0 and victim["status"] == "graded"
    journal = read_journal(run_as_user["out"] / ".nngrade" / "journal-toy.jsonl")
    assert all(record["score"] <= 3.0 for record in journal)
    assert len(journal) == len(run_as_user["by"])


def test_no_process_of_the_user_started_by_the_run_is_left(run_as_user):
    before, after = run_as_user["before"], run_as_user["after"]
    # Its worker hosts, workers, daemons and fork bombs all run as this user.
    left = {pid: cmd for pid, cmd in after["processes"].items() if pid not in before["processes"]}
    assert left == {}


@pytest.mark.parametrize("student", ON_THE_GRADER)
def test_the_grader_and_the_users_other_processes_survived(run_as_user, student):
    """kill_grader tries kill(-1) as the grader's own user; helper_sabotage kills every
    process it can see, for a minute."""
    expect_full_marks(graded(run_as_user, student))
    expect_turned_away(graded(run_as_user, student))
    assert run_as_user["proc"].returncode == 0, run_as_user["proc"].stderr[-2000:]
    assert run_as_user["bystander_alive"], "a process of the grader's user was killed during the run"
