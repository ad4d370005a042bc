"""The `grade` command. Wiring only: parse arguments, call the engine, print."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

from grader import __version__
from grader.safepath import drop_from_path

EXIT_OK, EXIT_GRADER_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    pass


class GraderFailed(Exception):
    """The grader or its sandbox cannot work here: one line, exit status 1."""


def _protect_self() -> None:
    """No process of our uid may trace the grader or read its memory (/proc/PID/mem)."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
        except (OSError, AttributeError):
            pass


def build_parser() -> argparse.ArgumentParser:
    listed = "\n".join(f"  grade {name:<18} {what}" for name, (_, what) in subcommands().items())
    parser = argparse.ArgumentParser(
        prog="grade",
        usage="grade PATH [options]\n       grade {" + ",".join(subcommands()) + "} ...",
        description="Grade CNN/RNN NumPy assignments. Every submission runs in its own sandboxed "
        "worker process; scores are computed in the grader's process from the values the "
        "student's functions return. Writes results.json, grades.csv and HTML reports to --out.",
        epilog="Examples:\n"
        "  grade examples/submissions/cnn             grade a class (one folder or file per student)\n"
        "  grade cnn_layers.py                        check your own work\n"
        "  grade subs/ --assignment rnn --jobs 4 --resume\n"
        "  grade subs/ --gradescope                   also write Gradescope's results.json per student\n"
        "  grade gradescope-bundle --assignment cnn --out autograder.zip\n"
        "                                             build Gradescope's autograder zip\n"
        "  grade kit --assignment cnn --out kit-cnn   build the students' self-check kit (and kit-cnn.zip)\n"
        "  grade subs/ --shard 2/8 --seed S --out out-2   grade one of 8 shards (a job array), then:\n"
        "  grade merge out-1 ... out-8 --out reports      one results.json, grades.csv and pages\n\n"
        f"Subcommands (grade help CMD shows one's options):\n{listed}\n\n"
        "Exit status: 0 when grading ran (whatever the scores); 1 when the grader or its sandbox "
        "failed (no worker could start, or some students could not be graded: they have status "
        "error and a grader.* diagnosis, and --resume grades them again); 2 for a usage error; "
        "130 when interrupted (finished students are kept; rerun with --resume).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", type=Path, help="a folder of submissions (one sub-folder or file per "
                        "student), a class zip (Canvas, Moodle), or a single .py / .ipynb file")
    parser.add_argument("--assignment", "-a", metavar="NAME",
                        help="the assignment (cnn, rnn); left out, it is inferred from the files")
    parser.add_argument("--course", type=Path, metavar="FOLDER",
                        help="grade against your own course: a folder holding contract.toml (your names, "
                        "argument orders and layouts), and optionally checks.py (see README, 'Your own course')")
    parser.add_argument("--out", "-o", type=Path, default=Path("reports"), metavar="DIR",
                        help="output folder (default: reports/)")
    parser.add_argument("--jobs", "-j", type=int, default=2, metavar="N",
                        help="submissions graded in parallel (default: 2)")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="an instructor's TOML file overriding points, visibility, forbidden imports, "
                        "limits and tolerances (see assignments/<name>/README.md); flags given here win")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="wall-clock limit per call of a student function (default: 10)")
    parser.add_argument("--load-timeout", type=float, default=None, metavar="SECONDS",
                        help="time the module's top level may run before the grader falls back to "
                        "its definitions alone (default: 5)")
    parser.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                        help="time all the calls of one submission may take together; when it is used up, "
                        "its remaining checks fail with submission.timeout (default: 60)")
    parser.add_argument("--memory", type=int, default=None, metavar="MB",
                        help="address-space limit of a worker in MB (default: 2048)")
    parser.add_argument("--only", action="append", type=_students, metavar="STUDENT[,STUDENT...]",
                        help="grade only these students (repeat the flag or separate names with commas) into "
                        "the results already in DIR: the others' results and pages are kept as they are")
    parser.add_argument("--adjustments", type=Path, metavar="FILE",
                        help="the instructor's adjustments (points with a reason, comments, a late penalty: see "
                        "README), copied to DIR/adjustments.toml, which later runs, --resume and rescore use")
    parser.add_argument("--resume", action="store_true",
                        help="keep results already in DIR for students whose files are unchanged")
    parser.add_argument("--sandbox", choices=("auto", "bwrap", "none", "spawn"), default="auto",
                        help="auto (default): bubblewrap where it works, else process limits only; "
                        "bwrap: require it; none: forked workers with process limits only; spawn: a "
                        "fresh interpreter per submission (portable: macOS, Windows)")
    parser.add_argument("--seed", type=int, default=None, metavar="N",
                        help="the seed every check draws its inputs from (results.json records each run's); "
                        "left out, a secret one is drawn (the student kit always uses its fixed inputs)")
    parser.add_argument("--shard", metavar="K/N",
                        help="grade only shard K of N (K from 1; by a hash of the student id, so adding "
                        "students moves no one else); needs --seed, the same for every shard; join the "
                        "shards' folders with `grade merge`")
    parser.add_argument("--check", metavar="ID",
                        help="run one public check (e.g. conv2d_forward.random_values) on one submission and "
                        "print its result; nothing is written. A failed check's page shows the command")
    parser.add_argument("--show", action="store_true",
                        help="with --check: also print every call it made, its inputs, what came back and "
                        "the expected values, as numbers")
    parser.add_argument("--quiet", "-q", action="store_true", help="print only the final summary")
    parser.add_argument("--gradescope", action="store_true",
                        help="also write Gradescope's results.json per student to DIR/gradescope/")
    parser.add_argument("--student-pages", type=Path, metavar="DIR",
                        help="also write each student's page as the student may see it (hidden checks by name "
                        "and result only) to DIR, ready to hand back; `grade export canvas|moodle DIR` "
                        "puts the same pages in the platform's feedback zip")
    parser.add_argument("--gradescope-out", type=Path, metavar="PATH",
                        help="grading one submission: write its Gradescope results.json to PATH "
                        "(e.g. /autograder/results/results.json)")
    parser.add_argument("--version", action="version", version=f"nngrade {__version__}")
    return parser


