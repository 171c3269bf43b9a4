"""Pooling: shapes, loop references, gradients, errors."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.core.random import set_random_seed
from kaffe.proto import caffe_pb2
from kaffe.testing.gradient import (blobs_from, check_backward_overwrites,
                                    check_gradients, check_layer_error,
                                    empty_blobs, make_layer, setup_layer)

check_error = partial(check_layer_error, layer="pool")

FLT_MAX = float(np.finfo(np.float32).max)


def pool(extra, method="MAX"):
    return (f'name: "pool" type: "Pooling" pooling_param {{ pool: {method} '
            f'{extra} }}')


def caffe_output_size(size, k, s, pad, any_pad, ceil=True):
    """Caffe's pooled length (pooling_layer.cpp Reshape), written out."""
    span = (size + 2 * pad - k) / s
    out = int(np.ceil(span) if ceil else np.floor(span)) + 1
    if any_pad and (out - 1) * s >= size + pad:
        out -= 1
    return out


def reference(x, kernel, stride, pad, out_hw, method):
    """Loops over every window (ph, pw) of every plane.

    A window starts at (ph·s_h − p_h, pw·s_w − p_w) and spans the kernel.
    MAX: the largest in-image cell, the first one on ties (rows, then
    columns), and its flat index h·W + w; padding never wins.
    AVE: the sum of the in-image cells divided by the window's size clipped
    to the padded image (the padding counts, the overhang past it does not).
    STOCHASTIC (TEST): Σx² / Σx over the in-image cells (no padding).
    """
    n_count, c_count, height, width = x.shape
    y = np.zeros((n_count, c_count) + tuple(out_hw))
    mask = np.full(y.shape, -1.0)
    for n, c, ph, pw in np.ndindex(*y.shape):
        h0, w0 = ph * stride[0] - pad[0], pw * stride[1] - pad[1]
        h1 = min(h0 + kernel[0], height + pad[0])
        w1 = min(w0 + kernel[1], width + pad[1])
        pool_size = (h1 - h0) * (w1 - w0)
        cells = [(h, w) for h in range(max(h0, 0), min(h1, height))
                 for w in range(max(w0, 0), min(w1, width))]
        values = [x[n, c, h, w] for h, w in cells]
        if method == "MAX":
            best = -FLT_MAX
            for (h, w), v in zip(cells, values):
                if v > best:
                    best, mask[n, c, ph, pw] = v, h * width + w
            y[n, c, ph, pw] = best
        elif method == "AVE":
            y[n, c, ph, pw] = sum(values) / pool_size
        else:
            y[n, c, ph, pw] = (sum(v * v for v in values)
                               / (sum(values) + np.finfo(np.float32).tiny))
    return y, mask


def distinct(shape, seed=0):
    """Distinct values 1 apart: no ties, far from the finite-difference step."""
    count = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(count).reshape(shape) - 7.0


def positive(shape, seed=0):
    return np.random.default_rng(seed).uniform(0.5, 1.5, shape)


# -- shapes -------------------------------------------------------------------

@pytest.mark.parametrize("in_hw, extra, out_hw", [
    # Caffe's TestSetup and TestSetupPadded (6×5, k=3, s=2).
    ((6, 5), "kernel_size: 3 stride: 2", (3, 2)),
    ((6, 5), "kernel_size: 3 stride: 2 round_mode: FLOOR", (2, 2)),
    # ceil((6 + 2 − 3)/2) + 1 = 4 and (4 − 1)·2 = 6 < 6 + 1: not clipped.
    ((6, 5), "kernel_size: 3 stride: 2 pad: 1", (4, 3)),
    # ceil((5 + 2 − 3)/3) + 1 = 3, but (3 − 1)·3 = 6 ≥ 5 + 1: clipped to 2.
    ((5, 5), "kernel_size: 3 stride: 3 pad: 1", (2, 2)),
    ((5, 5), "kernel_size: 3 stride: 3 pad: 1 round_mode: FLOOR", (2, 2)),
    # ceil((3 + 2 − 2)/2) + 1 = 3, (3 − 1)·2 = 4 ≥ 3 + 1: clipped to 2.
    ((3, 3), "kernel_size: 2 stride: 2 pad: 1", (2, 2)),
    # Unpadded layers are never clipped, even if the last window is empty.
    ((4, 4), "kernel_size: 1 stride: 2", (3, 3)),
    # Rectangular kernel (Caffe's TestForwardRectHigh), stride and pad.
    ((6, 6), "kernel_h: 3 kernel_w: 2", (4, 5)),
    ((7, 6), "kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 3 pad_h: 1 "
     "pad_w: 1", (4, 3)),
    # One padded axis clips both: width ceil((4 − 1)/2) + 1 = 3, and
    # (3 − 1)·2 = 4 ≥ 4 + 0: clipped to 2 because pad_h > 0.
    ((3, 4), "kernel_h: 2 kernel_w: 1 stride_h: 1 stride_w: 2 pad_h: 1 "
     "pad_w: 0", (4, 2)),
    ((6, 5), "global_pooling: true", (1, 1)),
])
def test_shapes(in_hw, extra, out_hw):
    _, _, top = setup_layer(pool(extra), [np.zeros((2, 3) + in_hw)], n_top=2)
    assert top[0].shape == (2, 3) + out_hw
    assert top[1].shape == (2, 3) + out_hw


