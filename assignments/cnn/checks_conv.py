"""Checks of conv_output_size, conv2d_forward and conv2d_backward."""

from __future__ import annotations

import numpy as np

from assignments.cnn import mistakes
from assignments.cnn.cases import (
    ARGS,
    CONV_PLAIN,
    CONV_STRIDE_PAD,
    CONV_TABLE,
    CONV_UNTOUCHED,
    SIZE_ERRORS,
    SIZE_RULES,
    Conv,
    conv_inputs,
    lecture_example,
    moved_errors,
    moved_sizes,
    size_table,
    varied_lecture_example,
)
from assignments.cnn.registry import check
from grader.checklib import (
    NOT_ASKED,
    Evidence,
    compare_gradients,
    expect_floats,
    expect_untouched,
    explaining_codes,
    fits,
    gradient_tuple,
    read_gradient_tuple,
    model_rtol,
)
from grader.checks import CheckFailed
from grader.compare import BAD_RETURN, DEFAULT_TOLERANCES, expect_sequence
from grader.gradcheck import expect_backward_matches_forward
from grader.proxy import StudentCallError, StudentRaised


# ------------------------------------------------------------------ conv_output_size
def _shown(args) -> str:
    n, f, pad, stride = args
    return f"conv_output_size({n}, {f}, pad={pad}, stride={stride})"


def _size_rows(student, rows) -> None:
    """Each (n, f, pad, stride) -> expected; the codes of the size mistakes that explain
    every answer."""
    evidence = Evidence()
    for args, expected in rows:
        n, f, pad, stride = args
        got = student.conv_output_size(n, f, pad=pad, stride=stride)
        fitted = {code: any(_same_number(got, o) for o in outs if o is not None)
                  for code, outs in mistakes.size_models(*args).items() if _differs(outs, expected)}
        right = _is_int(got) and int(got) == expected
        evidence.record(None if right else CheckFailed(f"{_shown(args)} is {got!r}, expected {expected}",
                                                        [] if _is_number(got) else [BAD_RETURN]), fitted)
    evidence.verdict()


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _is_int(v) -> bool:
    return _is_number(v) and float(v).is_integer()


def _same_number(got, model) -> bool:
    return _is_number(got) and abs(float(got) - float(model)) < 1e-9


def _differs(outputs, expected) -> bool:
    """Does the mistake change the answer here? (Where it does not, a right answer says nothing.)"""
    return any(o is not None and o != expected for o in outputs)


@check("conv_output_size", kind="shape", points=2)
def lecture_rules(student, rng, fresh_inputs):
    """The lecture's rules: 7x7 with 3x3 gives 5x5; pad (f-1)/2 keeps the size; stride k
    gives (n - f)/k + 1, floored where it does not divide. When graded, on sizes grown by
    seeded multiples of the stride (each rule kept)."""
    _size_rows(student, moved_sizes(rng, SIZE_RULES) if fresh_inputs else SIZE_RULES)


@check("conv_output_size", kind="shape", points=2)
def configuration_table(student, rng, fresh_inputs):
    """Both axes of every configuration of the shape table: non-square inputs, rectangular
    kernels, strides 2 and 3, pads 1 and 2. When graded, on sizes grown by seeded
    multiples of the stride."""
    _size_rows(student, moved_sizes(rng, size_table()) if fresh_inputs else size_table())


@check("conv_output_size", kind="behavior", points=1)
def rejects_impossible_sizes(student, rng, fresh_inputs):
    """ValueError when the filter is larger than the padded input, stride < 1 or pad < 0
    (when graded, n and f grown by the same seeded amount)."""
    for (n, f, pad, stride), why in moved_errors(rng, SIZE_ERRORS) if fresh_inputs else SIZE_ERRORS:
        try:
            got = student.conv_output_size(n, f, pad=pad, stride=stride)
        except StudentRaised as exc:
            # A subclass of ValueError is a ValueError too, where the proxy reports the classes.
            if "ValueError" in getattr(exc, "type_names", (exc.type_name,)):
                continue
            raise CheckFailed(f"{_shown((n, f, pad, stride))} ({why}) should raise ValueError, "
                              f"but raised {exc.type_name}") from None
        raise CheckFailed(f"{_shown((n, f, pad, stride))} ({why}) should raise ValueError, "
                          f"but returned {got!r}")


