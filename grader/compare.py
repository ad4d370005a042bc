"""Comparing a student's values with expected ones: the tolerances, in one place,
and messages that say where the first mismatch is.

Why these tolerances:
- `value_rtol` 1e-4, relative to the largest expected magnitude of the array: a
  correct float32 implementation is off by about 1e-7 per operation, so at most
  ~1e-5 after the sums of a layer; every real mistake we know of (a flipped kernel,
  a missing bias, a wrong stride) changes values by far more than 1e-2.
- `value_atol` 1e-8: arrays whose expected values are all ~0 (a zero gradient).
- `grad_rtol` 1e-4: gradients are compared like values; directional finite
  differences of the reference forward are compared with `fd_rtol` 1e-5, since
  central differences in float64 are accurate to ~1e-8 relative.
- `fd_rtol_float32` 1e-3: for gradients computed in float32 (or beside a float32
  forward), good to ~1e-6, and differences of a float32 forward, good to ~1e-5;
  every known gradient mistake is off by more than 1e-2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader.checks import CheckFailed


@dataclass(frozen=True)
class Tolerances:
    value_rtol: float = 1e-4
    value_atol: float = 1e-8
    grad_rtol: float = 1e-4
    fd_rtol: float = 1e-5
    fd_rtol_float32: float = 1e-3


DEFAULT_TOLERANCES = Tolerances()
BAD_RETURN = "submission.bad_return"


def _fmt(v) -> str:
    return f"{float(v):.6g}"


def _index(idx) -> str:
    return ",".join(str(int(i)) for i in idx)


def expect_array(value, name: str, shape: tuple | None = None) -> np.ndarray:
    """The value must be a finite numeric ndarray (of `shape` when given)."""
    if not isinstance(value, np.ndarray):
        raise CheckFailed(f"{name} should be a NumPy array, got {type(value).__name__}", [BAD_RETURN])
    if value.dtype.kind not in "biuf":
        raise CheckFailed(f"{name} has dtype {value.dtype}; expected a real number type", [BAD_RETURN])
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise CheckFailed(f"{name} has shape {tuple(value.shape)}, expected {tuple(shape)}", [BAD_RETURN],
                          {"got_shape": list(value.shape), "expected_shape": list(shape)})
    if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
        bad = np.argwhere(~np.isfinite(value))[0]
        raise CheckFailed(f"{name}[{_index(bad)}] is {value[tuple(bad)]}: the result holds NaN or inf",
                          [BAD_RETURN])
    return value


def expect_sequence(value, length: int, name: str) -> tuple:
    if not isinstance(value, (tuple, list)) or len(value) != length:
        what = f"a {type(value).__name__} of length {len(value)}" if isinstance(value, (tuple, list)) \
            else type(value).__name__
        raise CheckFailed(f"{name} should be a tuple of {length} values, got {what}", [BAD_RETURN])
    return tuple(value)


def expect_number(value, name: str) -> float:
    if isinstance(value, np.ndarray) and value.size == 1 and value.ndim <= 1:
        value = value.reshape(())[()]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise CheckFailed(f"{name} should be a number, got {type(value).__name__}", [BAD_RETURN])
    value = float(value)
    if not np.isfinite(value):
        raise CheckFailed(f"{name} is {value}", [BAD_RETURN])
    return value


def relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    """max |got - expected| / max |expected| (0 when both are 0)."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    err = float(np.max(np.abs(got - expected))) if expected.size else 0.0
    if scale == 0.0:
        return err
    return err / scale


def is_close(got, expected, rtol: float, atol: float = DEFAULT_TOLERANCES.value_atol) -> bool:
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        return False
    if not expected.size:
        return True
    scale = float(np.max(np.abs(expected)))
    return bool(np.max(np.abs(got - expected)) <= rtol * scale + atol)


def mismatch(got: np.ndarray, expected: np.ndarray, name: str, rtol: float, atol: float) -> dict:
    """Where and how much `got` differs: for messages and the report."""
    got64 = np.asarray(got, dtype=np.float64)
    exp64 = np.asarray(expected, dtype=np.float64)
    diff = np.abs(got64 - exp64)
    scale = float(np.max(np.abs(exp64))) if exp64.size else 0.0
    bad = diff > rtol * scale + atol
    first = tuple(np.argwhere(bad)[0]) if bad.any() else tuple(np.unravel_index(np.argmax(diff), diff.shape))
    details = {
        "name": name,
        "index": [int(i) for i in first],
        "got": float(got64[first]) if got64.ndim else float(got64),
        "expected": float(exp64[first]) if exp64.ndim else float(exp64),
        "max_abs_error": float(diff.max()) if diff.size else 0.0,
        "relative_error": relative_error(got64, exp64),
        "n_bad": int(bad.sum()),
        "size": int(bad.size),
    }
    # A 2-D slice through the first mismatch, small enough for a heatmap in the report.
    if got64.ndim >= 2 and got64.shape[-2] * got64.shape[-1] <= 4096:
        lead = first[:-2] if got64.ndim > 2 else ()
        if got64.ndim == 4:  # (N, H, W, C): the channel of the mismatch, one image
            lead = (first[0],)
            sl_got, sl_exp = got64[first[0], :, :, first[3]], exp64[first[0], :, :, first[3]]
            label = f"{name}[{first[0]},:,:,{first[3]}]"
        else:
            sl_got, sl_exp = got64[lead], exp64[lead]
            label = f"{name}[{_index(lead) + ',' if lead else ''}:,:]"
        if sl_got.size <= 4096:
            details["slice"] = {"label": label, "got": sl_got.round(6).tolist(),
                                "expected": sl_exp.round(6).tolist()}
    return details


def expect_close(got, expected, name: str, rtol: float = DEFAULT_TOLERANCES.value_rtol,
                 atol: float = DEFAULT_TOLERANCES.value_atol, diagnoses: list[str] | None = None) -> np.ndarray:
    """`got` must be an array shaped like `expected` and equal to it within tolerance.
    On failure the message names the first mismatching index, both values, and how
    many values differ; `diagnoses` are attached to the failure."""
    expected = np.asarray(expected)
    got = expect_array(got, name, expected.shape)
    if is_close(got, expected, rtol, atol):
        return got
    d = mismatch(got, expected, name, rtol, atol)
    where = f"{name}[{_index(d['index'])}]" if d["index"] else name
    message = (f"{where} is {_fmt(d['got'])}, expected {_fmt(d['expected'])}; "
               f"{d['n_bad']} of {d['size']} values differ "
               f"(max abs error {d['max_abs_error']:.3g}, relative error {d['relative_error']:.3g})")
    raise CheckFailed(message, diagnoses or [], {"mismatch": d})
