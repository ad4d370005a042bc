"""A course's contract file: its names, argument orders and layouts, as data.

    [course]
    name = "fman45"                     # how `--assignment` calls it
    title = "FMAN45 Assignment 3"
    file_name = "layers.py"             # the file students hand in
    based_on = "cnn"                    # the canonical assignment whose checks are used
    provided = ["maxpooling_forward"]   # course code in the same file, named for the docs
    provided_files = ["im2col.py"]      # helper modules students import, placed beside their file
    description = "..."                 # optional: the top of the students' template
    dims = { D_in = "features" }        # optional: the course's names of the canonical axes

    [functions.fully_connected_forward] # the course's name for it
    implements = "linear_forward"       # the canonical function it is
    call = "X=x:DN W=w:OD b:O1"         # its parameters in order (grader/contract/signature.py)
    returns = "y:ON"
    points = 10
    graded = false                      # course code the students' file holds (checks across layers use it)
    fixed = { stride = 1 }              # canonical arguments it does not take, and their value
    only_when = "(x.shape[1] - size) % stride == 0"   # where the course defines it (canonical names)
    description = "..."                 # optional: the course's sentence about it, in its template

Every error names the file, the line and what is wrong (`ContractError`).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, ValidationError

from grader.config import _line_of
from grader.contract import layout
from grader.contract.signature import Param, Returns, SignatureError, parse_call, parse_returns

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

STRICT = ConfigDict(extra="forbid")


class ContractError(ValueError):
    """A contract file that cannot be used; the message names the file and line."""


class Canonical:
    """The canonical contract of an assignment: each function's parameters, results,
    and the layout of every array (`assignments/<name>/canonical.toml`)."""

    def __init__(self, name: str, text: str):
        self.name = name
        data = tomllib.loads(text)
        self.calls: dict[str, tuple[Param, ...]] = {f: parse_call(d["call"]) for f, d in data.items()}
        self.returns: dict[str, Returns] = {f: parse_returns(d["returns"]) for f, d in data.items()}
        # For the templates a course generates (grader/contract/template.py): what each
        # function does, what each argument and result is, the names of each array's axes,
        # and the catalogue's codes its checks can name. All optional.
        self.summary: dict[str, str] = {f: d.get("summary", "") for f, d in data.items()}
        self.about: dict[str, dict[str, str]] = {f: dict(d.get("about", {})) for f, d in data.items()}
        self.dims: dict[str, dict[str, str]] = {f: dict(d.get("dims", {})) for f, d in data.items()}
        self.diagnoses: dict[str, list[str]] = {f: list(d.get("diagnoses", [])) for f, d in data.items()}
        for function, dims in self.dims.items():
            for array, names in dims.items():
                if names == "any" or names.startswith("like "):
                    continue
                try:
                    letters = self.layout_of(function, array).replace("1", "")
                except KeyError:
                    continue  # passed as it is (labels): the names are its shape
                if letters and len(names.split()) != len(letters):
                    raise ContractError(f"{name}'s canonical contract: {function}'s dims for {array} name "
                                        f"{len(names.split())} axes, its layout {letters!r} has {len(letters)}")

    def layout_of(self, function: str, name: str) -> str:
        for p in self.calls[function]:
            if p.kind == "value" and p.source == name:
                return p.layout
        for r in self.returns[function].items:
            if r.name == name:
                return r.layout
        raise KeyError(name)

    def args(self, function: str) -> tuple[str, ...]:
        return tuple(p.source for p in self.calls[function])

    @classmethod
    def of(cls, assignment: str) -> "Canonical":
        import assignments

        path = Path(assignments.__path__[0]) / assignment / "canonical.toml"
        if not path.is_file():
            raise ContractError(f"assignment {assignment!r} has no canonical contract ({path.name}), "
                                "so no course can be based on it")
        return cls(assignment, path.read_text(encoding="utf-8"))


class CourseInfo(BaseModel):
    model_config = STRICT

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str = ""
    file_name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*\.py$")
    based_on: str
    provided: list[str] = Field(default_factory=list)
    # helper modules students import but do not write, in the course's folder; each is
    # placed beside the graded file (unless the submission brings its own)
    provided_files: list[str] = Field(default_factory=list)
    forbidden_imports: Optional[list[str]] = None
    description: str = ""  # a sentence or two for the top of the students' template
    # the course's names for the canonical axes (`C_out = "F"`), in its template's docstrings
    dims: dict[str, str] = Field(default_factory=dict)


class FunctionSpec(BaseModel):
    model_config = STRICT

    implements: str
    call: str
    returns: str
    points: NonNegativeFloat = 0.0
    graded: bool = True  # false: course code in the students' file, used by checks across layers
    fixed: dict[str, int | float | str | bool] = Field(default_factory=dict)
    only_when: str = ""  # a condition on the canonical arguments; checks outside it do not apply
    # parameters whose non-batch axis may arrive as several axes, flattened in "C" or "F" order
    # (CS231n's x (N, d_1, ..., d_k); FMAN45's X (d_1, ..., d_k, N)); their gradient keeps the shape
    flatten: dict[str, Literal["C", "F"]] = Field(default_factory=dict)
    description: str = ""  # the course's own sentence about the function, for its template


class ContractFile(BaseModel):
    model_config = STRICT

    course: CourseInfo
    functions: dict[str, FunctionSpec]


class CourseFunction:
    """One function students write, read and checked against the canonical contract."""

    def __init__(self, name: str, spec: FunctionSpec):
        self.name = name
        self.implements = spec.implements
        self.points = float(spec.points)
        self.graded = spec.graded
        self.fixed = dict(spec.fixed)
        self.only_when = spec.only_when
        self.flatten = dict(spec.flatten)
        self.condition = compile(spec.only_when, f"only_when of {name}", "eval") if spec.only_when else None
        self.description = spec.description
        self.call = parse_call(spec.call)
        self.returns = parse_returns(spec.returns)
        self.call_text, self.returns_text = spec.call, spec.returns
        self.used: list[str] = []  # the canonical arguments that reach a parameter

    @property
    def keeps_cache(self) -> bool:
        return "cache" in self.returns.names


class Contract:
    """A course's contract, validated: `functions` by the course's names."""

    def __init__(self, info: CourseInfo, functions: dict[str, CourseFunction], canonical: Canonical, path: Path):
        self.info, self.functions, self.canonical, self.path = info, functions, canonical, path

    @property
    def name(self) -> str:
        return self.info.name

    def implementing(self, canonical_function: str, graded: bool | None = None) -> list[CourseFunction]:
        """The course functions behind a canonical one (`graded`: only those students write,
        or only the course's own code; None: all). A canonical function is answered by the
        students' functions where they implement it, else by the course's code."""
        found = [f for f in self.functions.values() if f.implements == canonical_function]
        if graded is None:
            students = [f for f in found if f.graded]
            return students or found
        return [f for f in found if f.graded == graded]

    @property
    def canonical_functions(self) -> list[str]:
        return list(dict.fromkeys(f.implements for f in self.functions.values()))

    @property
    def graded_functions(self) -> list[str]:
        """The course's names of the functions students write."""
        return [f.name for f in self.functions.values() if f.graded]


def load_contract(path: str | Path) -> Contract:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractError(f"cannot read the contract {path}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ContractError(f"{path} is not valid TOML: {exc}") from None
    try:
        parsed = ContractFile.model_validate(data)
    except ValidationError as exc:
        raise ContractError("\n".join(_explain(e, text, path) for e in exc.errors())) from None
    return _validate(parsed, text, path)


def _where(text: str, path: Path, section: str | None, key: str) -> str:
    line = _line_of(text, section, key)
    return f"{path}, line {line}" if line else str(path)


def _explain(error: dict, text: str, path: Path) -> str:
    loc = [str(p) for p in error.get("loc", ())]
    section = ".".join(loc[:-1]) or None
    key = loc[-1] if loc else ""
    if error.get("type") == "extra_forbidden":
        return f"{_where(text, path, section, key)}: unknown key {key!r} in [{section}]"
    if error.get("type") == "missing":
        return f"{_where(text, path, None, section or key)}: [{section}] lacks {key!r}"
    return f"{_where(text, path, section, key)}: [{section}] {key}: {error.get('msg', 'invalid value')}"


def _validate(parsed: ContractFile, text: str, path: Path) -> Contract:
    def fail(function: str | None, key: str, message: str):
        section = f"functions.{function}" if function else "course"
        raise ContractError(f"{_where(text, path, section, key)}: {message}")

    for rel in parsed.course.provided_files:
        target = path.parent / rel
        if rel.startswith(("/", "..")) or ".." in Path(rel).parts or not target.is_file():
            fail(None, "provided_files", f"{rel!r} is not a file inside {path.parent}")
    try:
        canonical = Canonical.of(parsed.course.based_on)
    except ContractError as exc:
        fail(None, "based_on", str(exc))
    axes = {n for dims in canonical.dims.values() for names in dims.values()
            if names != "any" and not names.startswith("like ") for n in names.split()}
    for axis in parsed.course.dims:
        if axis not in axes:
            near = difflib.get_close_matches(axis, sorted(axes), n=1)
            fail(None, "dims", f"{axis!r} names no axis of {canonical.name!r}"
                 + (f"; did you mean {near[0]!r}?" if near else f"; its axes are {', '.join(sorted(axes)) or 'unnamed'}"))
    functions: dict[str, CourseFunction] = {}
    for name, spec in parsed.functions.items():
        if spec.implements not in canonical.calls:
            near = difflib.get_close_matches(spec.implements, list(canonical.calls), n=1)
            fail(name, "implements", f"{spec.implements!r} is not a function of {canonical.name!r}"
                 + (f"; did you mean {near[0]!r}?" if near else f"; it has {', '.join(canonical.calls)}"))
        try:
            function = CourseFunction(name, spec)
        except SignatureError as exc:
            fail(name, "call" if "parameter" in str(exc) else "returns", str(exc))
        except SyntaxError as exc:
            fail(name, "only_when", f"the condition is not a Python expression: {exc.msg}")
        _check_call(function, canonical, fail)
        functions[name] = function
    for function in functions.values():
        if not function.graded and function.points:
            fail(function.name, "points", "a function students do not write (graded = false) has no points")
        for p in function.call:
            if p.kind == "cache":
                source = functions.get(p.cache_of)
                if source is None or not source.keeps_cache:
                    fail(function.name, "call", f"{p.name} is the cache of {p.cache_of!r}, which is not a "
                         "function of this contract returning a cache")
                missing = set(canonical.args(source.implements)) - set(canonical.args(function.implements))
                if missing:
                    fail(function.name, "call", f"{p.cache_of} needs {', '.join(sorted(missing))}, which "
                         f"{function.implements} does not have")
                # the forward's inputs travel in its cache
                function.used += [*canonical.args(source.implements), *source.fixed]
        unused = [a for a in canonical.args(function.implements) if a not in function.used and a not in function.fixed]
        if unused:
            fail(function.name, "call", f"{function.implements}'s {', '.join(unused)} reach no parameter: "
                 "pass them, or give the only value the function takes in `fixed`")
    for canonical_function in dict.fromkeys(f.implements for f in functions.values()):
        given = {n for f in functions.values() if f.implements == canonical_function for n in f.returns.names}
        missing = [n for n in canonical.returns[canonical_function].names if n not in given]
        if missing:
            name = next(f.name for f in functions.values() if f.implements == canonical_function)
            fail(name, "returns", f"{canonical_function} returns {', '.join(missing)} too: no function of "
                 "this contract returns it")
    return Contract(parsed.course, functions, canonical, path)


def _check_call(function: CourseFunction, canonical: Canonical, fail) -> None:
    wanted = canonical.args(function.implements)
    used: list[str] = []
    for p in function.call:
        for source in p.sources:
            if source not in wanted:
                near = difflib.get_close_matches(source, wanted, n=1)
                fail(function.name, "call", f"{p.name}: {function.implements} has no argument {source!r}"
                     + (f"; did you mean {near[0]!r}?" if near else f"; it takes {', '.join(wanted)}"))
            used.append(source)
        if p.kind == "value" and p.layout:
            try:
                layout.check_compatible(canonical.layout_of(function.implements, p.source), p.layout)
            except ValueError as exc:
                fail(function.name, "call", f"{p.name}: {exc}")
    for name in function.fixed:
        if name not in wanted:
            fail(function.name, "fixed", f"{function.implements} has no argument {name!r}")
    for name in function.flatten:
        given = [p for p in function.call if p.kind == "value" and p.name == name]
        if not given or len(given[0].layout.replace("1", "")) != 2 or "N" not in given[0].layout:
            fail(function.name, "flatten", f"{name!r} is not a parameter of two axes, one of them N")
    function.used = used
    results = canonical.returns[function.implements]
    for r in function.returns.items:
        if r.name in ("cache", "_"):
            continue
        if r.name not in results.names:
            fail(function.name, "returns", f"{function.implements} returns {', '.join(results.names)}, "
                 f"not {r.name!r}")
        if r.layout:
            try:
                layout.check_compatible(canonical.layout_of(function.implements, r.name), r.layout)
            except ValueError as exc:
                fail(function.name, "returns", f"{r.name}: {exc}")