@pytest.mark.parametrize("size, k, s, pad", [
    (6, 3, 2, 1), (5, 3, 3, 1), (3, 2, 2, 1), (7, 3, 2, 0), (112, 3, 2, 1),
    (113, 3, 2, 1), (56, 3, 2, 0), (10, 4, 3, 2)])
@pytest.mark.parametrize("round_mode", ["CEIL", "FLOOR"])
def test_shapes_follow_caffes_formula(size, k, s, pad, round_mode):
    extra = f"kernel_size: {k} stride: {s} pad: {pad} round_mode: {round_mode}"
    _, _, top = setup_layer(pool(extra), [np.zeros((1, 1, size, size))])
    expected = caffe_output_size(size, k, s, pad, pad > 0,
                                 round_mode == "CEIL")
    assert top[0].shape == (1, 1, expected, expected)


def test_global_pooling_follows_the_input_size():
    layer, bottom, top = setup_layer(pool("global_pooling: true", "AVE"),
                                     [positive((2, 3, 6, 5))])
    np.testing.assert_allclose(top[0].data[..., 0, 0],
                               bottom[0].data.mean(axis=(2, 3)))
    bottom[0].reshape((1, 2, 4, 7))
    bottom[0].data[...] = positive((1, 2, 4, 7), 1)
    layer.Forward(bottom, top)
    assert top[0].shape == (1, 2, 1, 1)
    assert layer.kernel_shape == (4, 7)
    np.testing.assert_allclose(top[0].data[..., 0, 0],
                               bottom[0].data.mean(axis=(2, 3)))


# -- forward ------------------------------------------------------------------

def test_max_known_values_and_mask():
    # Caffe's TestForwardSquare: 2×2 windows, stride 1.
    plane = [[1, 2, 5, 2, 3], [9, 4, 1, 4, 8], [1, 2, 5, 2, 3]]
    x = np.tile(np.array(plane, float), (2, 2, 1, 1))
    _, _, top = setup_layer(pool("kernel_size: 2"), [x], n_top=2)
    np.testing.assert_array_equal(top[0].data,
                                  np.tile([[9, 5, 5, 8], [9, 5, 5, 8]],
                                          (2, 2, 1, 1)))
    np.testing.assert_array_equal(top[1].data,
                                  np.tile([[5, 2, 2, 9], [5, 12, 12, 9]],
                                          (2, 2, 1, 1)))
    assert top[1].data.dtype == np.float64


def test_max_padded_known_values():
    # Caffe's TestForwardMaxPadded: k=3, s=2, pad=2 on a 3×3 input.
    x = np.array([[1, 2, 4], [2, 3, 2], [4, 2, 1]], float)[None, None]
    _, _, top = setup_layer(pool("kernel_size: 3 stride: 2 pad: 2"), [x])
    np.testing.assert_array_equal(top[0].data[0, 0],
                                  [[1, 4, 4], [4, 4, 4], [4, 4, 1]])