# ------------------------------------------------------------------ padding that raises
def _padded(x, pad: int):
    return np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))


def _raise_explained_by_padding(raised: StudentRaised, retried, expected: dict, rtol: float) -> None:
    """The student's function raised with pad > 0; `retried()` is its answer with pad = 0
    on x padded for it, by name. Where that answer is right, only its own padding can have
    raised (np.pad(x, pad) pads the batch and channel axes too): conv.padding_wrong. Else
    the raise stands as it is."""
    try:
        got = retried()
    except (StudentRaised, StudentCallError, CheckFailed):
        raise raised from None
    if NOT_ASKED.get() or not all(fits(got.get(name), value, rtol) for name, value in expected.items()):
        raise raised from None
    raise CheckFailed(f"{raised.message}; with pad=0 on x already padded it returns the right "
                      f"{', '.join(expected)}: its own padding is what fails", [mistakes.PADDING]) from None


def student_forward(student, x, w, b, conv: Conv, expected):
    """The student's y for this configuration (`expected`, the reference's, names a padding
    step that raises)."""
    try:
        return student.conv2d_forward(x, w, b, **conv.kwargs())
    except StudentRaised as raised:
        if not conv.pad:
            raise
        _raise_explained_by_padding(
            raised, lambda: {"y": student.conv2d_forward(_padded(x, conv.pad), w, b, stride=conv.stride)},
            {"y": expected}, model_rtol(DEFAULT_TOLERANCES))


def student_backward(student, dy, x, w, b, conv: Conv, expected: tuple):
    """What the student's conv2d_backward returns for this configuration (`expected`, the
    reference's (dx, dw, db), names a padding step that raises)."""
    try:
        return student.conv2d_backward(dy, x, w, b, **conv.kwargs())
    except StudentRaised as raised:
        if not conv.pad:
            raise
        pad, (h, wd) = conv.pad, x.shape[1:3]

        def retried():
            dxp, dw, db = expect_sequence(student.conv2d_backward(dy, _padded(x, pad), w, b, stride=conv.stride),
                                          3, "what conv2d_backward returns")
            dxp = expect_floats(dxp, "dx", _padded(x, pad).shape)
            return {"dx": dxp[:, pad:pad + h, pad:pad + wd], "dw": dw, "db": db}

        _raise_explained_by_padding(raised, retried, dict(zip(("dx", "dw", "db"), expected)),
                                    model_rtol(DEFAULT_TOLERANCES))


# ------------------------------------------------------------------ conv2d_forward
def _forward_cases(student, oracle, rng, cases, tolerance, shapes_only: bool = False) -> None:
    """Each configuration on random inputs; codes of the mistakes that explain all of them."""
    evidence = Evidence(tolerance)
    for conv in cases:
        x, w, b = conv_inputs(rng, conv)
        expected = oracle.conv2d_forward(x, w, b, stride=conv.stride, pad=conv.pad)
        got = student_forward(student, x, w, b, conv, expected)
        models = mistakes.conv_forward_models(oracle, x, w, b, conv.stride, conv.pad)
        if shapes_only:
            _compare_shape(evidence, got, expected, models, conv)
        else:
            evidence.compare(got, expected, "y", models, prefix=conv.shown())
    evidence.verdict()


