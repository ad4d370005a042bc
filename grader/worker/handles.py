"""Values a student's function returned that stay where it ran (a layer's cache):
only a handle travels, and goes back as an argument of a later call."""

from __future__ import annotations

from dataclasses import dataclass

# A worker keeps the values of this many calls; a check never needs older ones.
KEEP_LAST = 64


@dataclass(frozen=True)
class Handle:
    id: int


class Kept:
    """The kept values of one worker (or in-process stand-in), the oldest dropped first."""

    def __init__(self, limit: int = KEEP_LAST):
        self._values: dict[int, object] = {}
        self._next = 0
        self._limit = limit

    def keep(self, value) -> Handle:
        self._next += 1
        self._values[self._next] = value
        while len(self._values) > self._limit:
            del self._values[next(iter(self._values))]
        return Handle(self._next)

    def get(self, handle: Handle):
        if handle.id not in self._values:
            raise KeyError(f"handle {handle.id} is no longer kept")
        return self._values[handle.id]

    def replace_in(self, args: tuple) -> tuple:
        """`args` with every top-level handle replaced by its value."""
        return tuple(self.get(a) if isinstance(a, Handle) else a for a in args)

    def keep_from(self, value, positions: tuple[int, ...]):
        """`value` (a tuple or list) with the items at `positions` kept and replaced by
        handles; anything else is returned as it is (the caller says it is wrong)."""
        if not positions or not isinstance(value, (tuple, list)):
            return value
        items = list(value)
        for i in positions:
            if 0 <= i < len(items):
                items[i] = self.keep(items[i])
        return tuple(items)