def test_max_ignores_padding_and_keeps_the_first_of_ties():
    # All −1: the padding (never read) does not make a window's max 0, and
    # each window's argmax is its first in-image cell.
    x = -np.ones((1, 1, 3, 3))
    _, _, top = setup_layer(pool("kernel_size: 2 stride: 2 pad: 1"), [x],
                            n_top=2)
    np.testing.assert_array_equal(top[0].data, -np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(top[1].data[0, 0], [[0, 1], [3, 4]])


@pytest.mark.parametrize("extra", [
    "kernel_size: 3 stride: 2",
    "kernel_size: 3 stride: 2 pad: 1",
    "kernel_size: 3 stride: 3 pad: 1",
    "kernel_size: 2 stride: 1 round_mode: FLOOR",
    "kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 1",
    "kernel_h: 2 kernel_w: 1 stride_h: 1 stride_w: 2 pad_h: 1 pad_w: 0",
])
@pytest.mark.parametrize("method", ["MAX", "AVE"])
def test_forward_matches_loops(extra, method):
    # Small integers: MAX windows are full of ties.
    x = np.random.default_rng(1).integers(-2, 3, (2, 2, 6, 5)).astype(float)
    layer, _, top = setup_layer(pool(extra, method), [x],
                                n_top=2 if method == "MAX" else 1)
    y, mask = reference(x, layer.kernel_shape, layer.stride, layer.pad,
                        top[0].shape[2:], method)
    np.testing.assert_allclose(top[0].data, y, rtol=1e-12)
    if method == "MAX":
        np.testing.assert_array_equal(top[1].data, mask)


def test_ave_known_values():
    # Caffe's TestForwardAve: 2s, k=3, s=1, pad=1: the divisor is always 9.
    _, _, top = setup_layer(pool("kernel_size: 3 stride: 1 pad: 1", "AVE"),
                            [np.full((1, 1, 3, 3), 2.0)])
    corner, edge = 8 / 9, 12 / 9
    np.testing.assert_allclose(top[0].data[0, 0], [[corner, edge, corner],
                                                   [edge, 2, edge],
                                                   [corner, edge, corner]])


def test_ave_divisor_counts_padding_but_not_overhang():
    # H = W = 6, k = 3, s = 2, pad = 1: windows start at −1, 1, 3, 5. The
    # last spans rows 5, 6, 7: row 6 is padding (counted), row 7 is past
    # the padded edge (not counted): divisor 2 along that axis.
    _, _, top = setup_layer(pool("kernel_size: 3 stride: 2 pad: 1", "AVE"),
                            [np.ones((1, 1, 6, 6))])
    per_axis = np.array([2 / 3, 1, 1, 1 / 2])
    np.testing.assert_allclose(top[0].data[0, 0],
                               np.outer(per_axis, per_axis))


@pytest.mark.parametrize("padding", [0, 1])
def test_max_matches_torch(padding):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).standard_normal((2, 3, 7, 6))
    _, _, top = setup_layer(pool(f"kernel_size: 3 stride: 2 pad: {padding}"),
                            [x], n_top=2)
    y, index = torch.nn.functional.max_pool2d(
        torch.from_numpy(x), 3, 2, padding, ceil_mode=True,
        return_indices=True)
    np.testing.assert_array_equal(top[0].data, y.numpy())
    np.testing.assert_array_equal(top[1].data, index.numpy())


@pytest.mark.parametrize("in_hw", [(6, 5), (5, 5), (7, 8)])
def test_ave_matches_torch_when_padded(in_hw):
    # With pad > 0 on both axes torch's ceil_mode sizes and its
    # count_include_pad divisor are Caffe's.
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(3).standard_normal((2, 3) + in_hw)
    _, _, top = setup_layer(pool("kernel_size: 3 stride: 2 pad: 1", "AVE"),
                            [x])
    y = torch.nn.functional.avg_pool2d(torch.from_numpy(x), 3, 2, 1,
                                       ceil_mode=True, count_include_pad=True)
    np.testing.assert_allclose(top[0].data, y.numpy(), rtol=1e-12)


@pytest.mark.parametrize("extra", ["kernel_size: 3 stride: 2",
                                   "kernel_h: 2 kernel_w: 3 stride: 1"])
def test_stochastic_test_is_the_value_weighted_mean(extra):
    x = positive((2, 2, 6, 5), 4)
    layer, _, top = setup_layer(pool(extra, "STOCHASTIC"), [x])
    y, _ = reference(x, layer.kernel_shape, layer.stride, (0, 0),
                     top[0].shape[2:], "STOCHASTIC")
    np.testing.assert_allclose(top[0].data, y, rtol=1e-12)


def test_stochastic_train_picks_a_value_of_the_window():
    x = positive((2, 3, 6, 5), 5)
    set_random_seed(11)
    layer, _, top = setup_layer(pool("kernel_size: 3 stride: 2",
                                     "STOCHASTIC"), [x],
                                phase=caffe_pb2.TRAIN)
    assert top[0].shape == (2, 3, 3, 2)
    for n, c, ph, pw in np.ndindex(*top[0].shape):
        window = x[n, c, ph * 2:ph * 2 + 3, pw * 2:pw * 2 + 3]
        assert top[0].data[n, c, ph, pw] in window


