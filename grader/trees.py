"""Folders made and removed without recursion.

`Path.mkdir(parents=True)`, `os.makedirs` and (before Python 3.12/3.13) `os.walk` and
`shutil.rmtree` recurse once per level, so a tree a thousand folders deep raises
RecursionError (not an OSError: `ignore_errors=True` does not catch it), and
`shutil.rmtree` also holds one open descriptor per level. A class zip or folder can
hold such a tree, and a submission's code can build one in its working copy, so the
grader makes and removes folders with the loops below.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_BY_DESCRIPTOR = (os.scandir in os.supports_fd and os.unlink in os.supports_dir_fd
                  and os.rmdir in os.supports_dir_fd and os.open in os.supports_dir_fd)


def make_dirs(path: Path) -> list[Path]:
    """`path.mkdir(parents=True, exist_ok=True)`, iteratively; returns the folders it
    created, outermost first. Raises OSError (FileExistsError where a file is in the way)."""
    missing = []
    current = path
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    created = []
    for folder in reversed(missing):
        try:
            folder.mkdir()
            created.append(folder)
        except FileExistsError:
            if not folder.is_dir():
                raise
    return created


def remove_tree(path: Path | str) -> None:
    """`shutil.rmtree(path, ignore_errors=True)` whatever the tree: no recursion, one
    folder open at a time (it climbs back up through ".."), every name relative to an
    open folder so that no path grows past PATH_MAX, links removed and never followed.
    What cannot be removed is left; it never raises."""
    if not _BY_DESCRIPTOR:  # Windows: no descriptor-relative calls
        try:
            shutil.rmtree(path, ignore_errors=True)
        except RecursionError:
            pass
        return
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError:
        try:
            os.unlink(path)  # a file or a link; or nothing there
        except OSError:
            pass
        return
    names: list[str] = []  # the folders we are in, below `path`
    stuck: list[set[str]] = [set()]  # per level: what could not be removed, not to try again
    try:
        while True:
            child = _empty_files(fd, stuck[-1])
            if child is not None:
                sub = _open_child(fd, child)
                if sub is None:
                    stuck[-1].add(child)
                    continue
                os.close(fd)
                fd = sub
                names.append(child)
                stuck.append(set())
                continue
            if not names:
                break
            try:
                parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
            except OSError:
                break
            os.close(fd)
            fd = parent
            name = names.pop()
            stuck.pop()
            if not _retry(lambda: os.rmdir(name, dir_fd=fd), fd):
                stuck[-1].add(name)
    finally:
        os.close(fd)
    try:
        os.rmdir(path)
    except OSError:
        pass


def _empty_files(fd: int, stuck: set[str]) -> str | None:
    """Remove every non-folder in the open folder `fd`; the name of a sub-folder to go
    into next, or None when none is left."""
    try:
        with os.scandir(fd) as entries:
            for entry in entries:
                if entry.name in stuck:
                    continue
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    is_dir = False
                if is_dir:
                    return entry.name
                if not _retry(lambda: os.unlink(entry.name, dir_fd=fd), fd):
                    stuck.add(entry.name)
    except OSError:
        pass  # cannot be listed: what is left stays
    return None


def _open_child(fd: int, name: str) -> int | None:
    for attempt in range(2):
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=fd)
        except PermissionError:
            if attempt:
                return None
            try:  # a folder of our own that its maker made unreadable
                os.chmod(name, 0o700, dir_fd=fd)
            except (OSError, NotImplementedError):
                return None
        except OSError:
            return None
    return None


def _retry(remove, fd: int) -> bool:
    """Run `remove`; on PermissionError make the open folder writable and try once more."""
    for attempt in range(2):
        try:
            remove()
            return True
        except FileNotFoundError:
            return True
        except PermissionError:
            if attempt:
                return False
            try:
                os.fchmod(fd, 0o700)
            except OSError:
                return False
        except OSError:
            return False
    return False
