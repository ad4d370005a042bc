"""From a submitted file to Python source the worker can run.

- `.py`: decoded as Python decodes it (BOM, `# -*- coding: ... -*-`, CRLF).
- `.ipynb`: read as JSON; code cells joined in order; IPython magics (`%...`,
  `%%...`), shell escapes (`!...`) and help lines (`x?`) dropped. A cell that does
  not parse is left out (and named), as Jupyter would have failed it.
- the definitions-only reduction: imports, functions, classes and simple constant
  assignments, for when the module's top level fails or runs too long.
- the static scan for forbidden imports, so the report can name them.

The file is read, decoded and parsed once, by grader.reader, which keeps only a few
facts of the syntax tree. Nothing of a submission is read without a bound: a file of
at most PARSE_IN_PROCESS_BYTES is read in the grader's process (the worst tree such a
file can build, one name per two bytes, costs ~60 MB and well under a second); a
larger one is read in a fresh `python -I -S` child limited to PARSE_MEMORY_MB of
address space and PARSE_CPU_SECONDS of CPU time (and PARSE_WALL_SECONDS of wall
clock), and a file that exhausts them is refused with submission.too_complex or
submission.too_slow_to_parse, on that student alone. The child is started with
subprocess (fork and exec at once), never by forking the grader to run Python.

Only parsing and decoding run here: no student code is executed in the grader's process.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from grader import reader

MAX_SOURCE_BYTES = 10 * 1024 * 1024
PARSE_IN_PROCESS_BYTES = 64 * 1024  # read in the grader's own process up to this size
PARSE_MEMORY_MB = 512  # the reading child's address space
PARSE_CPU_SECONDS = 5  # the reading child's CPU time
PARSE_WALL_SECONDS = 20  # and its wall-clock time, for a child that gets no CPU


class SourceError(Exception):
    """The file cannot be turned into runnable code. `code` is a diagnosis code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Code:
    """Runnable source of one submission, with where each line came from, and what the
    grader needs of its syntax tree (computed once, when it was read)."""

    text: str
    display_name: str  # the file as the student knows it, for messages
    module_name: str
    cell_starts: list[tuple[int, int]] | None = None  # notebooks: (first line, cell number) per cell
    notes: list[str] = field(default_factory=list)
    skipped_cells: list[int] = field(default_factory=list)
    functions: set[str] = field(default_factory=set)  # top-level functions and assigned names
    imports: list[tuple[str, int]] = field(default_factory=list)  # every module imported, first line
    definitions: str = ""  # the definitions-only reduction of `text`
    _lines: list[str] | None = field(default=None, repr=False, compare=False)

    def where(self, line: int | None) -> str:
        """'line 12' for .py files, 'cell 3, line 2' for notebooks."""
        return reader.where(self.cell_starts, line)

    def definitions_only(self) -> str:
        return self.definitions

    def lines(self) -> list[str]:
        """The text's lines, numbered as Python numbers them (from 1 at index 0); split
        once, when a failure first asks for them."""
        if self._lines is None:
            self._lines = self.text.split("\n")
        return self._lines


def module_name_for(path: Path) -> str:
    return path.stem if path.suffix == ".py" else re.sub(r"\W", "_", path.stem) or "submission"


def load(path: Path, display_name: str) -> Code:
    """Read, decode and parse a submission file. Raises SourceError with a diagnosis code."""
    try:
        info = path.stat()
        if info.st_size > MAX_SOURCE_BYTES:
            raise SourceError("submission.unreadable",
                              f"{display_name} is {info.st_size / 1e6:.1f} MB; files over 10 MB are not graded")
        kind = "notebook" if path.suffix == ".ipynb" else "python"
        key = (str(path), info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, kind, display_name)
        answer = _CACHE.get(key)
        if answer is None:
            raw = _read_bytes(path, display_name)
            answer = _read(kind, raw, display_name)
            del raw
            _CACHE.put(key, answer)
    except OSError as exc:
        raise SourceError("submission.unreadable", f"{display_name} cannot be read ({exc.strerror})") from exc
    return _code(answer, display_name, module_name_for(path))


