"""Gradescope: its results.json for a graded submission, and the autograder zip that
runs nngrade inside Gradescope's container.

The results format is Gradescope's autograder specification (top-level score,
output, visibility, stdout_visibility, extra_data; tests[] with name, number, score,
max_score, status, output, visibility, extra_data), modelled below so that every
file written is validated. Tests are the student-facing view of the results: a
hidden check shows its name and result only, and is released `after_published`.
"""

from __future__ import annotations

import importlib
import io
import math
import shlex
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Literal

from jinja2 import Environment, PackageLoader, StrictUndefined
from pydantic import BaseModel, ConfigDict, Field

from grader.models import RunResult, SubmissionResult
from grader.report import view

try:
    import tomllib
except ImportError:  # Python 3.10, e.g. Ubuntu 22.04's, which Gradescope's images run
    import tomli as tomllib
from grader.store import write_atomic

Visibility = Literal["hidden", "after_due_date", "after_published", "visible"]
Format = Literal["text", "html", "simple_format", "md", "ansi"]
HIDDEN_VISIBILITY: Visibility = "after_published"
MAX_OUTPUT_CHARS = 8000  # of the student's own printing, in the top-level output
PACKAGES = ("grader", "reference", "assignments")


class GradescopeTest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    number: str
    score: float
    max_score: float
    status: Literal["passed", "failed"]
    output: str = ""
    output_format: Format = "text"
    visibility: Visibility = "visible"
    extra_data: dict = Field(default_factory=dict)


class GradescopeResults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    score: float
    execution_time: int = 0  # whole seconds, as in Gradescope's specification
    output: str = ""
    output_format: Format = "text"
    test_output_format: Format = "text"
    test_name_format: Format = "text"
    visibility: Visibility = "visible"
    # What the grader prints goes to the instructors only.
    stdout_visibility: Visibility = "hidden"
    extra_data: dict = Field(default_factory=dict)
    tests: list[GradescopeTest] = Field(default_factory=list)


class GradescopeError(Exception):
    """A request that cannot be met (a usage error for the CLI)."""


def _num(value) -> str:
    return "-" if value is None else f"{float(value):.6g}"


def _test_output(v: view.CheckView) -> str:
    c = v.check
    if v.redacted:
        return "A hidden check: its inputs and expected values are not shown."
    lines = [c.message if c.message else c.description if c.passed else ""]
    for d in v.diagnoses:
        lines.append(f"Diagnosis: {d.sentence}" + (f" [{d.code}]" if d.sentence != d.code else f" {d.code}"))
        if d.hint:
            lines.append(f"  Hint: {d.hint}")
    m = v.mismatch
    if m is not None and not c.passed:
        lines.append(f"First mismatch: {m.where or '(scalar)'}: got {_num(m.got)}, expected {_num(m.expected)}; "
                     f"max abs error {_num(m.max_abs_error)}, relative error {_num(m.relative_error)}"
                     + (f"; {m.n_bad} of {m.size} values differ" if m.n_bad is not None and m.size else ""))
    if v.gradients:
        lines.append("Relative error per gradient: "
                     + ", ".join(f"{g.name} {_num(g.error)}{' (too large)' if g.above else ''}" for g in v.gradients))
    lines.extend(f"{key}: {value}" for key, value in v.facts)
    lines.extend(_where_lines(c))
    return "\n".join(line for line in lines if line)


def _where_lines(c) -> list[str]:
    """The call and the student's lines where it failed (a hidden check never gets here)."""
    w = c.where
    if w is None or c.passed:
        return []
    lines = [("Stopped at its time limit during: " if w.stopped else "The call: ") + w.call]
    for i, f in enumerate(w.frames):
        lines.append(("It was running " if w.stopped else "It raised at ") + f"{f.place}, in {f.function}:"
                     if i == 0 else f"called from {f.place}, in {f.function}:")
        width = max(len(str(line.number)) for line in f.lines) if f.lines else 0
        lines += [f"{'>' if line.current else ' '} {str(line.number).rjust(width)} | {line.text}" for line in f.lines]
    return lines


