"""What every run of the attack suite (tests/submissions/attacks) must show, whatever the
sandbox mode and whoever runs the grader: shared by test_attacks.py (in-process, as
root) and test_attacks_user.py (a subprocess as an ordinary user)."""

from __future__ import annotations

import hashlib
from pathlib import Path

ATTACKS = Path(__file__).parent / "submissions" / "attacks"
STUDENTS = sorted(p.stem for p in ATTACKS.glob("*.py"))

# The attacked function scores as wrong with this code; relu_forward and total keep credit.
SCALE_FAILS_WITH = [
    ("signals", "submission.timeout"),
    ("segfault", "submission.crashed"),
    ("fork_bomb", "submission.timeout"),
    # Python 3.11 keeps Python frames off the C stack: with the limit lifted the recursion
    # grows for ~15 s before the interpreter gives up, far past the 3 s limit.
    ("recursion", "submission.timeout"),
    ("return_subclass", "submission.bad_return"),
    ("return_array_like", "submission.bad_return"),
    ("return_giant", "submission.bad_return"),
    ("return_object_dtype", "submission.bad_return"),
]
# Attacks that are correct code besides: contained, they cost nothing.
CONTAINED = ["files_write", "files_read", "network", "daemons", "output_flood"]
# Attacks on the grader and its worker host: they must cost nothing and change nothing.
ON_THE_GRADER = ["helper_sabotage", "kill_grader"]
# scale is right only if the attack on the solution, a forbidden package or the record worked.
OUT_OF_REACH = ["solution_by_path", "import_hook_removed", "forge_record"]


def write_class(cls: Path, values: dict[str, object]) -> None:
    """Every attack into `cls`, its placeholders (@CLASS@, @OUT@, @TOOLKIT@, @HOME@,
    @PORT@) replaced by the real values, as a student who knows the machine would."""
    for path in ATTACKS.glob("*.py"):
        text = path.read_text()
        for key, value in values.items():
            text = text.replace(key, str(value))
        (cls / path.name).write_text(text)


def digest(root: Path, skip: set[str] = frozenset()) -> dict[str, str]:
    """relative path -> SHA-256 of every regular file under `root`."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not path.is_symlink() and not any(part in skip for part in path.parts):
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def toolkit_digest(root: Path) -> dict[str, str]:
    found = {}
    for folder in ("grader", "reference", "assignments", "tests", "examples"):
        if (root / folder).is_dir():
            found.update({f"{folder}/{k}": v for k, v in digest(root / folder, {"__pycache__"}).items()})
    return found


def by_student(run: dict) -> dict[str, dict]:
    return {s["student"]: s for s in run["submissions"]}


def checks_of(sub: dict) -> dict[str, dict]:
    return {c["function"]: c for c in sub["checks"]}


def leaks(run: dict) -> dict[str, list[str]]:
    """student -> the lines of its output where an attack says it got through."""
    found = {s["student"]: [line for line in s["output"].splitlines() if "LEAK" in line]
             for s in run["submissions"]}
    return {k: v for k, v in found.items() if v}


def lost_protections(run: dict) -> list[str]:
    return sorted(p["name"] for p in run["protections"] if not p["held"])


# ----------------------------------------------------------- per attack, in any mode
def expect_scale_fails(sub: dict, code: str | None = None) -> None:
    """The attacked function earns nothing (with diagnosis `code`, if given); the
    other functions keep their credit."""
    checks = checks_of(sub)
    assert not checks["scale"]["passed"], checks["scale"]
    if code is not None:
        assert checks["scale"]["diagnoses"] == [code], checks["scale"]
    assert checks["relu_forward"]["passed"] and checks["total"]["passed"], sub["checks"]


def expect_full_marks(sub: dict) -> None:
    assert sub["status"] == "graded", sub
    assert sub["score"] == 3.0, [c["message"] for c in sub["checks"] if not c["passed"]]
    assert "LEAK" not in sub["output"]


def expect_turned_away(sub: dict) -> None:
    """It did try: the attack found its targets and was refused."""
    assert "refused" in sub["output"], sub["output"][:2000]


def expect_reads_refused(sub: dict) -> None:  # files_read
    assert sub["output"].count("read refused") == 4 and "LEAK" not in sub["output"], sub["output"][:2000]


def expect_import_routes_blocked(sub: dict) -> None:  # import_routes
    assert "LEAK" not in sub["output"]
    assert sub["output"].count("blocked") == 11, sub["output"][:2000]
    expect_scale_fails(sub)
    assert "reference" in checks_of(sub)["scale"]["message"]
    assert "submission.forbidden_import" in sub["diagnoses"]
    assert {"reference", "torch", "grader", "assignments"} <= set(sub["forbidden_imports"])


def expect_forbidden_import_flagged(sub: dict) -> None:  # import_hook_removed
    assert "submission.forbidden_import" in sub["diagnoses"] and "scipy.signal" in sub["forbidden_imports"]


def expect_output_bounded(sub: dict) -> None:  # output_flood
    assert len(sub["output"].encode()) <= 64 * 1024
    assert sub["output_dropped_bytes"] >= 50_000_000 - 64 * 1024