def _read_bytes(path: Path, display_name: str) -> bytes:
    """The file's bytes, at most MAX_SOURCE_BYTES of them; never blocks on a FIFO or a device."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SourceError("submission.unreadable", f"{display_name} is not a regular file")
        raw = handle.read(MAX_SOURCE_BYTES + 1)
    if len(raw) > MAX_SOURCE_BYTES:  # it grew since stat
        raise SourceError("submission.unreadable", f"{display_name} is over 10 MB; files over 10 MB are not graded")
    return raw


def _code(answer: dict, display_name: str, module_name: str) -> Code:
    if not answer.get("ok"):
        raise SourceError(answer["code"], answer["message"])
    starts = answer.get("cell_starts")
    return Code(answer["text"], display_name, module_name,
                [tuple(s) for s in starts] if starts is not None else None,
                list(answer["notes"]), list(answer["skipped"]), set(answer["functions"]),
                [(name, line) for name, line in answer["imports"]], answer["definitions"])


def _read(kind: str, raw: bytes, display_name: str) -> dict:
    """grader.reader's answer for these bytes: in this process when they are few, else
    in a limited child."""
    if len(raw) <= PARSE_IN_PROCESS_BYTES:
        return reader.read(kind, raw, display_name)
    return _read_in_child(kind, raw, display_name)


_READER_SOURCE: str | None = None
# The child's CPU limit ends it with SIGXCPU, and SIGKILL a second later (none on Windows).
_CPU_SIGNALS = {getattr(signal, name) for name in ("SIGXCPU", "SIGKILL") if hasattr(signal, name)}


def _read_in_child(kind: str, raw: bytes, display_name: str) -> dict:
    global _READER_SOURCE
    if _READER_SOURCE is None:
        _READER_SOURCE = inspect.getsource(reader)
    command = [sys.executable, "-I", "-S", "-c", _READER_SOURCE, str(PARSE_MEMORY_MB), str(PARSE_CPU_SECONDS)]
    request = json.dumps({"kind": kind, "display": display_name}).encode() + b"\n" + raw
    try:
        done = subprocess.run(command, input=request, capture_output=True, timeout=PARSE_WALL_SECONDS,
                              cwd="/", check=False)
    except subprocess.TimeoutExpired:
        return _too_slow(display_name)
    except OSError as exc:  # the machine's doing: no score, and --resume reads it again
        raise SourceError("grader.internal_error", f"the grader could not read {display_name}: its reading "
                          f"process did not start ({exc})") from None
    finally:
        del request
    ready, _, out = done.stdout.partition(b"\n")
    if ready == b"ready" and done.returncode == 0:
        try:
            answer = json.loads(out.decode("utf-8", "surrogatepass"))
            if isinstance(answer, dict) and "ok" in answer:
                return answer
        except ValueError:
            pass
    if ready == b"ready" and -done.returncode in _CPU_SIGNALS:
        return _too_slow(display_name)
    if ready == b"ready" and b"MemoryError" in done.stderr:
        return {"ok": False, "code": "submission.too_complex", "message": (
            f"{display_name} is too large to parse: reading it needs more than {PARSE_MEMORY_MB} MB of memory "
            "(keep large data out of the code, in a file beside it)")}
    tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"status {done.returncode}"]
    raise SourceError("grader.internal_error", f"the grader could not read {display_name}: its reading process "
                      f"failed ({tail[0][:300]})")


def _too_slow(display_name: str) -> dict:
    return {"ok": False, "code": "submission.too_slow_to_parse", "message": (
        f"{display_name} could not be read in time: decoding and parsing it took more than "
        f"{PARSE_CPU_SECONDS} s of CPU time, and the grader stopped")}


class _Answers:
    """Answers already computed in a child, for the same file read again (a file read
    while choosing the assignment or the main file, then for grading), so that a file
    that costs a child seconds costs them once. Bounded by the text it holds."""

    LIMIT = 32 * 1024 * 1024

    def __init__(self):
        self._items: OrderedDict = OrderedDict()
        self._weight = 0
        self._lock = threading.Lock()

    @staticmethod
    def _size(answer: dict) -> int:
        return len(answer.get("text", "")) + len(answer.get("definitions", "")) + 1000

    def get(self, key):
        with self._lock:
            answer = self._items.get(key)
            if answer is not None:
                self._items.move_to_end(key)
            return answer

    def put(self, key, answer: dict) -> None:
        size = self._size(answer)
        if size > self.LIMIT // 4 or key[3] <= PARSE_IN_PROCESS_BYTES:
            return  # small files are read again in no time
        with self._lock:
            if key in self._items:
                return
            self._items[key] = answer
            self._weight += size
            while self._weight > self.LIMIT:
                _, old = self._items.popitem(last=False)
                self._weight -= self._size(old)


_CACHE = _Answers()


def _text_answer(text: str) -> dict:
    return _read("text", text.encode("utf-8", "surrogatepass"), "<source>")


def definitions_only(text: str) -> str:
    """The module reduced to what defines things; line numbers are kept (dropped
    statements become blank lines) so that messages still point at the right line."""
    answer = _text_answer(text)
    if not answer.get("ok"):
        raise SourceError(answer["code"], answer["message"])
    return answer["definitions"]


# ------------------------------------------------------------------- scanning
def defined_functions(text: str) -> set[str]:
    """Names of the top-level functions a source defines (for choosing a file)."""
    try:
        answer = _text_answer(text)
    except SourceError:
        return set()
    return set(answer["functions"]) if answer.get("ok") else set()


def imported_modules(text: str) -> list[tuple[str, int]]:
    """Every module the source imports anywhere, statically: (dotted name, first line),
    including `importlib.import_module("x")` and `__import__("x")` with a literal."""
    try:
        answer = _text_answer(text)
    except SourceError:
        return []
    return [(name, line) for name, line in answer["imports"]] if answer.get("ok") else []


def forbidden_imports(text: str, forbidden: list[str],
                      imports: list[tuple[str, int]] | None = None) -> list[tuple[str, int]]:
    """The forbidden modules the source imports, each with its first line. `imports` is
    Code.imports when the source was loaded (else the text is read again)."""
    # No forbidden name anywhere in the text: nothing to find.
    if not any(name.split(".")[-1] in text for name in forbidden):
        return []
    hits, seen = [], set()
    for name, line in (imported_modules(text) if imports is None else imports):
        for banned in forbidden:
            if (name == banned or name.startswith(banned + ".")) and banned not in seen:
                seen.add(banned)
                hits.append((banned, line))
    return hits


def toolkit_imports(text: str, imports: list[tuple[str, int]] | None, shipped: list[str],
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
    return forbidden_imports(text, names, imports) if names else []
