"""`grade similarity OUT --submissions PATH`: which submissions of a class run are alike.

results.json names each student's graded file relative to the class folder, but the
graded copies do not outlive the run (each worker's copy is removed with it), so the
files are read again from the class folder (or zip) the run graded. The template's
code (the assignment's, or a course's, and any `--template` file) is no one's own and
is left out. Writes OUT/similarity.json (plain data) and OUT/similarity.html, an
instructor's page linked from the class overview; no student-facing page shows either.

The ranking says which code is alike, not why: two students may share a source they
were allowed to use, or have written the obvious code the same way.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from grader import similarity
from grader.models import RunResult
from grader.report.html import SIMILARITY_PAGE as PAGE
DATA = "similarity.json"
CONTEXT_LINES = 3  # unmatched lines shown around a passage on the page
MAX_SHOWN_CHARS = 400  # of one line on the page


class SimilarityError(Exception):
    """The command cannot run as asked: one line, exit status 2."""


@dataclass
class Source:
    student: str
    file: str  # as results.json names it
    text: str


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grade similarity",
        description="Rank the pairs of a class run's submissions by how alike their code is, the template's "
        "code left out, and show the closest side by side in OUT/similarity.html (linked from the class "
        "overview) and OUT/similarity.json. It is a list to look at, not a verdict.")
    parser.add_argument("out", type=Path, metavar="OUT", help="the output folder of a class run (its results.json)")
    parser.add_argument("--submissions", "-s", type=Path, required=True, metavar="PATH",
                        help="the class folder or zip that run graded (the run keeps no copy of the code)")
    parser.add_argument("--course", type=Path, metavar="FOLDER",
                        help="the run's course folder, when it was graded with --course (for its template)")
    parser.add_argument("--template", type=Path, action="append", default=[], metavar="FILE",
                        help="more code that is no one's own, left out like the template (the handout's given "
                        "code, the lecture's examples); .py or .ipynb; may be repeated")
    parser.add_argument("--top", type=int, default=20, metavar="N",
                        help="pairs shown side by side on the page, and whose shared passages similarity.json "
                        "gives (default: 20); it lists every pair with its scores")
    parser.add_argument("--common", type=int, default=10, metavar="N",
                        help="passages that more than N submissions share are left out as code many write "
                        "alike (default: 10, as MOSS)")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.top < 1 or args.common < 2:
            raise SimilarityError("--top must be at least 1 and --common at least 2")
        report = run_similarity(args.out, args.submissions, args.course, args.template, args.top, args.common)
    except SimilarityError as exc:
        print(f"grade similarity: error: {exc}", file=sys.stderr)
        return 2
    pairs, compared = report["pairs"], len(report["compared"])
    closest = (f"; the closest: {pairs[0]['a']} and {pairs[0]['b']} ({pairs[0]['similarity']:.0%})"
               if pairs else "")
    print(f"Compared {compared} submission(s): {len(pairs)} pair(s) share code of their own{closest}. "
          f"A list to look at, not a verdict: {args.out / PAGE}")
    if report["not_compared"]:
        print(f"Not compared: {len(report['not_compared'])} (the page says why)")
    return 0


def run_similarity(out: Path, submissions: Path, course: Path | None, extra_templates: list[Path],
                   top: int, common: int) -> dict:
    """Compare the run's submissions; write similarity.json and the page; return the data."""
    run = _read_run(out)
    assignment = _assignment(run.assignment, course)
    templates = _template_sources(assignment) + [_read_template(path) for path in extra_templates]
    template_prints = similarity.template_prints([text for _, text in templates])
    with tempfile.TemporaryDirectory(prefix="nngrade-similarity-") as scratch:
        root = _class_folder(submissions, Path(scratch), assignment.file_name)
        sources, not_compared = _sources(run, root)
    prints, texts = [], {}
    for source in sources:
        try:
            found = similarity.fingerprint(source.student, source.text, template_prints)
        except similarity.NotComparable as exc:
            not_compared.append({"student": source.student, "reason": f"{source.file}: {exc}"})
            continue
        if not found.hashes:
            not_compared.append({"student": source.student,
                                 "reason": f"{source.file} holds no code of its own beyond the template"})
            continue
        prints.append(found)
        texts[source.student] = source
    ignored = similarity.common_runs(prints, common)
    pairs = similarity.rank(prints, ignored)
    by_name = {f.name: f for f in prints}
    data = {
        "assignment": run.assignment, "graded_at": run.graded_at,
        "compared_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "template": [name for name, _ in templates],
        "method": {"nodes_per_run": similarity.K, "window": similarity.WINDOW, "common": common},
        "compared": [f.name for f in prints], "not_compared": not_compared,
        "pairs": [{"a": p.a, "b": p.b, "similarity": round(p.similarity, 4), "share_a": round(p.share_a, 4),
                   "share_b": round(p.share_b, 4), "file_a": texts[p.a].file, "file_b": texts[p.b].file}
                  for p in pairs],
    }
    for pair in data["pairs"][:top]:  # the shared passages of the pairs the page shows (they cost time)
        pair["passages"] = [{"a": list(la), "b": list(lb)}
                            for la, lb in similarity.passages(by_name[pair["a"]], by_name[pair["b"]], ignored)]
    _write(out, run, data, [_side_by_side(pair, texts, number) for number, pair in enumerate(data["pairs"][:top], 1)])
    return data


