"""The students' file of a course, written from its contract.

    python -m grader.contract.template assignments/fman45   # template/layers.py and fman45.ipynb

Every function students write gets its course name and parameters, a docstring that
gives each array's shape in the course's own layout and axis names, and a body that
raises NotImplementedError. What a function does comes from the canonical contract
(`summary`, `about` and `dims` in `assignments/<based_on>/canonical.toml`), in no layout
in particular; the course adds its own sentence (`description`) and its names for the
axes (`[course] dims`). The course's own code in the same file (`graded = false`) is
listed in a comment only: its code is the course's, not ours.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path

from grader.contract.model import Contract, CourseFunction
from grader.contract.signature import Param

WIDTH = 88
KEEP = "\x1f"  # a space that does not break a line
SHAPE = re.compile(r"\((?:[^() ,]+, )*[^() ,]+,?\)")  # (N, C, H, W), (M,), (out, 1)
TEMPLATE_DIR = "template"


def template_path(contract: Contract) -> Path:
    """Where a course keeps its students' file: `template/<file_name>` in its folder."""
    return contract.path.parent / TEMPLATE_DIR / contract.info.file_name


def course_template(contract: Contract, forbidden_imports: tuple[str, ...] | list[str] = ()) -> str:
    """The source of the students' file for `contract`."""
    parts = [_module_docstring(contract, forbidden_imports), "",
             "import numpy as np  # noqa: F401 - students use it; a linter must not remove it", ""]
    course_code = _course_code_comment(contract)
    if course_code:
        parts += [course_code, ""]
    for part in contract.functions.values():
        if part.graded:
            parts += ["", _function(contract, part), ""]
    return "\n".join(parts).rstrip("\n") + "\n"


# ----------------------------------------------------------------- the module
def _module_docstring(contract: Contract, forbidden: tuple[str, ...] | list[str]) -> str:
    info = contract.info
    file_name = info.file_name
    title = info.title or info.name
    lines = _wrap(f'"""{title} (assignment `{info.name}`): the file you write and hand in.', "") + [""]
    if info.description:
        lines += _wrap(info.description, "") + [""]
    lines += _wrap("Write the functions below. Keep each one's name and parameters exactly as they "
                   "are: the grader calls them by name, with arrays in the shapes their docstrings give, "
                   "and judges them by what they return. Replace every ``raise NotImplementedError(...)`` "
                   "line with your own code.", "")
    layout = _layout_sentences(contract)
    if layout:
        lines += [""] + _wrap("Shapes: " + " ".join(layout), "")
    rules = []
    if forbidden:
        names = list(forbidden)
        shown = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
        rules.append(f"Import nothing but NumPy: the grader refuses {shown}.")
    rules += ["Never write into an input array, the upstream gradient included: the caller still "
              "needs it. ``a += ...`` or ``a[...] = ...`` on an argument changes the caller's array, "
              "so build your results in new arrays.",
              "Loops are allowed: a correct loop version gets full marks; speed is reported, not scored."]
    lines += ["", "Rules:", ""]
    for rule in rules:
        lines += _wrap(rule, "- ", "  ")
    lines += [""] + _wrap("Checking your work: in a terminal, in the folder that holds this file, run", "")
    lines += ["", f"    grade {file_name}", ""]
    lines += _wrap(f"(or ``python -m grader {file_name}``). It runs the public checks and prints, for each "
                   "function, whether it passed and, if not, what went wrong.", "")
    lines.append('"""')
    return "\n".join(lines)


def _layout_sentences(contract: Contract) -> list[str]:
    """Where the batch is, and whether a shape keeps an axis of size 1, across the
    arrays of the functions students write."""
    positions, column = set(), None
    for part in contract.functions.values():
        if not part.graded:
            continue
        for name, canonical_layout, layout in _arrays(contract, part):
            course = layout or canonical_layout
            if "N" in canonical_layout:
                letters = course
                positions.add("first" if letters.index("N") == 0 else
                              "last" if letters.index("N") == len(letters) - 1 else "inside")
            if "1" in course and column is None:
                column = (name, _shape(contract, part.implements, _source(part, name), course))
    sentences = []
    if positions == {"last"}:
        sentences.append("the batch is the last axis of every array, one example per column or last index "
                         "(N examples).")
    elif positions == {"first"}:
        sentences.append("the batch is the first axis of every array, one example per row or first index "
                         "(N examples).")
    if column is not None:
        sentences.append(f"an axis of size 1 is part of the shape: {column[0]} is {column[1]}, and what you "
                         "return in its place must keep that shape.")
    return [sentences[0]] + [s[0].upper() + s[1:] for s in sentences[1:]]  if sentences else []


