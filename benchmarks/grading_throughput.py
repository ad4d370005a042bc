"""Grading throughput: seconds per submission for a class of identical, correct,
vectorised cnn submissions graded with --jobs 2, against a baseline measured in the
same run: N sequential `python -c "import numpy"` processes (one fresh interpreter
per student, the floor of any one-process-per-student design).

    python benchmarks/grading_throughput.py [--n 100] [--jobs 2] [--sandbox auto]

Goal: ratio <= 0.5. Run by hand; not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


SUBMISSION = ROOT / "tests" / "submissions" / "cnn_variants" / "ok_vectorised.py"


def make_class(folder: Path, n: int) -> None:
    # A correct, vectorised, self-contained student file: the common fast case.
    source = SUBMISSION.read_text()
    for i in range(n):
        student = folder / f"student_{i:03d}"
        student.mkdir(parents=True)
        (student / "cnn_layers.py").write_text(source)


def time_grading(folder: Path, out: Path, jobs: int, sandbox: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "grader", str(folder), "--assignment", "cnn", "--out", str(out),
                    "--jobs", str(jobs), "--sandbox", sandbox, "--quiet"], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    # A benchmark of submissions that fail fast would measure nothing: insist on full marks.
    results = json.loads((out / "results.json").read_text())["submissions"]
    short = [s["student"] for s in results if s["score"] != s["max_score"]]
    if short:
        raise SystemExit(f"{len(short)} benchmark submissions lost points (e.g. {short[0]}): not a valid run")
    return elapsed


def time_baseline(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        subprocess.run([sys.executable, "-c", "import numpy"], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--sandbox", default="auto", choices=("auto", "bwrap", "none"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nngrade-bench-"))
    try:
        make_class(work / "class", args.n)
        baseline = time_baseline(args.n)
        graded = time_grading(work / "class", work / "out", args.jobs, args.sandbox)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    per_sub, per_base = graded / args.n, baseline / args.n
    print(f"{'':34}{'total s':>10}{'s / submission':>16}")
    print(f"{'baseline: python -c import numpy':34}{baseline:10.2f}{per_base:16.4f}")
    print(f"{f'nngrade --jobs {args.jobs} --sandbox {args.sandbox}':34}{graded:10.2f}{per_sub:16.4f}")
    print(f"ratio (nngrade / baseline): {graded / baseline:.2f}   goal: <= 0.5")


if __name__ == "__main__":
    main()