def _summary(run: RunResult, sub: SubmissionResult) -> str:
    lines = [f"nngrade {run.toolkit_version}, assignment {run.assignment}: {sub.score:g} / {sub.max_score:g}",
             f"Graded file: {sub.source or '(none)'}"]
    if sub.status == "error":
        lines.append(f"This submission could not be graded: {sub.message}")
    lines.append(view.LOAD_MODES.get(sub.load_mode, sub.load_mode))
    lines.extend(sub.notes)
    for d in view.summary_diagnoses(sub, student_view=True):
        lines.append(f"- {d.sentence}" + (f" [{d.code}]" if d.sentence != d.code else ""))
        if d.hint:
            lines.append(f"  Hint: {d.hint}")
    if sub.output and not view.output_visible(sub, student_view=True):
        lines += ["", "What your code printed is kept for course staff (hidden checks ran)."]
    elif sub.output:
        text = sub.output if len(sub.output) <= MAX_OUTPUT_CHARS else sub.output[:MAX_OUTPUT_CHARS] + "\n..."
        lines += ["", "What your code printed:", text.rstrip("\n")]
        if sub.output_dropped_bytes:
            lines.append(f"... and {sub.output_dropped_bytes} more bytes, not kept.")
    return "\n".join(lines)


def gradescope_results(run: RunResult, sub: SubmissionResult) -> GradescopeResults:
    tests = []
    for i, f in enumerate(view.functions(sub, student_view=True), start=1):
        for j, v in enumerate(f.checks, start=1):
            c = v.check
            hidden = c.visibility == "hidden"
            tests.append(GradescopeTest(
                name=f"{c.function}: {v.name}" + (" (hidden)" if hidden else ""), number=f"{i}.{j}",
                score=c.score, max_score=c.max_score, status="passed" if c.passed else "failed",
                output=_test_output(v), visibility=HIDDEN_VISIBILITY if hidden else "visible",
                extra_data={"id": c.id, "kind": c.kind},
            ))
    return GradescopeResults(
        score=sub.score, execution_time=math.ceil(sub.seconds), output=_summary(run, sub), tests=tests,
        extra_data={"assignment": run.assignment, "toolkit_version": run.toolkit_version,
                    "student": sub.student, "status": sub.status},
    )


def results_json(run: RunResult, sub: SubmissionResult) -> str:
    return gradescope_results(run, sub).model_dump_json(indent=2)


def write_gradescope(run: RunResult, out_dir: Path | None = None, single: Path | None = None) -> None:
    """`out_dir`: one file per student in out_dir/gradescope/. `single`: the run's one
    submission to exactly that path (inside Gradescope's container)."""
    if single is not None and len(run.submissions) != 1:
        raise GradescopeError(f"--gradescope-out writes one submission's results, but {len(run.submissions)} "
                              "were graded; use --gradescope for one file per student")
    if out_dir is not None:
        folder = out_dir / "gradescope"
        folder.mkdir(parents=True, exist_ok=True)
        names = view.file_names([s.student for s in run.submissions], ".json", reserved=())
        for sub in run.submissions:
            write_atomic(folder / names[sub.student], results_json(run, sub))
    if single is not None:
        single.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(single, results_json(run, run.submissions[0]))


# -- the autograder zip ---------------------------------------------------------------

_scripts = Environment(loader=PackageLoader("grader.report", "templates/gradescope"),
                       autoescape=False, keep_trailing_newline=True, trim_blocks=True,
                       lstrip_blocks=True, undefined=StrictUndefined)
_scripts.filters["q"] = shlex.quote
# Fixed timestamps: the same toolkit gives the same zip, byte for byte.
ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def _source_files() -> list[tuple[str, Path]]:
    """(name in the zip, file) for the toolkit's packages, from where they are installed."""
    files = []
    for package in PACKAGES:
        folder = Path(importlib.import_module(package).__file__).resolve().parent
        for path in sorted(folder.rglob("*")):
            parts = path.relative_to(folder).parts
            if path.is_file() and not any(p == "__pycache__" or p.startswith(".") for p in parts) \
                    and path.suffix not in (".pyc", ".pyo"):
                files.append((f"{package}/{'/'.join(parts)}", path))
    return files