def _arrays(contract: Contract, part: CourseFunction):
    """(course name, canonical layout, course layout) of each array parameter and result."""
    canonical = contract.canonical
    for p in part.call:
        if p.kind == "value":
            try:
                yield p.name, canonical.layout_of(part.implements, p.source), p.layout
            except KeyError:
                continue
    for r in part.returns.items:
        if r.name not in ("cache", "_"):
            yield r.course_name, canonical.layout_of(part.implements, r.name), r.layout


def _source(part: CourseFunction, course_name: str) -> str:
    for p in part.call:
        if p.kind == "value" and p.name == course_name:
            return p.source
    for r in part.returns.items:
        if r.course_name == course_name:
            return r.name
    return course_name


def _course_code_comment(contract: Contract) -> str:
    """The course's own code this file also holds (graded = false, or named in `provided`),
    and the helper modules it imports: listed, not written."""
    lines = []
    listed = [f for f in contract.functions.values() if not f.graded]
    names = {f.name for f in listed}
    extra = [n for n in contract.info.provided if n not in names]
    if listed or extra:
        lines += _wrap("The course's own code, which you do not write and which is not graded: this file "
                       "holds it too, as the course gives it (checks across layers call it beside your "
                       "functions). Keep the course's version of:", "# ", "# ")
        for f in listed:
            lines.append(f"#     {f.name}({', '.join(p.name for p in f.call)})")
        for name in extra:
            lines.append(f"#     {name}")
    if contract.info.provided_files:
        lines += _wrap("Modules the course gives you beside this file (import them as you like; the grader "
                       "places them beside your file): " + ", ".join(contract.info.provided_files) + ".",
                       "# ", "# ")
    return "\n".join(lines)


# ---------------------------------------------------------------- a function
def _function(contract: Contract, part: CourseFunction) -> str:
    doc = function_docstring(contract, part)
    body = "\n".join(("    " + line) if line else "" for line in doc.split("\n"))
    params = ", ".join(p.name for p in part.call)
    return (f"def {part.name}({params}):\n    \"\"\"{body[4:]}\n    \"\"\"\n"
            f"    raise NotImplementedError(\"{part.name}: write your code here\")")


def function_docstring(contract: Contract, part: CourseFunction) -> str:
    """The docstring of one course function (without its quotes or indentation)."""
    canonical = contract.canonical
    fn = part.implements
    # the first line follows the opening quotes
    lines = _wrap(canonical.summary.get(fn) or f"The course's {part.name}.", '"""', "")
    lines[0] = lines[0][3:]
    if part.description:
        lines += [""] + _wrap(part.description, "")
    fixed = [f"{name} = {value!r}" for name, value in part.fixed.items()]
    if fixed:
        lines += [""] + _wrap(f"It takes no {' and no '.join(part.fixed)}: always {', '.join(fixed)}.", "")
    names = {p.source: p.name for p in part.call if p.kind == "value"}
    lines += ["", "Inputs:"]
    for p in part.call:
        lines += _wrap(_param_entry(contract, part, p, names), "- ", "  ")
    items = [r for r in part.returns.items if r.name != "_"]
    if part.returns.is_tuple:
        shown = ", ".join("_" if r.name == "_" else r.course_name for r in part.returns.items)
        lines += ["", f"Returns a tuple ({shown}):"]
    else:
        lines += ["", "Returns:"]
    for r in items:
        lines += _wrap(_result_entry(contract, part, r, names), "- ", "  ")
    return "\n".join(lines)


