"""Reading one submitted file: its bytes decoded (a `.py` as Python decodes it, a
notebook's code cells joined), parsed once, and reduced to the few facts the grader
needs from the syntax tree (functions defined, modules imported, the
definitions-only reduction). No tree leaves this module.

It imports the standard library only, because grader.source runs it in two ways:
in the grader's process for small files, and for larger ones in a fresh
`python -I -S` child that limits its own memory and CPU time first, so that a file
built to exhaust `ast` or a slow decoder costs that child, never the grader (see
grader.source.load). Keep it short: the child receives it as a `-c` argument.
"""

from __future__ import annotations

import ast
import io
import json
import re
import sys
import threading
import tokenize

SELF_CHECK = "grader.selfcheck"
# `from grader.selfcheck import check, run as r`, `import grader.selfcheck as sc`
_SELF_CHECK_IMPORT = re.compile(r"from\s+grader\.selfcheck\s+import\s+(?:\(([\w\s,]+)\)|([\w \t,]+))|"
                                r"import\s+grader\.selfcheck\s+as\s+(\w+)")
_MAGIC = re.compile(r"^\s*(%|!)")
_HELP = re.compile(r"^\s*\?|\?\s*$")
MAX_CELL_NOTES = 10
_limit_mb = 0  # the child's memory limit, 0 in the grader's process


class Refused(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def where(cell_starts, line):
    """'line 12', or 'cell 3, line 2' for a notebook. `cell_starts` holds
    (first line in the joined text, cell number) per cell, in order."""
    if line is None:
        return ""
    if cell_starts:
        lo, hi = 0, len(cell_starts)
        while lo < hi:  # the last cell starting at or before `line`
            mid = (lo + hi) // 2
            if cell_starts[mid][0] <= line:
                lo = mid + 1
            else:
                hi = mid
        if lo:
            start, cell = cell_starts[lo - 1]
            return f"cell {cell}, line {line - start + 1}"
    return f"line {line}"


def read(kind: str, raw: bytes, display: str) -> dict:
    """kind "python" (a .py file's bytes), "notebook" (an .ipynb's bytes) or "text"
    (source already decoded, as UTF-8). Returns plain data: {"ok": False, "code",
    "message"}, or {"ok": True, "text", "cell_starts", "notes", "skipped",
    "functions", "imports", "definitions"}."""
    try:
        cell_starts, notes, skipped = None, [], []
        if kind == "notebook":
            text, cell_starts, notes, skipped = _notebook(raw, display)
        elif kind == "python":
            text = _decode_python(raw, display)
        else:
            text = raw.decode("utf-8", "surrogatepass")
        del raw
        facts = _facts(text, display, cell_starts)
    except Refused as exc:
        return {"ok": False, "code": exc.code, "message": exc.message}
    except MemoryError:  # decoding, or the notebook's JSON
        return {"ok": False, "code": "submission.too_complex", "message": _too_large(display)}
    return {"ok": True, "text": text, "cell_starts": cell_starts, "notes": notes, "skipped": skipped, **facts}


def _too_large(display: str) -> str:
    return (f"{display} is too large to parse: reading it needs more than {_limit_mb} MB of memory "
            "(keep large data out of the code, in a file beside it)")


def _exhausted() -> bool:
    """Whether a MemoryError was this child running out of its memory, rather than the
    parser's own nesting limit (which raises MemoryError with little memory in use)."""
    if not _limit_mb:
        return False
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 > _limit_mb * 2**20 // 2


# CPython 3.11 keeps the depth of ast's tree conversion in interpreter-wide state: two
# threads converting at once (the grader's threads each load a submission) corrupt it
# and get "SystemError: AST constructor recursion depth mismatch" (cpython#106905).
_PARSE_LOCK = threading.Lock()


def _ast_parse(text: str, display: str):
    with _PARSE_LOCK:
        for attempt in range(3):
            try:
                return ast.parse(text, filename=display)
            except SystemError:  # another thread's ast.parse (a traceback's, say) ran meanwhile
                if attempt == 2:
                    raise


def _parse(text: str, display: str):
    """The tree, or the exception that stopped ast (a Refused for memory)."""
    try:
        return _ast_parse(text, display), None
    except MemoryError as exc:
        if _exhausted():
            raise Refused("submission.too_complex", _too_large(display)) from None
        return None, exc
    except (SyntaxError, ValueError, RecursionError) as exc:
        return None, exc


def _nesting(exc: BaseException) -> str:
    return str(exc) or "the parser's stack overflowed"


# ------------------------------------------------------------------ python
def _decode_python(raw: bytes, display: str) -> str:
    if b"\x00" in raw[:4096] and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise Refused("submission.unreadable", f"{display} is a binary file, not Python source")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise Refused("submission.unreadable", f"{display} is saved as UTF-16; save it as UTF-8 and submit again")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
        text = raw.decode(encoding)
    except (SyntaxError, LookupError, ValueError) as exc:  # ValueError: UnicodeError and codecs' own
        raise Refused("submission.unreadable", f"{display} is not valid UTF-8 and names no other encoding "
                      f"(save it as UTF-8): {exc}") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --------------------------------------------------------------- notebooks
def _notebook(raw: bytes, display: str):
    """Code cells joined in order: IPython magics (`%...`, `%%...`), shell escapes
    (`!...`) and help lines (`x?`) dropped; a cell that does not parse is left out
    and named, as Jupyter would have failed it; the self-check's statements too (its
    import, and every call of what it gave: `check()`, `run("cnn.ipynb")`)."""
    try:
        nb = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise Refused("submission.unreadable", f"{display} is not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise Refused("submission.unreadable", f"{display} is not a valid notebook: {first}") from None
    del raw

    def invalid(why: str) -> Refused:
        return Refused("submission.unreadable", f"{display} is not a valid notebook: {why}")

    if not isinstance(nb, dict):
        raise invalid("it is not a JSON object")
    major = nb.get("nbformat")
    if major != 4:
        raise Refused("submission.unreadable", f"{display} is a version {major} notebook; open it in Jupyter "
                      "and save it again to get version 4")
    cells = nb.get("cells", [])
    if not isinstance(cells, list):
        raise invalid("its cells are not a list")
    pieces, cell_starts, skipped, notes = [], [], [], []
    line = 1
    number = 0
    names = _self_check_names(cells)
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict):
            raise invalid(f"cell {index + 1} is not an object")
        if cell.get("cell_type") != "code":
            continue
        number += 1
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(s, str) for s in source):
            source = "".join(source)
        if not isinstance(source, str):
            raise invalid(f"code cell {number} has no text as its source")
        cell_lines = source.replace("\r\n", "\n").split("\n")
        if cell_lines and cell_lines[0].lstrip().startswith("%%"):
            continue  # a cell magic (%%bash, %%time, ...): not plain Python
        checks = SELF_CHECK in source or any(n in source for n in names)
        kept = "\n".join("" if _MAGIC.match(s) or _HELP.search(s) else s for s in cell_lines)
        del cell_lines, source
        tree, exc = _parse(kept, display)
        if checks and exc is None:  # the self-check runs the grader: it is not the answer
            found = [node for node in tree.body if _is_self_check(node, names)]
            if found and len(found) == len(tree.body):
                continue
            kept = _without(kept, found)
        del tree
        if exc is not None:
            skipped.append(number)
            if len(skipped) <= MAX_CELL_NOTES:
                lineno = getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else None
                detail = exc.msg if isinstance(exc, SyntaxError) else (
                    str(exc) if isinstance(exc, ValueError) else f"nested too deeply: {_nesting(exc)}")
                notes.append(f"code cell {number} does not parse{f', line {lineno}' if lineno else ''} "
                             f"({detail}) and was left out")
            continue
        cell_starts.append((line, number))
        pieces.append(kept + "\n")  # each cell ends with a blank line
        line += kept.count("\n") + 2
    if len(skipped) > MAX_CELL_NOTES:
        notes.append(f"{len(skipped) - MAX_CELL_NOTES} more code cells do not parse and were left out "
                     f"(cells {', '.join(map(str, skipped[MAX_CELL_NOTES:MAX_CELL_NOTES + 20]))}"
                     f"{', ...' if len(skipped) > MAX_CELL_NOTES + 20 else ''})")
    return "\n".join(pieces), cell_starts, notes, skipped


