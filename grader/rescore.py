"""`grade rescore OUT`: new points and visibility for the check results a run recorded,
without running anyone's code again.

A check's outcome (passed or not, its message, its diagnoses) depends on the inputs,
the tolerances, the limits and the forbidden imports; its points and visibility do not.
So rescoring takes the configuration's points and visibility over the assignment's own
(as a run with that `--config` would), and refuses, in one line naming what changed, a
configuration that changes anything else the run recorded (`results.json`'s `grading`),
or a check the results do not hold: those need a real run.

The folder stays one a later `--resume` accepts: results.json and its digest are
written through the store, the journal is replaced by the rescored records first (a
resume keeps those, never the ones before), and each record's resume key is carried
over to the new configuration, so that `grade PATH --resume --config NEW` keeps
everyone whose files are unchanged. The instructor's adjustments (grader/adjust.py)
are applied afresh, as at the end of every run.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
from pathlib import Path

from grader.adjust import ADJUSTMENT_WARNING, apply_adjustments, for_output
from grader.compare import DEFAULT_TOLERANCES, Tolerances
from grader.models import GradingSettings, RunResult, SubmissionResult
from grader.store import KEY_FILE, STATE_DIR, ResultStore, files_hash_of, result_key

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# grader.sandbox.Limits' fields under the names a configuration's [limits] gives them
LIMIT_NAMES = {"call_timeout": "timeout", "load_timeout": "load_timeout", "budget": "budget",
               "memory_mb": "memory_mb"}


class Refused(Exception):
    """Rescoring cannot give what a run would: one line, exit status 2."""


def grading_settings(limits, tolerances: Tolerances, forbidden_imports) -> GradingSettings:
    """What a run's checks ran under, besides points and visibility (recorded in results.json)."""
    return GradingSettings(
        tolerances=dataclasses.asdict(tolerances),
        limits={name: getattr(limits, field) for field, name in LIMIT_NAMES.items()},
        forbidden_imports=sorted(forbidden_imports))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grade rescore",
        description="Apply new points and visibility (--config) and the instructor's adjustments to the "
        "check results a run recorded in OUT, and rewrite results.json, grades.csv and the pages, without "
        "running any code. A configuration that changes tolerances, limits or forbidden imports, or names "
        "a check the results do not hold, needs a real run: rescore refuses it (exit 2) and says what changed.")
    parser.add_argument("out", type=Path, metavar="OUT", help="the output folder of a grading run")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="points and visibility over the assignment's own, as `grade --config FILE` takes "
                        "them; left out, the points stay as they are")
    parser.add_argument("--adjustments", type=Path, metavar="FILE",
                        help="the instructor's adjustments (copied to OUT/adjustments.toml; left out, that "
                        "copy is used when there)")
    parser.add_argument("--course", type=Path, metavar="FOLDER",
                        help="the course folder the run graded against, when it is not one the toolkit ships")
    return parser


