"""nngrade's grading engine: finds submissions, runs them in a sandboxed worker,
scores checks in this process, and writes results and reports."""

__version__ = "0.1.0"
