"""The `grade` command. Wiring only: argument parsing, then calls into the engine."""

from __future__ import annotations

import argparse
import sys

from grader import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grade",
        description="Grade CNN/RNN NumPy assignments: every submission runs in an "
        "isolated worker, scores are computed here, and results land in --out.",
    )
    parser.add_argument("--version", action="version", version=f"nngrade {__version__}")
    parser.add_argument("path", help="a folder of submissions, or one .py / .ipynb file")
    return parser


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    print("grade: the grading engine is not implemented yet", file=sys.stderr)
    return 2