def rescore_command(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        lines = rescore(args.out, args.config, args.adjustments, args.course)
    except Refused as exc:
        print(f"grade rescore: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        print(f"grade rescore: error: could not use{where}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    for line in lines:
        print(line, file=sys.stderr if line.startswith("warning:") else sys.stdout)
    return EXIT_OK


def rescore(out: Path, config_path: Path | None, adjustments_path: Path | None = None,
            course: Path | None = None) -> list[str]:
    """Rescore the run in `out`; the lines to print. Refused when it cannot be done."""
    store, run = _open(out)
    assignment = _assignment(run.assignment, course)
    records = list(run.submissions)
    points_note = "points and visibility as recorded"
    if config_path is not None:
        assignment, config_bytes = _configured(assignment, config_path, run)
        records = [_rescored(r, assignment, config_bytes) for r in records]
        changed = sum(a.score != b.score or a.max_score != b.max_score for a, b in zip(run.submissions, records))
        points_note = f"points and visibility from {config_path} ({changed} score(s) changed)"
    try:
        adjustments = for_output(out, adjustments_path, run.assignment)
    except ValueError as exc:
        raise Refused(str(exc)) from None

    # The journal first: if we stop between the two, a resume keeps the rescored records.
    records = [r.model_copy(update={"adjustment": None}) for r in records]
    store.rewrite_journal(records)
    adjusted, warnings = apply_adjustments(records, adjustments)
    new = run.model_copy(update={
        "submissions": adjusted, "max_score": assignment.max_score if config_path is not None else run.max_score,
        "warnings": [w for w in run.warnings if not w.startswith(ADJUSTMENT_WARNING)] + warnings,
        "rescored_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                       if config_path is not None else run.rescored_at,
    })
    _write(store, new, out)
    count = sum(s.adjustment is not None for s in adjusted)
    return [f"warning: {w}" for w in warnings] + [
        f"Rescored {len(adjusted)} submission(s) of '{run.assignment}' without running them: {points_note}; "
        f"{count} with adjustments. Results: {out / 'results.json'}; overview: {out / 'index.html'}"]


def _open(out: Path) -> tuple[ResultStore, RunResult]:
    """The run in `out`, verified as the grader wrote it, and its store."""
    if not (out / "results.json").is_file() or not (out / STATE_DIR / KEY_FILE).is_file():
        raise Refused(f"{out} holds no results of a grading run (grade a class with --out {out} first)")
    import json

    try:
        name = json.loads((out / "results.json").read_bytes())["assignment"]
    except (ValueError, KeyError, TypeError):
        name = None
    if not isinstance(name, str):
        raise Refused(f"{out / 'results.json'} is not the results of a grading run")
    store = ResultStore(out, name, resume=True)  # reads the journal back, and keeps it as it was
    run = store.verified_run()
    if run is None:
        raise Refused(f"{out / 'results.json'} was not written by this grader, or was changed since (its digest "
                      "does not verify): grade the class again")
    if store.refused:
        raise Refused(f"{store.refused} record(s) in {out}'s journal were not written by this grader: grade the "
                      "class again with --resume")
    if _plain(store.previous.values()) != _plain(run.submissions):
        raise Refused(f"{out} holds an unfinished run (its journal and results.json differ): finish it with "
                      "grade PATH --resume first")
    return store, run


def _plain(records) -> dict[str, dict]:
    return {r.student: r.model_dump(exclude={"adjustment"}) for r in records}


def _assignment(name: str, course: Path | None):
    from grader.assignment import CONTRACT_FILE, available, course_assignment
    from grader.contract.model import ContractError

    assignments = available()
    if course is not None:
        if not (course / CONTRACT_FILE).is_file():
            raise Refused(f"--course {course}: no {CONTRACT_FILE} there")
        try:
            own = course_assignment(course)
        except ContractError as exc:
            raise Refused(str(exc)) from None
        assignments[own.name] = own
    if name not in assignments:
        raise Refused(f"these results are for assignment {name!r}, which this toolkit does not have: "
                      "pass its folder with --course FOLDER")
    return assignments[name]


def _configured(assignment, config_path: Path, run: RunResult):
    """The assignment under the new configuration, and the configuration's bytes; refused
    when the configuration changes what the checks ran under."""
    from grader.config import apply_config, load_config

    try:
        config = load_config(config_path)
        configured = apply_config(assignment, config)
    except ValueError as exc:
        raise Refused(str(exc)) from None
    if run.grading is None:
        raise Refused(f"these results do not record the tolerances, limits and forbidden imports they were graded "
                      f"under (an older nngrade wrote them): grade the class again with --config {config_path}")
    changed = _changed_settings(config, configured, run.grading) + _changed_checks(configured, run.submissions)
    if changed:
        raise Refused(f"{config_path} changes {'; '.join(changed)}: that needs a real run (grade PATH --config "
                      f"{config_path}), not a rescore")
    return configured, config_path.read_bytes()


def _changed_settings(config, configured, graded: GradingSettings) -> list[str]:
    changed = []
    # No flag sets a tolerance: a run used exactly its configuration's over the defaults.
    for name, value in dataclasses.asdict(config.tolerances_over(DEFAULT_TOLERANCES)).items():
        if name in graded.tolerances and graded.tolerances[name] != value:
            changed.append(f"tolerances.{name} (graded with {graded.tolerances[name]:g}, now {value:g})")
    # Flags may have set a limit: only those the file gives must be what the run used.
    for name, value in config.limits.model_dump().items():
        if value is not None and name in graded.limits and graded.limits[name] != value:
            changed.append(f"limits.{name} (graded with {graded.limits[name]:g}, now {value:g})")
    before, after = set(graded.forbidden_imports), set(configured.forbidden_imports)
    if before != after:
        moved = [f"+{m}" for m in sorted(after - before)] + [f"-{m}" for m in sorted(before - after)]
        changed.append(f"the forbidden imports ({', '.join(moved)})")
    return changed


def _changed_checks(configured, records: list[SubmissionResult]) -> list[str]:
    wanted = [c.id for c in configured.checks]
    held: set[str] = set()
    missing: set[str] = set()
    for r in records:
        ids = {c.id for c in r.checks}
        held |= ids
        if r.status == "graded":
            missing |= set(wanted) - ids
    changed = []
    if missing:
        shown = sorted(missing)
        changed.append(f"the checks: {', '.join(shown[:3])}{' ...' if len(shown) > 3 else ''} "
                       f"not in the results")
    gone = sorted(held - set(wanted))
    if gone:
        changed.append(f"the checks: the results hold {', '.join(gone[:3])}{' ...' if len(gone) > 3 else ''}, "
                       f"which assignment {configured.name!r} no longer has")
    return changed


def _rescored(record: SubmissionResult, assignment, config_bytes: bytes) -> SubmissionResult:
    """`record` as a run under `assignment`'s points and visibility would have scored it
    (the same sums and rounding as grader.runner)."""
    checks = {c.id: c for c in assignment.checks}
    results = [c.model_copy(update={"score": checks[c.id].points if c.passed else 0.0,
                                    "max_score": checks[c.id].points, "visibility": checks[c.id].visibility})
               for c in record.checks]
    update = {"checks": results, "max_score": assignment.max_score,
              "content_hash": result_key(files_hash_of(record.content_hash), config_bytes)}
    if record.status == "graded":
        score = sum(c.score for c in results)
        update.update(score=round(score, 6), message=f"{score:g} / {assignment.max_score:g}")
    return record.model_copy(update=update)


def _write(store: ResultStore, run: RunResult, out: Path) -> None:
    from grader.report.html import write_reports

    store.write(run)
    write_reports(run, out)
    if (out / "gradescope").is_dir():  # a class run with --gradescope: its files follow the new scores
        from grader.report.gradescope import write_gradescope

        write_gradescope(run, out)