# ------------------------------------------------------------------- inputs
def _read_run(out: Path) -> RunResult:
    from pydantic import ValidationError

    try:
        return RunResult.model_validate_json((out / "results.json").read_bytes())
    except OSError as exc:
        raise SimilarityError(f"cannot read {out / 'results.json'} ({exc.strerror}): grade the class first, "
                              "with --out OUT") from None
    except ValidationError:
        raise SimilarityError(f"{out / 'results.json'} is not a results file of nngrade") from None


def _assignment(name: str, course: Path | None):
    from grader.assignment import CONTRACT_FILE, UnknownAssignment, course_assignment, named
    from grader.contract.model import ContractError

    if course is not None:
        if not (course / CONTRACT_FILE).is_file():
            raise SimilarityError(f"--course {course}: no {CONTRACT_FILE} there")
        try:
            found = course_assignment(course)
        except ContractError as exc:
            raise SimilarityError(str(exc)) from None
        if found.name != name:
            raise SimilarityError(f"--course {course} is assignment {found.name!r}, but the run graded {name!r}")
        return found
    try:
        return named(name)
    except UnknownAssignment:
        raise SimilarityError(f"the run graded {name!r}, which this toolkit does not ship: pass its "
                              "--course FOLDER, so that its template is left out") from None


def _template_sources(assignment) -> list[tuple[str, str]]:
    """The students' template as (name, code): the .py file and the notebook's code cells.
    A course's are in its folder's template/, or written from its contract where it has none."""
    from grader import reader
    from grader.kit import TOOLKIT_ROOT

    def shown(path: Path) -> str:
        return str(path.relative_to(TOOLKIT_ROOT)) if path.is_relative_to(TOOLKIT_ROOT) else str(path)

    if assignment.contract is None:
        folder = TOOLKIT_ROOT / "assignments" / assignment.name / "template"
        paths = [folder / assignment.file_name, folder / f"{assignment.name}.ipynb"]
        return [(shown(p), _code(p)) for p in paths if p.is_file()]
    import nbformat

    from grader.contract.template import course_notebook, course_template, notebook_path, template_path

    contract, forbidden = assignment.contract, assignment.forbidden_imports
    found = []
    path = template_path(contract)
    found.append((shown(path), _code(path)) if path.is_file()
                 else (f"the template written from {contract.path.name}", course_template(contract, forbidden)))
    path = notebook_path(contract)
    if path.is_file():
        found.append((shown(path), _code(path)))
    else:
        answer = reader.read("notebook", nbformat.writes(course_notebook(contract, forbidden)).encode(), "template")
        found.append((f"the notebook written from {contract.path.name}", answer.get("text", "")))
    return found


