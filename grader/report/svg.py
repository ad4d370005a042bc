"""Geometry and colours for the inline SVG pictures, computed here and drawn by the
templates (`templates/_svg.html.j2`): no markup is built in Python.

- `heatmaps`: expected, got and their difference for a 2-D slice, because a flipped
  or shifted pattern is seen at a glance where a table of numbers has to be read.
- `histogram`: the class's scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# A map is at most this many cells a side: larger slices are cropped around the
# first mismatch, so a page with several failed checks stays small.
MAX_SIDE = 24
# Cells are drawn this many pixels wide; small matrices get room for their numbers.
MAP_PIXELS = 168
MIN_CELL, MAX_CELL = 6, 30
NUMBERS_UP_TO = 8  # rows and columns up to which each cell shows its value...
NUMBER_CELL = 38  # ...in cells this wide, room for "-0.365"

# A diverging scale (ColorBrewer RdBu): negative blue, zero near white, positive red,
# so the sign of a value and of an error reads without a legend.
NEGATIVE = (33, 102, 172)
ZERO = (247, 247, 247)
POSITIVE = (178, 24, 43)
MISSING = "#bbbbbb"


@dataclass
class Cell:
    x: int
    y: int
    fill: str
    value: str  # the number, for the tooltip and (small maps) the cell's text
    ink: str  # text colour that stays readable on `fill`
    bad: bool = False  # the difference map outlines cells outside tolerance


@dataclass
class Heatmap:
    title: str
    rows: int
    cols: int
    cell: int
    scale: float  # the colour scale runs from -scale to +scale
    cells: list[Cell] = field(default_factory=list)
    show_numbers: bool = False

    @property
    def width(self) -> int:
        return self.cols * self.cell

    @property
    def height(self) -> int:
        return self.rows * self.cell


@dataclass
class HeatmapSet:
    label: str
    maps: list[Heatmap]
    note: str = ""  # says so when the slice was cropped


def colour(value: float, scale: float) -> str:
    if not math.isfinite(value):
        return MISSING
    t = 0.0 if scale <= 0 else max(-1.0, min(1.0, value / scale))
    end = POSITIVE if t > 0 else NEGATIVE
    a = abs(t)
    rgb = (round(z + (e - z) * a) for z, e in zip(ZERO, end))
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def ink(fill: str) -> str:
    r, g, b = (int(fill[i:i + 2], 16) for i in (1, 3, 5))
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#ffffff"


def fmt(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else str(value)


def _matrix(data) -> list[list[float]]:
    """A rectangular, non-empty list of lists of numbers, or ValueError."""
    if not isinstance(data, list) or not data or not all(isinstance(r, list) for r in data):
        raise ValueError("not a 2-D list")
    width = len(data[0])
    if width == 0 or any(len(r) != width for r in data):
        raise ValueError("rows of different lengths")
    out = []
    for row in data:
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row):
            raise ValueError("not numbers")
        out.append([float(v) for v in row])
    return out


def _window(n: int, centre: int) -> tuple[int, int]:
    if n <= MAX_SIDE:
        return 0, n
    start = min(max(0, centre - MAX_SIDE // 2), n - MAX_SIDE)
    return start, start + MAX_SIDE


def _map(title: str, m: list[list[float]], scale: float, bad: list[list[bool]] | None = None) -> Heatmap:
    rows, cols = len(m), len(m[0])
    numbers = rows <= NUMBERS_UP_TO and cols <= NUMBERS_UP_TO
    cell = NUMBER_CELL if numbers else max(MIN_CELL, min(MAX_CELL, MAP_PIXELS // max(rows, cols)))
    heat = Heatmap(title, rows, cols, cell, scale, show_numbers=numbers)
    for i, row in enumerate(m):
        for j, v in enumerate(row):
            fill = colour(v, scale)
            heat.cells.append(Cell(j * cell, i * cell, fill, fmt(v), ink(fill), bool(bad and bad[i][j])))
    return heat


def heatmaps(label: str, got, expected, focus: tuple[int, int] = (0, 0),
             rtol: float = 1e-4, atol: float = 1e-8) -> HeatmapSet:
    """Expected, got (one colour scale, so equal values look equal) and got - expected
    (its own scale, so small errors still show). Raises ValueError on data that is
    not two matrices of the same shape."""
    g, e = _matrix(got), _matrix(expected)
    if len(g) != len(e) or len(g[0]) != len(e[0]):
        raise ValueError("got and expected differ in shape")
    rows, cols = len(e), len(e[0])
    (r0, r1), (c0, c1) = _window(rows, focus[0]), _window(cols, focus[1])
    note = ""
    if (r1 - r0, c1 - c0) != (rows, cols):
        note = f"showing rows {r0}-{r1 - 1} and columns {c0}-{c1 - 1} of {rows}x{cols}, around the first mismatch"
    g = [row[c0:c1] for row in g[r0:r1]]
    e = [row[c0:c1] for row in e[r0:r1]]
    d = [[a - b for a, b in zip(gr, er)] for gr, er in zip(g, e)]
    finite = [abs(v) for m in (g, e) for row in m for v in row if math.isfinite(v)]
    scale = max(finite, default=0.0)
    # Cells outside tolerance are outlined. grader.compare measures against the whole
    # array's largest value; the results keep only this slice, the nearest stand-in.
    limit = rtol * max((abs(v) for row in _matrix(expected) for v in row if math.isfinite(v)), default=0.0) + atol
    bad = [[not (math.isfinite(v) and abs(v) <= limit) for v in row] for row in d]
    dscale = max((abs(v) for row in d for v in row if math.isfinite(v)), default=0.0)
    return HeatmapSet(label, [_map("expected", e, scale), _map("got", g, scale),
                              _map("got - expected", d, dscale, bad)], note)


@dataclass
class Bar:
    x: int
    y: int
    width: int
    height: int
    count: int
    label: str


@dataclass
class Histogram:
    width: int
    height: int
    baseline: int
    bars: list[Bar]
    caption: str


def histogram(scores: list[float], max_score: float, width: int = 480, height: int = 160) -> Histogram:
    """One bar per point where the maximum is a small whole number (a 7-point
    assignment reads best as 0..7), else ten bars of 10% each."""
    top_margin, bottom_margin = 16, 22
    whole = max_score > 0 and float(max_score).is_integer() and max_score <= 20 \
        and all(float(s).is_integer() for s in scores)
    if whole:
        n = int(max_score) + 1
        labels = [str(i) for i in range(n)]
        index = [int(s) for s in scores]
        caption = "points"
    else:
        n = 10
        labels = [f"{10 * i}-{10 * i + 9}" for i in range(n - 1)] + ["90-100"]
        # Full marks fall in the last bar (90-100%).
        index = [min(n - 1, int(10 * s / max_score)) if max_score > 0 else 0 for s in scores]
        caption = "% of the points"
    counts = [0] * n
    for i in index:
        counts[max(0, min(n - 1, i))] += 1
    tallest = max(counts, default=0) or 1
    slot = width // n
    usable = height - top_margin - bottom_margin
    bars = []
    for i, count in enumerate(counts):
        h = round(usable * count / tallest)
        bars.append(Bar(i * slot + 2, height - bottom_margin - h, slot - 4, h, count, labels[i]))
    return Histogram(n * slot, height, height - bottom_margin, bars, caption)
