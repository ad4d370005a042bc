"""Finds the output folder and writes itself a perfect record into the journal, then a
results.json, as a submission did without bubblewrap: --resume must refuse them."""
import json
import os

import numpy as np

record = {"student": "forge_record", "source": "forge_record.py", "status": "graded", "score": 3.0,
          "max_score": 3.0, "content_hash": "", "checks": []}
for path, text in (("@OUT@/.nngrade/journal-toy.jsonl", json.dumps(record) + "\n"),
                   ("@OUT@/results.json", json.dumps({"assignment": "toy", "submissions": [record]}))):
    try:
        with open(path, "a") as f:
            f.write(text)
        print("LEAK wrote", path)
    except OSError as exc:
        print("refused", path, type(exc).__name__)
try:
    with open("@OUT@/.nngrade/key") as f:
        print("LEAK read the key", len(f.read()))
except OSError as exc:
    print("refused the key", type(exc).__name__)


def scale(x, k):
    return np.zeros_like(x)  # wrong: a forged record would be the only way to 3 points


def relu_forward(x):
    return np.maximum(x, 0)


def total(x):
    return float(x.sum())
