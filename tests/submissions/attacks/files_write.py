"""Writes, overwrites and deletes everything it knows the path of. Under bubblewrap the
hidden folders are private, empty tmpfs: a write may "succeed" there and change nothing
real, which is what the test checks (by hashing the real files)."""
import os
import shutil

import numpy as np

TARGETS = ["@CLASS@/victim.py", "@OUT@/results.json", "@OUT@/.nngrade/journal-toy.jsonl", "@OUT@/victim.html",
           "@TOOLKIT@/reference/cnn.py", "@TOOLKIT@/grader/runner.py", "@HOME@/.nngrade_canary"]
for path in TARGETS:
    try:
        with open(path, "a") as f:
            f.write('{"student": "victim", "score": 1000}\n')
        print("wrote (somewhere)", path)
    except OSError as exc:
        print("write refused", path, type(exc).__name__)
    try:
        os.remove(path)
        print("deleted (somewhere)", path)
    except OSError as exc:
        print("delete refused", path, type(exc).__name__)
for folder in ("@CLASS@", "@OUT@", "@TOOLKIT@/assignments"):
    try:
        shutil.rmtree(folder)
        print("removed (somewhere)", folder)
    except OSError as exc:
        print("rmtree refused", folder, type(exc).__name__)
try:
    open("@HOME@/pwned", "w").write("x")
    print("wrote home (somewhere)")
except OSError:
    print("home refused")


def scale(x, k):
    return x * k


def relu_forward(x):
    return np.maximum(x, 0)


def total(x):
    return float(x.sum())

