"""The catalogue of diagnoses: for each stable code, a sentence for the student and
a hint that points back to the lecture. Assignments add their own codes (see
`assignments/<name>/mistakes.py`); the engine's `submission.*` codes are here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Diagnosis:
    code: str
    sentence: str
    hint: str = ""


CATALOGUE: dict[str, Diagnosis] = {}


def register(code: str, sentence: str, hint: str = "") -> Diagnosis:
    diagnosis = Diagnosis(code, sentence, hint)
    CATALOGUE[code] = diagnosis
    return diagnosis


def describe(code: str) -> Diagnosis:
    """The catalogue entry; unknown codes (from a newer toolkit, say) still display."""
    _load_assignment_catalogues()
    return CATALOGUE.get(code) or Diagnosis(code, code)


def _load_assignment_catalogues() -> None:
    from grader.assignment import available

    available()  # importing each assignment registers its codes


register("submission.syntax_error", "The file (or a notebook cell) does not parse as Python.",
         "Run the file once yourself: Python names the line it cannot read.")
register("submission.empty", "The submission holds no code.",
         "Check that you submitted the file you worked on, saved.")
register("submission.unreadable", "The file cannot be read as Python source or as a notebook.",
         "Save it as UTF-8 text (.py) or a Jupyter notebook (.ipynb) and submit again.")
register("submission.too_complex", "The file is too large or too deeply nested for the grader to parse.",
         "Keep large data out of the code (load it from a file beside it), and split very deep "
         "expressions into steps.")
register("submission.too_slow_to_parse", "Reading the file (decoding and parsing it) took longer than the "
         "grader allows.",
         "Save the file as plain UTF-8, without an unusual `# coding:` line, and keep large data out of the code.")
register("submission.missing_function", "A required function is not defined, or not under its exact name.",
         "The assignment's template lists every function with its exact name and arguments.")
register("submission.timeout", "A call ran past its time limit, or all the calls together used up the "
         "time budget of the submission.",
         "Look for a loop that never ends, one that runs far more often than needed, or a pause "
         "(time.sleep) left in a function.")
register("submission.memory_limit", "A call used more memory than allowed.",
         "Check the shapes of the arrays you create: one may be far larger than intended.")
register("submission.crashed", "The process running the code ended (exit, signal or a crash).",
         "Do not call exit() or sys.exit() in your functions; raise an exception instead.")
register("submission.forbidden_import", "The code imports a module that this assignment forbids.",
         "Write the layers with NumPy alone; deep-learning libraries and the course's own "
         "solution are not available.")
register("submission.bad_return", "A function returned the wrong type, the wrong shape, NaN/inf, "
         "or a tuple of the wrong length.",
         "Compare what you return with the shapes in the function's docstring.")
register("grader.not_recorded", "This check cannot run in the self-check kit; it runs when you submit.",
         "Nothing to fix here: the final grading runs it in full.")
register("grader.internal_error", "The grader itself failed in this check; this is not your mistake.",
         "Tell the course staff: they will look at it.")
register("submission.forward_failed", "A backward could not be checked: the forward whose cache it takes "
         "failed on the same inputs.",
         "The backward receives what the forward returned: make the forward work on these inputs first "
         "(its own checks say what goes wrong).")
