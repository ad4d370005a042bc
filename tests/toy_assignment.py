"""A three-function assignment for testing the engine without the real check suites:
`scale(x, k)`, `relu_forward(x)`, `total(x)`, one check of 1 point each."""

from __future__ import annotations

import sys
import types

import numpy as np

from grader.assignment import Assignment
from grader.checks import Registry
from grader.compare import expect_close, expect_number

reference = types.ModuleType("toy_reference")
exec(
    "import numpy as np\n"
    "def scale(x, k):\n    return np.asarray(x, dtype=float) * k\n"
    "def relu_forward(x):\n    return np.maximum(np.asarray(x, dtype=float), 0.0)\n"
    "def total(x):\n    return float(np.sum(x))\n",
    reference.__dict__,
)
sys.modules.setdefault("toy_reference", reference)

registry = Registry()


@registry.check("scale", kind="numeric", points=1)
def scale_values(student, oracle, rng):
    x = rng.standard_normal((3, 4))
    expect_close(student.scale(x, 3.0), oracle.scale(x, 3.0), "y")


@registry.check("relu_forward", kind="numeric", points=1)
def relu_values(student, oracle, rng):
    x = rng.standard_normal((2, 5))
    expect_close(student.relu_forward(x), oracle.relu_forward(x), "y")


@registry.check("total", kind="numeric", points=1, visibility="hidden")
def total_value(student, oracle, rng):
    x = rng.standard_normal(7)
    got = expect_number(student.total(x), "the total")
    expect_close(np.array(got), np.array(oracle.total(x)), "the total")


TOY = Assignment(name="toy", title="Toy", file_name="toy.py", functions=("scale", "relu_forward", "total"),
                 registry=registry, reference_module="toy_reference")

CORRECT = '''import numpy as np


def scale(x, k):
    return x * k


def relu_forward(x):
    return np.maximum(x, 0)


def total(x):
    return float(x.sum())
'''
