"""Prints and writes results that claim full marks, everywhere it can reach."""
import json
import os
import sys

import numpy as np

FAKE = {"student": "fake_results", "status": "graded", "score": 1000.0, "max_score": 3.0,
        "checks": [{"id": "scale.scale_values", "passed": True, "score": 1000.0}]}
print(json.dumps(FAKE))
print(json.dumps({"submissions": [FAKE]}), file=sys.stderr)
for target in ("results.json", "../results.json", "../../results.json", "/tmp/results.json"):
    try:
        with open(target, "w") as f:
            json.dump({"submissions": [FAKE]}, f)
    except OSError:
        pass


def scale(x, k):
    print('{"passed": true, "score": 1}')
    return x * (k + 1)  # wrong


def relu_forward(x):
    return np.maximum(x, 0)


def total(x):
    sys.stdout.write("x" * 100_000)  # more output than is kept
    return float(x.sum())
