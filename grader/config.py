"""An instructor's overrides of an assignment's defaults: a TOML file given to
`grade --config FILE`, validated by pydantic (an unknown key is an error that names
it, its line and the nearest known key, never silently ignored).

    assignment = "cnn"                       # optional: refuse this file for another assignment
    forbidden_imports = ["torch", "scipy"]   # replaces the assignment's list ...
    extra_forbidden_imports = ["sklearn"]    # ... or adds to it

    [points]                                 # by function: its checks scaled to the total
    conv2d_forward = 25
    "conv2d_forward.speed" = 2               # by check id: exactly this (after the functions)

    [visibility]                             # "public" or "hidden", by function or check id
    "conv2d_forward.random_values" = "hidden"

    [limits]
    timeout = 20                             # seconds per call of a student function
    load_timeout = 5                         # seconds for the module's top level
    budget = 60                              # seconds all the calls of one submission may take
    memory_mb = 4096

    [tolerances]                             # the fields of grader.compare.Tolerances
    value_rtol = 2e-4

(TOML puts top-level keys before the first [table].) `apply_config` returns a new
Assignment with the points, visibility and forbidden imports applied; the CLI passes
`config.limits_over(...)` and `config.tolerances_over(...)` on to the run.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from pathlib import Path
from typing import Literal, Optional

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    ValidationError,
    create_model,
)

from grader.assignment import Assignment
from grader.checks import Registry
from grader.compare import DEFAULT_TOLERANCES, Tolerances

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

STRICT = ConfigDict(extra="forbid")


class LimitsConfig(BaseModel):
    model_config = STRICT

    timeout: Optional[PositiveFloat] = None
    load_timeout: Optional[PositiveFloat] = None
    budget: Optional[PositiveFloat] = None
    memory_mb: Optional[PositiveInt] = None


# One optional field per tolerance, so the file can name exactly compare.py's fields.
TolerancesConfig = create_model(
    "TolerancesConfig", __config__=STRICT,
    **{f.name: (Optional[NonNegativeFloat], None) for f in dataclasses.fields(Tolerances)},
)


class Config(BaseModel):
    model_config = STRICT

    assignment: Optional[str] = None
    points: dict[str, NonNegativeFloat] = Field(default_factory=dict)
    visibility: dict[str, Literal["public", "hidden"]] = Field(default_factory=dict)
    forbidden_imports: Optional[list[str]] = None
    extra_forbidden_imports: list[str] = Field(default_factory=list)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    tolerances: TolerancesConfig = Field(default_factory=TolerancesConfig)  # type: ignore[valid-type]

    _source: str = PrivateAttr(default="")
    _path: str = PrivateAttr(default="the configuration")

    def tolerances_over(self, base: Tolerances = DEFAULT_TOLERANCES) -> Tolerances:
        """`base` with the file's tolerances."""
        given = {k: v for k, v in self.tolerances.model_dump().items() if v is not None}
        return dataclasses.replace(base, **given)

    def limits_over(self, base):
        """`base` (a grader.sandbox.Limits) with the file's limits."""
        names = {"timeout": "call_timeout", "load_timeout": "load_timeout", "budget": "budget",
                 "memory_mb": "memory_mb"}
        given = {names[k]: v for k, v in self.limits.model_dump().items() if v is not None}
        return dataclasses.replace(base, **given)

    def where(self, section: str | None, key: str) -> str:
        line = _line_of(self._source, section, key)
        return f"{self._path}, line {line}" if line else self._path