def _param_entry(contract: Contract, part: CourseFunction, p: Param, names: dict[str, str]) -> str:
    about = contract.canonical.about.get(part.implements, {})
    if p.kind == "value":
        return _entry(p.name, about.get(p.source, ""), _shape(contract, part.implements, p.source, p.layout, names))
    if p.kind == "dict":
        groups: dict[str, list[str]] = {}
        for key, source in p.keys:
            groups.setdefault(source, []).append(f"'{key}'")
        said = [f"{' and '.join(keys)} ({about[source]})" if about.get(source) else " and ".join(keys)
                for source, keys in groups.items()]
        return f"{p.name}: a dict with the keys " + _and(said)
    if p.kind == "list":
        sources = [s for _, s in p.keys]
        if len(set(sources)) == 1:
            what = about.get(sources[0], sources[0])
            return f"{p.name}: a list of {len(sources)} values, each {what}"
        return f"{p.name}: a list [{', '.join(sources)}]: " + "; ".join(
            f"{s} is {about[s]}" for s in sources if about.get(s))
    return f"{p.name}: what {p.cache_of} returned as its cache, for the same inputs"


def _result_entry(contract: Contract, part: CourseFunction, r, names: dict[str, str]) -> str:
    if r.name == "cache":
        takers = [f.name for f in contract.functions.values()
                  if any(q.kind == "cache" and q.cache_of == part.name for q in f.call)]
        who = _and(takers) + (" receives" if len(takers) == 1 else " receive")
        return f"cache: anything you need later; {who} it back"
    about = contract.canonical.about.get(part.implements, {}).get(r.name, "")
    return _entry(r.course_name, about, _shape(contract, part.implements, r.name, r.layout, names))


def _entry(name: str, about: str, shape: str | None) -> str:
    if shape is None:
        return f"{name}: {about}" if about else name
    if not about:
        return f"{name}: {shape}" if shape.startswith("same shape") or shape == "any shape" else f"{name}: shape {shape}"
    return f"{name}: {about}, {shape}" if shape.startswith("same shape") or shape == "any shape" \
        else f"{name}: {about}, shape {shape}"


def _shape(contract: Contract, function: str, source: str, course_layout: str,
           names: dict[str, str] | None = None) -> str | None:
    """An array's shape in the course's layout and axis names: "(features, N)", or
    "any shape", "same shape as X"; None for a value with no shape (an int, a float)."""
    canonical = contract.canonical
    dims = canonical.dims.get(function, {}).get(source)
    if dims is None:
        return None
    if dims == "any":
        return "any shape"
    if dims.startswith("like "):
        other = dims[5:].strip()
        names = names or {}
        if other in names:
            return f"same shape as {names[other]}"
        alike = [names[s] for s, d in canonical.dims[function].items()
                 if s in names and s != source and d == dims]
        return f"same shape as {alike[0]}" if alike else "same shape as the forward's input"
    rename = contract.info.dims
    axes = [rename.get(n, n) for n in dims.split()]
    try:
        canonical_layout = canonical.layout_of(function, source).replace("1", "")
    except KeyError:
        canonical_layout = ""
    if not canonical_layout:
        shown = axes
    else:
        by_letter = dict(zip(canonical_layout, axes))
        options = (course_layout or canonical_layout).split("|")  # N|1N|N1: the course takes any
        return " or ".join(_tuple(["1" if c == "1" else by_letter[c] for c in option]) for option in options)
    return _tuple(shown)


def _tuple(shown: list[str]) -> str:
    return "(" + ", ".join(shown) + ("," if len(shown) == 1 else "") + ")"


# ----------------------------------------------------------------- the notebook
SELF_CHECK_CELL = "from grader.selfcheck import check\n\ncheck()"


def notebook_path(contract: Contract) -> Path:
    """Where a course keeps its students' notebook: `template/<name>.ipynb` in its folder."""
    return contract.path.parent / TEMPLATE_DIR / f"{contract.name}.ipynb"


