"""HTML pages from results: one per student and the class overview.

jinja2 with autoescaping everywhere (the SVG pictures too): whatever a student
printed or named shows as text. What the pages show is worked out in
`grader.report.view`; the templates only lay it out.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from grader.models import RunResult, SubmissionResult
from grader.report import view
from grader.report.digest import digest
from grader.store import write_atomic

SIMILARITY_PAGE = "similarity.html"  # written by `grade similarity`, linked from the overview when there

_env = Environment(
    loader=PackageLoader("grader.report", "templates"),
    autoescape=select_autoescape(["html", "j2"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
    # A misspelt name in a template fails the tests instead of rendering as nothing.
    undefined=StrictUndefined,
)


num = view.num  # points and errors without float noise: 2, 0.5, 1.48, 3.2e-09
_env.filters["num"] = num


def reproduction(run: RunResult, sub: SubmissionResult, check) -> str:
    """The command that runs one public check again on this submission's file, with the
    run's inputs, and prints its inputs, expected values and what came back (see
    grader.reproduce). Run from the folder that was graded."""
    source = sub.source if not sub.source.startswith("-") else "./" + sub.source
    parts = ["grade", shlex.quote(source), "--assignment", shlex.quote(run.assignment),
             "--check", shlex.quote(check.id), "--show"]
    if run.seed is not None:
        parts += ["--seed", str(run.seed)]
    return " ".join(parts)


_env.globals["reproduction"] = reproduction


def page_name(student: str) -> str:
    """A safe file name for one student's page."""
    return view.file_names([student], ".html")[student]


def page_names(run: RunResult) -> dict[str, str]:
    """Every student's page, distinct even where two ids reduce to the same name."""
    return view.file_names([s.student for s in run.submissions], ".html")


def render_student(run: RunResult, sub: SubmissionResult, student_view: bool = False, overview: bool = True,
                   hidden_points: float | None = None) -> str:
    """A student's page. `student_view` is the student-facing variant (Gradescope, the
    self-check): hidden checks show their name and result only, and diagnoses that
    only hidden checks found are left out. `overview`: the page links back to the
    class overview. `hidden_points`: the points the hidden checks hold, said on a page
    that holds the public checks only (the student kit's)."""
    return _env.get_template("student.html.j2").render(
        run=run, sub=sub, student_view=student_view, show_output=view.output_visible(sub, student_view),
        d=digest(sub, student_view), load_mode=view.LOAD_MODES.get(sub.load_mode, sub.load_mode),
        overview_link=overview and not student_view, hidden_points=hidden_points,
    )


def render_index(run: RunResult, similarity_page: bool = False) -> str:
    """The class overview; `similarity_page`: link to `grade similarity`'s page."""
    pages = page_names(run)
    return _env.get_template("index.html.j2").render(run=run, o=view.overview(run), page_name=pages.__getitem__,
                                                     similarity_page=similarity_page)


def render_similarity(run: RunResult, data: dict, shown: list[dict]) -> str:
    """`grade similarity`'s page: the ranking in `data`, the pairs in `shown` side by side."""
    pages = page_names(run)
    return _env.get_template("similarity.html.j2").render(run=run, s=data, shown=shown, page_name=pages.get)


def write_reports(run: RunResult, out_dir: Path, overview: bool = True, hidden_points: float | None = None) -> None:
    """Every student's page and, for a class (`overview`), the class overview index.html.
    A single file's run has no class: its one page is the report."""
    pages = page_names(run)
    for sub in run.submissions:
        write_atomic(out_dir / pages[sub.student], render_student(run, sub, overview=overview,
                                                                  hidden_points=hidden_points))
    if overview:
        write_atomic(out_dir / "index.html", render_index(run, similarity_page=(out_dir / SIMILARITY_PAGE).is_file()))
