"""`grade FILE --check ID [--show]`: one public check, run again on one submission.

    grade cnn_layers.py --check conv2d_forward.random_values --show --seed 1234

runs that check alone, in the same sandbox and with the same inputs as the run whose
page printed the command (the inputs come from the run's seed and the check's id), and
prints its result as the page does. With `--show` it also prints every call the check
made to the student's functions: the inputs, what came back, and what the reference
answered to the same inputs, as labelled numbers. In a student kit the inputs are the
kit's fixed ones and the expected values its recorded ones.

A hidden check is refused: its inputs and expected values are never shown. Nothing is
written: no results.json, no page (a reproduction must not replace a class's record).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import secrets
import sys

import numpy as np

from grader.checks import Check
from grader.models import CheckResult
from grader.where import describe_call, describe_value
from grader.worker.handles import Handle

MAX_SHOWN_NUMBERS = 20_000  # per value printed: the checks' inputs hold a few hundred
FLOAT = "{:.6g}"  # as the page shows a number


class ReproduceError(ValueError):
    """A request `--check` cannot meet (one line for the user)."""


def find_check(checks: list[Check], check_id: str) -> Check:
    """The public check called `check_id`, or ReproduceError saying why not."""
    found = next((c for c in checks if c.id == check_id), None)
    if found is not None and found.visibility == "hidden":
        raise ReproduceError(f"{check_id} is a hidden check: its inputs and expected values are not shown, "
                             "so it cannot be run with --check (public checks can)")
    if found is None:
        function = check_id.split(".", 1)[0]
        public = [c.id for c in checks if c.visibility == "public"]
        same = [c for c in public if c.split(".", 1)[0] == function]
        raise ReproduceError(f"no public check is called {check_id!r}; "
                             + (f"those of {function} are {', '.join(same)}" if same else
                                f"the public checks are {', '.join(public[:12])}"
                                + (", ..." if len(public) > 12 else "")))
    return found


# ------------------------------------------------------------------ recording
@dataclasses.dataclass
class Call:
    role: str  # "student" or "reference"
    function: str
    args: tuple
    kwargs: dict
    value: object = None
    failure: BaseException | None = None


def _copy(value):
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (list, tuple)):
        return type(value)(_copy(v) for v in value)
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


class Watched:
    """`inner` (the student's proxy, the oracle, a course's fixtures), each call to a
    public attribute recorded in `log`; everything else passes through."""

    def __init__(self, inner, role: str, log: list[Call]):
        self._inner, self._role, self._log = inner, role, log
        # A check may read an oracle's plain attributes as `vars(oracle)` (the speed check
        # asks for the live reference module): they stay readable so.
        for key, value in vars(inner).items():
            if not key.startswith("_") and not callable(value):
                setattr(self, key, value)

    def __getattr__(self, name: str):
        attr = getattr(self._inner, name)
        if name.startswith("_") or not callable(attr):
            return attr

        @functools.wraps(attr)
        def call(*args, **kwargs):
            entry = Call(self._role, name, _copy(args), _copy(kwargs))
            self._log.append(entry)
            try:
                entry.value = attr(*args, **kwargs)
            except BaseException as exc:
                entry.failure = exc
                raise
            return entry.value

        return call


class Recorder:
    """RunOptions.observe for --show: every call of an attempt at the check, in order
    (an attempt that the sandbox disturbed is forgotten with its calls)."""

    def __init__(self):
        self.calls: list[Call] = []
        self.params: dict[str, list[str]] = {}

    def __call__(self, student, oracle, fixtures):
        self.calls = []
        session = getattr(student, "_session", None)
        self.params = dict(getattr(session, "params", {}) or {})
        roles = {"course": "student", "course_oracle": "reference"}
        watched = {k: Watched(v, roles[k], self.calls) if k in roles else v for k, v in fixtures.items()}
        return Watched(student, "student", self.calls), Watched(oracle, "reference", self.calls), watched


# ------------------------------------------------------------------ printing
def _plain(text: str) -> str:
    """A student's text, safe for a terminal: control characters shown as '?'."""
    return "".join(ch if ch in "\n\t" or (ord(ch) >= 32 and ord(ch) != 127 and not 0x80 <= ord(ch) < 0xa0)
                   else "?" for ch in str(text))