def load_config(path: str | Path) -> Config:
    """Read and validate a configuration file; ValueError names the file, the line and
    what is wrong with it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the configuration {path}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ValueError("\n".join(_explain(error, text, path) for error in exc.errors())) from None
    config._source = text
    config._path = str(path)
    return config


def apply_config(assignment: Assignment, config: Config) -> Assignment:
    """A new Assignment with the file's points, visibility and forbidden imports; the
    original is left as it was. ValueError for a check or function it does not have."""
    if config.assignment is not None and config.assignment != assignment.name:
        raise ValueError(f"{config.where(None, 'assignment')}: this configuration is for assignment "
                         f"{config.assignment!r}, not {assignment.name!r}")
    checks = assignment.checks
    functions = {c.function for c in checks}
    ids = {c.id for c in checks}
    for section, table in (("points", config.points), ("visibility", config.visibility)):
        for key in table:
            if key not in ids and key not in functions:
                near = difflib.get_close_matches(key, sorted(ids | functions), n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                raise ValueError(f"{config.where(section, key)}: [{section}] names {key!r}, which is neither a "
                                 f"check nor a function of assignment {assignment.name!r}{hint}")

    points = {c.id: c.points for c in checks}
    for function, total in config.points.items():
        if function in functions:
            mine = [c for c in checks if c.function == function]
            current = sum(c.points for c in mine)
            for c in mine:
                # Keep the function's own weighting; a function of 0-point checks shares equally.
                points[c.id] = total * (c.points / current if current else 1 / len(mine))
    points.update({k: v for k, v in config.points.items() if k in ids})

    visibility = {c.id: c.visibility for c in checks}
    for c in checks:
        for key in (c.function, c.id):  # the function's setting first, then the check's own
            if key in config.visibility:
                visibility[c.id] = config.visibility[key]

    registry = Registry([dataclasses.replace(c, points=round(points[c.id], 6), visibility=visibility[c.id])
                         for c in checks])
    forbidden = list(assignment.forbidden_imports if config.forbidden_imports is None else config.forbidden_imports)
    forbidden += [m for m in config.extra_forbidden_imports if m not in forbidden]
    return dataclasses.replace(assignment, registry=registry, forbidden_imports=tuple(forbidden))


def points_table(assignment: Assignment) -> str:
    """The checks and their points as a Markdown table, with a total per function."""
    rows = ["| check | kind | visibility | points |", "|---|---|---|---|"]
    totals: dict[str, float] = {}
    for c in assignment.checks:
        rows.append(f"| `{c.id}` | {c.kind} | {c.visibility} | {c.points:g} |")
        totals[c.function] = totals.get(c.function, 0.0) + c.points
    rows += ["", "| function | points |", "|---|---|"]
    rows += [f"| `{f}` | {p:g} |" for f, p in totals.items()]
    rows.append(f"| **total** | **{assignment.max_score:g}** |")
    return "\n".join(rows)


# ------------------------------------------------------------------ error messages
def _explain(error: dict, text: str, path: Path) -> str:
    loc = [str(part) for part in error.get("loc", ())]
    section = loc[0] if len(loc) > 1 else None
    key = loc[-1] if loc else ""
    line = _line_of(text, section, key)
    where = f"{path}, line {line}" if line else str(path)
    shown = f"[{section}] {key}" if section else key
    if error.get("type") == "extra_forbidden":
        known = _known_keys(section)
        near = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else f"; known keys: {', '.join(known)}"
        return f"{where}: unknown key {shown!r}{hint}"
    return f"{where}: {shown}: {error.get('msg', 'invalid value')}"


def _known_keys(section: str | None) -> list[str]:
    model = {None: Config, "limits": LimitsConfig, "tolerances": TolerancesConfig}.get(section)
    return sorted(model.model_fields) if model is not None else []


def _line_of(text: str, section: str | None, key: str) -> int | None:
    """The line where `key` is set, inside [section] (None: before any table)."""
    current = None
    pattern = re.compile(rf'^\s*(?:"{re.escape(key)}"|\'{re.escape(key)}\'|{re.escape(key)})\s*=')
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$", line)
        if header:
            current = header.group(1).strip()
            continue
        if current == section and pattern.match(line):
            return number
        if section is not None and current is None and re.match(rf"^\s*{re.escape(section)}\s*=", line):
            return number  # an inline table or a value given where a table was expected
    return None