def course_notebook(contract: Contract, forbidden_imports: tuple[str, ...] | list[str] = ()):
    """The students' notebook: the template's stubs, one cell each, between short
    explanations, and the self-check at the end. The stubs are cut out of
    `course_template`, so the notebook and the file always offer the same code."""
    import ast

    from nbformat.v4 import new_code_cell, new_markdown_cell

    from grader.notebooks import finish

    source = course_template(contract, forbidden_imports)
    tree = ast.parse(source)
    stubs = {node.name: ast.get_source_segment(source, node) for node in tree.body
             if isinstance(node, ast.FunctionDef)}
    info = contract.info
    notebook = f"{info.name}.ipynb"
    intro = [f"# {info.title or info.name}", ""]
    if info.description:
        intro += [info.description, ""]
    intro += [f"Write each function in its cell below, where it says `raise NotImplementedError(...)`, and "
              "keep its name and parameters: the grader calls them by name, with arrays in the shapes "
              "their docstrings give. The last cell checks your work, saved or not: run it whenever you like."]
    layout = _layout_sentences(contract)
    if layout:
        intro += ["", "**Shapes.** " + " ".join([layout[0][0].upper() + layout[0][1:]] + layout[1:])]
    if forbidden_imports:
        intro += ["", "**Rules.** Import nothing but NumPy. Never write into an input array: build your "
                  "results in new arrays. Loops are allowed."]
    cells = [new_markdown_cell("\n".join(intro)), new_code_cell("import numpy as np")]
    course_code = [f for f in contract.functions.values() if not f.graded]
    if course_code:
        names = ", ".join(f"`{f.name}`" for f in course_code)
        cells.append(new_markdown_cell(
            f"## The course's own code\n\nThe course gives you {names}: you do not write them and they are "
            "not graded, but checks across layers call them beside your functions. Paste the course's "
            "code into the next cell."))
        cells.append(new_code_cell("# The course's own code, as the course gives it:\n"
                                   + "\n".join(f"#   {f.name}({', '.join(p.name for p in f.call)})"
                                                for f in course_code)))
    for part in contract.functions.values():
        if part.graded:
            summary = contract.canonical.summary.get(part.implements, "")
            cells.append(new_markdown_cell(f"## `{part.name}`" + (f"\n\n{summary}" if summary else "")))
            cells.append(new_code_cell(stubs.pop(part.name)))
    first = next(part.name for part in contract.functions.values() if part.graded)
    cells.append(new_markdown_cell(
        "## Check your work\n\n`check()` runs the public checks on your functions as they are in the notebook "
        "now, saved or not (run a cell after changing it), and shows a summary per function, with what most "
        f"likely went wrong and a hint. Once this cell has run, `check()` works in any cell, and "
        f"`check(\"{first}\")` checks one function. The summary links to a page with every check in full. "
        f"From a terminal, `grade {notebook}` checks the saved notebook."))
    cells.append(new_code_cell(SELF_CHECK_CELL))
    return finish(cells, info.name, stubs, Path(info.file_name))


# ----------------------------------------------------------------- helpers
def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _wrap(text: str, first: str, rest: str | None = None) -> list[str]:
    """Lines of at most WIDTH - 4 characters (the docstring's indentation); a shape in
    parentheses is never cut."""
    kept = SHAPE.sub(lambda m: m.group(0).replace(" ", KEEP), text)
    lines = textwrap.wrap(kept, WIDTH - 4, initial_indent=first, subsequent_indent=first if rest is None else rest,
                          break_long_words=False, break_on_hyphens=False) or [first.rstrip()]
    return [line.replace(KEEP, " ") for line in lines]


# ----------------------------------------------------------------- command
def main(argv: list[str] | None = None) -> int:
    from grader.assignment import CONTRACT_FILE, course_assignment
    from grader.contract.model import ContractError

    parser = argparse.ArgumentParser(
        prog="python -m grader.contract.template",
        description="Write a course's students' file (template/<file_name> in its folder) from its contract.")
    parser.add_argument("folder", type=Path, help="the course's folder, holding contract.toml")
    parser.add_argument("--out", type=Path, help="where to write it instead (- for standard output)")
    args = parser.parse_args(argv)
    if not (args.folder / CONTRACT_FILE).is_file():
        print(f"error: no {CONTRACT_FILE} in {args.folder}", file=sys.stderr)
        return 2
    try:
        assignment = course_assignment(args.folder)
    except ContractError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    contract = assignment.contract
    text = course_template(contract, assignment.forbidden_imports)
    if args.out is not None and str(args.out) == "-":
        sys.stdout.write(text)
        return 0
    out = args.out or template_path(contract)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    if args.out is None:
        import nbformat

        nbformat.write(course_notebook(contract, assignment.forbidden_imports), notebook_path(contract))
        print(f"wrote {notebook_path(contract)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