def _compare_shape(evidence: Evidence, got, expected, models, conv: Conv) -> None:
    """Only the shape decides; the values say which mistake gave a wrong one."""
    fitted = {code: any(fits(got, o, model_rtol(evidence.tolerance)) for o in outs if o is not None)
              for code, outs in models.items() if any(o is not None for o in outs)}
    shape = getattr(got, "shape", None)
    if isinstance(got, np.ndarray) and shape == expected.shape:
        evidence.record(None, fitted)
        return
    what = f"shape {tuple(shape)}" if isinstance(got, np.ndarray) else f"a {type(got).__name__}"
    evidence.record(CheckFailed(f"conv2d_forward with {conv.shown()} ({conv.why}) returned {what}, "
                                f"expected {expected.shape}", [BAD_RETURN],
                                {"got_shape": list(shape) if shape is not None else None,
                                 "expected_shape": list(expected.shape)}), fitted)


@check("conv2d_forward", kind="numeric", points=4)
def lecture_two_channel_example(student, oracle, rng, tolerance, fresh_inputs):
    """The lecture's two-channel example (x 4x4x2, the same 2x2 filter on both channels,
    bias 0): y(:, :, 1) = [[25, 27, 15], [0, -2, 10], [-13, -9, 23]]. When graded, every
    entry of x is moved by a seeded integer in -3..3, so that the answer is not the slide's."""
    if fresh_inputs:
        x, w, b = varied_lecture_example(rng)
        y = oracle.conv2d_forward(x, w, b)
    else:
        x, w, b, y = lecture_example()
    got = student.conv2d_forward(x, w, b)
    evidence = Evidence(tolerance)
    evidence.compare(got, y, "y", mistakes.conv_forward_models(oracle, x, w, b, 1, 0))
    evidence.verdict()


@check("conv2d_forward", kind="shape", points=4)
def output_shapes(student, oracle, rng, tolerance):
    """Output shapes over the table: the lecture's rules, non-square inputs, rectangular
    kernels, strides 2 and 3, pads 1 and 2, batch 1 and batch > 1."""
    _forward_cases(student, oracle, rng, CONV_TABLE, tolerance, shapes_only=True)


@check("conv2d_forward", kind="numeric", points=4)
def random_values(student, oracle, rng, tolerance):
    """Seeded random inputs, stride 1 and no padding, several channels in and out."""
    _forward_cases(student, oracle, rng, CONV_PLAIN, tolerance)


@check("conv2d_forward", kind="numeric", points=5, visibility="hidden")
def random_stride_and_pad(student, oracle, rng, tolerance):
    """Seeded random inputs with strides 2 and 3 and pads 1 and 2."""
    _forward_cases(student, oracle, rng, CONV_STRIDE_PAD, tolerance)


@check("conv2d_forward", kind="behavior", points=3, name="leaves_inputs_alone")
def conv_leaves_inputs_alone(student, oracle, rng):
    """x, w and b are not modified; y is a finite 4-D float array."""
    for conv in CONV_UNTOUCHED:
        x, w, b = conv_inputs(rng, conv)
        y = student_forward(student, x, w, b, conv, oracle.conv2d_forward(x, w, b, stride=conv.stride, pad=conv.pad))
        expect_untouched(student, "conv2d_forward", ARGS["conv2d_forward"])
        # Its shape is judged elsewhere: a wrong one must not cost this behaviour's credit too.
        expect_floats(y, "y", ndim=4)


# ------------------------------------------------------------------ conv2d_backward
def _backward_case(student, oracle, rng, conv: Conv):
    x, w, b = conv_inputs(rng, conv)
    h, wd = conv.out_hw()
    dy = rng.standard_normal((conv.x[0], h, wd, conv.w[3]))
    dx, dw, db = expected = oracle.conv2d_backward(dy, x, w, b, stride=conv.stride, pad=conv.pad)
    got = read_gradient_tuple(student_backward(student, dy, x, w, b, conv, expected), ("dx", "dw", "db"),
                              (x.shape, w.shape, b.shape), "conv2d_backward")
    return (dy, x, w, b), got, {"dx": dx, "dw": dw, "db": db}


