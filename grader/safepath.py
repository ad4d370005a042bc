"""The grader never imports from where it is run.

`python -m grader` puts the working directory first on `sys.path`: run from inside a
class folder that holds a student's `jinja2.py`, the grader would import it into its
own process (with everyone's results in reach) the first time it renders a page. This
takes such entries off `sys.path` before anything else is imported; stdlib only.

`python -m grader` still finds the package `grader` itself through the working
directory before this can run, so a class folder must not hold a `grader.py` or a
`grader/` of its own for `-m`; the `grade` command has no such gap (its script's
folder, not the working directory, is first on `sys.path`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

TOOLKIT_ROOT = Path(__file__).resolve().parent.parent


def _resolved(entry: str) -> Path | None:
    try:
        return Path(entry or ".").resolve()
    except (OSError, RuntimeError):
        return None


def drop_from_path(*folders: str | os.PathLike) -> None:
    """Take `folders` (and '', '.', the working directory) off `sys.path`, but the
    folder the toolkit itself is loaded from. Only these folders themselves: a
    virtual environment inside the working directory keeps its site-packages."""
    unsafe = [p for p in (_resolved(str(f)) for f in (os.getcwd(), *folders)) if p is not None]

    def safe(entry: str) -> bool:
        where = _resolved(entry)
        if where is None or where == TOOLKIT_ROOT:
            return True
        return where not in unsafe

    sys.path[:] = [entry for entry in sys.path if entry not in ("", ".") and safe(entry)]
