"""The student kit: templates, the public checks, their expected values recorded as
data, and the self-check, with no reference code and nothing of the hidden checks.

    grade kit --assignment cnn --out kit-cnn/        (also writes kit-cnn.zip)

Inside an installed kit, `grade cnn_layers.py` runs the public checks against the
recorded values (see `kit_marker`), on the portable worker path (no fork, no
bubblewrap), and writes the same report the instructor sees, public part only.

Why stripping hidden checks is enough: a hidden check's inputs come from its code
(seeded by its id), so without its code they cannot be rebuilt, and its expected
values come from the reference, which the kit does not hold.

The recorded values answer the kit's fixed inputs only (each check seeded by its id
alone, the lecture's examples as they are): grading draws every check's inputs,
the public ones' too, from the run's secret seed, so a submission that answers from
a table of the recorded values gets nothing for them when graded.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

from grader import __version__
from grader.assignment import Assignment
from grader.compare import DEFAULT_TOLERANCES, Tolerances
from grader.kitcode import kit_copy, reference_imports, shared_modules, strip_hidden, without_solutions
from grader.oracle import RecordingOracle, save_recorded
from grader.runner import run_check

TOOLKIT_ROOT = Path(__file__).resolve().parent.parent
MARKER = "_kit.json"
RECORDED = "recorded.json"
COURSE_CHECKS = "kit_checks.json"  # a course's kit: its checks and points, the reference's signatures


class KitError(Exception):
    """The kit cannot be built (a usage or consistency error)."""


# ----------------------------------------------------------------- kit mode
def kit_marker() -> dict | None:
    """The kit's description when this installation is a student kit, else None."""
    try:
        text = resources.files("grader").joinpath(MARKER).read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        return None
    return json.loads(text)


def recorded_path(assignment_name: str) -> Path:
    return Path(str(resources.files("assignments").joinpath(assignment_name, RECORDED)))


def course_kit_data(folder: Path) -> dict | None:
    """In a course's kit: what its builder recorded for `build_assignment` (the course's
    public checks with their points, the reference's signatures, the recorded answers).
    Outside a kit, None: the instructor's toolkit decides by its dry run."""
    if kit_marker() is None:
        return None
    from grader.contract.model import ContractError
    from grader.oracle import load_recorded

    path = folder / COURSE_CHECKS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ContractError(f"{folder}: a student kit grades only the course it was built for, whose checks "
                            f"it records ({path.name}: {getattr(exc, 'strerror', None) or exc})") from None
    data["recorded"] = load_recorded(folder / RECORDED)
    return data


