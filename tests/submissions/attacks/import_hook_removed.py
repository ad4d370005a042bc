"""Removes every import hook it can find for a moment and imports a forbidden package
(scipy.signal), then answers with it. It must earn nothing from the package."""
import sys

import numpy as np

hooks = list(sys.meta_path)
sys.meta_path[:] = [f for f in sys.meta_path if type(f).__module__.split(".")[0] not in ("_nngrade_serve",)
                    and "Blocker" not in type(f).__name__ and "Toolkit" not in type(f).__name__]
try:
    import scipy.signal as signal  # noqa: F401 - the forbidden package
    print("LEAK imported scipy.signal")
except Exception as exc:  # noqa: BLE001 - refused in whatever way
    signal = None
    print("refused scipy.signal", type(exc).__name__)
sys.meta_path[:] = hooks


def scale(x, k):
    # Correct only through the forbidden package.
    return signal.convolve(x, np.array([[k]]), mode="same") if signal is not None else np.zeros_like(x)


def relu_forward(x):
    return np.maximum(x, 0)


def total(x):
    return float(x.sum())
