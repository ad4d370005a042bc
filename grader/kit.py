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

import ast
import json
import shutil
from importlib import resources
from pathlib import Path

from grader import __version__
from grader.assignment import Assignment
from grader.compare import DEFAULT_TOLERANCES, Tolerances
from grader.oracle import RecordingOracle, save_recorded
from grader.runner import run_check

TOOLKIT_ROOT = Path(__file__).resolve().parent.parent
MARKER = "_kit.json"
RECORDED = "recorded.json"


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


# ---------------------------------------------------------------- stripping
def _check_id(decorator: ast.expr, fn_name: str) -> str | None:
    """The id a `@...check("function", ..., name=...)` decorator gives, or None."""
    if not isinstance(decorator, ast.Call):
        return None
    func = decorator.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if not called.endswith("check") or not decorator.args:
        return None
    first = decorator.args[0]
    if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
        return "?"  # a check whose id cannot be read: treated as hidden
    name = fn_name
    for keyword in decorator.keywords:
        if keyword.arg == "name":
            if not (isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, str)):
                return "?"
            name = keyword.value.value
    return f"{first.value}.{name}"


def strip_hidden(source: str, public_ids: set[str]) -> tuple[str, list[str]]:
    """`source` without the checks whose ids are not public (decorators and bodies
    blanked, so line numbers stay). Returns (new source, ids removed)."""
    tree = ast.parse(source)
    lines = source.split("\n")
    removed = []
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        ids = [i for i in (_check_id(d, node.name) for d in node.decorator_list) if i is not None]
        if ids and not all(i in public_ids for i in ids):
            start = min(d.lineno for d in node.decorator_list)
            for i in range(start - 1, node.end_lineno):
                lines[i] = ""
            removed += ids
    return "\n".join(lines), removed


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
    and keep every answer the reference gave."""
    import importlib

    from grader.testing import InProcessStudent

    reference = importlib.import_module(assignment.reference_module)
    oracle = RecordingOracle(reference)
    public = [c for c in assignment.checks if c.visibility == "public"]
    for check in public:
        result = run_check(check, InProcessStudent(reference, assignment.functions), oracle, tolerances)
        if not result.passed and check.kind != "performance":
            raise KitError(f"the reference fails its own public check {check.id}: {result.message}")
    wrong = _Perturbed(reference)
    wrong_namespace = {name: getattr(wrong, name) for name in assignment.functions}
    for check in public:
        run_check(check, InProcessStudent(wrong_namespace, assignment.functions), oracle, tolerances)
    return oracle.recorded


# ------------------------------------------------------------------ building
def build_kit(assignment: Assignment, out: Path, tolerances: Tolerances = DEFAULT_TOLERANCES) -> Path:
    """Write the kit folder `out` and `out`.zip; returns the zip's path."""
    if out.exists() and any(out.iterdir()):
        raise KitError(f"{out} exists and is not empty")
    public_ids = {c.id for c in assignment.checks if c.visibility == "public"}
    source_dir = TOOLKIT_ROOT / "assignments" / assignment.name
    template_dir = source_dir / "template"
    out.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", MARKER)
    shutil.copytree(TOOLKIT_ROOT / "grader", out / "grader", ignore=ignore)
    (out / "assignments").mkdir()
    shutil.copyfile(TOOLKIT_ROOT / "assignments" / "__init__.py", out / "assignments" / "__init__.py")
    target = out / "assignments" / assignment.name
    target.mkdir()
    for path in sorted(source_dir.glob("*.py")):  # code only: notes may describe hidden inputs
        stripped, _ = strip_hidden(path.read_text(encoding="utf-8"), public_ids)
        (target / path.name).write_text(stripped, encoding="utf-8")
    save_recorded(record_public(assignment, tolerances), target / RECORDED)
    for name in (assignment.file_name, f"{assignment.name}.ipynb"):
        if (template_dir / name).is_file():
            shutil.copyfile(template_dir / name, out / name)
    marker = {"assignment": assignment.name, "toolkit_version": __version__, "public_checks": sorted(public_ids)}
    (out / "grader" / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
    (out / "pyproject.toml").write_text(_PYPROJECT.format(name=assignment.name, version=__version__))
    (out / "README.md").write_text(_README.format(name=assignment.name, file=assignment.file_name,
                                                  title=assignment.title or assignment.name))
    return Path(shutil.make_archive(str(out), "zip", root_dir=out))


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
"*" = ["*.j2", "*.json"]
"""

_README = """# Self-check kit: {title}

1. Install it once (in a virtual environment if you like): `python -m pip install .`
2. Write your solution in `{file}` (or in the notebook `{name}.ipynb`).
3. Check it: `grade {file}` (or `python -m grader {file}`; from the notebook, run its
   self-check cell). You get a summary per function in the terminal, with the mistake
   each failure most likely comes from, and an HTML report in `reports/`.

The kit runs the public checks against recorded expected values. The final grade
also runs hidden checks; they test the same functions on other inputs.
"""
