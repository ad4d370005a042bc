"""What of an assignment's check code a student kit carries.

A kit carries the public checks' code and nothing that holds a solution:

- a check that is not public is blanked, decorator and body (`strip_hidden`);
- a function marked `@kit_recorded` (grader/oracle.py) keeps its name and
  parameters, and its body becomes a stub: in the kit, its answers come from the
  values recorded when the kit was built;
- a mistakes module (a file named `*mistakes.py`) loses every other function not
  marked `@kit_shipped`: helpers of recorded models, such as backpropagation through
  time with a switch per mistake, are a correct solution with the switches off;
- nothing may import the toolkit's `reference` (`reference_imports` finds any).

Lines are blanked rather than removed, so line numbers in a kit's messages match
the toolkit's.
"""

from __future__ import annotations

import ast
from pathlib import Path

STUB = 'raise NotImplementedError("a student kit answers this from the values recorded when it was built")'


def _check_id(decorator: ast.expr, fn_name: str) -> str | None:
    """The id a `@...check("function", ..., name=...)` decorator gives, or None."""
    if not isinstance(decorator, ast.Call):
        return None
    func = decorator.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if not called.endswith("check") or not decorator.args:
        return None
    first = decorator.args[0]
    if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
        return "?"  # a check whose id cannot be read: treated as hidden
    name = fn_name
    for keyword in decorator.keywords:
        if keyword.arg == "name":
            if not (isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, str)):
                return "?"
            name = keyword.value.value
    return f"{first.value}.{name}"


def _marked(node: ast.FunctionDef, mark: str) -> bool:
    return any((d.attr if isinstance(d, ast.Attribute) else getattr(d, "id", None)) == mark
               for d in node.decorator_list)


def _blank(lines: list[str], first: int, last: int) -> None:
    for i in range(first - 1, last):
        lines[i] = ""


def strip_hidden(source: str, public_ids: set[str]) -> tuple[str, list[str]]:
    """`source` without the checks whose ids are not public (decorators and bodies
    blanked, so line numbers stay). Returns (new source, ids removed)."""
    tree = ast.parse(source)
    lines = source.split("\n")
    removed = []
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        ids = [i for i in (_check_id(d, node.name) for d in node.decorator_list) if i is not None]
        if ids and not all(i in public_ids for i in ids):
            _blank(lines, min(d.lineno for d in node.decorator_list), node.end_lineno)
            removed += ids
    return "\n".join(lines), removed


def without_solutions(source: str, mistakes_module: bool) -> str:
    """`source` with each `@kit_recorded` function's body a stub and, in a mistakes
    module, every function not marked `@kit_shipped` or `@kit_recorded` blanked."""
    tree = ast.parse(source)
    lines = source.split("\n")
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if _marked(node, "kit_recorded"):
            first = node.body[0]
            if first.lineno == node.lineno:
                raise ValueError(f"line {node.lineno}: a @kit_recorded function's body must start on its own line")
            indent = lines[first.lineno - 1][:first.col_offset]
            _blank(lines, first.lineno, node.end_lineno)
            lines[first.lineno - 1] = indent + STUB
        elif mistakes_module and not _marked(node, "kit_shipped"):
            _blank(lines, min([d.lineno for d in node.decorator_list] + [node.lineno]), node.end_lineno)
    return "\n".join(lines)


def kit_copy(source_dir: Path, target: Path, public_ids: set[str]) -> Path:
    """The assignment's check code as a kit carries it (see the module's docstring)."""
    target.mkdir(parents=True)
    for path in sorted(source_dir.glob("*.py")):  # code only: notes may describe hidden inputs
        stripped, _ = strip_hidden(path.read_text(encoding="utf-8"), public_ids)
        stripped = without_solutions(stripped, mistakes_module=path.name.endswith("mistakes.py"))
        (target / path.name).write_text(stripped, encoding="utf-8")
    return target


def shared_modules(source_dir: Path, target: Path) -> None:
    """The modules beside the assignments' folders (the package's __init__, catalogue
    entries that several assignments share), as a kit carries them."""
    for path in sorted(source_dir.glob("*.py")):
        text = without_solutions(path.read_text(encoding="utf-8"), mistakes_module=path.name.endswith("mistakes.py"))
        (target / path.name).write_text(text, encoding="utf-8")


def reference_imports(folder: Path) -> list[Path]:
    """The Python files under `folder` that import the toolkit's reference."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            if any(n == "reference" or n.startswith("reference.") for n in names):
                found.append(path)
                break
    return found
