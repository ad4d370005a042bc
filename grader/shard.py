"""Which shard of a class a student belongs to, for job arrays (`grade PATH --shard K/N`).

A student's shard is a hash of their id, so that adding or removing students never
moves anyone else: a shard graded before a late submission arrived stays valid.
Shards are numbered 1..N, as Slurm's and GitHub's array indices usually are.
The id hashed is the one results.json records (`clean_text`), so that `grade merge`
can check every student's shard from the results alone.
"""

from __future__ import annotations

import hashlib
import json
import re

from grader.models import ShardInfo, clean_text

_FORM = re.compile(r"(\d+)/(\d+)")


def parse_shard(text: str) -> tuple[int, int]:
    """`K/N` as (K, N); ValueError with the one line to show otherwise."""
    match = _FORM.fullmatch(text.strip())
    if match is None or not 1 <= int(match[1]) <= int(match[2]):
        raise ValueError(f"--shard takes K/N with 1 <= K <= N (shards are numbered from 1), got {text!r}")
    return int(match[1]), int(match[2])


def shard_of(student: str, count: int) -> int:
    """The shard (1..count) of the student with this id."""
    digest = hashlib.sha256(clean_text(student).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def class_digest(students) -> str:
    """A digest of a class's list of ids, whatever their order."""
    ids = sorted(clean_text(s) for s in students)
    return hashlib.sha256(json.dumps(ids, ensure_ascii=True).encode("ascii")).hexdigest()


def select(subs: list, index: int, count: int) -> tuple[list, ShardInfo]:
    """The submissions of shard `index` of `count`, and what results.json records of it."""
    mine = [s for s in subs if shard_of(s.student, count) == index]
    return mine, ShardInfo(index=index, count=count, students=len(mine), class_students=len(subs),
                           class_digest=class_digest(s.student for s in subs))
