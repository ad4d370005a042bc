"""How alike two submissions' code is: syntax-tree fingerprints winnowed as in MOSS.

Each file is parsed and its syntax tree read in order as a sequence of node kinds,
with the student's own names (variables, functions, parameters) and every literal
reduced to a placeholder and comments and docstrings gone, so that renaming,
reformatting and recommenting change nothing. Every run of K consecutive nodes is
hashed; winnowing keeps the smallest hash of each window of WINDOW hashes
(Schleimer, Wilkerson and Aiken, "Winnowing: local algorithms for document
fingerprinting", SIGMOD 2003), so that any passage of at least K + WINDOW - 1 nodes
two files share gives both the same fingerprint, wherever it stands: reordered
functions still match. Code the template holds is no one's own: a node inside any run
of the template's counts for nobody, and a run of such nodes alone is never
fingerprinted. A passage that more than `common` submissions share (MOSS's `-m`) is
left out of every comparison: code many write alike says nothing about two of them.

Only the grader's own process reads here, and only parses: nothing of a submission runs.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import itertools
from collections import Counter
from dataclasses import dataclass, field

K = 12  # nodes per fingerprinted run: about one line of code
WINDOW = 8  # so every shared passage of K + WINDOW - 1 = 19 nodes is found
MAX_CODE_CHARS = 200_000  # files past this are not compared (parsing them here costs too much memory)
_BUILTINS = frozenset(dir(builtins))  # `range`, `len`, `ValueError`: a copier cannot rename these


class NotComparable(Exception):
    """This code cannot be fingerprinted; the message says why."""


@dataclass
class Fingerprint:
    """One file's fingerprints: each hash kept, with the node positions where its run
    starts, and per node its source line, None where the node is the template's."""

    name: str
    lines: list[int | None]
    hashes: dict[int, list[int]] = field(default_factory=dict)  # kept hash -> node positions
    own_before: list[int] = field(init=False)  # per position, how many of the nodes before it are its own

    def __post_init__(self) -> None:
        self.own_before = list(itertools.accumulate((line is not None for line in self.lines), initial=0))


@dataclass
class Pair:
    a: str
    b: str
    similarity: float  # the share of both files' own code that the other holds too
    share_a: float  # of a's own code, the share found in b
    share_b: float


def statements(text: str) -> list[list[tuple[str, int]]]:
    """The syntax tree of `text` in source order, as (kind, line) per node, in a list per
    top-level statement."""
    if len(text) > MAX_CODE_CHARS:
        raise NotComparable(f"its code is over {MAX_CODE_CHARS // 1000} kB")
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError) as exc:
        raise NotComparable(f"it does not parse ({getattr(exc, 'msg', exc)})") from None
    except (RecursionError, MemoryError):
        raise NotComparable("it is nested too deeply to parse") from None
    found = []
    for statement in tree.body:
        found.append([])
        stack = [(statement, statement.lineno)]
        while stack:  # depth first, in source order, without recursion: nesting is the student's
            node, line = stack.pop()
            if isinstance(node, ast.expr_context) or _is_docstring(node):
                continue
            line = getattr(node, "lineno", line)
            found[-1].append((_kind(node), line))
            stack.extend((child, line) for child in reversed(list(ast.iter_child_nodes(node))))
    return [part for part in found if part]


def nodes(text: str) -> list[tuple[str, int]]:
    """The syntax tree of `text` in source order, as (kind, line) per node."""
    return [node for statement in statements(text) for node in statement]


def _is_docstring(node) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _kind(node) -> str:
    if isinstance(node, ast.Name):
        return node.id if node.id in _BUILTINS else "name"
    if isinstance(node, ast.Attribute):
        return "." + node.attr  # x.shape, np.pad: a library's names stay
    if isinstance(node, ast.Constant):  # any number is a number, any string a string
        value = node.value
        if value is None or isinstance(value, bool):
            return repr(value)
        return "text" if isinstance(value, (str, bytes)) else "number"
    return type(node).__name__


