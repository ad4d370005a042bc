"""The self-check from a notebook: `from grader.selfcheck import run; run("cnn.ipynb")`.

It grades the saved file exactly as `grade cnn.ipynb` does (in a student kit: the
public checks against recorded values) and prints the summary per function. The
grader leaves such cells out when it grades the notebook itself.
"""

from __future__ import annotations


def run(path: str, out: str = "reports") -> int:
    """Grade `path` (save the notebook first) and print a summary; returns the exit status."""
    from grader.cli import main

    return main([path, "--out", out, "--quiet"])
