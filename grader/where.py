"""Where and on what a student's function failed, for the page: the call, described
from what the grader sent, and the student's own lines around the frames the worker
reported.

What a worker reports is untrusted: a frame is a line number and a function name,
nothing more. A line outside the graded file is dropped; a name is cut; the source
lines shown come from the grader's own copy of the file, never from the worker. A
submission can therefore at most point at another line of its own code.
"""

from __future__ import annotations

import numpy as np

from grader.models import (
    MAX_FRAMES,
    MAX_NAME_CHARS,
    MAX_SOURCE_LINE_CHARS,
    MAX_SOURCE_LINES,
    Frame,
    SourceLine,
    Where,
    cut,
)
from grader.source import Code
from grader.worker.handles import Handle

MAX_PARAMS = 16  # parameter names a worker may report per function
MAX_PARAM_CHARS = 40
MAX_SCALAR_CHARS = 40
CONTEXT = MAX_SOURCE_LINES // 2  # lines shown above and below the current one


# ------------------------------------------------------------------ the call
def parameter_names(untrusted) -> list[str]:
    """A function's positional parameter names as a worker reported them, or [] when
    they are not a short list of short identifiers."""
    if not isinstance(untrusted, list) or len(untrusted) > MAX_PARAMS:
        return []
    if not all(type(n) is str and n.isidentifier() and len(n) <= MAX_PARAM_CHARS for n in untrusted):
        return []
    return list(untrusted)


def describe_value(value, depth: int = 0) -> str:
    """An argument as the page shows it: an array by its dtype and shape, a scalar by
    its value, a container by what it holds (one level)."""
    if isinstance(value, np.ndarray):
        return f"{value.dtype} {tuple(value.shape)}"
    if isinstance(value, (bool, np.bool_)) or value is None:
        return repr(value if value is None else bool(value))
    if isinstance(value, (int, np.integer)):
        return cut(str(int(value)), MAX_SCALAR_CHARS)
    if isinstance(value, (float, np.floating)):
        text = f"{float(value):.6g}"
        return text + ".0" if text.lstrip("-").isdigit() else text  # 3.0, not the int 3
    if isinstance(value, str):
        return cut(repr(value), MAX_SCALAR_CHARS)
    if isinstance(value, Handle):
        return "a cache it returned earlier"
    if isinstance(value, np.random.Generator):
        return "a random generator"
    if isinstance(value, (list, tuple)):
        if depth or len(value) > 4:
            return f"a {type(value).__name__} of {len(value)}"
        return ("[" if isinstance(value, list) else "(") + ", ".join(describe_value(v, 1) for v in value) + \
            ("]" if isinstance(value, list) else ",)" if len(value) == 1 else ")")
    if isinstance(value, dict):
        keys = ", ".join(cut(str(k), MAX_SCALAR_CHARS) for k in list(value)[:6])
        return f"a dict of {keys}" + (", ..." if len(value) > 6 else "")
    return f"a {type(value).__name__}"


def describe_call(function: str, args: tuple, kwargs: dict, params: list[str] = ()) -> str:
    """`conv2d_forward(x: float64 (2, 5, 5, 3), w: float64 (3, 3, 3, 4), b: float64 (4,), stride=2)`:
    positional arguments named by the student's own parameters where known."""
    parts = []
    for i, value in enumerate(args):
        name = params[i] if i < len(params) else ""
        parts.append(f"{name}: {describe_value(value)}" if name and isinstance(value, np.ndarray)
                     else f"{name}={describe_value(value)}" if name else describe_value(value))
    parts += [f"{cut(str(k), MAX_PARAM_CHARS)}={describe_value(v)}" for k, v in kwargs.items()]
    return f"{function}({', '.join(parts)})"


# ------------------------------------------------------------------ the frames
def frames(untrusted, code: Code) -> list[Frame]:
    """The frames a worker reported (innermost first: [{"line", "function"}]), each with
    the student's lines around it, from the grader's copy of the code. Anything that
    is not a line of the graded text is dropped."""
    if not isinstance(untrusted, list):
        return []
    lines = code.lines()
    found = []
    for item in untrusted[:MAX_FRAMES]:
        if not isinstance(item, dict):
            continue
        line, function = item.get("line"), item.get("function")
        if type(line) is not int or not 1 <= line <= len(lines):
            continue
        function = cut(function, MAX_NAME_CHARS) if type(function) is str else "?"
        found.append(Frame(function=function, line=line, place=code.where(line),
                           lines=_context(code, lines, line)))
    return found


def _context(code: Code, lines: list[str], line: int) -> list[SourceLine]:
    """Up to CONTEXT lines either side of `line`, inside its notebook cell, numbered as
    the student sees them (from the cell's first line, in a notebook)."""
    first, last, offset = 1, len(lines), 0
    if code.cell_starts:
        starts = [start for start, _ in code.cell_starts if start <= line]
        if starts:
            first = starts[-1]
            later = [start for start, _ in code.cell_starts if start > line]
            last = min(last, later[0] - 1) if later else last
            offset = first - 1
    lo, hi = max(first, line - CONTEXT), min(last, line + CONTEXT)
    while hi > line and not lines[hi - 1].strip():  # the blank lines that join notebook cells
        hi -= 1
    return [SourceLine(number=n - offset, text=lines[n - 1][:MAX_SOURCE_LINE_CHARS + 1].rstrip(),
                       current=n == line) for n in range(lo, hi + 1)]


def where(function: str, args: tuple, kwargs: dict, code: Code, reported: dict | None,
          params: list[str] = (), stopped: bool = False) -> Where:
    """The Where of a failed call: `reported` is the worker's reply or report (its
    "where" entry is read, as untrusted data), `params` the function's parameter names."""
    untrusted = reported.get("where") if isinstance(reported, dict) else None
    return Where(call=describe_call(function, args, kwargs, params), frames=frames(untrusted, code),
                 stopped=stopped)
