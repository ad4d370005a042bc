"""A class downloaded as one zip (Canvas, Moodle): extracted safely before grading.

Every entry is checked before a byte is written: absolute paths, `..` components,
drive letters, symbolic links and device files are refused (a "zip slip" entry
could otherwise write anywhere the grader can), and the sizes are capped against zip
bombs. What is refused is reported, never silently dropped. An entry more than
MAX_DEPTH folders down is refused too, but its first MAX_DEPTH folders are still made,
so that its student is found and discovery's note on that student says what was too
deep. Folders are made with a loop (grader.trees), never by recursion.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from grader.trees import make_dirs

MAX_ENTRY_BYTES = 20 * 1024 * 1024
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
MAX_ENTRIES = 20_000
# Room for a wrapping folder and the student's own around discovery's bound (32).
MAX_DEPTH = 40


class ClassZipError(Exception):
    """The zip cannot be used at all (a usage error)."""


def _safe_relative(name: str) -> PurePosixPath | None:
    name = name.replace("\\", "/")
    path = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or any(p in ("..", "") for p in path.parts):
        return None
    return path


def extract(zip_path: Path, target: Path) -> list[str]:
    """Extract `zip_path` into `target` (which must exist); returns what was refused."""
    refused: list[str] = []
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ClassZipError(f"{zip_path} is not a readable zip file ({exc})") from None
    root = target.resolve()
    total = 0
    too_deep: list[str] = []
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ENTRIES:
            raise ClassZipError(f"{zip_path} holds {len(entries)} entries; at most {MAX_ENTRIES} are accepted")
        for info in entries:
            mode = info.external_attr >> 16
            relative = _safe_relative(info.filename)
            if relative is None:
                refused.append(f"{_shown(info.filename)} (a path outside the extraction folder)")
                continue
            kind = stat.S_IFMT(mode)  # 0 when the zip records no file type (Windows tools)
            if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                refused.append(f"{_shown(info.filename)} (a link or special file)")
                continue
            folders = relative.parts if info.is_dir() else relative.parts[:-1]
            if len(folders) > MAX_DEPTH:  # checked first: resolving a path costs a call per folder
                too_deep.append(info.filename)
                _make(root, folders[:MAX_DEPTH + 1])  # the student is still found, with a note
                continue
            destination = root.joinpath(*relative.parts)
            if os.path.commonpath([root, destination.resolve()]) != str(root):
                refused.append(f"{_shown(info.filename)} (a path outside the extraction folder)")
                continue
            if info.is_dir():
                if not _make(root, relative.parts):
                    refused.append(f"{_shown(info.filename)} (the folder cannot be made)")
                continue
            if info.file_size > MAX_ENTRY_BYTES:
                refused.append(f"{_shown(info.filename)} (over {MAX_ENTRY_BYTES // (1024 * 1024)} MB)")
                continue
            total += info.file_size
            if total > MAX_TOTAL_BYTES:
                raise ClassZipError(f"{zip_path} unpacks to more than 1 GB")
            try:
                make_dirs(destination.parent)
                with archive.open(info) as src, open(destination, "xb") as dst:
                    # Read at most the declared size + 1: a lying header cannot blow past the cap.
                    shutil.copyfileobj(_Capped(src, info.file_size), dst)
            except (zipfile.BadZipFile, OSError, RuntimeError, ValueError) as exc:
                refused.append(f"{_shown(info.filename)} ({_first_line(exc)})")
    if too_deep:
        refused.append(f"{len(too_deep)} {'entry' if len(too_deep) == 1 else 'entries'} more than {MAX_DEPTH} "
                       "folders deep, first "
                       f"{_shown(too_deep[0])}")
    return refused


def _make(root: Path, parts: tuple[str, ...]) -> bool:
    try:
        make_dirs(root.joinpath(*parts))
        return True
    except OSError:
        return False


def _shown(name: str) -> str:
    """An entry's name for a message: whole when short, else its start and end."""
    return name if len(name) <= 300 else f"{name[:150]}...{name[-100:]} ({len(name)} characters)"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0][:300]


class _Capped:
    def __init__(self, stream, limit: int):
        self.stream, self.left = stream, limit + 1

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            raise ValueError("the entry is larger than its header says")
        n = self.left if n < 0 else min(n, self.left)
        data = self.stream.read(n)
        self.left -= len(data)
        return data


def single_top_folder(target: Path, contract_files: set[str]) -> Path:
    """Many platforms wrap the class in one folder: grade inside it (unless that folder
    is itself one student's, holding a contract file)."""
    entries = [e for e in target.iterdir() if not e.name.startswith(".") and e.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].is_dir():
        inner = [e for e in entries[0].iterdir() if not e.name.startswith(".")]
        if inner and not any(e.name in contract_files for e in inner):
            return entries[0]
    return target