def _number(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return FLOAT.format(v)  # floats as the page shows them (complex too)


def _grid(array: np.ndarray) -> str:
    """A 0-, 1- or 2-D array as rows of numbers in aligned columns."""
    rows = array.reshape(1, -1) if array.ndim < 2 else array
    cells = [[_number(v) for v in row] for row in rows]
    width = max((len(c) for row in cells for c in row), default=0)
    lines = ["[" + " ".join(c.rjust(width) for c in row) + "]" for row in cells]
    if array.ndim == 0:
        return cells[0][0]
    if array.ndim < 2:
        return lines[0]
    return "\n".join(("[" if i == 0 else " ") + line + ("]" if i == len(lines) - 1 else "")
                     for i, line in enumerate(lines))


def _slices(name: str, array: np.ndarray):
    """(label, 2-D or smaller array) pieces of `array`, as the page slices it: an
    (N, H, W, C) array per image and channel, others along their leading axes."""
    if array.ndim <= 2:
        yield name, array
    elif array.ndim == 4:
        for n in range(array.shape[0]):
            for c in range(array.shape[3]):
                yield f"{name}[{n}, :, :, {c}]", array[n, :, :, c]
    else:
        for lead in np.ndindex(*array.shape[:-2]):
            yield f"{name}[{', '.join(map(str, lead))}, :, :]", array[lead]


def value_lines(name: str, value, indent: str = "  ") -> list[str]:
    """`value` as labelled numbers: an array slice by slice, a tuple or dict part by part."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufc":
        lines = [f"{indent}{name}: {describe_value(value)}"]
        if value.size > MAX_SHOWN_NUMBERS:
            return lines + [f"{indent}  ({value.size} numbers: too many to print)"]
        for label, part in _slices(name, value):
            text = _grid(part).splitlines()
            if len(text) == 1 and label == name:
                lines[-1] += f" = {text[0]}"
                continue
            lines.append(f"{indent}  {label} =")
            lines += [f"{indent}    {row}" for row in text]
        return lines
    if isinstance(value, (tuple, list)) and value and not isinstance(value, Handle):
        lines = [f"{indent}{name}: a {type(value).__name__} of {len(value)}"]
        for i, item in enumerate(value[:20]):
            lines += value_lines(f"{name}[{i}]", item, indent + "  ")
        return lines
    if isinstance(value, dict) and value:
        lines = [f"{indent}{name}: a dict"]
        for key, item in list(value.items())[:20]:
            lines += value_lines(f"{name}[{key!r}]", item, indent + "  ")
        return lines
    if isinstance(value, (float, np.floating)):
        return [f"{indent}{name} = {FLOAT.format(float(value))}"]
    return [f"{indent}{name} = {_plain(describe_value(value))}"]


def _same_inputs(a: Call, b: Call) -> bool:
    """Did the reference answer the student's call's inputs? (The same arrays in the same
    order, and the same options where both name one.)"""
    def arrays(call):
        return [v for v in list(call.args) + list(call.kwargs.values()) if isinstance(v, np.ndarray)]

    left, right = arrays(a), arrays(b)
    if a.function != b.function or len(left) != len(right):
        return False
    if not all(x.shape == y.shape and np.array_equal(x, y, equal_nan=True) for x, y in zip(left, right)):
        return False
    shared = set(a.kwargs) & set(b.kwargs)
    return all(not isinstance(a.kwargs[k], np.ndarray) and a.kwargs[k] == b.kwargs[k] for k in shared
               if not isinstance(b.kwargs[k], np.ndarray))


def _names(recorder: Recorder, oracle, function: str) -> list[str]:
    """The student's parameter names, else the reference's, to label the arguments."""
    names = recorder.params.get(function) or []
    if names:
        return names
    try:
        return [p for p in inspect.signature(getattr(oracle, function)).parameters]
    except (AttributeError, TypeError, ValueError):
        return []


def call_lines(recorder: Recorder, oracle) -> list[str]:
    """Each call the check made to the student's functions: inputs, what came back, and
    the reference's answer to the same inputs where it gave one."""
    lines = []
    reference = [c for c in recorder.calls if c.role == "reference"]
    student = [c for c in recorder.calls if c.role == "student"]
    if not student:
        return ["The check made no call to your functions."]
    for number, call in enumerate(student, start=1):
        names = _names(recorder, oracle, call.function)
        lines += ["", f"Call {number}: {_plain(describe_call(call.function, call.args, call.kwargs, names))}",
                  " inputs:"]
        for i, value in enumerate(call.args):
            lines += value_lines(names[i] if i < len(names) else f"argument {i + 1}", value)
        for key, value in call.kwargs.items():
            lines += value_lines(str(key), value)
        if call.failure is not None:
            lines.append(f" it failed: {_plain(getattr(call.failure, 'message', None) or call.failure)}")
        else:
            lines.append(" returned:")
            lines += value_lines("got", call.value)
        match = next((r for r in reference if r.failure is None and _same_inputs(call, r)), None)
        if match is not None:
            lines.append(" expected (the reference, on the same inputs):")
            lines += value_lines("expected", match.value)
    return lines


def result_lines(check: Check, result: CheckResult) -> list[str]:
    """The check's result as the page shows it: message, diagnoses, the first mismatch
    and per-gradient errors, with the page's numbers."""
    from grader.report.view import check_view

    view = check_view(result, student_view=False)
    state = "passed" if result.passed else "failed"
    lines = [f"Result: {state}, {result.score:g} / {result.max_score:g} points"]
    if result.message:
        lines.append(f"  {_plain(result.message)}")
    for d in view.diagnoses:
        lines.append(f"  {_plain(d.sentence)} [{d.code}]" + (f"\n  Hint: {_plain(d.hint)}" if d.hint else ""))
    m = view.mismatch
    if m is not None and not result.passed:
        number = lambda v: "-" if v is None else FLOAT.format(v)  # noqa: E731 - as the page's num(6)
        lines += [f"  first mismatch: {m.where}", f"  got: {number(m.got)}", f"  expected: {number(m.expected)}",
                  f"  max abs error: {'-' if m.max_abs_error is None else f'{m.max_abs_error:.3g}'}",
                  f"  relative error: {'-' if m.relative_error is None else f'{m.relative_error:.3g}'}"]
        if m.n_bad is not None and m.size:
            lines.append(f"  values that differ: {m.n_bad} of {m.size}")
    for g in view.gradients:
        lines.append(f"  relative error of {g.name}: {g.error:.3g}" + (" (too large)" if g.above else ""))
    w = result.where
    if w is not None:
        lines.append(f"  {'stopped at its time limit in' if w.stopped else 'the call'}: {_plain(w.call)}")
        for f in w.frames:
            current = next((line.text for line in f.lines if line.current), "")
            lines.append(f"    {f.place}, in {_plain(f.function)}: {_plain(current.strip())}")
    return lines


# ------------------------------------------------------------------ the command
def reproduce(args, subs, assignment, config, in_kit: bool, path) -> int:
    """`grade PATH --check ID [--show]`: the check on PATH's one submission, printed."""
    from grader.cli import UsageError, GraderFailed
    from grader.compare import DEFAULT_TOLERANCES
    from grader.runner import RunOptions, grade_submission, sandbox_config
    from grader.sandbox import Limits, SandboxUnavailable, SlotPool, resolve_sandbox

    for flag, given in (("--resume", args.resume), ("--only", args.only), ("--gradescope", args.gradescope),
                        ("--gradescope-out", args.gradescope_out)):
        if given:
            raise UsageError(f"--check runs one check and writes nothing: {flag} has no use with it")
    try:
        check = find_check(assignment.checks, args.check)
    except ReproduceError as exc:
        raise UsageError(str(exc)) from None
    if len(subs) != 1:
        raise UsageError(f"--check runs a check on one submission; {path} holds {len(subs)}: "
                         "name the student's file")
    try:
        sandbox, _ = resolve_sandbox(args.sandbox)
    except SandboxUnavailable as exc:
        raise UsageError(str(exc)) from None
    seed = None if in_kit else (args.seed if args.seed is not None else secrets.randbits(32))
    limits = config.limits_over(Limits()) if config is not None else Limits()
    flags = {"memory_mb": args.memory, "call_timeout": args.timeout, "load_timeout": args.load_timeout,
             "budget": args.budget}
    limits = dataclasses.replace(limits, **{k: v for k, v in flags.items() if v is not None})
    recorder = Recorder()
    sub = subs[0]
    options = RunOptions(
        limits=limits, tolerances=config.tolerances_over() if config is not None else DEFAULT_TOLERANCES,
        jobs=1, sandbox=sandbox, seed=seed, checks=(check.id,), observe=recorder if args.show else None,
        hide=[path.resolve() if path.is_dir() else path.resolve().parent, args.path.resolve().parent])
    options.config = sandbox_config(options, assignment)
    from grader.cli import _oracle

    oracle = _oracle(assignment, in_kit)
    pool = SlotPool(1, options.config)
    try:
        slot = pool.acquire()
        result = grade_submission(sub, assignment, slot, oracle, options)
    except SandboxUnavailable as exc:
        raise GraderFailed(f"the '{sandbox}' sandbox cannot run student code on this machine: {exc}") from None
    finally:
        pool.close()
    inputs = "the kit's fixed inputs" if seed is None else f"seed {seed}"
    print(f"{check.id} ({check.visibility}, {check.kind}, {check.points:g} points) on {_plain(sub.relative(sub.main))},"
          f" {inputs}")
    if check.description:
        print(_plain(check.description))
    if result.status == "error" or not result.checks:
        print(f"It could not be run: {_plain(result.message)}")
        return 1 if result.diagnoses and result.diagnoses[0].startswith("grader.") else 0
    for note in result.notes:
        print(f"note: {_plain(note)}")
    if args.show:
        for line in call_lines(recorder, oracle):
            print(line)
        print()
    for line in result_lines(check, result.checks[0]):
        print(line)
    sys.stdout.flush()
    return 0
