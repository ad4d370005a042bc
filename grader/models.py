"""Data that crosses a boundary: results on disk. Pydantic models, validated on write.

The fields named in the results spec (`../shared/spec/results.md`) are stable public
API; the others are extensions for the reports.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["shape", "numeric", "gradient", "behavior", "performance"]
Visibility = Literal["public", "hidden"]


class CheckResult(BaseModel):
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


class SubmissionResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

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


class RunResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignment: str
    toolkit_version: str
    graded_at: str
    submissions: list[SubmissionResult] = Field(default_factory=list)
    # extensions
    sandbox: str = "none"
    warnings: list[str] = Field(default_factory=list)
    max_score: float = 0.0
