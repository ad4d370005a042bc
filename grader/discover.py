"""From PATH to the list of submissions: one per student, each with the file to
grade and the files that travel with it.

PATH is a folder holding one sub-folder per student (`alice/cnn_layers.py`) or one
file per student (`bob.py`, `carol.ipynb`), a single `.py` / `.ipynb` file, or a
class download as a zip (see `grader.classzip`). Learning-platform names are
understood: Canvas's flat `lastname[_LATE]_12345_67890_cnn_layers.py` (files of one
student grouped, the original names restored), Moodle's folders
`Ann Smith_12345_assignsubmission_file[_]` and Moodle's flat
`Ann Smith_12345_assignsubmission_file_cnn_layers.py`; the ids in those names are
kept on the submission (`lms`) so that grades and feedback can go back. Hidden
files, `__pycache__` and `.ipynb_checkpoints` are ignored; symbolic links are never followed. A student's
folder is walked with a loop, not recursion, to at most MAX_DEPTH folders down;
what lies deeper (or past the other bounds below) is left behind with a note on that
student.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from grader.models import LmsIdentity, clean_text

CODE_SUFFIXES = (".py", ".ipynb")
IGNORED_DIRS = {"__pycache__", ".ipynb_checkpoints", ".git", ".venv", "node_modules", "__MACOSX"}
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_TOTAL_BYTES = 50 * 1024 * 1024
# Inside a student's folder: at most this many folders down, this long a path (in
# bytes) and this many entries looked at; beyond, files are left behind with a note.
MAX_DEPTH = 32
MAX_PATH_BYTES = 1024
MAX_ENTRIES = 20_000
MAX_ENTRIES_LOOKED_AT = 1_000  # a folder's entries read to tell one student's folder from a class
MAX_CHOICES = 10  # code files read to choose the one to grade, when none has the contract's name
# Canvas (lib/content_zipper.rb): name[_LATE]_userid_attachmentid_original.py; a file uploaded
# again under a name it already had becomes "original-1.py". Anonymous grading writes
# "anon_<anonymous id>_..." instead, with no user id: never read as one.
CANVAS = re.compile(r"^(?!anon_)(?P<name>[^_]+?)(?P<late>_LATE)?_(?P<uid>\d+)_(?P<aid>\d+)_(?P<original>.+)$")
CANVAS_RESUBMIT = re.compile(r"^(?P<stem>.+?)-\d+(?P<suffix>\.\w+)$")
# Moodle (mod/assign/classes/downloader.php): a folder "Full name_participantid_assignsubmission_file"
# (with a trailing "_" before 4.1), or flat files "Full name_participantid_assignsubmission_file_x.py".
MOODLE = re.compile(r"^(?P<name>.+?)_(?P<pid>\d+)_assign(?:submission|feedback)_\w*$")
MOODLE_FLAT = re.compile(r"^(?P<name>.+?)_(?P<pid>\d+)_assignsubmission_file_(?P<original>.+)$")


class DiscoveryError(Exception):
    """PATH cannot be graded at all (a usage error)."""


@dataclass
class Submission:
    student: str  # valid text: a file name that is not UTF-8 is cleaned (see __post_init__)
    root: Path  # the student's folder, or the single file
    base: Path  # what `source` is relative to (the PATH folder)
    files: list[Path] = field(default_factory=list)  # every regular file, absolute
    main: Path | None = None
    notes: list[str] = field(default_factory=list)
    aliases: dict[Path, str] = field(default_factory=dict)  # file -> its original name (Canvas)
    lms: LmsIdentity | None = None  # who this is in Canvas or Moodle, from the download's names
    attachments: dict[Path, str] = field(default_factory=dict)  # file -> its Canvas attachment id

    def __post_init__(self) -> None:
        self.student = clean_text(self.student)

    def lms_identity(self) -> LmsIdentity | None:
        """The platform identity for the result: Canvas's feedback goes against the
        attachment id of the graded file (else of the first file the student sent)."""
        if self.lms is None or not self.attachments:
            return self.lms
        attachment = self.attachments.get(self.main) if self.main is not None else None
        if attachment is None:
            attachment = self.attachments[min(self.attachments, key=lambda f: self.name_of(f))]
        return self.lms.model_copy(update={"attachment_id": attachment})

    def name_of(self, path: Path) -> str:
        """The file's name as the student gave it."""
        return self.aliases.get(path, path.name)

    @property
    def is_folder(self) -> bool:
        return self.root.is_dir()

    @property
    def candidates(self) -> list[Path]:
        return [f for f in self.files if f.suffix in CODE_SUFFIXES]

    def relative(self, path: Path) -> str:
        try:
            return clean_text(path.relative_to(self.base).as_posix())
        except ValueError:
            return clean_text(path.name)

    def copies(self) -> list[tuple[Path, str]]:
        """(file, path inside the worker's folder) for everything that travels along."""
        if self.aliases:
            return [(f, self.name_of(f)) for f in self.files]
        if not self.is_folder:
            return [(self.root, self.root.name)]
        return [(f, f.relative_to(self.root).as_posix()) for f in self.files]

    def content_hash(self) -> str:
        digest = hashlib.sha256()
        digest.update(self.relative(self.main).encode() if self.main else b"-")
        for path, name in sorted(self.copies(), key=lambda p: p[1]):
            digest.update(name.encode("utf-8", "surrogateescape") + b"\0")  # the name's real bytes
            try:
                digest.update(_file_digest(path))
            except OSError:
                digest.update(b"unreadable")
        return digest.hexdigest()


