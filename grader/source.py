"""From a submitted file to Python source the worker can run.

- `.py`: decoded as Python decodes it (BOM, `# -*- coding: ... -*-`, CRLF).
- `.ipynb`: read with nbformat; code cells joined in order; IPython magics
  (`%...`, `%%...`), shell escapes (`!...`) and help lines (`x?`) dropped. A cell
  that does not parse is left out (and named), as Jupyter would have failed it.
- the definitions-only reduction: imports, functions, classes and simple constant
  assignments, for when the module's top level fails or runs too long.
- the static scan for forbidden imports, so the report can name them.

Only `ast.parse` runs here: no student code is executed in the grader's process.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

MAX_SOURCE_BYTES = 10 * 1024 * 1024


class SourceError(Exception):
    """The file cannot be turned into runnable code. `code` is a diagnosis code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Code:
    """Runnable source of one submission, with where each line came from."""

    text: str
    display_name: str  # the file as the student knows it, for messages
    module_name: str
    cell_of_line: list[tuple[int, int]] | None = None  # notebooks: line -> (cell number, line in cell)
    notes: list[str] = field(default_factory=list)
    skipped_cells: list[int] = field(default_factory=list)
    tree: ast.Module | None = None

    def where(self, line: int | None) -> str:
        """'line 12' for .py files, 'cell 3, line 2' for notebooks."""
        if line is None:
            return ""
        if self.cell_of_line and 1 <= line <= len(self.cell_of_line):
            cell, in_cell = self.cell_of_line[line - 1]
            return f"cell {cell}, line {in_cell}"
        return f"line {line}"

    def definitions_only(self) -> str:
        return definitions_only(self.text)


def module_name_for(path: Path) -> str:
    return path.stem if path.suffix == ".py" else re.sub(r"\W", "_", path.stem) or "submission"


def load(path: Path, display_name: str) -> Code:
    """Read and decode a submission file. Raises SourceError with a diagnosis code."""
    try:
        size = path.stat().st_size
        if size > MAX_SOURCE_BYTES:
            raise SourceError("submission.unreadable",
                              f"{display_name} is {size / 1e6:.1f} MB; files over 10 MB are not graded")
        raw = path.read_bytes()
    except OSError as exc:
        raise SourceError("submission.unreadable", f"{display_name} cannot be read ({exc.strerror})") from exc
    if path.suffix == ".ipynb":
        code = _load_notebook(raw, display_name, module_name_for(path))
    else:
        code = Code(_decode_python(raw, display_name), display_name, module_name_for(path))
    code.tree = _parse(code.text, display_name, code)
    if not code.tree.body:
        raise SourceError("submission.empty", f"{display_name} holds no code")
    return code


def _decode_python(raw: bytes, display_name: str) -> str:
    if b"\x00" in raw[:4096] and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SourceError("submission.unreadable", f"{display_name} is a binary file, not Python source")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SourceError("submission.unreadable",
                          f"{display_name} is saved as UTF-16; save it as UTF-8 and submit again")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
        text = raw.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError) as exc:
        raise SourceError("submission.unreadable",
                          f"{display_name} is not valid UTF-8 and names no other encoding "
                          f"(save it as UTF-8): {exc}") from exc
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _parse(text: str, display_name: str, code: Code) -> ast.Module:
    """The module's syntax tree, parsed once: the checks below all read it."""
    try:
        return ast.parse(text, filename=display_name)
    except SyntaxError as exc:
        where = code.where(exc.lineno) or "an unknown line"
        raise SourceError("submission.syntax_error",
                          f"{display_name}, {where}: {exc.msg}") from exc
    except (ValueError, RecursionError, MemoryError) as exc:
        raise SourceError("submission.syntax_error", f"{display_name} cannot be parsed: {exc}") from exc


# -------------------------------------------------------------------- notebooks
_MAGIC = re.compile(r"^\s*(%|!)")
SELF_CHECK = "grader.selfcheck"
_HELP = re.compile(r"^\s*\?|\?\s*$")


