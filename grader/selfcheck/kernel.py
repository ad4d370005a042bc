"""The student's functions as they are in a running kernel, as one module's source.

A notebook's saved file lags behind its kernel: the student edits a cell, runs it, and
checks before saving. What the kernel holds is the truth, so the self-check builds its
submission from there: the source of every contract function bound in the notebook's
namespace now, and of what those functions use (modules, helper functions, constants,
names imported from libraries), and nothing else. The template's demo cells never
reach the submission, so the grader has nothing to say about them.

Where each name comes from, in order of preference:

- a function defined in the notebook: its source (`inspect.getsource`; IPython keeps
  every cell's text in linecache), and the cell it was run in (`In [n]`);
- a module: `import numpy as np`;
- a function or class of a library: `from numpy.lib.stride_tricks import sliding_window_view`;
- a plain constant (numbers, strings, tuples of them): `EPS = 1e-08`;
- anything else (an array, a lambda, a class): the last statement of the cell history
  (IPython's `In`) that bound the name, with what it uses in turn.

Nothing here calls the student's code: objects are told apart by their exact type, and
only builtin values are written out with `repr`. The module is graded in a worker of
its own, as any submission is.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import symtable
import textwrap
import types
from dataclasses import dataclass, field

# IPython's own names in a notebook's namespace: never the student's.
_SHELL_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "_ih", "_oh", "_dh", "_", "__", "___",
                "_i", "_ii", "_iii", "__builtins__", "__name__", "__doc__", "__loader__", "__spec__",
                "__package__", "__builtin__"}
_SHELL_NAME = re.compile(r"^_i?\d+$")
_LITERALS = (int, float, complex, bool, str, bytes, type(None))
MAX_LITERAL_CHARS = 10_000


@dataclass
class Piece:
    """One part of the module: the text, where the student ran it ("In [12]", or a
    script's file name) and the line its text starts on there."""

    name: str
    text: str
    origin: str = ""
    first_line: int = 1


@dataclass
class KernelModule:
    """The module built from a kernel's namespace."""

    header: list[str] = field(default_factory=list)  # imports and constants, in the order first needed
    pieces: list[Piece] = field(default_factory=list)  # definitions, each after what it needs to run
    missing: list[str] = field(default_factory=list)  # wanted functions the namespace does not define
    notes: list[str] = field(default_factory=list)  # names the module could not carry, and why
    _lines: list[tuple[int, int, Piece]] = field(default_factory=list)  # where each piece is in `text`

    @property
    def text(self) -> str:
        lines = ["# The functions of the notebook as its kernel held them when check() ran,",
                 "# with what they use. Each part names where it was run (In [n]: a cell).", ""]
        lines += self.header
        self._lines = []
        for piece in self.pieces:
            lines += ["", ""]
            if piece.origin:
                lines.append(f"# {piece.origin}")
            first = len(lines) + 1
            lines += piece.text.rstrip("\n").split("\n")
            self._lines.append((first, len(lines), piece))
        return "\n".join(lines) + "\n"

    def where(self, line: int) -> str | None:
        """'In [12], line 3' for a line of `text` that came from a cell, else None."""
        if not self._lines:
            _ = self.text
        for first, last, piece in self._lines:
            if first <= line <= last and piece.origin:
                return f"{piece.origin}, line {line - first + piece.first_line}"
        return None


def collect(namespace: dict, wanted: list[str], history: list[tuple[str, str]] | None = None,
            origins: dict[str, str] | None = None) -> KernelModule:
    """The module of the functions `wanted` as `namespace` holds them, with what they use.

    `history` holds (origin, source) of what ran, oldest first: IPython's cells
    ("In [3]", its text), or a script's file. `origins` names the origin of each file a
    code object may come from (IPython compiles cell n under a file name of its own)."""
    return _Collector(namespace, history or [], origins or {}).run(wanted)


class _Collector:
    def __init__(self, namespace: dict, history: list[tuple[str, str]], origins: dict[str, str]):
        self.ns = namespace
        self.history = history
        self.origins = origins
        self.module = KernelModule()
        self.done: set[str] = set()

    def run(self, wanted: list[str]) -> KernelModule:
        for name in wanted:
            if name in self.ns:
                self.need(name)
            else:
                self.module.missing.append(name)
        return self.module

    # ------------------------------------------------------------ one name
    def need(self, name: str) -> None:
        if name in self.done or name in _SHELL_NAMES or _SHELL_NAME.match(name) or name not in self.ns:
            return  # a builtin, a name nothing defines (the worker says so when it is called), or done
        self.done.add(name)
        value = self.ns[name]
        kind = type(value)
        if kind is types.ModuleType:
            self.module.header.append(_import_module(name, value.__name__))
        elif kind is types.FunctionType and value.__module__ == self.ns.get("__name__") \
                and value.__name__ != "<lambda>":
            if not self._own_function(name, value):
                self._from_history(name, value)
        elif _is_literal(value):
            self.module.header.append(f"{name} = {value!r}")
        else:
            statement = _library_import(name, value, self.ns.get("__name__"))
            if statement is not None:
                self.module.header.append(statement)
            else:
                self._from_history(name, value)

    def _own_function(self, name: str, fn: types.FunctionType) -> bool:
        """A function defined in the notebook, from its source; False when the source
        cannot be had (then the cell history may still hold it)."""
        try:
            lines, first_line = inspect.getsourcelines(fn)
            source = textwrap.dedent("".join(lines))
            tree = ast.parse(source)
        except (OSError, TypeError, SyntaxError):
            return False
        node = tree.body[0] if len(tree.body) == 1 else None
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name != fn.__name__:
            return False
        if fn.__name__ != name:  # `g = f`: f, then the alias
            self.need(fn.__name__)
            if self.ns.get(fn.__name__) is not fn:
                return False
            self._add(name, Piece(name, f"{name} = {fn.__name__}"))
            return True
        self._add(name, Piece(name, source, self.origins.get(fn.__code__.co_filename, ""), max(first_line, 1)))
        return True

    def _from_history(self, name: str, value) -> None:
        found = self._last_binding(name)
        if found is None:
            self.module.notes.append(
                f"`{name}` ({_kind(value)}) is used by your functions, but the check cannot carry it over: "
                "define it in a cell with a plain statement (or inside the function that uses it)")
            return
        self._add(name, found)

    def _add(self, name: str, piece: Piece) -> None:
        """A definition, after what it needs (its free names, resolved first)."""
        for used in sorted(free_names(piece.text)):
            if used != name:
                self.need(used)
        self.module.pieces.append(piece)

    def _last_binding(self, name: str) -> Piece | None:
        """The last top-level statement in the history that binds `name`."""
        for origin, text in reversed(self.history):
            if not isinstance(text, str) or name not in text:
                continue
            try:
                tree = ast.parse(text)
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                continue
            for node in reversed(tree.body):
                if name in _bound_names(node):
                    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
                    lines = text.split("\n")[first - 1:node.end_lineno]
                    return Piece(name, textwrap.dedent("\n".join(lines)), origin, first)
        return None


# ------------------------------------------------------------------ helpers
def free_names(source: str) -> set[str]:
    """The global names a piece of module source reads: what it needs from elsewhere."""
    try:
        table = symtable.symtable(source, "<cell>", "exec")
    except (SyntaxError, ValueError, RecursionError):
        return set()
    names: set[str] = set()

    def walk(scope, top: bool) -> None:
        for symbol in scope.get_symbols():
            if not symbol.is_referenced():
                continue
            if top and not (symbol.is_assigned() or symbol.is_imported()):
                names.add(symbol.get_name())
            elif not top and symbol.is_global():
                names.add(symbol.get_name())
        for child in scope.get_children():
            walk(child, False)

    walk(table, True)
    return names  # builtins among them are looked up too: the notebook may have rebound one


def _bound_names(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name.split(".")[0]) for a in node.names}
    targets = node.targets if isinstance(node, ast.Assign) else \
        [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else []
    found = set()
    for target in targets:
        for part in ast.walk(target):
            if isinstance(part, ast.Name) and isinstance(part.ctx, ast.Store):
                found.add(part.id)
    return found


def _import_module(name: str, module: str) -> str:
    if name == module:
        return f"import {module}"
    return f"import {module} as {name}"


def _is_literal(value, depth: int = 0) -> bool:
    kind = type(value)
    if kind in _LITERALS:
        if kind is float and value != value:  # nan: repr is not a literal
            return False
        return kind is not str or len(value) <= MAX_LITERAL_CHARS
    if kind in (tuple, list, set, frozenset) and depth < 3 and len(value) <= 1000:
        return kind is not frozenset and all(_is_literal(v, depth + 1) for v in value)
    if kind is dict and depth < 3 and len(value) <= 1000:
        return all(_is_literal(k, depth + 1) and _is_literal(v, depth + 1) for k, v in value.items())
    return False


def _library_import(name: str, value, main: str | None) -> str | None:
    """`from module import thing as name` for a function, class or other object that a
    library module defines under a plain name, when importing it gives the very object."""
    if getattr(type(value), "__module__", main) == main:
        return None  # an instance of a class of the notebook's: its attributes are its code
    try:
        module, qualname = value.__module__, value.__qualname__ if hasattr(value, "__qualname__") \
            else value.__name__
    except Exception:  # noqa: BLE001 - an object whose attributes are not plain: not a library's
        return None
    if not isinstance(module, str) or not isinstance(qualname, str) or module == main \
            or not qualname.isidentifier():
        return None
    for candidate in _module_candidates(module):
        try:
            found = getattr(importlib.import_module(candidate), qualname, None)
        except Exception:  # noqa: BLE001 - any failure to import means: not this way
            continue
        if found is value:
            return f"from {candidate} import {qualname}" + (f" as {name}" if name != qualname else "")
    return None


def _module_candidates(module: str) -> list[str]:
    """The module an object names, then its parents (NumPy's ufuncs name `numpy`, its
    functions sometimes a private submodule that the package re-exports)."""
    parts = module.split(".")
    return [".".join(parts[:n]) for n in range(len(parts), 0, -1)
            if not any(p.startswith("_") for p in parts[:n])] or [module]


def _kind(value) -> str:
    kind = type(value)
    if kind is types.FunctionType:
        return "a lambda" if value.__name__ == "<lambda>" else "a function"
    if issubclass(kind, type):
        return "a class"
    return f"a value of type {kind.__qualname__}"