def _self_check_names(cells) -> set[str]:
    """What the notebook imports from grader.selfcheck (check, run) and its aliases for it."""
    names = set()
    for cell in cells:
        source = cell.get("source", "") if isinstance(cell, dict) else ""
        source = "".join(source) if isinstance(source, list) and all(isinstance(s, str) for s in source) \
            else source
        if not isinstance(source, str) or SELF_CHECK not in source:
            continue
        for within, imported, alias in _SELF_CHECK_IMPORT.findall(source):
            for part in (within or imported).split(","):
                words = part.split()
                if words:
                    names.add(words[-1])  # `run as r` binds r
            if alias:
                names.add(alias)
    return names


def _is_self_check(node, names: set[str]) -> bool:
    """An import of grader.selfcheck, or a statement whose value uses what it gave or
    what a call of it returned (`report = check()`, then `report`); `names` learns the
    latter."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        return any(m == SELF_CHECK or m.startswith(SELF_CHECK + ".") for m in modules)
    value = getattr(node, "value", None) if isinstance(node, (ast.Expr, ast.Assign, ast.AnnAssign)) else None
    for part in ast.walk(value) if value is not None else ():
        if isinstance(part, ast.Name) and part.id in names or \
                isinstance(part, ast.Attribute) and _dotted(part).startswith(SELF_CHECK + "."):
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
            return True
    return False


def _dotted(node) -> str:
    """`grader.selfcheck.check` for that attribute chain, "" for anything else."""
    parts = []
    while isinstance(node, ast.Attribute) and len(parts) < 8:
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id] + parts[::-1]) if isinstance(node, ast.Name) else ""


def _without(text: str, nodes) -> str:
    """`text` with each statement of `nodes` replaced by `pass`, every line kept in place."""
    lines = text.split("\n")
    for node in sorted(nodes, key=lambda n: (n.lineno, n.col_offset), reverse=True):
        head = lines[node.lineno - 1].encode("utf-8", "surrogatepass")[:node.col_offset]
        tail = lines[node.end_lineno - 1].encode("utf-8", "surrogatepass")[node.end_col_offset:]
        lines[node.lineno - 1:node.end_lineno] = [
            head.decode("utf-8", "surrogatepass") + "pass" + tail.decode("utf-8", "surrogatepass")
        ] + [""] * (node.end_lineno - node.lineno)
    return "\n".join(lines)


# ------------------------------------------------------------------- facts
_SIMPLE_NODES = (ast.Constant, ast.Name, ast.Attribute, ast.Tuple, ast.List, ast.Set, ast.Dict,
                 ast.UnaryOp, ast.BinOp, ast.Load, ast.operator, ast.unaryop, ast.Subscript, ast.Slice)


def _is_simple(node) -> bool:
    return node is None or all(isinstance(n, _SIMPLE_NODES) for n in ast.walk(node))


def _is_definition(node) -> bool:
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return True
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        return _is_simple(node.value)
    if isinstance(node, ast.Try):  # try: import x / except ImportError: ...
        body = node.body + [s for h in node.handlers for s in h.body] + node.orelse + node.finalbody
        return all(_is_definition(s) or isinstance(s, ast.Pass) for s in body)
    return False


def _facts(text: str, display: str, cell_starts) -> dict:
    """Parse once; keep only what the grader asks of the tree."""
    tree, exc = _parse(text, display)
    if isinstance(exc, (SyntaxError, ValueError)) and "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise Refused("submission.syntax_error", f"{display}, {where(cell_starts, line)}: the file holds a "
                      "NUL byte (\\x00), which Python source cannot contain")
    if isinstance(exc, SyntaxError):
        raise Refused("submission.syntax_error",
                      f"{display}, {where(cell_starts, exc.lineno) or 'an unknown line'}: {exc.msg}")
    if isinstance(exc, ValueError):  # a NUL byte (Python < 3.12)
        raise Refused("submission.syntax_error", f"{display} cannot be parsed: {exc}")
    if exc is not None:
        raise Refused("submission.too_complex", f"{display} is nested too deeply to parse ({_nesting(exc)})")
    if not tree.body:
        raise Refused("submission.empty", f"{display} holds no code")
    functions = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions.add(node.name)
        elif isinstance(node, ast.Assign):
            functions.update(t.id for t in node.targets if isinstance(t, ast.Name))
    imports = {}  # every module imported anywhere, statically: name -> first line (walk order)
    for node in ast.walk(tree):
        found = []
        if isinstance(node, ast.Import):
            found = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            if (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")) in \
                    ("import_module", "__import__"):
                found = [node.args[0].value]
        for name in found:
            imports.setdefault(name, node.lineno)
    # The definitions-only reduction: line numbers kept (dropped statements become blank
    # lines) so that messages still point at the right line.
    ranges = []
    for node in tree.body:
        if _is_definition(node):
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            ranges.append((start, node.end_lineno))
    del tree
    lines = text.split("\n")
    keep = bytearray(len(lines))
    for start, end in ranges:
        keep[start - 1:end] = b"\x01" * (end - start + 1)
    definitions = "\n".join(s if k else "" for s, k in zip(lines, keep))
    return {"functions": sorted(functions), "imports": list(imports.items()), "definitions": definitions}


# ------------------------------------------------------------------- child
def _child() -> None:
    """`python -I -S -c <this file> MEMORY_MB CPU_SECONDS`: limits first, then one
    request on stdin (a JSON line, then the file's bytes), the answer as JSON on stdout."""
    global _limit_mb
    memory_mb, cpu = int(sys.argv[1]), int(sys.argv[2])
    try:
        import resource

        for which, value in ((resource.RLIMIT_CORE, 0), (resource.RLIMIT_AS, memory_mb * 2**20),
                             (resource.RLIMIT_CPU, cpu)):
            try:  # CPU: SIGXCPU at the soft limit, SIGKILL a second later
                resource.setrlimit(which, (value, value + 1 if which == resource.RLIMIT_CPU else value))
            except (ValueError, OSError):
                pass  # macOS does not enforce every limit; the parent's wall clock still holds
    except ImportError:
        pass  # Windows: the parent's wall clock alone
    _limit_mb = memory_mb
    out = sys.stdout.buffer
    out.write(b"ready\n")
    out.flush()
    header = json.loads(sys.stdin.buffer.readline())
    try:
        answer = read(header["kind"], sys.stdin.buffer.read(), header["display"])
        data = json.dumps(answer, ensure_ascii=False).encode("utf-8", "surrogatepass")
    except MemoryError:
        data = json.dumps({"ok": False, "code": "submission.too_complex",
                           "message": _too_large(header["display"])}).encode()
    out.write(data)
    out.flush()


if __name__ == "__main__":
    _child()