def project_files(root: Path | None = None) -> list[tuple[str, bytes]]:
    """pyproject.toml (and the README it names) from the checkout beside the packages;
    an installed copy has none, so one is written from the installed metadata."""
    root = root or Path(importlib.import_module("grader").__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        if data.get("project", {}).get("name") == "nngrade":
            out = [("pyproject.toml", pyproject.read_bytes())]
            readme = data["project"].get("readme")
            if isinstance(readme, str) and (root / readme).is_file():
                out.append((readme, (root / readme).read_bytes()))
            return out
    meta = metadata.metadata("nngrade")
    requires = [r for r in metadata.requires("nngrade") or [] if "extra ==" not in r]
    text = _scripts.get_template("pyproject.toml.j2").render(
        version=meta["Version"], python=meta.get("Requires-Python") or ">=3.10", requires=requires,
        packages=PACKAGES)
    return [("pyproject.toml", text.encode())]


def _add(archive: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, ZIP_TIME)
    info.create_system = 3  # Unix, so that unzip restores the mode bits below
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


CONFIG_IN_BUNDLE = "nngrade-config.toml"


def build_bundle(assignment: str | None, out: Path, course: Path | None = None,
                 config: Path | None = None) -> list[str]:
    """Gradescope's autograder zip for `assignment` (or for the course of your own in the
    folder `course`, carried in the zip beside the shipped ones), graded under the
    instructor's `config` when given (checked here, carried in the zip); returns the names
    it holds."""
    from grader.assignment import UnknownAssignment, available, named

    course_files: list[tuple[str, Path]] = []
    shipped = available()
    if course is not None:
        assignment, course_files = _course_files(course, assignment, shipped)
    try:
        built = course_assignment_of(course) if course is not None else named(assignment)
    except UnknownAssignment as exc:
        raise GradescopeError(str(exc)) from None
    if config is not None:
        from grader.config import apply_config, load_config

        try:
            apply_config(built, load_config(config))
        except (ValueError, OSError) as exc:
            raise GradescopeError(str(exc)) from None
        course_files.append((CONFIG_IN_BUNDLE, config))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for script in ("setup.sh", "run_autograder"):
            text = _scripts.get_template(f"{script}.j2").render(assignment=assignment,
                                                                 config=CONFIG_IN_BUNDLE if config else None)
            _add(archive, script, text.encode(), executable=True)
        for name, data in project_files():
            _add(archive, name, data)
        for name, path in _source_files() + course_files:
            _add(archive, name, path.read_bytes())
        listed = archive.namelist()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buf.getvalue())
    return listed


def course_assignment_of(folder: Path):
    from grader.assignment import course_assignment

    return course_assignment(folder)


def _course_files(folder: Path, asked: str | None, shipped: dict) -> tuple[str, list[tuple[str, Path]]]:
    """A course of the instructor's own, checked as `grade --course` checks it (its contract
    must round-trip, its checks pass on the reference), and the files of it the zip
    carries: the contract, its checks, its helper modules and its template."""
    from grader.assignment import CONTRACT_FILE, course_assignment
    from grader.contract.model import ContractError
    from grader.contract.template import template_path

    if not (folder / CONTRACT_FILE).is_file():
        raise GradescopeError(f"--course {folder}: no {CONTRACT_FILE} there (see README, 'Your own course')")
    try:
        built = course_assignment(folder)
        built.checks  # the dry run, here: a course that cannot be graded is refused when the zip is built
    except ContractError as exc:
        raise GradescopeError(str(exc)) from None
    name = built.name
    if asked not in (None, name):
        raise GradescopeError(f"--course {folder} is assignment {name!r}, not {asked!r}")
    if name in shipped:
        other = shipped[name].contract
        if other is not None and other.path.parent.resolve() == folder.resolve():
            return name, []  # a shipped course's own folder: already in the zip
        raise GradescopeError(f"--course {folder}: the toolkit already has an assignment {name!r}; "
                              "give your course another name ([course] name)")
    contract = built.contract
    files = [CONTRACT_FILE] + (["checks.py"] if (folder / "checks.py").is_file() else [])
    files += list(contract.info.provided_files)
    if template_path(contract).is_file():
        files.append(template_path(contract).relative_to(folder).as_posix())
    return name, [(f"assignments/{name}/{rel}", folder / rel) for rel in files]
