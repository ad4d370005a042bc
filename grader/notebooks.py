"""Building the student notebooks from the .py templates (see assignments/*/template/notebook.py):
the stubs are cut out of the template, so notebook and template never drift apart."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
from nbformat.v4 import new_notebook


def template_parts(path: Path) -> tuple[str, dict[str, str]]:
    """Split a .py template into its set-up code (the imports) and its functions.

    Returns (setup, stubs): `setup` is every top-level statement except the module
    docstring and the functions, `stubs` maps each function's name to its source, in
    the template's order.
    """
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    setup, stubs = [], {}
    for node in tree.body:
        text = ast.get_source_segment(source, node)
        if isinstance(node, ast.FunctionDef):
            stubs[node.name] = text
        elif not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            setup.append(text)
    return "\n".join(setup), stubs


def finish(cells: list, prefix: str, unused_stubs: dict[str, str], template: Path) -> nbformat.NotebookNode:
    """The notebook from `cells`, refusing a template function that no cell offers."""
    if unused_stubs:
        raise ValueError(f"{template.name} defines functions the notebook leaves out: {', '.join(unused_stubs)}")
    # nbformat gives every new cell a random id; fixed ids make a build reproducible,
    # so the committed notebook can be compared with a fresh one.
    for number, cell in enumerate(cells):
        cell["id"] = f"{prefix}-{number:02d}"
    return new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