def test_stochastic_train_picks_the_only_nonzero_value():
    x = np.zeros((1, 2, 4, 4))
    rng = np.random.default_rng(6)
    for c, ph, pw in np.ndindex(2, 2, 2):
        h, w = rng.integers(0, 2, 2)
        x[0, c, 2 * ph + h, 2 * pw + w] = 1 + ph + 2 * pw + 4 * c
    set_random_seed(12)
    layer, bottom, top = setup_layer(pool("kernel_size: 2 stride: 2",
                                          "STOCHASTIC"), [x],
                                     phase=caffe_pb2.TRAIN)
    np.testing.assert_array_equal(top[0].data,
                                  x.reshape(1, 2, 2, 2, 2, 2).max(axis=(3, 5)))
    # Backward routes each window's gradient to the element it sampled.
    top[0].diff[...] = np.arange(1.0, 9.0).reshape(1, 2, 2, 2)
    layer.Backward(top, [True], bottom)
    expected = np.zeros_like(x)
    expected[x > 0] = np.repeat(np.repeat(top[0].diff, 2, 2), 2, 3)[x > 0]
    np.testing.assert_array_equal(bottom[0].diff, expected)


def test_stochastic_train_samples_in_proportion_to_the_values():
    x = np.tile(np.array([[1.0, 2.0], [3.0, 4.0]]), (4000, 1, 1, 1))
    set_random_seed(13)
    _, _, top = setup_layer(pool("kernel_size: 2", "STOCHASTIC"), [x],
                            phase=caffe_pb2.TRAIN)
    picked = top[0].data.ravel()
    frequencies = [np.mean(picked == v) for v in (1, 2, 3, 4)]
    np.testing.assert_allclose(frequencies, [0.1, 0.2, 0.3, 0.4], atol=0.03)


