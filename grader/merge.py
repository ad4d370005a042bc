"""`grade merge`: the shards of a class (`grade PATH --shard K/N --seed S`) joined into
the results one run of the whole class would have written.

Each shard's results.json is trusted only if it matches the digest its own run wrote
beside it (`.nngrade/`, keyed by that folder's secret): the key never leaves the
folder, so a shard's folder has to be copied whole, `.nngrade` included. The merged
folder gets a key of its own and a digest, so that `grade PATH --out MERGED --resume`
goes on from it like from any run (regrading, say, the students the grader failed).

Whatever could make the merged results differ from one run is refused, naming the
shard: a missing or repeated shard, a student in two shards or in the wrong one, an
incomplete shard (interrupted: rerun it with --resume), and shards of another
split, class, seed, assignment, grader version or maximum score.
"""

from __future__ import annotations

import argparse
import hmac
import sys
from pathlib import Path

from pydantic import ValidationError

from grader.models import Protection, RunResult
from grader.shard import class_digest, shard_of
from grader.store import KEY_FILE, STATE_DIR, ResultStore, is_grader_failure, record_digest

EXIT_OK, EXIT_GRADER_FAILED, EXIT_USAGE = 0, 1, 2


class MergeError(Exception):
    """Shards that cannot be merged: one line naming the shard."""


def read_shard(folder: Path) -> RunResult:
    """The results of the run in `folder`, verified against the digest that run wrote."""
    results = folder / "results.json"
    if not results.is_file():
        raise MergeError(f"{folder}: no results.json there (not an output folder, or its run did not finish)")
    data = results.read_bytes()
    try:
        run = RunResult.model_validate_json(data)
    except ValidationError:
        raise MergeError(f"{folder}: results.json is not the results of a grading run") from None
    state = folder / STATE_DIR
    name = f"results-{run.assignment}.hmac"
    try:
        if Path(name).name != name:
            raise ValueError(name)
        key = bytes.fromhex((state / KEY_FILE).read_text(encoding="ascii").strip())
        digest = (state / name).read_text(encoding="ascii").strip()
    except (OSError, ValueError):
        raise MergeError(f"{folder}: no key and digest in {state} to verify results.json with "
                         f"(copy a shard's folder whole, {STATE_DIR}/ included)") from None
    if not hmac.compare_digest(digest, record_digest(key, run.assignment, data)):
        raise MergeError(f"{folder}: results.json does not match its digest in {state}: it was changed "
                         "after grading; grade this shard again")
    return run


def _shard_name(run: RunResult) -> str:
    return f"shard {run.shard.index}/{run.shard.count}"


def _check_same(folder: Path, run: RunResult, first_folder: Path, first: RunResult) -> None:
    """`run` is a shard of the same run as `first`."""
    if run.assignment != first.assignment:
        raise MergeError(f"{folder}: assignment {run.assignment!r}, but {first_folder} is {first.assignment!r}")
    if run.shard.count != first.shard.count:
        raise MergeError(f"{folder}: {_shard_name(run)}, but {first_folder} is {_shard_name(first)}: every "
                         "shard must split the class into the same number of shards")
    if run.seed != first.seed:
        raise MergeError(f"{folder}: graded with seed {run.seed}, but {first_folder} with seed {first.seed}: "
                         "every shard must grade with the same --seed")
    if (run.shard.class_students, run.shard.class_digest) != (first.shard.class_students,
                                                              first.shard.class_digest):
        raise MergeError(f"{folder}: a shard of another class than {first_folder} "
                         f"({run.shard.class_students} students against {first.shard.class_students}, or "
                         "other ids): every shard must grade the same class")
    if run.toolkit_version != first.toolkit_version:
        raise MergeError(f"{folder}: graded by nngrade {run.toolkit_version}, but {first_folder} by "
                         f"{first.toolkit_version}")
    if run.max_score != first.max_score:
        raise MergeError(f"{folder}: maximum score {run.max_score:g}, but {first_folder} has "
                         f"{first.max_score:g} (another --config?)")
    if run.grading != first.grading:
        raise MergeError(f"{folder}: graded with other tolerances, limits or forbidden imports than "
                         f"{first_folder} (another --config or --timeout?)")


def check_shards(shards: list[tuple[Path, RunResult]]) -> None:
    """Raise MergeError, naming the shard, unless `shards` are exactly one class's shards."""
    first_folder, first = shards[0]
    holder: dict[int, Path] = {}
    for folder, run in shards:
        if run.shard is None:
            raise MergeError(f"{folder}: not a shard (graded without --shard)")
        _check_same(folder, run, first_folder, first)
        index = run.shard.index
        if index in holder:
            raise MergeError(f"{folder}: {_shard_name(run)} again ({holder[index]} is {_shard_name(run)} too)")
        holder[index] = folder
        if len(run.submissions) != run.shard.students:
            raise MergeError(f"{folder}: {_shard_name(run)} is incomplete: {len(run.submissions)} of its "
                             f"{run.shard.students} students graded (rerun its grade with --resume)")
    count = first.shard.count
    missing = [f"{k}/{count}" for k in range(1, count + 1) if k not in holder]
    if missing:
        raise MergeError(f"shard{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing: none of the "
                         "folders given holds it")
    owner: dict[str, Path] = {}
    for folder, run in shards:
        for sub in run.submissions:
            if sub.student in owner:
                raise MergeError(f"{folder}: student {sub.student!r} is also in {owner[sub.student]}")
            owner[sub.student] = folder
            if shard_of(sub.student, count) != run.shard.index:
                raise MergeError(f"{folder}: student {sub.student!r} does not belong to {_shard_name(run)} "
                                 f"(shard {shard_of(sub.student, count)}/{count} by the hash of the id)")
    if len(owner) != first.shard.class_students or class_digest(owner) != first.shard.class_digest:
        raise MergeError(f"the shards hold {len(owner)} students, not the class of {first.shard.class_students} "
                         "they were cut from")