def _hash(run: tuple[str, ...]) -> int:
    digest = hashlib.blake2b("\0".join(run).encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big")  # the same in every run, unlike hash()


def runs(kinds: list[str]) -> list[int]:
    """The hash of every run of K nodes, by its first node."""
    return [_hash(tuple(kinds[i:i + K])) for i in range(len(kinds) - K + 1)]


def fingerprint(name: str, text: str, template: set[int]) -> Fingerprint:
    """`text`'s winnowed fingerprints. A node is the template's when it is inside a run
    or a top-level statement the template holds (`template_prints`): a stub kept as it
    was, wherever it stands, is no one's own; so is a run of the template's nodes alone."""
    found, theirs = [], bytearray()
    for statement in statements(text):
        found += statement
        theirs += (b"\x01" if _statement_hash(statement) in template else b"\x00") * len(statement)
    hashes = runs([kind for kind, _ in found])
    for i, h in enumerate(hashes):
        if h in template:
            theirs[i:i + K] = b"\x01" * K
    own = [(h, i) for i, h in enumerate(hashes) if 0 in theirs[i:i + K]]
    result = Fingerprint(name, [None if theirs[i] else line for i, (_, line) in enumerate(found)])
    chosen = set()
    for start in range(max(len(own) - WINDOW + 1, 1 if own else 0)):
        window = own[start:start + WINDOW]
        # the rightmost smallest hash of the window (robust winnowing)
        best = min(range(len(window)), key=lambda j: (window[j][0], -j))
        chosen.add(window[best])
    for h, i in sorted(chosen, key=lambda item: item[1]):
        result.hashes.setdefault(h, []).append(i)
    return result


def template_prints(texts: list[str]) -> set[int]:
    """The hashes of every run of K nodes and of every top-level statement in the
    template's code (a file that does not parse adds none)."""
    found = set()
    for text in texts:
        try:
            parts = statements(text)
        except NotComparable:
            continue
        found.update(runs([kind for statement in parts for kind, _ in statement]))
        found.update(_statement_hash(statement) for statement in parts)
    return found


def _statement_hash(statement: list[tuple[str, int]]) -> int:
    return _hash(("statement",) + tuple(kind for kind, _ in statement))


def compare(a: Fingerprint, b: Fingerprint, ignored: set[int] = frozenset(),
            sizes: dict[str, int] | None = None) -> Pair | None:
    """How much of a and b the other holds; None when they share no fingerprint.
    `sizes`: each file's own code in nodes, `ignored` left out, when already counted."""
    shared = (a.hashes.keys() & b.hashes.keys()) - ignored
    if not shared:
        return None
    sizes = sizes if sizes is not None else {f.name: own_size(f, ignored) for f in (a, b)}
    size_a, size_b = sizes[a.name], sizes[b.name]
    matched_a = _covered(a, (p for h in shared for p in a.hashes[h]))
    matched_b = _covered(b, (p for h in shared for p in b.hashes[h]))
    return Pair(a.name, b.name, similarity=(matched_a + matched_b) / max(size_a + size_b, 1),
                share_a=matched_a / max(size_a, 1), share_b=matched_b / max(size_b, 1))


def own_size(f: Fingerprint, ignored: set[int] = frozenset()) -> int:
    """The nodes of f's own code that its fingerprints cover, `ignored` ones left out."""
    return _covered(f, (p for h, ps in f.hashes.items() if h not in ignored for p in ps))


def _covered(f: Fingerprint, positions) -> int:
    """How many of f's own nodes the K-node runs starting at `positions` cover together."""
    total, end = 0, 0
    for p in sorted(positions):
        total += f.own_before[p + K] - f.own_before[max(p, end)]
        end = p + K
    return total


def passages(a: Fingerprint, b: Fingerprint,
             ignored: set[int] = frozenset()) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The code a and b share as passages: runs of shared fingerprints that follow each
    other in both files, each as its (first, last) line in a and in b, in a's order."""
    shared = (a.hashes.keys() & b.hashes.keys()) - ignored
    matches = sorted(match for h in shared for match in _occurrences(a.hashes[h], b.hashes[h]))
    passages: list[list[int]] = []  # [first a, last a, first b, last b] in node positions
    for pa, pb in matches:
        for passage in passages:
            # the next part of a passage: it starts within a run's reach after it, in both files
            if passage[1] <= pa <= passage[1] + K + WINDOW and passage[3] <= pb <= passage[3] + K + WINDOW:
                passage[1], passage[3] = pa, pb
                break
        else:
            passages.append([pa, pa, pb, pb])

    def lines(f: Fingerprint, first: int, last: int) -> tuple[int, int]:
        span = [line for line in f.lines[first:last + K] if line is not None]  # own code: never empty
        return min(span), max(span)

    return [(lines(a, p[0], p[1]), lines(b, p[2], p[3])) for p in passages]


def _occurrences(in_a: list[int], in_b: list[int]) -> list[tuple[int, int]]:
    """A fingerprint found several times in each file (a line repeated in forward and
    backward): the first in a with the first in b and so on, not every one with every one,
    which would make passages of code that merely repeats."""
    pairs = list(zip(in_a, in_b))
    pairs += [(pa, in_b[-1]) for pa in in_a[len(in_b):]] + [(in_a[-1], pb) for pb in in_b[len(in_a):]]
    return pairs


def common_runs(prints: list[Fingerprint], common: int) -> set[int]:
    """Fingerprints more than `common` of the files hold: code written alike by many."""
    counts = Counter(h for f in prints for h in f.hashes)
    return {h for h, n in counts.items() if n > common}


def rank(prints: list[Fingerprint], ignored: set[int] = frozenset()) -> list[Pair]:
    """Every pair that shares code, `ignored` fingerprints left out, most alike first."""
    sizes = {f.name: own_size(f, ignored) for f in prints}
    pairs = [pair for a, b in itertools.combinations(prints, 2)
             if (pair := compare(a, b, ignored, sizes)) is not None]
    return sorted(pairs, key=lambda p: (-p.similarity, p.a, p.b))