def _file_digest(path: Path) -> bytes:
    """sha256 of a file, read in pieces: a code file is listed whatever its size."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path.name} is not a regular file")  # a FIFO would block for ever
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.digest()


def _ignored(name: str) -> bool:
    return name.startswith(".") or name in IGNORED_DIRS


def _walk_files(folder: Path, notes: list[str]) -> list[Path]:
    """The student's files, in os.walk's order (each folder's files by name, then its
    folders, depth first), walked with a loop, not recursion, and within bounds: folders
    more than MAX_DEPTH below `folder`, paths over MAX_PATH_BYTES and what comes after
    MAX_ENTRIES entries are not looked at, each named in one note."""
    files, total, seen = [], 0, 0
    too_deep: list[str] = []
    too_long: list[str] = []
    stack = [(folder, 0)]
    while stack:
        directory, depth = stack.pop()
        try:
            with os.scandir(directory) as listing:
                entries = []
                for entry in listing:
                    seen += 1
                    if seen > MAX_ENTRIES:
                        break
                    entries.append(entry)
        except OSError as exc:
            notes.append(f"{_shown(directory, folder)} could not be read ({exc.strerror}) and was left behind")
            continue
        subfolders = []
        for entry in sorted(entries, key=lambda e: e.name):
            if _ignored(entry.name):
                continue
            path = Path(entry.path)
            relative = path.relative_to(folder)
            try:
                if entry.is_symlink():
                    notes.append(f"{_shown(path, folder)} is a symbolic link and was not used")
                    continue
                if len(os.fsencode(relative)) > MAX_PATH_BYTES:
                    too_long.append(_shown(path, folder))
                    continue
                if entry.is_dir(follow_symlinks=False):
                    subfolders.append(path)
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue
                size = entry.stat(follow_symlinks=False).st_size
            except OSError as exc:
                notes.append(f"{_shown(path, folder)} could not be read ({exc.strerror}) and was left behind")
                continue
            if size > MAX_FILE_BYTES and path.suffix not in CODE_SUFFIXES:
                notes.append(f"{_shown(path, folder)} is over 10 MB and was left behind")
                continue
            total += min(size, MAX_FILE_BYTES)
            if total > MAX_TOTAL_BYTES:
                notes.append("the folder holds over 50 MB; the remaining files were left behind")
                return files
            files.append(path)
        if depth >= MAX_DEPTH:
            too_deep += [_shown(p, folder) for p in subfolders]
        else:
            stack += [(p, depth + 1) for p in reversed(subfolders)]
        if seen > MAX_ENTRIES:
            notes.append(f"the folder holds over {MAX_ENTRIES} files and folders; the rest were not looked at")
            break
    if too_deep:
        notes.append(f"{len(too_deep)} folder(s) more than {MAX_DEPTH} folders deep were not looked at, "
                     f"nor anything in them (first: {too_deep[0]})")
    if too_long:
        notes.append(f"{len(too_long)} file(s) or folder(s) whose path is over {MAX_PATH_BYTES} bytes were left "
                     f"behind (first: {too_long[0]})")
    return files


def _shown(path: Path, folder: Path) -> str:
    """A path inside the student's folder for a note: whole when short, else its first
    and last parts around how many folders were left out."""
    parts = path.relative_to(folder).parts if path != folder else (path.name,)
    if len(parts) > 6 or sum(len(p) for p in parts) > 200:
        parts = [p[:40] for p in parts[:2]] + [f"... {len(parts) - 3} folders ..."] + [parts[-1][:40]]
    return clean_text("/".join(parts))


def discover(path: Path, own_files: frozenset[str] = frozenset()) -> list[Submission]:
    """Every submission under `path`, sorted by student id. A folder whose top level holds
    an assignment's own file (`own_files`, e.g. cnn_layers.py) is one student's submission,
    named after the folder, unless its sub-folders hold such files too (a class)."""
    if not path.exists():
        raise DiscoveryError(f"{path} does not exist")
    if path.is_file():
        if path.suffix not in CODE_SUFFIXES:
            raise DiscoveryError(f"{path} is not a .py or .ipynb file (nor a folder of submissions)")
        return [Submission(path.stem, path, path.parent, [path])]
    if _one_students_folder(path, own_files):
        notes: list[str] = []
        moodle = MOODLE.match(path.name)
        return [Submission(moodle["name"] if moodle else path.name, path, path.parent,
                           _walk_files(path, notes), notes=notes)]
    submissions: dict[str, Submission] = {}
    for entry in sorted(path.iterdir()):
        if _ignored(entry.name):
            continue
        if entry.is_symlink():
            # A link could point anywhere (another class, the toolkit): never follow it.
            student = entry.stem if entry.suffix in CODE_SUFFIXES else entry.name
            sub = Submission(student, entry, path)
            sub.notes.append(f"{entry.name} is a symbolic link; links are not followed")
            _add(submissions, sub, entry)
        elif entry.is_dir():
            notes: list[str] = []
            moodle = MOODLE.match(entry.name)
            student, lms = entry.name, None
            if moodle:
                lms = LmsIdentity(system="moodle", name=moodle["name"], participant_id=moodle["pid"])
                student = _student_name(submissions, moodle["name"], lms)
            _add(submissions, Submission(student, entry, path, _walk_files(entry, notes), notes=notes, lms=lms),
                 entry)
        elif CANVAS.match(entry.name) and entry.is_file():
            _add_canvas_file(submissions, entry, path)
        elif MOODLE_FLAT.match(entry.name) and entry.is_file():
            _add_moodle_file(submissions, entry, path)
        elif entry.suffix in CODE_SUFFIXES:
            _add(submissions, Submission(entry.stem, entry, path, [entry]), entry)
    if not submissions:
        raise DiscoveryError(f"{path} holds no submissions (no .py or .ipynb files or student folders)")
    return sorted(submissions.values(), key=lambda s: s.student)


def _one_students_folder(path: Path, own_files: frozenset[str]) -> bool:
    if not own_files:
        return False
    entries = [e for e in sorted(path.iterdir())[:MAX_ENTRIES_LOOKED_AT] if not _ignored(e.name)]
    if not any(e.name in own_files and e.is_file() and not e.is_symlink() for e in entries):
        return False
    return not any(e.is_dir() and not e.is_symlink() and any((e / name).is_file() for name in own_files)
                   for e in entries)


def _add(submissions: dict[str, Submission], sub: Submission, entry: Path) -> None:
    """One submission per student: when two entries give the same id (alice.py and
    alice.ipynb, a file and a Moodle folder), the first is graded and the other is
    named on it, never dropped in silence."""
    first = submissions.get(sub.student)
    if first is None:
        submissions[sub.student] = sub
    else:
        first.notes.append(f"{entry.name} was not graded: it is also {sub.student}'s, "
                           f"and {first.root.name} came first")


def _same_person(a: LmsIdentity | None, b: LmsIdentity | None) -> bool:
    if a is None or b is None or a.system != b.system:
        return False
    return (a.user_id, a.participant_id) == (b.user_id, b.participant_id)


def _student_name(submissions: dict[str, Submission], name: str, lms: LmsIdentity) -> str:
    """The student id for `name`: the name itself, unless another person already has it
    (two students may share a name; their platform ids tell them apart). A Moodle name
    that a plain file or folder already has is left to `_add`, which names the second
    entry on the first: a student's own copy beside the download is one person's."""
    other = submissions.get(name)
    if other is None or _same_person(other.lms, lms) or (other.lms is None and lms.system == "moodle"):
        return name
    return f"{name}_{lms.user_id or lms.participant_id}"


def _add_canvas_file(submissions: dict[str, Submission], entry: Path, base: Path) -> None:
    match = CANVAS.match(entry.name)
    lms = LmsIdentity(system="canvas", name=match["name"], user_id=match["uid"], late=bool(match["late"]))
    _add_platform_file(submissions, entry, base, lms, match["original"], match["aid"])


def _add_moodle_file(submissions: dict[str, Submission], entry: Path, base: Path) -> None:
    match = MOODLE_FLAT.match(entry.name)
    lms = LmsIdentity(system="moodle", name=match["name"], participant_id=match["pid"])
    _add_platform_file(submissions, entry, base, lms, match["original"], None)


def _add_platform_file(submissions: dict[str, Submission], entry: Path, base: Path, lms: LmsIdentity,
                       original: str, attachment: str | None) -> None:
    """One file of a flat download: grouped with the student's other files, under its
    original name."""
    again = CANVAS_RESUBMIT.match(original) if lms.system == "canvas" else None
    if again:
        original = again["stem"] + again["suffix"]
    student = _student_name(submissions, lms.name, lms)
    sub = submissions.get(student)
    if sub is None:
        sub = Submission(student, base, base, lms=lms)
        submissions[student] = sub
    elif not _same_person(sub.lms, lms):  # a folder of the same name came first
        sub.notes.append(f"{entry.name} was not graded: it is also {student}'s, and {sub.root.name} came first")
        return
    if original in sub.aliases.values():
        sub.notes.append(f"{entry.name} was ignored: {student} has a newer {original}")
        return
    if lms.late and sub.lms is not None and not sub.lms.late:
        sub.lms = sub.lms.model_copy(update={"late": True})
    sub.files.append(entry)
    sub.aliases[entry] = original
    if attachment is not None:
        sub.attachments[entry] = attachment


def _functions_of(sub: Submission, path: Path) -> set[str]:
    """The top-level names a file defines, for choosing a file (errors surface later, when
    loading). Read as grading reads it, under the same bounds and with the same name, so
    that a file that is costly to read is read once (grader.source keeps the answer)."""
    from grader.source import SourceError, load

    try:
        return load(path, sub.relative(path)).functions
    except SourceError:
        return set()


def defines_any(sub: Submission, functions) -> bool:
    """Does one of the submission's files (the first few) define one of `functions`?"""
    wanted = set(functions)
    return any(_functions_of(sub, f) & wanted for f in sub.candidates[:MAX_CHOICES])


