"""The small language a contract file writes calls and results in.

A call is the course function's parameters in order, each saying where its value
comes from in the canonical call the checks make:

    x:NCHW            the canonical argument `x`, its axes in this order
    X=x:DN            the course calls it `X`; it is the canonical `x`, transposed
    b:O1              a vector as a column (n, 1); `1O` a row; `O` as it is
    labels:N|1N|N1    a course that takes any of these shapes (the grader sends the first)
    labels            the canonical argument as it is (ints, options, labels)
    conv_param={stride,pad}
                      a dict of canonical arguments under their own names
    pool_param={pool_height:size,pool_width:size,stride}
                      a dict whose keys rename canonical arguments
    padding=[pad,pad] a list built from canonical arguments
    cache<conv_forward_naive
                      the cache the course's `conv_forward_naive` returned for the
                      same canonical inputs (it stays in the worker: a handle)

A result is one value or a tuple of them, each a canonical result name with an
optional layout (`y:NCHW`) and optionally the course's name for it (`Z=y:ON`), or
`cache` (kept in the worker), or `_` (ignored):

    y:NCHW            (y:NCHW, cache)            (dldX=dx:DN, dldW=dw:OD, dldb=db:O1)

Axis letters name roles, one letter per axis; a course's layout of an array is a
permutation of the canonical layout's letters, with `1` for an extra axis of size 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_ARRAY = re.compile(rf"^({NAME})(?::([A-Za-z1|]+))?$")
_DICT = re.compile(rf"^({NAME})=\{{(.*)\}}$")
_LIST = re.compile(rf"^({NAME})=\[(.*)\]$")
_CACHE = re.compile(rf"^({NAME})<({NAME})$")
_PARAM = re.compile(rf"^({NAME})(?:=({NAME}))?(?::([A-Za-z1|]+))?$")


class SignatureError(ValueError):
    """A call or result that the contract language cannot read; the message says why."""


@dataclass(frozen=True)
class Param:
    """One parameter of a course function: its name and where its value comes from."""

    name: str
    kind: str  # value | dict | list | cache
    source: str = ""  # the canonical argument (value)
    layout: str = ""  # axis letters, "" when passed as it is
    keys: tuple[tuple[str, str], ...] = ()  # dict: (key, canonical argument); list: ("", argument)
    cache_of: str = ""  # the course function whose cache this is

    @property
    def sources(self) -> tuple[str, ...]:
        if self.kind == "value":
            return (self.source,)
        return tuple(src for _, src in self.keys)


@dataclass(frozen=True)
class Result:
    """One returned value: a canonical result name (or `cache`, or `_`) and its layout."""

    name: str
    layout: str = ""
    course_name: str = ""  # what the course calls it (`Z=y:ON`), for its docstrings


@dataclass(frozen=True)
class Returns:
    items: tuple[Result, ...]
    is_tuple: bool

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.items)


def _split(text: str) -> list[str]:
    """Split on spaces and commas outside braces and brackets."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth -= 1
        if (ch.isspace() or ch == ",") and depth == 0:
            if current:
                parts.append(current)
            current = ""
        else:
            current += ch
    if depth != 0:
        raise SignatureError(f"unbalanced brackets in {text!r}")
    if current:
        parts.append(current)
    return parts


def _layout(layout: str, what: str) -> str:
    if not layout:
        return layout
    for alternative in layout.split("|"):
        letters = alternative.replace("1", "")
        if not alternative or len(set(letters)) != len(letters):
            raise SignatureError(f"{what}: the layout {layout!r} names an axis twice, or is empty")
    return layout


def parse_call(text: str) -> tuple[Param, ...]:
    params = []
    for token in _split(text.strip()):
        token = token.replace(" ", "")
        if m := _DICT.match(token):
            keys = []
            for item in filter(None, m.group(2).split(",")):
                key, _, src = item.partition(":")
                if not re.fullmatch(NAME, key) or (src and not re.fullmatch(NAME, src)):
                    raise SignatureError(f"{token!r}: {item!r} is not `key` or `key:argument`")
                keys.append((key, src or key))
            params.append(Param(m.group(1), "dict", keys=tuple(keys)))
        elif m := _LIST.match(token):
            items = [i for i in m.group(2).split(",") if i]
            if not items or not all(re.fullmatch(NAME, i) for i in items):
                raise SignatureError(f"{token!r}: a list holds canonical argument names")
            params.append(Param(m.group(1), "list", keys=tuple(("", i) for i in items)))
        elif m := _CACHE.match(token):
            params.append(Param(m.group(1), "cache", cache_of=m.group(2)))
        elif m := _PARAM.match(token):
            name, source, layout = m.group(1), m.group(2) or m.group(1), m.group(3) or ""
            params.append(Param(name, "value", source=source, layout=_layout(layout, token)))
        else:
            raise SignatureError(f"cannot read the parameter {token!r}")
    names = [p.name for p in params]
    for name in names:
        if names.count(name) > 1:
            raise SignatureError(f"the parameter {name!r} is listed twice")
    return tuple(params)


def parse_returns(text: str) -> Returns:
    text = text.strip()
    is_tuple = text.startswith("(") and text.endswith(")")
    body = text[1:-1] if is_tuple else text
    items = []
    for token in _split(body):
        m = _PARAM.match(token.replace(" ", ""))
        if not m:
            raise SignatureError(f"cannot read the result {token!r}")
        name = m.group(2) or m.group(1)
        items.append(Result(name, _layout(m.group(3) or "", token), m.group(1) if m.group(2) else name))
    if not items:
        raise SignatureError("a function returns at least one value")
    if not is_tuple and len(items) > 1:
        raise SignatureError(f"write several results as a tuple: ({text})")
    named = [r.name for r in items if r.name not in ("_",)]
    for name in named:
        if named.count(name) > 1:
            raise SignatureError(f"the result {name!r} is listed twice")
    return Returns(tuple(items), is_tuple)
