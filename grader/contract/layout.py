"""Moving arrays between the canonical layout the checks use and a course's.

A layout is a string of axis letters (`NHWC`, `OIHW`, `DN`) and `1` for an axis of
size 1 (a column vector `O1`). A course's layout of an array is a permutation of the
canonical letters, with any number of `1`s.

    to_course(x, "NHWC", "NCHW")      x (N, H, W, C) -> (N, C, H, W)
    to_course(y, "N", "N|1N|N1")      the first of the alternatives a course accepts
    from_course(y, "NHWC", "NCHW")    back, or LayoutMismatch when y cannot be
                                      in the course's layout (wrong rank, a `1` axis
                                      that is not of size 1)
"""

from __future__ import annotations

import numpy as np


class LayoutMismatch(ValueError):
    """A returned array does not have the course's layout; the message says how."""


def check_compatible(canonical: str, course: str) -> None:
    """Raise ValueError unless `course` is a permutation of `canonical`'s letters (plus 1s);
    `N|1N|N1` gives alternatives a course accepts (the grader sends the first)."""
    for alternative in course.split("|"):
        _check_one(canonical, alternative)


def _check_one(canonical: str, course: str) -> None:
    if sorted(course.replace("1", "")) != sorted(canonical.replace("1", "")):
        raise ValueError(f"the layout {course!r} does not hold the axes {canonical!r}: "
                         f"use the letters {', '.join(canonical.replace('1', ''))}, each once, and 1 for an axis of size 1")


def _order(frm: str, to: str) -> list[int]:
    letters = frm.replace("1", "")
    return [letters.index(c) for c in to.replace("1", "")]


def to_course(value, canonical: str, course: str):
    """`value` (an array in the canonical layout) in the course's layout, C-contiguous."""
    course = course.split("|")[0]
    if not course or course == canonical or not isinstance(value, np.ndarray):
        return value
    if value.ndim != len(canonical.replace("1", "")):
        return value  # a check probing a wrong rank on purpose: pass it as it is
    moved = np.transpose(value, _order(canonical, course))
    shape = iter(moved.shape)
    return np.ascontiguousarray(moved.reshape([1 if c == "1" else next(shape) for c in course]))


def from_course(value, canonical: str, course: str, name: str):
    """`value` (returned in the course's layout) in the canonical layout."""
    if "|" in course:  # the first alternative whose rank fits
        options = course.split("|")
        fitting = [o for o in options if np.ndim(value) == len(o)
                   and all(np.shape(value)[i] == 1 for i, c in enumerate(o) if c == "1")]
        if not fitting:
            raise LayoutMismatch(f"{name} has shape {np.shape(value)}; the course's layout is "
                                 + " or ".join(_describe(o) for o in options))
        course = fitting[0]
    if not course or course == canonical:
        return value
    if not isinstance(value, np.ndarray):
        try:
            value = np.asarray(value)
        except Exception:  # noqa: BLE001 - not array-like: let the check say so
            return value
        if value.dtype == object:
            return value
    if value.ndim != len(course):
        raise LayoutMismatch(f"{name} has shape {value.shape}; the course's layout is {_describe(course)}")
    ones = [i for i, c in enumerate(course) if c == "1"]
    if any(value.shape[i] != 1 for i in ones):
        raise LayoutMismatch(f"{name} has shape {value.shape}; the course's layout is {_describe(course)}")
    squeezed = value.reshape([n for i, n in enumerate(value.shape) if i not in ones])
    return np.transpose(squeezed, _order(course, canonical))


def _describe(layout: str) -> str:
    return "(" + ", ".join(layout) + ")" if len(layout) > 1 else f"({layout},)"