def _load_notebook(raw: bytes, display_name: str, module_name: str) -> Code:
    import nbformat

    try:
        nb = nbformat.reads(raw.decode("utf-8-sig"), as_version=nbformat.NO_CONVERT)
    except UnicodeDecodeError as exc:
        raise SourceError("submission.unreadable", f"{display_name} is not UTF-8 text") from exc
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds for bad JSON
        raise SourceError("submission.unreadable",
                          f"{display_name} is not a valid notebook: {_first_line(exc)}") from exc
    major = nb.get("nbformat") if isinstance(nb, dict) else None
    if major != 4:
        raise SourceError("submission.unreadable",
                          f"{display_name} is a version {major} notebook; open it in Jupyter and save "
                          "it again to get version 4")
    lines: list[str] = []
    origin: list[tuple[int, int]] = []
    skipped, notes = [], []
    code_cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    for number, cell in enumerate(code_cells, start=1):
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        cell_lines = source.replace("\r\n", "\n").split("\n")
        if cell_lines and cell_lines[0].lstrip().startswith("%%"):
            continue  # a cell magic (%%bash, %%time, ...): not plain Python
        if SELF_CHECK in source:
            continue  # the template's self-check cell: it runs the grader, it is not the answer
        kept = ["" if _MAGIC.match(line) or _HELP.search(line) else line for line in cell_lines]
        try:
            ast.parse("\n".join(kept))
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            lineno = getattr(exc, "lineno", None)
            where = f", line {lineno}" if lineno else ""
            skipped.append(number)
            notes.append(f"code cell {number} does not parse{where} "
                         f"({getattr(exc, 'msg', str(exc))}) and was left out")
            continue
        for i, line in enumerate(kept, start=1):
            lines.append(line)
            origin.append((number, i))
        lines.append("")
        origin.append((number, len(kept) + 1))
    return Code("\n".join(lines), display_name, module_name, origin, notes, skipped)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


# ---------------------------------------------------------- definitions only
_SIMPLE_NODES = (ast.Constant, ast.Name, ast.Attribute, ast.Tuple, ast.List, ast.Set, ast.Dict,
                 ast.UnaryOp, ast.BinOp, ast.Load, ast.operator, ast.unaryop, ast.Subscript, ast.Slice)


def _is_simple(node: ast.AST | None) -> bool:
    return node is None or all(isinstance(n, _SIMPLE_NODES) for n in ast.walk(node))


def _is_definition(node: ast.stmt) -> bool:
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return True
    if isinstance(node, ast.Assign):
        return _is_simple(node.value)
    if isinstance(node, ast.AnnAssign):
        return _is_simple(node.value)
    if isinstance(node, ast.Try):  # try: import x / except ImportError: ...
        body = node.body + [s for h in node.handlers for s in h.body] + node.orelse + node.finalbody
        return all(_is_definition(s) or isinstance(s, ast.Pass) for s in body)
    return False


def definitions_only(text: str) -> str:
    """The module reduced to what defines things; line numbers are kept (dropped
    statements become blank lines) so that messages still point at the right line."""
    tree = ast.parse(text)
    lines = text.split("\n")
    keep = [False] * len(lines)
    for node in tree.body:
        if _is_definition(node):
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            for i in range(start - 1, node.end_lineno):
                keep[i] = True
    return "\n".join(line if k else "" for line, k in zip(lines, keep))


# ------------------------------------------------------------------- scanning
def defined_functions(text: str) -> set[str]:
    """Names of the top-level functions a source defines (for choosing a file)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def imported_modules(text: str, tree: ast.Module | None = None) -> list[tuple[str, int]]:
    """Every module the source imports anywhere, statically: (dotted name, line),
    including `importlib.import_module("x")` and `__import__("x")` with a literal."""
    if tree is None:
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
            found += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__"):
                found.append((node.args[0].value, node.lineno))
    return found


def forbidden_imports(text: str, forbidden: list[str], tree: ast.Module | None = None) -> list[tuple[str, int]]:
    # No forbidden name anywhere in the text: nothing to find, and no tree to walk.
    if not any(name.split(".")[-1] in text for name in forbidden):
        return []
    hits, seen = [], set()
    for name, line in imported_modules(text, tree):
        for banned in forbidden:
            if (name == banned or name.startswith(banned + ".")) and banned not in seen:
                seen.add(banned)
                hits.append((banned, line))
    return hits


def toolkit_imports(text: str, tree: ast.Module | None, shipped: list[str],
                    main_folder: str = "") -> list[tuple[str, int]]:
    """Imports of the toolkit's packages that the submission does not provide itself.
    `shipped` are its files' paths in the worker's copy; a module is the student's own
    when it can be imported from the copy's root or from the main file's folder (both
    are on the worker's path), e.g. a reference.py beside cnn_layers.py."""
    from grader.assignment import TOOLKIT_PACKAGES

    own = set()
    for name in shipped:
        for folder in {"", main_folder}:
            if folder and not name.startswith(folder + "/"):
                continue
            relative = PurePosixPath(name[len(folder) + 1:] if folder else name)
            own.add(relative.parts[0] if len(relative.parts) > 1 else relative.stem)
    names = [p for p in TOOLKIT_PACKAGES if p not in own]
    return forbidden_imports(text, names, tree) if names else []
