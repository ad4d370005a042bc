"""Tests of the reference CNN layers (reference/cnn.py) against independent oracles.

Oracles: the lecture's worked example, scipy.signal.correlate, central finite
differences, and plain Python loops for max pooling.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import correlate

from reference import cnn

# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def rel_error(a, b):
    """max |a - b| / max(|a|, |b|): scale-free, 0 for identical arrays."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0), 1e-300)
    return np.abs(a - b).max(initial=0.0) / scale


def numeric_grad(f, arrays, index, eps=1e-6):
    """Central differences of the scalar f(*arrays) w.r.t. arrays[index]."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    target = arrays[index]
    grad = np.zeros_like(target)
    for pos in np.ndindex(target.shape):
        old = target[pos]
        target[pos] = old + eps
        up = f(*arrays)
        target[pos] = old - eps
        down = f(*arrays)
        target[pos] = old
        grad[pos] = (up - down) / (2 * eps)
    return grad


def lecture_example():
    x = np.zeros((1, 4, 4, 2))
    x[0, :, :, 0] = [[1, -2, 0, 5], [7, 0, 1, -3], [2, -2, 2, -2], [-5, -4, 3, 1]]
    x[0, :, :, 1] = [[0, -1, 2, 0], [-4, 9, 6, 5], [3, 2, 1, 0], [0, 1, 3, -3]]
    w = np.zeros((2, 2, 2, 1))
    w[:, :, 0, 0] = w[:, :, 1, 0] = [[1, -2], [3, 1]]
    return x, w, np.zeros(1)


def scipy_conv(x, w, b, stride, pad):
    """Oracle: per-channel scipy correlation of the padded input, summed, strided."""
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    n, c_in, c_out = x.shape[0], x.shape[3], w.shape[3]
    out = []
    for i in range(n):
        maps = []
        for k in range(c_out):
            acc = sum(correlate(xp[i, :, :, c], w[:, :, c, k], mode="valid") for c in range(c_in))
            maps.append(acc[::stride, ::stride] + b[k])
        out.append(np.stack(maps, axis=-1))
    return np.stack(out)


def loop_maxpool(x, dy, size, stride):
    """Oracle: Python loops; ties to the first maximum in row-major order, +=."""
    n, h, w, c = x.shape
    h_out, w_out = (h - size) // stride + 1, (w - size) // stride + 1
    y = np.zeros((n, h_out, w_out, c))
    dx = np.zeros(x.shape)
    for i in range(n):
        for p in range(h_out):
            for q in range(w_out):
                for ch in range(c):
                    win = x[i, p * stride:p * stride + size, q * stride:q * stride + size, ch]
                    a, b = divmod(int(np.argmax(win)), size)  # argmax: first maximum
                    y[i, p, q, ch] = win[a, b]
                    if dy is not None:
                        dx[i, p * stride + a, q * stride + b, ch] += dy[i, p, q, ch]
    return y, dx


KERNELS = [(3, 3), (2, 2), (3, 2), (1, 4), (5, 5)]
GRID = [
    (kernel, stride, pad)
    for kernel in KERNELS
    for stride in (1, 2, 3)
    for pad in (0, 1, 2)
]

# --------------------------------------------------------------------------
# the lecture
# --------------------------------------------------------------------------


def test_lecture_two_channel_example():
    x, w, b = lecture_example()
    y = cnn.conv2d_forward(x, w, b)
    assert y.shape == (1, 3, 3, 1)
    np.testing.assert_array_equal(
        y[0, :, :, 0], [[25, 27, 15], [0, -2, 10], [-13, -9, 23]]
    )


def test_lecture_output_size_7x7_with_3x3():
    assert cnn.conv_output_size(7, 3) == 5
    x = np.ones((1, 7, 7, 1))
    assert cnn.conv2d_forward(x, np.ones((3, 3, 1, 1)), np.zeros(1)).shape == (1, 5, 5, 1)


@pytest.mark.parametrize("f", [3, 5, 7])
@pytest.mark.parametrize("n", [7, 8, 12])
def test_padding_f_minus_1_over_2_keeps_size(n, f):
    pad = (f - 1) // 2
    assert cnn.conv_output_size(n, f, pad=pad) == n
    x = np.ones((1, n, n, 2))
    y = cnn.conv2d_forward(x, np.ones((f, f, 2, 3)), np.zeros(3), pad=pad)
    assert y.shape == (1, n, n, 3)


def test_stride_rule_floors_where_it_does_not_divide():
    for n in range(1, 12):
        for f in range(1, 6):
            for pad in range(3):
                for stride in range(1, 5):
                    if f > n + 2 * pad:
                        continue
                    expected = math.floor((n + 2 * pad - f) / stride) + 1
                    got = cnn.conv_output_size(n, f, pad=pad, stride=stride)
                    assert got == expected and type(got) is int, (n, f, pad, stride)


def test_conv_forward_shape_follows_the_rule_with_rectangular_input():
    x = np.ones((2, 11, 8, 1))
    y = cnn.conv2d_forward(x, np.ones((4, 3, 1, 1)), np.zeros(1), stride=3, pad=1)
    assert y.shape == (2, (11 + 2 - 4) // 3 + 1, (8 + 2 - 3) // 3 + 1, 1) == (2, 4, 3, 1)


# --------------------------------------------------------------------------
# ValueErrors
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, match",
    [
        ((3, 5), "larger than the padded input"),
        ((3, 8, 2), "larger than the padded input"),
        ((7, 3, 0, 0), "stride"),
        ((7, 3, -1, 1), "pad"),
    ],
)
def test_conv_output_size_errors(args, match):
    with pytest.raises(ValueError, match=match):
        cnn.conv_output_size(*args)


def test_conv_output_size_accepts_exact_fit():
    assert cnn.conv_output_size(3, 5, pad=1) == 1


def test_conv_forward_error_mismatched_channels_names_both_shapes():
    x = np.zeros((1, 4, 4, 2))
    with pytest.raises(ValueError) as err:
        cnn.conv2d_forward(x, np.zeros((3, 3, 3, 10)), np.zeros(10))
    message = str(err.value)
    assert "(3, 3, 3, 10)" in message and "(1, 4, 4, 2)" in message and "channels" in message


def test_conv_forward_error_filter_larger_than_padded_input():
    x = np.zeros((1, 4, 4, 1))
    with pytest.raises(ValueError, match=r"larger than the padded input.*\(1, 4, 4, 1\)"):
        cnn.conv2d_forward(x, np.zeros((7, 7, 1, 1)), np.zeros(1), pad=1)
    # the same filter fits once the padding is large enough
    assert cnn.conv2d_forward(x, np.zeros((7, 7, 1, 1)), np.zeros(1), pad=2).shape == (1, 2, 2, 1)


@pytest.mark.parametrize("b_shape", [(2,), (4,), (3, 1), ()])
def test_conv_forward_error_bad_bias(b_shape):
    with pytest.raises(ValueError, match=r"b must have shape \(3,\)"):
        cnn.conv2d_forward(np.zeros((1, 4, 4, 2)), np.zeros((2, 2, 2, 3)), np.zeros(b_shape))


@pytest.mark.parametrize("x_shape", [(4, 4, 2), (1, 1, 4, 4, 2)])
def test_conv_forward_error_x_not_4d(x_shape):
    with pytest.raises(ValueError, match="x must be 4-D"):
        cnn.conv2d_forward(np.zeros(x_shape), np.zeros((2, 2, 2, 3)), np.zeros(3))


@pytest.mark.parametrize("stride, pad", [(0, 0), (1, -1)])
def test_conv_forward_error_bad_stride_or_pad(stride, pad):
    with pytest.raises(ValueError, match="stride|pad"):
        cnn.conv2d_forward(np.zeros((1, 4, 4, 1)), np.zeros((2, 2, 1, 1)), np.zeros(1),
                           stride=stride, pad=pad)


def test_conv_backward_error_dy_wrong_shape():
    x, w, b = np.zeros((2, 5, 5, 1)), np.zeros((3, 3, 1, 4)), np.zeros(4)
    with pytest.raises(ValueError, match=r"dy has shape \(2, 3, 3, 3\).*\(2, 3, 3, 4\)"):
        cnn.conv2d_backward(np.zeros((2, 3, 3, 3)), x, w, b)


def test_maxpool_errors():
    x = np.zeros((1, 4, 4, 1))
    with pytest.raises(ValueError, match="size"):
        cnn.maxpool_forward(x, size=0)
    with pytest.raises(ValueError, match="stride"):
        cnn.maxpool_forward(x, stride=0)
    with pytest.raises(ValueError, match="larger than the input"):
        cnn.maxpool_forward(x, size=5)
    with pytest.raises(ValueError, match=r"dy has shape \(1, 3, 3, 1\)"):
        cnn.maxpool_backward(np.zeros((1, 3, 3, 1)), x)


def test_linear_errors():
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(4, 5\)"):
        cnn.linear_forward(np.zeros((4, 5)), np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="dy"):
        cnn.linear_backward(np.zeros((4, 3)), np.zeros((4, 5)), np.zeros((5, 2)), np.zeros(2))


@pytest.mark.parametrize(
    "labels, match",
    [([0, 3], "labels must lie in"), ([-1, 0], "labels must lie in"), ([0, 1, 2], "labels must have shape")],
)
def test_softmax_cross_entropy_errors(labels, match):
    with pytest.raises(ValueError, match=match):
        cnn.softmax_cross_entropy(np.zeros((2, 3)), np.array(labels))


# --------------------------------------------------------------------------
# conv forward vs scipy
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kernel, stride, pad", GRID)
def test_conv_forward_matches_scipy_correlate(kernel, stride, pad):
    rng = np.random.default_rng([*kernel, stride, pad])
    x = rng.standard_normal((2, 6, 5, 3))
    if kernel[0] > 6 + 2 * pad or kernel[1] > 5 + 2 * pad:
        pytest.skip("filter does not fit")
    w = rng.standard_normal(kernel + (3, 4))
    b = rng.standard_normal(4)
    y = cnn.conv2d_forward(x, w, b, stride=stride, pad=pad)
    expected = scipy_conv(x, w, b, stride, pad)
    assert y.shape == expected.shape
    assert y.dtype == np.float64
    assert rel_error(y, expected) < 1e-12


def test_conv_is_not_true_convolution():
    # An asymmetric filter tells correlation (lecture) from convolution (flipped).
    x = np.arange(9.0).reshape(1, 3, 3, 1)
    w = np.array([[1.0, 0.0], [0.0, 0.0]]).reshape(2, 2, 1, 1)
    y = cnn.conv2d_forward(x, w, np.zeros(1))
    np.testing.assert_array_equal(y[0, :, :, 0], [[0, 1], [3, 4]])


# --------------------------------------------------------------------------
# backward passes vs central finite differences
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kernel, stride, pad", GRID)
def test_conv_backward_matches_finite_differences(kernel, stride, pad):
    rng = np.random.default_rng([*kernel, stride, pad, 1])
    x = rng.standard_normal((2, 5, 4, 2))
    if kernel[0] > 5 + 2 * pad or kernel[1] > 4 + 2 * pad:
        pytest.skip("filter does not fit")
    w = rng.standard_normal(kernel + (2, 3))
    b = rng.standard_normal(3)
    dy = rng.standard_normal(cnn.conv2d_forward(x, w, b, stride, pad).shape)

    def loss(x, w, b):
        return np.sum(cnn.conv2d_forward(x, w, b, stride, pad) * dy)

    dx, dw, db = cnn.conv2d_backward(dy, x, w, b, stride, pad)
    assert (dx.shape, dw.shape, db.shape) == (x.shape, w.shape, b.shape)
    for grad, index in ((dx, 0), (dw, 1), (db, 2)):
        assert rel_error(grad, numeric_grad(loss, [x, w, b], index)) < 1e-7


@pytest.mark.parametrize("size, stride", [(2, 2), (3, 1), (3, 2), (2, 3), (1, 1)])
def test_maxpool_backward_matches_finite_differences(size, stride):
    rng = np.random.default_rng(size * 10 + stride)
    shape = (2, 7, 6, 2)
    # Distinct values at least 0.01 apart: no ties, and eps cannot swap a maximum.
    x = rng.permutation(np.prod(shape)).reshape(shape) * 0.01 + 0.5
    dy = rng.standard_normal(cnn.maxpool_forward(x, size, stride).shape)

    def loss(x):
        return np.sum(cnn.maxpool_forward(x, size, stride) * dy)

    dx = cnn.maxpool_backward(dy, x, size, stride)
    assert rel_error(dx, numeric_grad(loss, [x], 0)) < 1e-7


def test_relu_backward_matches_finite_differences():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 5))
    x += np.sign(x) * 0.1  # keep away from the kink at 0
    dy = rng.standard_normal(x.shape)
    dx = cnn.relu_backward(dy, x)
    assert rel_error(dx, numeric_grad(lambda x: np.sum(cnn.relu_forward(x) * dy), [x], 0)) < 1e-7
    assert np.any(dx == 0) and np.any(dx != 0)


def test_relu_forward_values():
    np.testing.assert_array_equal(cnn.relu_forward(np.array([-2.0, 0.0, 3.0])), [0.0, 0.0, 3.0])


def test_linear_backward_matches_finite_differences():
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((4, 5)), rng.standard_normal((5, 3)), rng.standard_normal(3)
    dy = rng.standard_normal((4, 3))
    np.testing.assert_allclose(cnn.linear_forward(x, w, b), x @ w + b, rtol=1e-13)

    def loss(x, w, b):
        return np.sum(cnn.linear_forward(x, w, b) * dy)

    for grad, index in zip(cnn.linear_backward(dy, x, w, b), range(3)):
        assert rel_error(grad, numeric_grad(loss, [x, w, b], index)) < 1e-7


def test_softmax_cross_entropy_matches_definition_and_finite_differences():
    rng = np.random.default_rng(3)
    z = rng.standard_normal((5, 4)) * 3
    labels = np.array([0, 3, 1, 1, 2])
    loss, dz = cnn.softmax_cross_entropy(z, labels)
    assert type(loss) is float
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    assert abs(loss - np.mean(-np.log(p[np.arange(5), labels]))) < 1e-12
    numeric = numeric_grad(lambda z: cnn.softmax_cross_entropy(z, labels)[0], [z], 0)
    assert rel_error(dz, numeric) < 1e-7


# --------------------------------------------------------------------------
# max pooling: ties and overlapping windows
# --------------------------------------------------------------------------


def test_maxpool_forward_values():
    x = np.arange(16.0).reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(cnn.maxpool_forward(x)[0, :, :, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(cnn.maxpool_forward(x, 3, 1)[0, :, :, 0], [[10, 11], [14, 15]])
    # windows that do not fit are dropped: 5 -> (5 - 2) // 2 + 1 = 2
    assert cnn.maxpool_forward(np.zeros((1, 5, 5, 3))).shape == (1, 2, 2, 3)


def test_maxpool_tie_goes_to_first_maximum_in_row_major_order():
    x = np.zeros((1, 2, 2, 2))
    x[0, :, :, 0] = [[1, 3], [3, 3]]   # three tied maxima: (0, 1) comes first
    x[0, :, :, 1] = [[0, 0], [2, 2]]   # (1, 0) comes before (1, 1)
    dy = np.array([5.0, 7.0]).reshape(1, 1, 1, 2)
    dx = cnn.maxpool_backward(dy, x)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 5], [0, 0]])
    np.testing.assert_array_equal(dx[0, :, :, 1], [[0, 0], [7, 0]])


def test_maxpool_overlapping_windows_add_up():
    # The 9 at (1, 1) is the maximum of all four 3x3 windows of a 4x4 input.
    x = np.zeros((1, 4, 4, 1))
    x[0, 1, 1, 0] = 9.0
    dy = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 2, 2, 1)
    dx = cnn.maxpool_backward(dy, x, size=3, stride=1)
    expected = np.zeros((4, 4))
    expected[1, 1] = 10.0
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)


@pytest.mark.parametrize("size, stride", [(2, 2), (3, 1), (3, 2), (2, 1), (2, 3)])
def test_maxpool_matches_loops_with_many_ties(size, stride):
    rng = np.random.default_rng(size * 7 + stride)
    x = rng.integers(0, 3, size=(2, 7, 8, 3)).astype(float)   # ties everywhere
    y_loop, _ = loop_maxpool(x, None, size, stride)
    dy = rng.standard_normal(y_loop.shape)
    _, dx_loop = loop_maxpool(x, dy, size, stride)
    np.testing.assert_array_equal(cnn.maxpool_forward(x, size, stride), y_loop)
    np.testing.assert_allclose(cnn.maxpool_backward(dy, x, size, stride), dx_loop, rtol=1e-14, atol=1e-14)


# --------------------------------------------------------------------------
# softmax stability, dtypes
# --------------------------------------------------------------------------


def test_softmax_cross_entropy_is_stable_for_large_scores():
    z = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 0.0]])
    loss, dz = cnn.softmax_cross_entropy(z, np.array([2, 0]))
    assert np.isfinite(loss) and np.all(np.isfinite(dz))
    assert loss == pytest.approx((2e4 + np.log(2)) / 2)
    np.testing.assert_allclose(dz, [[0.5, 0, -0.5], [-0.25, 0.25, 0]], atol=1e-12)


def test_results_are_float64_for_float32_and_int_inputs():
    x = np.ones((1, 4, 4, 2), dtype=np.float32)
    w = np.ones((2, 2, 2, 3), dtype=np.int64)
    assert cnn.conv2d_forward(x, w, np.zeros(3, dtype=np.float32)).dtype == np.float64
    assert all(g.dtype == np.float64 for g in cnn.conv2d_backward(np.ones((1, 3, 3, 3)), x, w, np.zeros(3)))
    assert cnn.maxpool_forward(x).dtype == np.float64
    assert cnn.relu_backward(np.ones(3, dtype=np.float32), np.ones(3)).dtype == np.float64
    loss, dz = cnn.softmax_cross_entropy(np.zeros((2, 3), dtype=np.float32), [0, 1])
    assert type(loss) is float and dz.dtype == np.float64


# --------------------------------------------------------------------------
# inputs are never modified
# --------------------------------------------------------------------------


@st.composite
def layer_case(draw):
    n, c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    pad, stride = draw(st.integers(0, 2)), draw(st.integers(1, 3))
    f_h = draw(st.integers(1, h + 2 * pad))
    f_w = draw(st.integers(1, w + 2 * pad))
    size = draw(st.integers(1, min(h, w)))
    pool_stride = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    seed = draw(st.integers(0, 2**32 - 1))
    return n, c_in, c_out, h, w, pad, stride, f_h, f_w, size, pool_stride, dtype, seed


@settings(max_examples=30, deadline=None)
@given(layer_case())
def test_no_function_modifies_its_inputs(case):
    n, c_in, c_out, h, w_, pad, stride, f_h, f_w, size, pool_stride, dtype, seed = case
    rng = np.random.default_rng(seed)

    def rand(*shape):
        return rng.standard_normal(shape).astype(dtype)

    x, w, b = rand(n, h, w_, c_in), rand(f_h, f_w, c_in, c_out), rand(c_out)
    h_out = cnn.conv_output_size(h, f_h, pad, stride)
    w_out = cnn.conv_output_size(w_, f_w, pad, stride)
    p_out = ((h - size) // pool_stride + 1, (w_ - size) // pool_stride + 1)
    d_in, d_out = h * w_ * c_in, c_out
    flat = x.reshape(n, -1)
    calls = [
        (cnn.conv2d_forward, (x, w, b, stride, pad)),
        (cnn.conv2d_backward, (rand(n, h_out, w_out, c_out), x, w, b, stride, pad)),
        (cnn.maxpool_forward, (x, size, pool_stride)),
        (cnn.maxpool_backward, (rand(n, *p_out, c_in), x, size, pool_stride)),
        (cnn.relu_forward, (x,)),
        (cnn.relu_backward, (rand(*x.shape), x)),
        (cnn.linear_forward, (flat, rand(d_in, d_out), rand(d_out))),
        (cnn.linear_backward, (rand(n, d_out), flat, rand(d_in, d_out), rand(d_out))),
        (cnn.softmax_cross_entropy, (rand(n, d_out), rng.integers(0, d_out, n))),
    ]
    for fn, args in calls:
        before = [np.copy(a) for a in args]
        fn(*args)
        for a, old in zip(args, before):
            np.testing.assert_array_equal(a, old, err_msg=f"{fn.__name__} modified an input")


# --------------------------------------------------------------------------
# the layers work together
# --------------------------------------------------------------------------


def small_cnn_problem():
    """8 images 8x8x1 of 2 classes and the parameters of conv-relu-pool-linear."""
    rng = np.random.default_rng(0)
    labels = np.arange(8) % 2
    x = rng.standard_normal((8, 8, 8, 1)) * 0.1
    x[labels == 0, :, 1:3, 0] += 1.0   # class 0: a bright bar on the left
    x[labels == 1, :, 5:7, 0] += 1.0   # class 1: a bright bar on the right
    params = [rng.standard_normal((3, 3, 1, 4)) * 0.3, np.zeros(4),
              rng.standard_normal((4 * 4 * 4, 2)) * 0.1, np.zeros(2)]
    return x, labels, params


def small_cnn(x, labels, w1, b1, w2, b2):
    """Loss and gradients (dw1, db1, dw2, db2) of conv-relu-pool-linear-softmax."""
    n = x.shape[0]
    a1 = cnn.conv2d_forward(x, w1, b1, stride=1, pad=1)     # (8, 8, 8, 4)
    r1 = cnn.relu_forward(a1)
    p1 = cnn.maxpool_forward(r1)                            # (8, 4, 4, 4)
    z = cnn.linear_forward(p1.reshape(n, -1), w2, b2)       # (8, 2)
    loss, dz = cnn.softmax_cross_entropy(z, labels)
    dflat, dw2, db2 = cnn.linear_backward(dz, p1.reshape(n, -1), w2, b2)
    dr1 = cnn.maxpool_backward(dflat.reshape(p1.shape), r1)
    da1 = cnn.relu_backward(dr1, a1)
    _, dw1, db1 = cnn.conv2d_backward(da1, x, w1, b1, stride=1, pad=1)
    return loss, (dw1, db1, dw2, db2)


def test_small_cnn_end_to_end_gradient_matches_finite_differences():
    x, labels, params = small_cnn_problem()
    _, grads = small_cnn(x, labels, *params)

    def loss(*params):
        return small_cnn(x, labels, *params)[0]

    for index in (0, 1):   # the conv layer's gradients pass through every other layer
        assert rel_error(grads[index], numeric_grad(loss, params, index)) < 1e-7


def test_small_cnn_learns_with_gradient_descent():
    x, labels, params = small_cnn_problem()
    losses = []
    for _ in range(40):
        loss, grads = small_cnn(x, labels, *params)
        losses.append(loss)
        for param, grad in zip(params, grads):
            param -= 0.5 * grad
    assert losses[-1] < 0.5 * losses[0], losses