def _students(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name at least one student")
    return names


def _positive(value, name):
    if value is not None and value <= 0:
        raise UsageError(f"{name} must be positive, got {value}")
    return value


def subcommands() -> dict[str, tuple]:
    """`grade NAME ...`: each subcommand's function and what it does (a folder of that name
    is graded as ./NAME)."""
    return {
        "kit": (build_kit_command, "build the students' self-check kit (a folder and a zip)"),
        "gradescope-bundle": (gradescope_bundle, "build Gradescope's autograder zip"),
        "merge": (_merge, "merge the output folders of a class graded in shards (--shard K/N) into one"),
        "similarity": (_similarity, "rank pairs of submissions by code similarity (a list to look at)"),
        "rescore": (_rescore, "apply new points, visibility or adjustments to a graded class, without grading again"),
        "export": (_export, "write grades and feedback to import into Canvas or Moodle: grade export canvas OUT"),
        "help": (help_command, "show this help, or a subcommand's: grade help kit"),
    }


def _merge(argv: list[str]) -> int:
    from grader.merge import merge_command

    return merge_command(argv)


def _similarity(argv: list[str]) -> int:
    from grader.similarity_command import main as similarity_command

    return similarity_command(argv)


def _rescore(argv: list[str]) -> int:
    from grader.rescore import rescore_command

    return rescore_command(argv)


def _export(argv: list[str]) -> int:
    from grader.lms.command import export_command

    return export_command(argv)


def help_command(argv: list[str]) -> int:
    """`grade help [CMD]`."""
    commands = subcommands()
    if not argv:
        build_parser().print_help()
        return EXIT_OK
    if argv[0] not in commands or argv[0] == "help":
        print(f"grade help: no subcommand {argv[0]!r}; there are: {', '.join(commands)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return commands[argv[0]][0](["--help"])
    except SystemExit as exc:  # argparse's --help
        return int(exc.code or 0)


def main(argv: list[str] | None = None) -> int:
    drop_from_path()  # nothing of the working directory is ever imported here
    argv = sys.argv[1:] if argv is None else argv
    command = subcommands().get(argv[0]) if argv else None
    if command is not None:
        return command[0](argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return grade(args)
    except UsageError as exc:
        print(f"grade: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GraderFailed as exc:
        print(f"grade: error: {exc}", file=sys.stderr)
        return EXIT_GRADER_FAILED
    except KeyboardInterrupt:
        print("\ngrade: interrupted; finished students were kept (rerun with --resume to go on)",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:  # the disk, not a student: full, read-only, a folder removed mid-run
        where = f" {exc.filename}" if exc.filename else ""
        print(f"grade: error: could not use{where}: {exc.strerror or exc}; finished students were "
              f"kept (rerun with --resume to go on)", file=sys.stderr)
        return EXIT_GRADER_FAILED
    except Exception as exc:  # noqa: BLE001 - a bug of the grader's: one line, the trace in a file
        print(f"grade: internal error ({type(exc).__name__}: {str(exc)[:200]}); the details are in "
              f"{_save_trace()}; finished students were kept (rerun with --resume to go on)", file=sys.stderr)
        return EXIT_GRADER_FAILED


def _save_trace() -> str:
    """The current exception's traceback, written to a private temporary file."""
    import traceback

    fd, name = tempfile.mkstemp(prefix="nngrade-error-", suffix=".txt")
    with open(fd, "w", encoding="utf-8") as f:
        f.write(traceback.format_exc())
    return name


def grade(args) -> int:
    from grader.assignment import available
    from grader.kit import kit_marker

    _protect_self()
    drop_from_path(args.path if args.path.is_dir() else args.path.parent)
    _positive(args.jobs, "--jobs")
    _positive(args.timeout, "--timeout")
    _positive(args.load_timeout, "--load-timeout")
    _positive(args.budget, "--budget")
    _positive(args.memory, "--memory")
    if args.seed is not None and args.seed < 0:
        raise UsageError(f"--seed must be at least 0, got {args.seed}")
    if args.shard is not None:
        from grader.shard import parse_shard

        try:
            args.shard = parse_shard(args.shard)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if args.seed is None:
            # Each run draws its own secret seed: shards must be told one to agree on.
            raise UsageError("--shard needs --seed: every shard of a class must grade on the same inputs")
    if args.show and args.check is None:
        raise UsageError("--show goes with --check ID: it prints what that check's calls received and returned")
    assignments = available()
    if args.course is not None:
        assignments = {**assignments, **_course(args)}
    kit = kit_marker()
    if kit is not None:
        # A student kit: its one assignment, recorded expected values, the portable worker.
        assignments = {name: a for name, a in assignments.items() if name == kit["assignment"]}
        args.sandbox = "spawn"
        if args.seed is not None:
            raise UsageError("--seed has no use in the student kit: its recorded values are for its fixed inputs")
    with tempfile.TemporaryDirectory(prefix="nngrade-class-") as scratch:
        path, warnings = args.path, []
        if path.suffix.lower() == ".zip" and path.is_file():
            path, warnings = _extract_class(path, Path(scratch), {a.file_name for a in assignments.values()})
        return _grade_path(args, path, assignments, warnings, kit is not None)


def _course(args) -> dict:
    """`--course FOLDER`: the assignment its contract describes, the only one this run grades."""
    from grader.assignment import CONTRACT_FILE, course_assignment
    from grader.contract.model import ContractError

    folder = args.course
    if not (folder / CONTRACT_FILE).is_file():
        raise UsageError(f"--course {folder}: no {CONTRACT_FILE} there (see README, 'Your own course')")
    try:
        course = course_assignment(folder)
        course.checks  # the dry run: a course whose checks cannot run on the reference is refused now
    except ContractError as exc:
        raise UsageError(str(exc)) from None
    if args.assignment not in (None, course.name):
        raise UsageError(f"--course {folder} is assignment {course.name!r}, not {args.assignment!r}")
    args.assignment = course.name
    return {course.name: course}


def _extract_class(zip_path: Path, scratch: Path, contract_files: set[str]) -> tuple[Path, list[str]]:
    from grader.classzip import ClassZipError, extract, single_top_folder

    try:
        refused = extract(zip_path, scratch)
    except ClassZipError as exc:
        raise UsageError(str(exc)) from None
    warnings = [f"{zip_path.name}: refused {item}" for item in refused]
    return single_top_folder(scratch, contract_files), warnings


def _configured(assignment, config_path: Path | None):
    """The assignment with an instructor's overrides applied, and the config (or None)."""
    if config_path is None:
        return assignment, None
    from grader.config import apply_config, load_config

    try:
        config = load_config(config_path)
        return apply_config(assignment, config), config
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _result_key(sub, config_path: Path | None) -> str:
    """What a kept result must match for --resume: the files, and the config they were graded under."""
    from grader.store import result_key

    return result_key(sub.content_hash(), None if config_path is None else config_path.read_bytes())


def _oracle(assignment, in_kit: bool):
    from grader.kit import recorded_path
    from grader.oracle import RecordedOracle, ReferenceOracle, load_recorded

    if in_kit:
        return RecordedOracle(load_recorded(recorded_path(assignment.name)))
    return ReferenceOracle(assignment.reference_module)


def _grade_path(args, path: Path, assignments: dict, warnings: list[str], in_kit: bool) -> int:
    from grader.assignment import UnknownAssignment, named
    from grader.compare import DEFAULT_TOLERANCES
    from grader.discover import DiscoveryError, choose_main, detect_assignment, discover
    from grader.models import RunResult
    from grader.report.html import write_reports
    from grader.protections import preflight, summary_lines
    from grader.runner import RunOptions, grade_all, sandbox_config
    from grader.sandbox import Limits, SandboxUnavailable, resolve_sandbox
    from grader.store import ResultStore, is_grader_failure

    own_files = frozenset(f for a in assignments.values() for f in (a.file_name, f"{a.name}.ipynb"))
    try:
        subs = discover(path, own_files)
    except DiscoveryError as exc:
        raise UsageError(str(exc)) from None
    name = args.assignment or detect_assignment(subs, assignments)
    if name is None:
        raise UsageError(f"cannot tell which assignment {path} is; pass --assignment "
                         f"({' or '.join(sorted(assignments))})")
    try:
        assignment, config = _configured(named(name, assignments), args.config)
    except UnknownAssignment as exc:
        raise UsageError(str(exc)) from None
    only = {student for names in args.only or [] for student in names}
    unknown = sorted(only - {s.student for s in subs})
    if unknown:
        raise UsageError(f"no submission for {', '.join(unknown)} in {path}")
    if args.assignment is not None:
        _expect_some_function(subs, assignment, assignments)
    shard = None
    if args.shard is not None:
        from grader.shard import select

        subs, shard = select(subs, *args.shard)
    for sub in subs:
        choose_main(sub, assignment.file_name, assignment.functions)
    if args.check is not None:
        from grader.reproduce import reproduce

        return reproduce(args, subs, assignment, config, in_kit, path)

    try:
        sandbox, warning = resolve_sandbox(args.sandbox)
    except SandboxUnavailable as exc:
        raise UsageError(str(exc)) from None
    if warning:
        warnings.append(warning)
    out = args.out
    if args.student_pages is not None and args.student_pages.resolve() == out.resolve():
        raise UsageError("--student-pages needs a folder of its own: the students' pages would replace the "
                         f"instructor's in {out}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the output folder {out}: {exc.strerror}") from None
    from grader.adjust import apply_adjustments, for_output
    from grader.rescore import grading_settings

    try:
        adjustments = for_output(out, args.adjustments, assignment.name)  # applied as the results are written
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    # --only grades into the results already there: the others are kept as they are.
    keep_previous = args.resume or bool(only)
    store = ResultStore(out, assignment.name, keep_previous)
    # A secret seed per run: no check's inputs, so no answer, can be known before grading.
    # A resumed run (or one that grades a few students into a class's results) keeps the
    # seed of the run before it, so that everyone in it was graded on the same inputs.
    seed = None if in_kit else store.seed(args.seed, keep_previous)
    if store.refused:
        warnings.append(f"{store.refused} record(s) in {out} were not written by this grader and were "
                        "refused; those students are graded again")
    limits = config.limits_over(Limits()) if config is not None else Limits()
    flags = {"memory_mb": args.memory, "call_timeout": args.timeout, "load_timeout": args.load_timeout,
             "budget": args.budget}
    limits = dataclasses.replace(limits, **{k: v for k, v in flags.items() if v is not None})
    options = RunOptions(
        limits=limits, tolerances=config.tolerances_over() if config is not None else DEFAULT_TOLERANCES,
        jobs=args.jobs, sandbox=sandbox, seed=seed,
        # bubblewrap hides the class (each worker gets a copy of its own files) and the output.
        hide=[path.resolve() if path.is_dir() else path.resolve().parent, args.path.resolve().parent,
              out.resolve()] + ([args.course.resolve()] if getattr(args, "course", None) else [])
        + ([args.student_pages.resolve()] if args.student_pages is not None else []),
    )
    options.config = sandbox_config(options, assignment)
    try:
        protections = preflight(options.config, limits,
                                _probe_targets(options.config, assignment, subs, path, out, store))
    except SandboxUnavailable as exc:
        raise GraderFailed(f"the '{sandbox}' sandbox cannot run student code on this machine: {exc}") from None
    todo, keys = [], {sub.student: _result_key(sub, args.config) for sub in subs}
    for sub in subs:
        if only and sub.student not in only:
            kept = store.previous.get(sub.student)  # another student's result: kept as it is
        else:
            kept = store.reusable(sub.student, keys[sub.student]) if args.resume else None
        if kept is not None:
            # Who the student is comes from this download (a record kept from an older run has no ids).
            store.add(kept.model_copy(update={"lms": sub.lms_identity()}), journal=False)
        elif not only or sub.student in only:
            todo.append(sub)
    chosen = [sub for sub in subs if not only or sub.student in only]

    # A single file (or one student's folder) is no class: its own page is the report, and
    # no overview of one is written.
    single = len(subs) == 1 and (args.path.is_file() and args.path.suffix.lower() != ".zip" or subs[0].root == path)
    hidden_points = _hidden_points() if in_kit else None
    progress = Progress(len(chosen), len(chosen) - len(todo), quiet=args.quiet)
    oracle = _oracle(assignment, in_kit)
    started = time.monotonic()
    interrupted = False

    def on_result(result):
        result.content_hash = keys[result.student]
        result.graded_at = _now()
        store.add(result)
        progress.update(result)

    try:
        grade_all(todo, assignment, oracle, options, on_result)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        progress.close()
        finished = [store.records[s.student] for s in subs if s.student in store.records]
        finished, adjustment_warnings = apply_adjustments(finished, adjustments)
        warnings += adjustment_warnings
        run = RunResult(
            assignment=assignment.name, toolkit_version=__version__,
            graded_at=_now(),
            submissions=finished, sandbox=sandbox, protections=protections, warnings=warnings,
            max_score=assignment.max_score, seed=seed, shard=shard,
            grading=grading_settings(limits, options.tolerances, assignment.forbidden_imports),
        )
        store.write(run)
        write_reports(run, out, overview=not single, hidden_points=hidden_points)
        if args.student_pages is not None:
            from grader.lms.pages import write_student_pages

            write_student_pages(run, args.student_pages)
    if interrupted:
        raise KeyboardInterrupt
    if args.gradescope or args.gradescope_out:
        from grader.report.gradescope import GradescopeError, write_gradescope

        try:
            write_gradescope(run, out if args.gradescope else None, args.gradescope_out)
        except GradescopeError as exc:
            raise UsageError(str(exc)) from None
    elapsed = time.monotonic() - started
    graded = {s.student for s in todo} & set(store.records)
    failed = [s.student for s in run.submissions if is_grader_failure(s) and s.student in graded]
    errors = sum(s.status == "error" and s.student in graded for s in run.submissions) - len(failed)
    for line in warnings:
        print(f"warning: {line}", file=sys.stderr)
    for line in summary_lines(sandbox, protections):
        print(line, file=sys.stderr if line.startswith("NOT") else sys.stdout)
    of_class = f" (shard {shard.index}/{shard.count} of a class of {shard.class_students})" if shard else ""
    print(_run_line(f"'{assignment.name}'{of_class}", len(graded), len(run.submissions) - len(graded), errors,
                    len(failed), len(todo) - len(graded), elapsed, out, overview=not single))
    if only:
        missing = [s.student for s in subs if s.student not in store.records]
        if missing:
            print(f"note: {len(missing)} other submission(s) in {path} have no result in {out} yet "
                  f"(e.g. {missing[0]}): grade them without --only", file=sys.stderr)
    if single and run.submissions:  # last, where a student reads: the report, ending with their page
        from grader.report.html import page_name

        print_summary(run.submissions[0], out / page_name(run.submissions[0].student), hidden_points)
    if failed:
        shown = ", ".join(failed[:10]) + (f" and {len(failed) - 10} more" if len(failed) > 10 else "")
        print(f"grade: the grader itself could not finish {len(failed)} submission(s): {shown}; they are "
              f"recorded with status error and no score. Rerun with --resume to grade them again.",
              file=sys.stderr)
        return EXIT_GRADER_FAILED
    return EXIT_OK


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _run_line(name: str, graded: int, kept: int, errors: int, failed: int, unfinished: int, seconds: float,
              out: Path, overview: bool = True) -> str:
    """The run in one line: how many were graded now, kept from before, or failed."""
    parts = [f"{kept} kept from a previous run"] if kept else []
    if errors:
        parts.append(f"{errors} could not be run")
    if failed:
        parts.append(f"{failed} the grader could not finish")
    if unfinished:
        parts.append(f"{unfinished} not reached")
    extra = f" ({'; '.join(parts)})" if parts else ""
    return (f"Graded {graded} submission(s) of {name}{extra} in {seconds:.1f} s. "
            f"Results: {out / 'results.json'}" + (f"; overview: {out / 'index.html'}" if overview else ""))


def _expect_some_function(subs, assignment, assignments: dict) -> None:
    """A chosen assignment none of whose functions any submission defines is a usage error
    (a class graded against the wrong assignment would get 0 for everyone, silently)."""
    from grader.discover import defines_any, detect_assignment

    if any(defines_any(sub, assignment.functions) for sub in subs):
        return
    others = {n: a for n, a in assignments.items() if n != assignment.name}
    looks_like = detect_assignment(subs, others) if others else None
    if looks_like is None:
        return  # empty files, syntax errors, stubs: graded, and their pages say what is wrong
    raise UsageError(f"no submission defines any function of '{assignment.name}' "
                     f"({', '.join(list(assignment.functions)[:3])}, ...): the files look like "
                     f"'{looks_like}' (--assignment {looks_like})")


def _probe_targets(config, assignment, subs, path: Path, out: Path, store) -> dict:
    """What the sandbox's self-test tries to reach: the toolkit's solution and checks
    (wherever installed), a classmate's file, and the run's record."""
    from grader.protections import probe_targets

    # The worker package and grader/__init__.py are in every worker's view on purpose.
    solution = [file for folder in config.toolkit_paths if folder.is_dir()
                for file in sorted(folder.rglob("*.py"))[:4]
                if "worker" not in file.parts and file != folder / "__init__.py"]
    if assignment.contract is not None:  # a course's own folder: its contract and checks
        solution += [p for p in (assignment.contract.path, assignment.contract.path.parent / "checks.py")
                     if p.is_file()]
    classmates = [path.resolve()] + [s.main.resolve() for s in subs[:1] if s.main is not None]
    return probe_targets(config, solution, classmates, [store.state / "key", store.journal_path], out)


def gradescope_bundle(argv: list[str]) -> int:
    """`grade gradescope-bundle`: Gradescope's autograder zip (setup.sh, run_autograder and
    the toolkit's source) for one assignment."""
    from grader.report.gradescope import GradescopeError, build_bundle

    parser = argparse.ArgumentParser(
        prog="grade gradescope-bundle",
        description="Build the zip to upload as a Gradescope programming assignment's autograder: "
        "setup.sh installs this nngrade in Gradescope's container, run_autograder grades "
        "/autograder/submission and writes /autograder/results/results.json.")
    parser.add_argument("--assignment", "-a", metavar="NAME",
                        help="the assignment: cnn, rnn, or a course (fman45, cs231n)")
    parser.add_argument("--course", type=Path, metavar="FOLDER",
                        help="a course of your own: a folder holding contract.toml, carried in the zip")
    parser.add_argument("--out", "-o", type=Path, default=Path("autograder.zip"), metavar="ZIP",
                        help="where to write the zip (default: autograder.zip)")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="the instructor's TOML overrides (points, visibility, limits, tolerances), checked "
                        "now and carried in the zip, so that Gradescope grades with them")
    args = parser.parse_args(argv)
    try:
        if args.assignment is None and args.course is None:
            raise GradescopeError("say which assignment: --assignment NAME, or --course FOLDER")
        names = build_bundle(args.assignment, args.out, course=args.course, config=args.config)
    except (GradescopeError, OSError) as exc:
        print(f"grade gradescope-bundle: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"Wrote {args.out} ({len(names)} files) for '{args.assignment or args.course}': upload it as the "
          "autograder.")
    return EXIT_OK


class Progress:
    """A progress bar on a terminal; plain lines otherwise."""

    def __init__(self, total: int, already: int, quiet: bool):
        self.quiet = quiet
        self.bar = None
        self.done = already
        self.total = total
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=already, unit="student", file=sys.stderr,
                            dynamic_ncols=True)

    def update(self, result) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix_str(result.student[:20])
            self.bar.update(1)
        elif not self.quiet:
            print(f"[{self.done}/{self.total}] {result.student}: "
                  f"{result.score:g}/{result.max_score:g} ({result.status})", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def print_summary(sub, page: Path | None = None, hidden_points: float | None = None) -> None:
    """One student's result in the terminal (grader.report.text)."""
    from grader.report.text import summary_lines

    print()
    print("\n".join(summary_lines(sub, str(page) if page else None, hidden_points)))


def _hidden_points() -> float | None:
    """In a student kit: the points its hidden checks hold (none are in the kit)."""
    from grader.kit import kit_marker

    value = (kit_marker() or {}).get("hidden_points")
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def build_kit_command(argv: list[str]) -> int:
    """`grade kit`: the student kit, a folder and a zip with no reference code."""
    from grader.assignment import UnknownAssignment, named
    from grader.compare import DEFAULT_TOLERANCES
    from grader.kit import KitError, build_kit, kit_marker

    parser = argparse.ArgumentParser(
        prog="grade kit",
        description="Build the students' self-check kit: the templates, the public checks with their "
        "expected values recorded as data, and the self-check. It holds no reference code and "
        "nothing of the hidden checks.")
    parser.add_argument("--assignment", "-a", metavar="NAME",
                        help="the assignment: cnn, rnn, or a course (fman45, cs231n)")
    parser.add_argument("--course", type=Path, metavar="FOLDER",
                        help="a course of your own: a folder holding contract.toml (see README, 'Your own course')")
    parser.add_argument("--out", "-o", type=Path, required=True, metavar="DIR",
                        help="the kit folder to create (a DIR.zip is written beside it)")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="the instructor's TOML overrides, so that the kit's public checks are the run's")
    args = parser.parse_args(argv)
    try:
        if kit_marker() is not None:
            raise KitError("this is a student kit: kits are built from the instructor's toolkit")
        if args.assignment is None and args.course is None:
            raise UsageError("say which kit: --assignment NAME, or --course FOLDER")
        courses = _course(args) if args.course is not None else None
        assignment, config = _configured(named(args.assignment, courses), args.config)
        archive = build_kit(assignment, args.out, config.tolerances_over() if config else DEFAULT_TOLERANCES)
    except (KitError, UsageError, UnknownAssignment) as exc:
        print(f"grade kit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"Kit for '{args.assignment}': {args.out}/ and {archive}")
    return EXIT_OK
