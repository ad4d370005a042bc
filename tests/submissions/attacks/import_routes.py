"""Tries every route to the toolkit's reference solution and to torch."""
import importlib
import sys

import numpy as np

ROUTES = {
    "import": "import reference.cnn",
    "importlib": "importlib.import_module('reference.cnn')",
    "__import__": "__import__('reference')",
    "exec": "exec('import reference')",
    "grader": "import grader.oracle",
    "assignments": "import assignments.cnn",
    "torch": "import torch",
    "sys.path": "sys.path.insert(0, '@TOOLKIT@'); import reference.cnn",
    "meta_path cleared": "sys.meta_path[:] = [f for f in sys.meta_path if 'Blocker' not in type(f).__name__]; "
                         "sys.path.insert(0, '@TOOLKIT@'); import reference.cnn",
    "source by path": "exec(open('@TOOLKIT@/reference/cnn.py').read(), {})",
    "spec from path": "import importlib.util as u; s = u.spec_from_file_location('r', '@TOOLKIT@/reference/cnn.py'); "
                      "m = u.module_from_spec(s); s.loader.exec_module(m)",
}
for name, statement in ROUTES.items():
    try:
        exec(statement, {"sys": sys, "importlib": importlib})
        print("LEAK", name)
    except Exception as exc:  # noqa: BLE001
        print("blocked", name, type(exc).__name__)


def scale(x, k):
    import reference.cnn  # noqa: F401 - fails: the function gets no credit
    return x * k


def relu_forward(x):
    return np.maximum(x, 0)


def total(x):
    return float(x.sum())