def _backward_against_reference(student, oracle, rng, tolerance, cases) -> None:
    for conv in cases:
        (dy, x, w, b), got, expected = _backward_case(student, oracle, rng, conv)
        models = mistakes.conv_backward_models(oracle, dy, x, w, b, conv.stride, conv.pad)
        compare_gradients(got, expected, models, tolerance, label=conv.shown())


@check("conv2d_backward", kind="shape", points=2)
def gradient_shapes(student, oracle, rng):
    """(dx, dw, db) shaped like (x, w, b) over the configurations of the shape table."""
    for conv in CONV_TABLE:
        x, w, b = conv_inputs(rng, conv)
        h, wd = conv.out_hw()
        dy = rng.standard_normal((conv.x[0], h, wd, conv.w[3]))
        expected = oracle.conv2d_backward(dy, x, w, b, stride=conv.stride, pad=conv.pad)
        gradient_tuple(student_backward(student, dy, x, w, b, conv, expected), ("dx", "dw", "db"),
                       (x.shape, w.shape, b.shape), "conv2d_backward")


@check("conv2d_backward", kind="gradient", points=6)
def against_reference(student, oracle, rng, tolerance):
    """dx, dw, db against the reference's on seeded random inputs (batch 2, stride 1, no padding)."""
    _backward_against_reference(student, oracle, rng, tolerance, CONV_PLAIN)


@check("conv2d_backward", kind="gradient", points=6, visibility="hidden")
def against_reference_stride_and_pad(student, oracle, rng, tolerance):
    """dx, dw, db against the reference's with strides 2 and 3 and pads 1 and 2."""
    _backward_against_reference(student, oracle, rng, tolerance, CONV_STRIDE_PAD)


@check("conv2d_backward", kind="gradient", points=4)
def against_own_forward(student, oracle, rng, tolerance):
    """dx, dw, db against directional central differences of conv2d_forward (stride 2,
    pad 1), four forward calls per gradient whatever the sizes: the reference forward's
    differences decide; your own forward's are reported beside them."""
    conv = CONV_STRIDE_PAD[0]
    (dy, x, w, b), got, expected = _backward_case(student, oracle, rng, conv)
    # The mistakes the gradients fit, named as against the reference (the models asked
    # whatever the student returned: a kit has them recorded).
    models = mistakes.conv_backward_models(oracle, dy, x, w, b, conv.stride, conv.pad)

    def own(p):
        return student.conv2d_forward(p["x"], p["w"], p["b"], **conv.kwargs())

    def reference(p):
        return oracle.conv2d_forward(p["x"], p["w"], p["b"], stride=conv.stride, pad=conv.pad)

    grads = {name[1:]: g for name, g in got.by_name().items()}
    return expect_backward_matches_forward(own, reference, {"x": x, "w": w, "b": b}, grads, dy, rng, tolerance,
                                           "conv2d_backward", "conv2d_forward", defects=got.defects,
                                           diagnoses=explaining_codes(got, expected, models, tolerance))


@check("conv2d_backward", kind="behavior", points=2, name="leaves_inputs_alone")
def conv_grad_leaves_inputs_alone(student, oracle, rng):
    """dy, x, w and b are not modified (dy included); the gradients are finite float arrays."""
    for conv in CONV_UNTOUCHED:
        x, w, b = conv_inputs(rng, conv)
        h, wd = conv.out_hw()
        dy = rng.standard_normal((conv.x[0], h, wd, conv.w[3]))
        expected = oracle.conv2d_backward(dy, x, w, b, stride=conv.stride, pad=conv.pad)
        result = student_backward(student, dy, x, w, b, conv, expected)
        expect_untouched(student, "conv2d_backward", ARGS["conv2d_backward"])
        gradient_tuple(result, ("dx", "dw", "db"), (x.shape, w.shape, b.shape), "conv2d_backward")
