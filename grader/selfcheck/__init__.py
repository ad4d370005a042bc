"""The self-check from a notebook, while the student codes:

    from grader.selfcheck import check
    check()                      # every function
    check("conv2d_forward")      # one (or a few)

`check()` grades the functions as the running kernel holds them, unsaved edits
included: it builds a submission from the kernel's namespace (the contract's functions
and what they use, nothing of the template's demo cells; see grader.selfcheck.kernel)
and grades it exactly as `grade FILE` does, in a grading process of its own that runs
the code in a sandboxed worker (in a student kit: the public checks against recorded
values, in spawn mode). The student's code never runs in the kernel's grading logic.
In Jupyter the summary shows inline as HTML, elsewhere as plain text; either way it
returns a `CheckReport` (its `.result` is the student's entry of results.json).

`run("cnn.ipynb")` grades the saved file instead and prints the terminal's summary.
The grader leaves every call of both out when it grades the notebook itself.
"""

from __future__ import annotations

import difflib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader.selfcheck.kernel import KernelModule, collect
from grader.selfcheck.summary import (Summary, error_summary, line_rewriter, render_html, render_text,
                                      summarize)

# The grading process: the toolkit that this kernel imported, whatever the kernel's
# folder holds (a student's own grader.py there is never imported).
_BOOT = ("import sys\n"
         "root = sys.argv.pop(1)\n"
         "sys.path[:] = [p for p in sys.path if p not in ('', '.')]\n"
         "if root not in sys.path:\n"
         "    sys.path.insert(0, root)\n"
         "from grader.cli import main\n"
         "sys.exit(main(sys.argv[1:]))\n")
GRADER_STATUSES = (0, 1)  # grading ran (1: the grader failed for some student; its record says so)


def run(path: str, out: str = "reports") -> int:
    """Grade the saved file `path` and print the terminal's summary; returns the exit status."""
    from grader.cli import main

    return main([path, "--out", out, "--quiet"])


class CheckReport:
    """What `check()` found: `.summary` (what is shown), `.result` (the student's
    SubmissionResult, or None when grading could not run), `.module` (the source that
    was graded). Renders as HTML in Jupyter and as text elsewhere."""

    def __init__(self, summary: Summary, result, module: KernelModule, output: str = ""):
        self.summary = summary
        self.result = result
        self.module = module
        self.output = output  # what the grading process printed
        self._echo_pending = False

    @property
    def score(self) -> float:
        return self.summary.score

    @property
    def max_score(self) -> float:
        return self.summary.max_score

    def text(self) -> str:
        return render_text(self.summary)

    def _repr_html_(self) -> str:
        return render_html(self.summary)

    def _ipython_display_(self) -> None:
        if self._echo_pending:  # check() has shown it already in this cell
            self._echo_pending = False
            return
        from IPython.display import display

        display({"text/plain": self.text(), "text/html": self._repr_html_()}, raw=True)

    def __repr__(self) -> str:
        if self.summary.error:
            return f"<CheckReport: could not run: {self.summary.error[:120]}>"
        page = f", page {self.summary.page}" if self.summary.page else ""
        return f"<CheckReport: {self.score:g} / {self.max_score:g}{page}>"


def check(*functions: str, assignment: str | None = None, course: str | os.PathLike | None = None,
          out: str | os.PathLike = "reports", namespace: dict | None = None) -> CheckReport:
    """Check the notebook's functions as the kernel holds them now, unsaved work included.

    `functions`: the contract functions to show (default: all). `assignment`: its name,
    when the functions do not make it clear (a student kit knows its own). `course`: a
    course folder of your own (as `grade --course`). `out`: where the pages go.
    `namespace`: where the functions live (default: the caller's globals, the notebook's)."""
    namespace = namespace if namespace is not None else sys._getframe(1).f_globals
    shell = _shell()
    chosen = _assignment(namespace, assignment, course)
    unknown = [f for f in functions if f not in chosen.functions]
    if unknown:
        raise ValueError(_unknown_functions(unknown, chosen))
    wanted = list(chosen.callable_functions)
    if chosen.contract is not None:
        wanted += [n for n in chosen.contract.info.provided if n not in wanted]
    history, origins = _history(shell, namespace)
    module = collect(namespace, wanted, history, origins)
    module.missing = [f for f in module.missing if f in chosen.functions]
    report = _grade(module, chosen, course, Path(out), list(functions))
    if shell is not None:
        from IPython.display import display

        display(report)
        _expect_echo(shell, report)
    else:
        print(report.text(), end="")
    return report