def test_stochastic_train_depends_on_the_seed_only():
    x = positive((1, 4, 6, 6), 7)
    text = pool("kernel_size: 3 stride: 3", "STOCHASTIC")
    runs = []
    for seed in (21, 21, 22):
        set_random_seed(seed)
        _, _, top = setup_layer(text, [x], phase=caffe_pb2.TRAIN)
        runs.append(top[0].data.copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


# -- gradients ----------------------------------------------------------------

@pytest.mark.parametrize("extra", [
    "kernel_size: 3 stride: 2 pad: 1",
    "kernel_h: 3 kernel_w: 2 stride: 2",
    "kernel_size: 2 stride: 1",
])
def test_max_gradients(extra):
    layer, bottom, top = setup_layer(pool(extra), [distinct((2, 2, 6, 5))],
                                     n_top=2)
    check_gradients(layer, bottom, top, check_top=[0])


@pytest.mark.parametrize("extra", [
    "kernel_size: 3 stride: 2 pad: 1",
    "kernel_h: 3 kernel_w: 2 stride: 2 pad: 1",
    "kernel_size: 3 stride: 3 pad: 1",
    "global_pooling: true",
])
def test_ave_gradients(extra):
    layer, bottom, top = setup_layer(pool(extra, "AVE"),
                                     [np.random.default_rng(8)
                                      .standard_normal((2, 2, 6, 5))])
    check_gradients(layer, bottom, top)


def test_stochastic_test_gradients():
    layer, bottom, top = setup_layer(pool("kernel_size: 3 stride: 2",
                                          "STOCHASTIC"),
                                     [positive((2, 2, 6, 5), 9)])
    check_gradients(layer, bottom, top)


def test_stochastic_train_gradients():
    set_random_seed(14)
    layer, bottom, top = setup_layer(pool("kernel_size: 3 stride: 2",
                                          "STOCHASTIC"),
                                     [positive((2, 2, 6, 5), 10)],
                                     phase=caffe_pb2.TRAIN)
    check_gradients(layer, bottom, top, reseed=15)


def test_bottom_diff_is_overwritten():
    layer, bottom, top = setup_layer(pool("kernel_size: 3 stride: 2 pad: 1",
                                          "AVE"), [positive((1, 2, 6, 5))])
    top[0].diff[...] = 1
    check_backward_overwrites(layer, bottom, top)


def test_max_bottom_diff_is_overwritten():
    layer, bottom, top = setup_layer(pool("kernel_size: 3 stride: 2 pad: 1"),
                                     [distinct((1, 2, 6, 5))])
    top[0].diff[...] = 1
    check_backward_overwrites(layer, bottom, top)


# -- what forward keeps for backward ------------------------------------------

def forward_float32(extra, needs_backward, n_top=1):
    x = np.random.default_rng(11).standard_normal((2, 3, 9, 9))
    layer = make_layer(pool(extra), dtype=np.float32)
    layer.needs_backward = needs_backward
    bottom, top = blobs_from([x], np.float32), empty_blobs(n_top, np.float32)
    layer.SetUp(bottom, top)
    layer.Forward(bottom, top)
    return layer, top


@pytest.mark.parametrize("extra", ["kernel_size: 2 stride: 2",
                                   "kernel_size: 3 stride: 2",
                                   "kernel_size: 3 stride: 2 pad: 1"])
def test_max_without_backward_keeps_no_mask_and_pools_the_same(extra):
    trained, trained_top = forward_float32(extra, True)
    deployed, deployed_top = forward_float32(extra, False)
    assert trained.mask is not None and deployed.mask is None
    np.testing.assert_array_equal(deployed_top[0].data.view(np.uint32),
                                  trained_top[0].data.view(np.uint32))


def test_max_without_backward_still_outputs_the_mask_top():
    trained, trained_top = forward_float32("kernel_size: 3 stride: 2", True, 2)
    _, deployed_top = forward_float32("kernel_size: 3 stride: 2", False, 2)
    np.testing.assert_array_equal(deployed_top[1].data, trained_top[1].data)
    np.testing.assert_array_equal(deployed_top[1].data, trained.mask)


# -- errors -------------------------------------------------------------------

@pytest.mark.parametrize("extra, method, field, received", [
    ("kernel_size: 3 kernel_h: 3 kernel_w: 3", "MAX", "kernel_size",
     "'kernel_size: 3, kernel_h: 3, kernel_w: 3'"),
    ("", "MAX", "kernel_size", "'none of them'"),
    ("kernel_h: 3", "MAX", "kernel_size", "'kernel_h: 3'"),
    ("kernel_size: 3 kernel_w: 2", "MAX", "kernel_size",
     "'kernel_size: 3, kernel_w: 2'"),
    ("kernel_size: 0", "MAX", "kernel_size", "(0, 0)"),
    ("kernel_h: 2 kernel_w: 0", "MAX", "kernel_size", "(2, 0)"),
    ("global_pooling: true kernel_size: 3", "AVE", "global_pooling",
     "'kernel_size: 3'"),
    ("global_pooling: true stride: 2", "AVE", "global_pooling",
     "'pad (0, 0), stride (2, 2)'"),
    ("global_pooling: true pad: 1", "AVE", "global_pooling",
     "'pad (1, 1), stride (1, 1)'"),
    ("kernel_size: 2 pad: 2", "MAX", "pad", "(2, 2)"),
    ("kernel_h: 3 kernel_w: 2 pad_h: 1 pad_w: 2", "AVE", "pad", "(1, 2)"),
    ("kernel_size: 3 pad: 1", "STOCHASTIC", "pad", "(1, 1)"),
    ("kernel_size: 3 pad_h: 1", "MAX", "pad", "'pad_h: 1'"),
    ("kernel_size: 3 pad: 1 pad_h: 1 pad_w: 1", "MAX", "pad",
     "'pad: 1, pad_h: 1, pad_w: 1'"),
    ("kernel_size: 3 stride_w: 2", "MAX", "stride", "'stride_w: 2'"),
    ("kernel_size: 3 stride: 0", "MAX", "stride", "(0, 0)"),
])
def test_config_errors(extra, method, field, received):
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(pool(extra, method), [np.ones((1, 1, 6, 6))])
    check_error(info, f"pooling_param.{field}", received)


@pytest.mark.parametrize("method", ["AVE", "STOCHASTIC"])
def test_a_second_top_is_only_for_max(method):
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(pool("kernel_size: 2", method), [np.ones((1, 1, 4, 4))],
                    n_top=2)
    check_error(info, "top", f"'2 tops with pool: {method}'")


def test_at_most_two_tops():
    layer = make_layer(pool("kernel_size: 2"))
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([np.ones((1, 1, 4, 4))]), empty_blobs(3))
    check_error(info, "top", "'3 top blob(s)'")


@pytest.mark.parametrize("shape", [(2, 3, 4), (1, 2, 3, 4, 5)])
def test_input_must_be_4d(shape):
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(pool("kernel_size: 2"), [np.ones(shape)])
    check_error(info, "bottom", "(" + ", ".join(map(str, shape)) + ")")


def test_kernel_larger_than_the_padded_input():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(pool("kernel_size: 5 pad: 1"), [np.ones((1, 1, 2, 6))])
    check_error(info, "pooling_param.kernel_size", "(5, 5)")
    # Caught again when a later input is too small.
    layer, bottom, top = setup_layer(pool("kernel_h: 3 kernel_w: 2"),
                                     [np.ones((1, 1, 4, 4))])
    bottom[0].reshape((1, 1, 2, 4))
    with pytest.raises(KaffeShapeError) as info:
        layer.Forward(bottom, top)
    check_error(info, "pooling_param.kernel_size", "(3, 2)")
