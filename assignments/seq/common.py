"""What the seq checks share: calling a contract function on a dict of its inputs,
a backward's gradients by the input they belong to, and the check of a backward
against directional differences of the reference forward."""

from __future__ import annotations

import numpy as np

from assignments.seq.cases import ARGS
from grader.checklib import Gradients, expect_floats, expect_untouched, read_gradient_tuple
from grader.compare import expect_sequence
from grader.gradcheck import expect_backward_matches_forward


def call(layers, function: str, p: dict, *upstream):
    """`function` of the student (or the oracle) on the inputs `p` (named as in the
    contract), the upstream gradient(s) first for a backward."""
    names = ARGS[function][len(upstream):]
    return getattr(layers, function)(*upstream, *(p[n] for n in names))


def read_gradients(value, names: tuple[str, ...], p: dict | None, function: str) -> Gradients:
    """A backward's tuple of gradients by name, as far as it can be read (a tuple of the
    wrong length still has its parts judged by position): each a finite float array,
    shaped like its input (`p`, by the gradient's name without its d) unless `p` is None
    (then the comparison judges shapes, and can name the mistake behind a wrong one)."""
    shapes = tuple(np.shape(p[name[1:]]) for name in names) if p is not None else None
    return read_gradient_tuple(value, names, shapes, function)


def gradients(value, names: tuple[str, ...], p: dict | None, function: str) -> dict:
    """`read_gradients`' parts, failing with every defect at once if there is one."""
    return read_gradients(value, names, p, function).strict()


def outputs(value, names: tuple[str, ...], function: str, shapes: tuple | None = None) -> dict:
    """A forward's result by name: one array, or a tuple of them (the LSTM step's (h, c))."""
    parts = (value,) if len(names) == 1 else expect_sequence(value, len(names), f"what {function} returns")
    shapes = shapes or (None,) * len(names)
    return {name: expect_floats(part, name, shape) for name, part, shape in zip(names, parts, shapes)}


def leaves_inputs_alone(student, function: str, p: dict, *upstream) -> object:
    """Call `function` once and fail with input.mutated if it wrote into any argument
    (an upstream gradient included); returns what it returned."""
    result = call(student, function, p, *upstream)
    expect_untouched(student, function, ARGS[function])
    return result


def against_own_forward(student, oracle, rng, tolerance, backward: str, forward: str, p: dict,
                        got: Gradients | dict, upstream: tuple) -> dict:
    """The backward's gradients `got` against directional central differences of the
    forward, four forward calls per gradient: the reference forward's differences decide;
    the student's own are reported beside them (a gradient that could not be read fails
    the check, and the others are still judged). A forward with several outputs (the LSTM
    step's h and c) is differentiated as their concatenation, contracted with the upstream
    gradients concatenated the same way."""
    got = got if isinstance(got, Gradients) else Gradients(tuple(got), dict(got))
    inputs = {name[1:]: p[name[1:]] for name in got.names}
    grads = {name[1:]: value for name, value in got.by_name().items()}

    def run(layers):
        def forward_of(q):
            out = call(layers, forward, {**p, **q})
            if len(upstream) == 1:
                return out
            parts = expect_sequence(out, len(upstream), f"what {forward} returns")
            return np.concatenate([np.asarray(part) for part in parts], axis=-1)
        return forward_of

    v = upstream[0] if len(upstream) == 1 else np.concatenate(upstream, axis=-1)
    return expect_backward_matches_forward(run(student), run(oracle), inputs, grads, v, rng, tolerance,
                                           backward, forward, defects=got.defects)