# ------------------------------------------------------------------ grading
def _grade(module: KernelModule, assignment, course, out: Path, only: list[str]) -> CheckReport:
    """Grade the module as `grade FILE --assignment NAME` does, in a process of its own."""
    from grader.models import RunResult
    from grader.report.view import file_names

    out_dir = out.resolve()
    text = module.text
    with tempfile.TemporaryDirectory(prefix="nngrade-check-") as scratch:
        folder = Path(scratch) / "submission"
        folder.mkdir()
        path = folder / assignment.file_name
        path.write_text(text, encoding="utf-8")
        args = [str(path), "--out", str(out_dir), "--quiet", "--assignment", assignment.name]
        if course is not None:
            args += ["--course", str(Path(course).resolve())]
        started = time.time_ns()
        status, printed = _run_grader(args, scratch)
    results = out_dir / "results.json"
    run = None
    try:  # this run's results: written after it started (a coarse clock rounds to 2 s)
        if status in GRADER_STATUSES and results.stat().st_mtime_ns >= started - 2_000_000_000:
            run = RunResult.model_validate_json(results.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        run = None
    if run is None or not run.submissions:
        why = printed.strip().splitlines()[-3:] or [f"the grader stopped with status {status}"]
        return CheckReport(error_summary(assignment.name, "\n".join(why)), None, module, printed)
    sub = run.submissions[0]
    page = Path(os.path.relpath(out_dir, Path.cwd()) if not out.is_absolute() else out_dir) \
        / file_names([sub.student], ".html")[sub.student]
    summary = summarize(sub, only, module.missing, line_rewriter(module.where), page.as_posix(), assignment.name)
    summary.notes += module.notes
    return CheckReport(summary, sub, module, printed)


def _run_grader(args: list[str], cwd: str) -> tuple[int, str]:
    import grader

    root = str(Path(grader.__file__).resolve().parent.parent)
    command = [sys.executable, "-c", _BOOT, root, *args]
    child = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, text=True, encoding="utf-8", errors="replace")
    try:
        printed, _ = child.communicate()
    except KeyboardInterrupt:  # Jupyter's interrupt reaches the kernel only: pass it on
        _stop(child)
        raise
    return child.returncode, printed


def _stop(child: subprocess.Popen) -> None:
    try:  # the grader keeps what it finished on SIGINT, and ends its workers
        child.send_signal(signal.SIGINT) if os.name != "nt" else child.terminate()
        child.wait(10)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        child.kill()
        child.wait()


# --------------------------------------------------------------- which assignment
def _assignment(namespace: dict, name: str | None, course):
    from grader.assignment import available, course_assignment, named
    from grader.kit import kit_marker

    if course is not None:
        return course_assignment(Path(course))
    marker = kit_marker()
    if marker is not None and name is None:
        name = marker["assignment"]
    if name is not None:
        return named(name)
    assignments = available()
    defined = {key for key, value in namespace.items() if callable(value) and not key.startswith("__")}
    votes = sorted(((len(defined & set(a.callable_functions)), key) for key, a in assignments.items()),
                   reverse=True)
    if votes and votes[0][0] > 0 and (len(votes) == 1 or votes[0][0] > votes[1][0]):
        return assignments[votes[0][1]]
    raise ValueError("cannot tell which assignment these functions are for: run the cells that define them, "
                     f"or say it, e.g. check(assignment=\"{sorted(assignments)[0]}\") "
                     f"({', '.join(sorted(assignments))})")


def _unknown_functions(unknown: list[str], assignment) -> str:
    said = []
    for name in unknown:
        close = difflib.get_close_matches(name, assignment.functions, n=1)
        said.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return (f"assignment {assignment.name!r} has no function {', '.join(said)}; its functions are "
            f"{', '.join(assignment.functions)}")


# ------------------------------------------------------------------ IPython
def _shell():
    """The IPython shell this runs in, or None (plain Python)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        return ipython.get_ipython()
    except Exception:  # noqa: BLE001 - an IPython too old or half set up: plain text then
        return None


def _history(shell, namespace: dict) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """What ran, oldest first, as (origin, source): IPython's cells, or the script that
    called check(); and the origin of each file a function may have been compiled from."""
    if shell is None:
        script = namespace.get("__file__")
        try:
            text = Path(script).read_text(encoding="utf-8") if isinstance(script, str) else None
        except (OSError, UnicodeDecodeError):
            text = None
        if text is None:
            return [], {}
        name = Path(script).name
        return [(name, text)], {script: name, str(Path(script).resolve()): name}
    cells = list(getattr(getattr(shell, "history_manager", None), "input_hist_parsed", None) or [])
    history = [(f"In [{n}]", text) for n, text in enumerate(cells) if n and isinstance(text, str)]
    numbers = dict(getattr(getattr(shell, "compile", None), "_filename_map", None) or {})
    return history, {name: f"In [{n}]" for name, n in numbers.items()}


def _expect_echo(shell, report: CheckReport) -> None:
    """`check()` as a cell's last line returns the report, which IPython shows again:
    skip that echo once, and only in this cell (`r = check()` then `r` shows it)."""
    report._echo_pending = True

    def done(*_):
        report._echo_pending = False
        try:
            shell.events.unregister("post_run_cell", done)
        except ValueError:
            pass

    try:
        shell.events.register("post_run_cell", done)
    except Exception:  # noqa: BLE001 - no events: the echo may show twice, nothing worse
        pass