def choose_main(sub: Submission, file_name: str, functions: tuple[str, ...]) -> None:
    """The contract's file name wins; else the file that defines most required functions."""
    candidates = sub.candidates
    if not candidates:
        return
    named = [f for f in candidates if sub.name_of(f) == file_name]
    if named:
        sub.main = min(named, key=lambda f: len(f.parts))
    elif len(candidates) == 1:
        sub.main = candidates[0]
    else:
        # Each file read can cost its reading child seconds: a few, the shallowest first.
        considered = candidates if len(candidates) <= MAX_CHOICES else \
            sorted(candidates, key=lambda f: (len(f.parts), f.suffix != ".py", f.as_posix()))[:MAX_CHOICES]
        scored = [(len(_functions_of(sub, f) & set(functions)), -len(f.parts), f.suffix == ".py", f)
                  for f in considered]
        scored.sort(key=lambda s: (s[0], s[1], s[2]), reverse=True)
        sub.main = scored[0][3]
        read = f"the {len(candidates)}" if considered is candidates else \
            f"the {MAX_CHOICES} least deep of its {len(candidates)}"
        sub.notes.append(f"graded {sub.relative(sub.main)}: of {read} code files it defines "
                         f"the most required functions ({scored[0][0]})")


def detect_assignment(subs: list[Submission], assignments: dict) -> str | None:
    """The one assignment the files make clear, by contract file names, else by the
    functions they define; None when it is ambiguous."""
    by_name = {a.file_name: name for name, a in assignments.items()}
    named = {by_name[s.name_of(f)] for s in subs for f in s.candidates if s.name_of(f) in by_name}
    if len(named) == 1:
        return named.pop()
    if len(named) > 1:
        return None
    votes = {name: 0 for name in assignments}
    for sub in subs[:50]:
        defined = set()
        for f in sub.candidates[:5]:
            defined |= _functions_of(sub, f)
        for name, assignment in assignments.items():
            votes[name] += len(defined & set(assignment.functions))
    ranked = sorted(votes.items(), key=lambda kv: kv[1], reverse=True)
    if ranked and ranked[0][1] > 0 and (len(ranked) == 1 or ranked[0][1] > ranked[1][1]):
        return ranked[0][0]
    return None