def _read_template(path: Path) -> tuple[str, str]:
    if not path.is_file() or path.suffix not in (".py", ".ipynb"):
        raise SimilarityError(f"--template {path}: not a .py or .ipynb file")
    return str(path), _code(path)


def _code(path: Path) -> str:
    """A .py file's code, or a notebook's code cells joined, as the grader reads them."""
    from grader.source import SourceError, load

    try:
        return load(path, path.name).text
    except SourceError as exc:
        raise SimilarityError(f"cannot read the template {path}: {exc.message}") from None


def _class_folder(submissions: Path, scratch: Path, file_name: str) -> Path:
    """The folder the run's `source` paths are relative to: PATH, or the zip extracted."""
    if submissions.is_dir():
        return submissions
    if submissions.suffix.lower() == ".zip" and submissions.is_file():
        from grader.classzip import ClassZipError, extract, single_top_folder

        try:
            extract(submissions, scratch)
        except ClassZipError as exc:
            raise SimilarityError(str(exc)) from None
        return single_top_folder(scratch, {file_name})
    raise SimilarityError(f"--submissions {submissions}: not a folder or a .zip (give the class the run graded)")


def _sources(run: RunResult, root: Path) -> tuple[list[Source], list[dict]]:
    """Each graded file's code, read as the grader read it; who could not be read, and why."""
    from grader.source import SourceError, load

    base = root.resolve()
    sources, missing = [], []
    for sub in run.submissions:
        path = root / sub.source
        try:
            inside = path.resolve().is_relative_to(base)
        except (OSError, RuntimeError):
            inside = False
        if not inside or path.suffix not in (".py", ".ipynb") or not path.is_file():
            missing.append({"student": sub.student, "reason": f"no code file {sub.source} in the class folder"})
            continue
        try:
            sources.append(Source(sub.student, sub.source, load(path, sub.source).text))
        except SourceError as exc:
            missing.append({"student": sub.student, "reason": exc.message})
    return sources, missing


# ------------------------------------------------------------------ outputs
def _side_by_side(pair: dict, texts: dict[str, Source], number: int) -> dict:
    """One pair as the page shows it: both files' lines, each shared line marked with its
    passage, long stretches of unshared code folded."""
    sides = []
    for side in ("a", "b"):
        marks: dict[int, int] = {}
        for index, passage in enumerate(pair["passages"]):
            first, last = passage[side]
            for line in range(first, last + 1):
                marks.setdefault(line, index)
        lines = texts[pair[side]].text.split("\n")
        sides.append({"student": pair[side], "file": pair[f"file_{side}"], "share": pair[f"share_{side}"],
                      "rows": _rows(lines, marks)})
    return {"number": number, "pair": pair, "sides": sides}


def _rows(lines: list[str], marks: dict[int, int]) -> list[dict]:
    shown = {n for line in marks for n in range(line - CONTEXT_LINES, line + CONTEXT_LINES + 1)}
    rows, folded = [], 0
    for number, text in enumerate(lines, 1):
        if number not in shown:
            folded += 1
            continue
        if folded:
            rows.append({"folded": folded})
            folded = 0
        if len(text) > MAX_SHOWN_CHARS:
            text = text[:MAX_SHOWN_CHARS] + " [...]"
        rows.append({"line": number, "text": text, "passage": marks.get(number)})
    if folded:
        rows.append({"folded": folded})
    return rows


def _write(out: Path, run: RunResult, data: dict, shown: list[dict]) -> None:
    from grader.report.html import render_index, render_similarity
    from grader.store import write_atomic

    write_atomic(out / DATA, _json(data))
    write_atomic(out / PAGE, render_similarity(run, data, shown))
    write_atomic(out / "index.html", render_index(run, similarity_page=True))


def _json(data: dict) -> str:
    """similarity.json: one pair a line, so that a class of hundreds stays readable."""
    head = {k: v for k, v in data.items() if k != "pairs"}
    lines = [f"  {json.dumps(pair, ensure_ascii=False)}" for pair in data["pairs"]]
    return (json.dumps(head, indent=1, ensure_ascii=False)[:-2] + ',\n "pairs": [\n' + ",\n".join(lines)
            + "\n ]\n}\n")
