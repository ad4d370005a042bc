"""Data that crosses a boundary: results on disk. Pydantic models, validated on write.

The fields named in the results spec (`../shared/spec/results.md`) are stable public
API; the others are extensions for the reports.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


def clean_text(text: str) -> str:
    """`text` as valid Unicode. File names that are not UTF-8 reach Python as lone
    surrogates, and so can a student's exception message; neither can be written as
    JSON or HTML, so they become replacement characters instead of stopping a run."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        try:  # a file name's original bytes, decoded as well as they go
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:
            return text.encode("utf-8", "replace").decode("utf-8")


# What a submission can put in a result is cut to these lengths wherever it is stored
# (and so wherever it is shown): a student's exception may carry a 4 MB message or
# class name. Ids and file names are kept whole (the file system bounds them).
MAX_TEXT_CHARS = 2000  # a message, a note, a detail
MAX_NAME_CHARS = 100  # an exception's class name, a module's name
CUT_MARK = " [...]"


def cut(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """`text`, at most `limit` characters, marked where it was cut."""
    return text if len(text) <= limit else text[: limit - len(CUT_MARK)] + CUT_MARK


def _clean(value, limit: int | None = MAX_TEXT_CHARS):
    if isinstance(value, str):
        value = clean_text(value)
        return value if limit is None else cut(value, limit)
    if isinstance(value, dict):
        return {_clean(k, limit): _clean(v, limit) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_clean(v, limit) for v in value)
    return value


class CleanText(BaseModel):
    """Every string that enters a result is valid text, whatever produced it, and no
    longer than MAX_TEXT_CHARS, but in the fields a model names in `_whole`."""

    _whole: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _clean_strings(cls, data):
        if not isinstance(data, dict):
            return data
        return {key: value if isinstance(value, BaseModel)
                else _clean(value, None if key in cls._whole else MAX_TEXT_CHARS)
                for key, value in data.items()}


# Where a student's function failed (grader/where.py builds it): small by construction,
# and bounded here too, so that no record, however made, can make a page large.
MAX_FRAMES = 3  # the innermost frames in the student's file
MAX_SOURCE_LINES = 7  # around each frame's line
MAX_SOURCE_LINE_CHARS = 200
MAX_CALL_CHARS = 500


def _bounded_list(value, limit: int):
    return value[:limit] if isinstance(value, list) else value


class SourceLine(CleanText):
    """One line of the student's own code, numbered as the student sees it (in its
    notebook cell, for a notebook)."""

    model_config = ConfigDict(extra="forbid")

    number: int
    text: str
    current: bool = False  # the line that raised or was running

    @model_validator(mode="before")
    @classmethod
    def _short(cls, data):
        if isinstance(data, dict) and isinstance(data.get("text"), str):
            data = {**data, "text": cut(data["text"], MAX_SOURCE_LINE_CHARS)}
        return data


class Frame(CleanText):
    """One frame of the student's code: its function, where it is, the lines around it."""

    model_config = ConfigDict(extra="forbid")

    function: str
    line: int  # in the graded text (a notebook's cells joined)
    place: str  # "line 12", or "cell 3, line 2"
    lines: list[SourceLine] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _short(cls, data):
        if isinstance(data, dict):
            data = {**data, "lines": _bounded_list(data.get("lines", []), MAX_SOURCE_LINES)}
            if isinstance(data.get("function"), str):
                data["function"] = cut(data["function"], MAX_NAME_CHARS)
            if isinstance(data.get("place"), str):
                data["place"] = cut(data["place"], MAX_NAME_CHARS)
        return data


class Where(CleanText):
    """Where and on what a student's function failed: the call (its arguments' shapes
    and dtypes, its scalar options) and the innermost frames in the student's file,
    innermost first. `stopped`: it was stopped at its time limit, and the frames are
    where it was running then."""

    model_config = ConfigDict(extra="forbid")

    call: str = ""
    frames: list[Frame] = Field(default_factory=list)
    stopped: bool = False

    @model_validator(mode="before")
    @classmethod
    def _short(cls, data):
        if isinstance(data, dict):
            data = {**data, "frames": _bounded_list(data.get("frames", []), MAX_FRAMES)}
            if isinstance(data.get("call"), str):
                data["call"] = cut(data["call"], MAX_CALL_CHARS)
        return data


Kind = Literal["shape", "numeric", "gradient", "behavior", "performance"]
Visibility = Literal["public", "hidden"]


class CheckResult(CleanText):
    model_config = ConfigDict(extra="forbid")

    id: str
    function: str
    kind: Kind
    visibility: Visibility
    passed: bool
    score: float
    max_score: float
    message: str = ""
    diagnoses: list[str] = Field(default_factory=list)
    # extensions
    description: str = ""
    details: dict = Field(default_factory=dict)
    seconds: float = 0.0
    where: Where | None = None  # a call that raised or ran past its limit: where and on what


class LmsIdentity(CleanText):
    """Who a submission belongs to in the learning platform it was downloaded from, read
    from the download's names (grader.discover), so that grades and feedback can go back
    (grader.lms). Ids are digits only: they end up in file names of the exports."""

    model_config = ConfigDict(extra="forbid")

    system: Literal["canvas", "moodle"]
    name: str = ""  # as the download spells it: Canvas's "smithbob", Moodle's full name "Bob Smith"
    user_id: str = Field(default="", pattern=r"^\d*$")  # Canvas: the gradebook's ID column
    attachment_id: str = Field(default="", pattern=r"^\d*$")  # Canvas: the graded file's id
    late: bool = False  # Canvas marked the file LATE
    participant_id: str = Field(default="", pattern=r"^\d*$")  # Moodle: "Participant <id>"


class Adjustment(CleanText):
    """What the instructor's adjustments file (grader/adjust.py) changes about one student,
    applied when the reports are written and kept apart from the graded `score`, which
    it never changes."""

    model_config = ConfigDict(extra="forbid")

    points: float = 0.0  # the instructor's adjustment, either sign
    reason: str = ""
    comment: str = ""  # for the student, on their page
    late_days: float = 0.0
    late_from: str = ""  # where the late days come from: "adjustments" (the file) or the LMS ("canvas")
    late_penalty: float = 0.0  # points taken for lateness (0 or more)
    # score + points - late_penalty, never below 0; None when the submission has no score
    # (the grader could not finish it): an adjustment never stands in for grading.
    final_score: float | None = None


class SubmissionResult(CleanText):
    model_config = ConfigDict(extra="forbid")
    # ids and paths whole; the output is bounded where it is captured (OUTPUT_KEEP_BYTES)
    _whole = frozenset({"student", "source", "files", "output", "checks"})

    student: str
    source: str
    status: Literal["graded", "error"]
    score: float
    max_score: float
    diagnoses: list[str] = Field(default_factory=list)
    checks: list[CheckResult] = Field(default_factory=list)
    # extensions
    message: str = ""  # why the status is error, or a one-line summary
    files: list[str] = Field(default_factory=list)  # every file that travelled with it
    content_hash: str = ""
    load_mode: Literal["full", "definitions", "none"] = "none"
    notes: list[str] = Field(default_factory=list)
    functions: dict[str, str] = Field(default_factory=dict)
    forbidden_imports: list[str] = Field(default_factory=list)
    output: str = ""
    output_dropped_bytes: int = 0
    seconds: float = 0.0
    graded_at: str = ""  # when this submission was graded (a kept result keeps its own time)
    lms: LmsIdentity | None = None  # None: not from a Canvas or Moodle download
    adjustment: Adjustment | None = None  # the instructor's adjustments; None: none apply


class Protection(CleanText):
    """One protection of the sandbox, as measured at the start of the run."""

    model_config = ConfigDict(extra="forbid")

    name: str
    held: bool
    what: str  # what holds when it does, in plain words
    how: str = ""  # the mechanisms behind it in this run
    seen: list[str] = Field(default_factory=list)  # what got through, when it did not hold


class ShardInfo(CleanText):
    """The part of a class one run graded (`grade --shard K/N`), for `grade merge` to check."""

    model_config = ConfigDict(extra="forbid")

    index: int  # K, from 1
    count: int  # N
    students: int  # how many of the class are in this shard
    class_students: int  # how many the whole class has
    class_digest: str  # of the class's sorted ids (grader.shard.class_digest)


class GradingSettings(CleanText):
    """What the checks ran under, besides points and visibility: `grade rescore` refuses a
    configuration that changes any of it (that needs a real run)."""

    model_config = ConfigDict(extra="forbid")

    tolerances: dict[str, float] = Field(default_factory=dict)  # grader.compare.Tolerances
    limits: dict[str, float] = Field(default_factory=dict)  # config names: timeout, load_timeout, budget, memory_mb
    forbidden_imports: list[str] = Field(default_factory=list)


class RunResult(CleanText):
    model_config = ConfigDict(extra="forbid")
    _whole = frozenset({"submissions", "protections"})

    assignment: str
    toolkit_version: str
    graded_at: str
    submissions: list[SubmissionResult] = Field(default_factory=list)
    # extensions
    sandbox: str = "none"
    protections: list[Protection] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    max_score: float = 0.0
    seed: int | None = None  # the run's seed (`grade --seed` reproduces the run); None: fixed seeds (the kit)
    shard: ShardInfo | None = None  # None: the whole class (a single run, or shards merged)


    grading: GradingSettings | None = None  # None: written before nngrade recorded them
    rescored_at: str | None = None  # when `grade rescore` last changed points or visibility