def _ordered_union(lists) -> list:
    return list(dict.fromkeys(item for items in lists for item in items))


def _protections(runs: list[RunResult]) -> list[Protection]:
    """Each protection as it held in every shard: where one shard lost it, the class lost it."""
    by_name: dict[str, list[Protection]] = {}
    for run in runs:
        for protection in run.protections:
            by_name.setdefault(protection.name, []).append(protection)
    merged = []
    for entries in by_name.values():
        weakest = next((p for p in entries if not p.held), entries[0])
        merged.append(weakest.model_copy(update={"seen": _ordered_union(p.seen for p in entries)}))
    return merged


def merge_runs(shards: list[tuple[Path, RunResult]]) -> RunResult:
    """One class's shards, checked, as the one run they make up."""
    check_shards(shards)
    runs = [run for _, run in sorted(shards, key=lambda pair: pair[1].shard.index)]
    first = runs[0]
    sandboxes = list(dict.fromkeys(run.sandbox for run in runs))
    warnings = _ordered_union(run.warnings for run in runs)
    if len(sandboxes) > 1:
        warnings.append("the shards ran in different sandboxes: " + ", ".join(
            f"{_shard_name(run)} in '{run.sandbox}'" for run in runs))
    return RunResult(
        assignment=first.assignment, toolkit_version=first.toolkit_version,
        graded_at=max(run.graded_at for run in runs),  # when the last shard finished
        submissions=sorted((sub for run in runs for sub in run.submissions), key=lambda sub: sub.student),
        sandbox=", ".join(sandboxes), protections=_protections(runs), warnings=warnings,
        max_score=first.max_score, seed=first.seed, grading=first.grading,
    )


def write_merged(run: RunResult, out: Path) -> None:
    """results.json (with its digest under a key of `out`'s own), grades.csv, the seed and the pages."""
    from grader.report.html import write_reports

    out.mkdir(parents=True, exist_ok=True)
    store = ResultStore(out, run.assignment, resume=False)
    store.seed(run.seed, resume=False)  # so that --resume in `out` keeps the shards' seed
    store.write(run)
    write_reports(run, out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grade merge",
        description="Join the output folders of a class's shards (grade PATH --shard K/N --seed S --out DIR) "
        "into one results.json, grades.csv and pages, as one run of the whole class would have written "
        "them. Every shard must be there once, verified against the digest its run wrote in DIR/.nngrade/.",
        epilog="Exit status: 0 when merged; 1 when some students could not be graded by the grader (status "
        "error, a grader.* diagnosis; `grade PATH --out OUT --resume` grades them again); 2 when the "
        "shards cannot be merged (one line names the shard).")
    parser.add_argument("shards", nargs="+", type=Path, metavar="SHARD_DIR",
                        help="the output folder of every shard, in any order")
    parser.add_argument("--out", "-o", type=Path, required=True, metavar="DIR",
                        help="the merged output folder (not one of the shards')")
    parser.add_argument("--gradescope", action="store_true",
                        help="also write Gradescope's results.json per student to DIR/gradescope/")
    return parser


def merge_command(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        folders = {}
        for folder in args.shards:
            if folder.resolve() in folders:
                raise MergeError(f"{folder}: given twice")
            folders[folder.resolve()] = folder
        if args.out.resolve() in folders:
            raise MergeError(f"--out {args.out} is one of the shards: merge into another folder")
        run = merge_runs([(folder, read_shard(folder)) for folder in args.shards])
    except MergeError as exc:
        print(f"grade merge: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"grade merge: error: could not read {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        write_merged(run, args.out)
        if args.gradescope:
            from grader.report.gradescope import write_gradescope

            write_gradescope(run, args.out, None)
    except OSError as exc:
        print(f"grade merge: error: could not write {exc.filename or args.out}: {exc.strerror or exc}",
              file=sys.stderr)
        return EXIT_GRADER_FAILED
    for line in run.warnings:
        print(f"warning: {line}", file=sys.stderr)
    print(f"Merged {len(args.shards)} shard(s) of '{run.assignment}': {len(run.submissions)} submission(s), "
          f"seed {run.seed}. Results: {args.out / 'results.json'}; overview: {args.out / 'index.html'}")
    failed = [s.student for s in run.submissions if is_grader_failure(s)]
    if failed:
        shown = ", ".join(failed[:10]) + (f" and {len(failed) - 10} more" if len(failed) > 10 else "")
        print(f"grade merge: the grader itself could not finish {len(failed)} submission(s): {shown}; rerun "
              f"`grade PATH --out {args.out} --resume` to grade them again.", file=sys.stderr)
        return EXIT_GRADER_FAILED
    return EXIT_OK