# ---------------------------------------------------------------- recording
class _Perturbed:
    """The reference, answering wrongly: grading it walks the checks' failure paths,
    so the mistake models they consult get recorded too."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        fn = getattr(self._module, name)
        return lambda *args, **kwargs: _perturb(fn(*args, **kwargs))


def _perturb(value):
    import numpy as np

    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value * 1.5 + 0.25
    if isinstance(value, float):
        return value * 1.5 + 0.25
    if isinstance(value, tuple):
        return tuple(_perturb(v) for v in value)
    if isinstance(value, dict):
        return {k: _perturb(v) for k, v in value.items()}
    return value


def record_public(assignment: Assignment, tolerances: Tolerances = DEFAULT_TOLERANCES) -> dict[str, object]:
    """Run every public check with the reference (right, then wrong) as the student,
    and keep every answer the reference gave.

    For a course, the student is the reference dressed as the course's functions, and
    the recording oracle also stands where the course's adapter asks the reference (a
    call the course does not define, a course's own check's `course_oracle`): the kit's
    recorded answers stand in for it there too."""
    import importlib

    from grader.testing import InProcessStudent

    reference = importlib.import_module(assignment.reference_module)
    oracle = RecordingOracle(reference)
    public = [c for c in assignment.checks if c.visibility == "public"]
    right, wrong, fixtures = _students(assignment, reference, oracle, InProcessStudent)
    for check in public:
        result = run_check(check, right, oracle, tolerances, fixtures=fixtures(right))
        if not result.passed and check.kind != "performance":
            raise KitError(f"the reference fails its own public check {check.id}: {result.message}")
    for check in public:
        run_check(check, wrong, oracle, tolerances, fixtures=fixtures(wrong))
    return oracle.recorded


def _students(assignment: Assignment, reference, oracle, in_process):
    """(the right student, a wrong one, fixtures per student) to record the checks with."""
    contract = assignment.contract
    if contract is None:
        wrong = _Perturbed(reference)
        wrong_namespace = {name: getattr(wrong, name) for name in assignment.functions}
        return (in_process(reference, assignment.functions), in_process(wrong_namespace, assignment.functions),
                lambda student: {})
    from grader.contract.adapt import course_reference
    from grader.contract.build import in_process_student

    module = course_reference(contract, reference)
    wrong = _Perturbed(module)
    wrong_namespace = {name: getattr(wrong, name) for name in contract.functions}
    modules = {}
    students = []
    for functions in (module, wrong_namespace):
        student = in_process_student(contract, functions, oracle)
        modules[id(student)] = functions
        students.append(student)
    course_oracle = course_reference(contract, oracle)

    def fixtures(student):
        from grader.contract.build import course_proxy

        inner = in_process(modules[id(student)], list(contract.functions))
        return {"course": course_proxy(contract, inner._call), "course_oracle": course_oracle}

    return students[0], students[1], fixtures


# ------------------------------------------------------------------ building
def build_kit(assignment: Assignment, out: Path, tolerances: Tolerances = DEFAULT_TOLERANCES) -> Path:
    """Write the kit folder `out` and `out`.zip; returns the zip's path."""
    if out.exists() and any(out.iterdir()):
        raise KitError(f"{out} exists and is not empty")
    contract = assignment.contract
    if contract is not None and assignment.name == contract.info.based_on:
        raise KitError(f"{contract.path}: the course is named like the assignment it is built on "
                       f"({assignment.name!r}); give it another name ([course] name)")
    public = [c for c in assignment.checks if c.visibility == "public"]
    public_ids = {c.id for c in public}
    out.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", MARKER)
    shutil.copytree(TOOLKIT_ROOT / "grader", out / "grader", ignore=ignore)
    (out / "assignments").mkdir()
    shared_modules(TOOLKIT_ROOT / "assignments", out / "assignments")
    if assignment.contract is None:
        source_dir = TOOLKIT_ROOT / "assignments" / assignment.name
        target = kit_copy(source_dir, out / "assignments" / assignment.name, public_ids)
        save_recorded(record_public(assignment, tolerances), target / RECORDED)
        template_dir = source_dir / "template"
        for name in (assignment.file_name, f"{assignment.name}.ipynb"):
            if (template_dir / name).is_file():
                shutil.copyfile(template_dir / name, out / name)
    else:
        _course_files(assignment, out, public, tolerances)
    leaks = reference_imports(out / "assignments")
    if leaks:
        for item in list(out.iterdir()):  # the folder was empty: all of it is ours
            shutil.rmtree(item) if item.is_dir() else item.unlink()
        raise KitError(f"{', '.join(str(p.relative_to(out)) for p in leaks)} import the reference, which a kit "
                       f"must never carry: mark what needs it @kit_recorded (grader/oracle.py); no kit was built")
    # The hidden checks' points, so that a self-check can say that its score is not the whole.
    marker = {"assignment": assignment.name, "toolkit_version": __version__, "public_checks": sorted(public_ids),
              "hidden_points": assignment.max_score - sum(c.points for c in public)}
    (out / "grader" / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
    (out / "pyproject.toml").write_text(_PYPROJECT.format(name=assignment.name, version=__version__))
    notebook = (out / f"{assignment.name}.ipynb").is_file()
    (out / "README.md").write_text(_README.format(
        name=assignment.name, file=assignment.file_name, title=assignment.title or assignment.name,
        or_notebook=f" (or in the notebook `{assignment.name}.ipynb`)" if notebook else "",
        from_notebook="; in the notebook, its last cell, `check()`, checks your functions as the kernel "
        "holds them, saved or not" if notebook else "",
        final="The final grade also runs hidden checks; they test the same functions on other inputs."
        if len(public) < len(assignment.checks) else "The final grade runs the same checks on other inputs."))
    return Path(shutil.make_archive(str(out), "zip", root_dir=out))


def _course_files(assignment: Assignment, out: Path, public: list, tolerances: Tolerances) -> None:
    """A course's kit: the canonical assignment's check code for the course's public checks
    only, the course's contract (and helper modules, and its own public checks), the
    recorded answers, the checks with their points, and the students' template.

    The dry run that decides which checks apply needs the reference, which a kit does not
    hold: the kit records the checks the instructor's dry run kept, with their points
    (`kit_checks.json`), and `build_assignment` takes them as they are there. Where the
    course's adapter asks the reference (a call the course does not define), the
    recorded answers stand in for it, bound by the reference's signatures, recorded too.
    The template and notebook are the course folder's (`template/`), or written from the
    contract where it has none."""
    from grader.contract.build import canonical_check_id
    from grader.contract.template import course_notebook, course_template, notebook_path, template_path
    from grader.oracle import signature_data

    contract = assignment.contract
    base = contract.info.based_on
    base_dir = TOOLKIT_ROOT / "assignments" / base
    canonical_ids = {canonical_check_id(contract, c.id) for c in public}
    kit_copy(base_dir, out / "assignments" / base, canonical_ids)
    shutil.copyfile(base_dir / "canonical.toml", out / "assignments" / base / "canonical.toml")

    folder = contract.path.parent
    target = out / "assignments" / assignment.name
    target.mkdir()
    shutil.copyfile(contract.path, target / contract.path.name)
    for rel in contract.info.provided_files:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / rel, target / rel)
    if (folder / "checks.py").is_file():  # the course's own checks: its public ones only
        stripped, _ = strip_hidden((folder / "checks.py").read_text(encoding="utf-8"), {c.id for c in public})
        stripped = without_solutions(stripped, mistakes_module=False)
        (target / "checks.py").write_text(stripped, encoding="utf-8")
    save_recorded(record_public(assignment, tolerances), target / RECORDED)
    import importlib

    reference = importlib.import_module(assignment.reference_module)
    data = {"checks": [[c.id, c.points] for c in public],
            "signatures": signature_data(reference, contract.canonical_functions),
            "forbidden_imports": list(assignment.forbidden_imports)}
    lines = [f"  {json.dumps(check)}" for check in data["checks"]]
    text = ('{"checks": [\n' + ",\n".join(lines) + "\n],\n"
            + ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in data.items() if k != "checks") + "}\n")
    (target / COURSE_CHECKS).write_text(text, encoding="utf-8")

    written = template_path(contract)
    if written.is_file():
        shutil.copyfile(written, out / assignment.file_name)
    else:
        (out / assignment.file_name).write_text(course_template(contract, assignment.forbidden_imports),
                                                encoding="utf-8")
    notebook = notebook_path(contract)
    if notebook.is_file():
        shutil.copyfile(notebook, out / notebook.name)
    else:
        import nbformat

        nbformat.write(course_notebook(contract, assignment.forbidden_imports), out / f"{assignment.name}.ipynb")


_PYPROJECT = """[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "nngrade-kit-{name}"
version = "{version}"
description = "Self-check kit for the {name} assignment (public checks only)"
requires-python = ">=3.10"
dependencies = ["numpy>=1.24", "scipy>=1.10", "pydantic>=2", "jinja2>=3", "nbformat>=5", "tqdm>=4.60",
                "tomli>=2; python_version < '3.11'"]

[project.scripts]
grade = "grader.cli:main"

[tool.setuptools.packages.find]
include = ["grader*", "assignments*"]

[tool.setuptools.package-data]
"*" = ["*.j2", "*.json", "*.toml"]
"""

_README = """# Self-check kit: {title}

1. Install it once (in a virtual environment if you like): `python -m pip install .`
2. Write your solution in `{file}`{or_notebook}.
3. Check it: `grade {file}` (or `python -m grader {file}`{from_notebook}). You get a
   summary per function in the terminal, with the mistake each failure most likely
   comes from, and an HTML report in `reports/`.

The kit runs the public checks against recorded expected values. {final}
"""
