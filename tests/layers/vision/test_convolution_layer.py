"""Convolution: shapes, a loop reference, gradients, errors, accumulation."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.core.registry import create_layer
from kaffe.ops import conv as conv_ops
from kaffe.ops.conv import conv_forward
from kaffe.proto import caffe_pb2
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, empty_blobs,
                                    layer_param, make_layer, setup_layer)

check_error = partial(check_layer_error, layer="conv")

FILLERS = """
  weight_filler { type: "gaussian" std: 1 }
  bias_filler { type: "gaussian" std: 1 }"""


def conv(num_output, extra=""):
    return (f'name: "conv" type: "Convolution" convolution_param {{ '
            f'num_output: {num_output} {FILLERS} {extra} }}')


def reference(x, w, b, stride, pad, dilation, group):
    """Loops over (n, m, output position): each of the num_output filters
    spans all C/group channels of its group, one kernel slice per channel,
    and the products are summed (plus b[m]).

    x: (N, C, *spatial); w: (M, C/group, *kernel); stride, pad, dilation:
    one int per spatial axis. Padding is zeros.
    """
    n_count, channels = x.shape[:2]
    kernel = w.shape[2:]
    m_count, c_per_group = w.shape[0], w.shape[1]
    assert c_per_group * group == channels
    m_per_group = m_count // group
    padded = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in pad])
    out = tuple((s + 2 * p - (d * (k - 1) + 1)) // st + 1 for s, k, st, p, d
                in zip(x.shape[2:], kernel, stride, pad, dilation))
    y = np.zeros((n_count, m_count) + out)
    for n in range(n_count):
        for m in range(m_count):
            g = m // m_per_group
            channels_of_group = padded[n, g * c_per_group:
                                       (g + 1) * c_per_group]
            for o in np.ndindex(*out):
                window = (slice(None),) + tuple(
                    slice(o[a] * stride[a],
                          o[a] * stride[a] + dilation[a] * (kernel[a] - 1) + 1,
                          dilation[a])
                    for a in range(len(out)))
                y[(n, m) + o] = np.sum(w[m] * channels_of_group[window])
            if b is not None:
                y[n, m] += b[m]
    return y


def run_reference(layer, x):
    """The reference with the layer's geometry and parameters, batch axes
    before the channel axis flattened as Caffe does."""
    axis = layer.channel_axis
    lead = x.shape[:axis]
    x_nc = x.reshape((int(np.prod(lead)),) + x.shape[axis:])
    b = layer.blobs[1].data if layer.bias_term else None
    y = reference(x_nc, layer.blobs[0].data, b, layer.stride, layer.pad,
                  layer.dilation, layer.group)
    return y.reshape(lead + y.shape[1:])


def random(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("shape, extra, top, weight", [
    # Caffe's own TestSetup: k=3, s=2 on 6×4.
    ((2, 3, 6, 4), "kernel_size: 3 stride: 2", (2, 4, 2, 1), (4, 3, 3, 3)),
    # kernel_size once per axis, stride per axis.
    ((2, 3, 6, 4), "kernel_size: 3 kernel_size: 2 stride: 2 stride: 1",
     (2, 4, 2, 3), (4, 3, 3, 2)),
    # The _h/_w forms; a rectangular input.
    ((1, 3, 7, 5), "kernel_h: 3 kernel_w: 1 stride_h: 2 stride_w: 1 "
     "pad_h: 1 pad_w: 2", (1, 4, 4, 9), (4, 3, 3, 1)),
    # Dilation: the kernel spans d·(k−1)+1 = 5 cells.
    ((1, 3, 6, 7), "kernel_size: 3 dilation: 2", (1, 4, 2, 3), (4, 3, 3, 3)),
    ((1, 3, 6, 7), "kernel_size: 3 dilation: 2 dilation: 1 pad: 1",
     (1, 4, 4, 7), (4, 3, 3, 3)),
    # Groups: each filter sees C/group channels.
    ((2, 6, 5, 5), "kernel_size: 3 group: 3 pad: 1", (2, 6, 5, 5),
     (6, 2, 3, 3)),
    # 3 spatial axes (Caffe's TestSimple3DConvolution).
    ((2, 3, 5, 6, 4), "kernel_size: 3 stride: 2", (2, 4, 2, 2, 1),
     (4, 3, 3, 3, 3)),
    # axis 2: the first two axes are batch axes.
    ((2, 3, 4, 5, 5), "kernel_size: 3 axis: 2", (2, 3, 4, 3, 3),
     (4, 4, 3, 3)),
    ((2, 3, 4, 5, 5), "kernel_size: 3 axis: -3", (2, 3, 4, 3, 3),
     (4, 4, 3, 3)),
])
def test_shapes(shape, extra, top, weight):
    num_output = weight[0]
    layer, _, tops = setup_layer(conv(num_output, extra), [np.zeros(shape)])
    assert tops[0].shape == top
    assert layer.blobs[0].shape == weight
    assert layer.blobs[1].shape == (num_output,)


def test_lenet_conv2_shape_is_50_maps_not_1000():
    # 20 maps in, 50 filters of 20×5×5 each: 50 maps out.
    layer, _, top = setup_layer(conv(50, "kernel_size: 5"),
                                [np.zeros((2, 20, 12, 12))])
    assert top[0].shape == (2, 50, 8, 8)
    assert layer.blobs[0].shape == (50, 20, 5, 5)


def test_no_bias_has_one_blob():
    layer, _, top = setup_layer(conv(2, "kernel_size: 2 bias_term: false"),
                                [np.ones((1, 3, 3, 3))])
    assert len(layer.blobs) == 1
    assert top[0].shape == (1, 2, 2, 2)


def test_default_fillers_are_zero():
    text = ('name: "conv" type: "Convolution" convolution_param '
            '{ num_output: 2 kernel_size: 2 }')
    layer, _, top = setup_layer(text, [np.ones((1, 3, 3, 3))])
    assert not layer.blobs[0].data.any() and not layer.blobs[1].data.any()
    assert not top[0].data.any()


@pytest.mark.parametrize("shape, extra, num_output", [
    ((2, 3, 6, 4), "kernel_size: 3 stride: 2", 4),
    ((2, 6, 6, 5), "kernel_size: 3 stride: 2 pad: 1 group: 3", 6),
    ((1, 4, 7, 6), "kernel_size: 3 dilation: 2 pad: 1 group: 2", 4),
    ((1, 3, 7, 5), "kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 "
     "pad_h: 0 pad_w: 1", 2),
    ((1, 3, 5, 4), "kernel_size: 1", 3),
    ((1, 2, 5, 4, 4), "kernel_size: 3 kernel_size: 2 kernel_size: 2 "
     "stride: 2 pad: 1", 3),
    ((2, 3, 4, 5, 5), "kernel_size: 3 axis: 2 bias_term: false", 2),
])
def test_forward_matches_loops(shape, extra, num_output):
    x = random(shape)
    layer, _, top = setup_layer(conv(num_output, extra), [x])
    np.testing.assert_allclose(top[0].data, run_reference(layer, x),
                               rtol=1e-10, atol=1e-10)


def test_forward_20_to_50_matches_loops():
    x = random((1, 20, 12, 12))
    layer, _, top = setup_layer(conv(50, "kernel_size: 5"), [x])
    assert top[0].shape == (1, 50, 8, 8)
    np.testing.assert_allclose(top[0].data, run_reference(layer, x),
                               rtol=1e-10, atol=1e-10)


def test_forward_known_values():
    # All-ones 3×4 input, all-ones 2×2 filters over 2 channels, bias 0.5:
    # every output sums 2·2·2 ones.
    text = ('name: "conv" type: "Convolution" convolution_param { '
            'num_output: 1 kernel_size: 2 '
            'weight_filler { type: "constant" value: 1 } '
            'bias_filler { type: "constant" value: 0.5 } }')
    _, _, top = setup_layer(text, [np.ones((1, 2, 3, 4))])
    np.testing.assert_array_equal(top[0].data, np.full((1, 1, 2, 3), 8.5))


def test_zero_spatial_axes_is_a_fully_connected_layer():
    # Caffe's Test0DConvolution: axis 3 of a 4-D input leaves no spatial
    # axes; each of the 2·3·6 positions is a vector of 4 channels.
    x = random((2, 3, 6, 4))
    layer, bottom, top = setup_layer(conv(3, "axis: 3"), [x])
    assert top[0].shape == (2, 3, 6, 3)
    assert layer.blobs[0].shape == (3, 4)
    w, b = layer.blobs[0].data, layer.blobs[1].data
    expected = np.zeros((2, 3, 6, 3))
    for index in np.ndindex(2, 3, 6):
        for m in range(3):
            expected[index + (m,)] = b[m] + sum(
                w[m, c] * x[index + (c,)] for c in range(4))
    # atol: the weights come from the shared random stream, and where a sum
    # nearly cancels, its relative error is far above 1e-12.
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-12, atol=1e-14)
    check_gradients(layer, bottom, top, max_elements=20)


def test_two_bottoms_share_the_weights():
    x0, x1 = random((2, 4, 5, 5), 1), random((2, 4, 5, 5), 2)
    layer, _, top = setup_layer(conv(3, "kernel_size: 3 group: 1 pad: 1"),
                                [x0, x1], n_top=2)
    assert len(layer.blobs) == 2
    for x, y in zip((x0, x1), top):
        assert y.shape == (2, 3, 5, 5)
        np.testing.assert_allclose(y.data, run_reference(layer, x),
                                   rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("extra, conv2d", [
    ("kernel_size: 3 stride: 2 pad: 1 group: 2",
     dict(stride=2, padding=1, groups=2)),
    ("kernel_size: 3 dilation: 2 pad: 2 group: 4",
     dict(dilation=2, padding=2, groups=4)),
    ("kernel_h: 3 kernel_w: 2 stride_h: 1 stride_w: 2 pad_h: 1 pad_w: 0",
     dict(stride=(1, 2), padding=(1, 0))),
])
def test_forward_matches_torch_conv2d(extra, conv2d):
    torch = pytest.importorskip("torch")
    x = random((2, 4, 7, 6), 3)
    layer, _, top = setup_layer(conv(4, extra), [x])
    y = torch.nn.functional.conv2d(
        torch.from_numpy(x), torch.from_numpy(layer.blobs[0].data),
        torch.from_numpy(layer.blobs[1].data), **conv2d)
    np.testing.assert_allclose(top[0].data, y.numpy(), rtol=1e-10, atol=1e-10)


def test_forward_matches_torch_conv3d():
    torch = pytest.importorskip("torch")
    x = random((2, 4, 5, 6, 5), 4)
    extra = ("kernel_size: 3 kernel_size: 2 kernel_size: 3 stride: 2 "
             "stride: 1 stride: 1 pad: 1 dilation: 1 dilation: 2 dilation: 1 "
             "group: 2")
    layer, _, top = setup_layer(conv(6, extra), [x])
    y = torch.nn.functional.conv3d(
        torch.from_numpy(x), torch.from_numpy(layer.blobs[0].data),
        torch.from_numpy(layer.blobs[1].data), stride=(2, 1, 1), padding=1,
        dilation=(1, 2, 1), groups=2)
    np.testing.assert_allclose(top[0].data, y.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape, extra, num_output", [
    ((2, 4, 5, 5), "kernel_size: 3 stride: 2 pad: 1 group: 2", 4),
    ((1, 2, 6, 5), "kernel_size: 2 dilation: 2 pad: 1", 3),
    ((1, 2, 5, 3), "kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_w: 1",
     2),
    ((1, 2, 4, 3, 3), "kernel_size: 2 stride: 2 stride: 1 stride: 1 pad: 1",
     2),
    ((2, 2, 3, 4, 4), "kernel_size: 3 axis: 2 bias_term: false", 2),
])
def test_gradients(shape, extra, num_output):
    layer, bottom, top = setup_layer(conv(num_output, extra),
                                     [random(shape, 5)])
    check_gradients(layer, bottom, top, max_elements=60)


def test_gradients_two_bottoms():
    layer, bottom, top = setup_layer(conv(2, "kernel_size: 3 pad: 1"),
                                     [random((1, 2, 4, 4), 6),
                                      random((1, 2, 4, 4), 7)], n_top=2)
    check_gradients(layer, bottom, top, max_elements=40)


def test_param_diffs_accumulate_and_bottom_diff_is_overwritten():
    x = random((2, 3, 5, 5), 8)
    layer, bottom, top = setup_layer(conv(4, "kernel_size: 3 group: 1"), [x])
    top[0].diff[...] = random(top[0].shape, 9)
    for blob in layer.blobs:
        blob.diff[...] = 0
    layer.Backward(top, [True], bottom)
    first = [blob.diff.copy() for blob in layer.blobs]
    first_bottom = bottom[0].diff.copy()
    assert np.abs(first_bottom).sum() > 0
    layer.Backward(top, [True], bottom)
    for blob, once in zip(layer.blobs, first):
        np.testing.assert_allclose(blob.diff, 2 * once)
    np.testing.assert_allclose(bottom[0].diff, first_bottom)
    # The bias gradient is dy summed over the batch and the positions.
    np.testing.assert_allclose(first[1], top[0].diff.sum(axis=(0, 2, 3)))


def test_param_propagate_down_false_leaves_param_diffs():
    layer, bottom, top = setup_layer(conv(2, "kernel_size: 2"),
                                     [random((1, 2, 3, 3))])
    for j, blob in enumerate(layer.blobs):
        blob.diff[...] = 7
        layer.set_param_propagate_down(j, False)
    bottom[0].diff[...] = 5
    top[0].diff[...] = 1
    layer.Backward(top, [False], bottom)
    for blob in layer.blobs:
        assert (blob.diff == 7).all()
    assert (bottom[0].diff == 5).all()


def param_with_blobs(arrays, extra="kernel_size: 2"):
    param = layer_param('name: "conv" type: "Convolution" convolution_param '
                        f'{{ num_output: 2 {extra} }}')
    for array in arrays:
        blob = param.blobs.add()
        blob.shape.dim.extend(array.shape)
        blob.double_data.extend(np.ravel(array))
    return param


def test_blobs_from_the_layer_parameter_are_used():
    w = np.zeros((2, 1, 2, 2))
    w[0] = 1                      # sums the window
    w[1, 0, 0, 0] = 3             # 3 × the top-left cell
    b = np.array([10.0, 20.0])
    layer = create_layer(param_with_blobs([w, b]), dtype=np.float64)
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    bottom, top = blobs_from([x]), empty_blobs(1)
    layer.SetUp(bottom, top)
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data[0, 0], [[18, 22], [30, 34]])
    np.testing.assert_array_equal(top[0].data[0, 1], [[20, 23], [29, 32]])


def test_blobs_with_the_wrong_weight_shape_are_refused():
    layer = create_layer(param_with_blobs([np.zeros((2, 1, 3, 3)),
                                           np.zeros(2)]), dtype=np.float64)
    with pytest.raises(KaffeShapeError) as info:
        layer.SetUp(blobs_from([np.ones((1, 1, 3, 3))]), empty_blobs(1))
    check_error(info, "blobs[0]", "(2, 1, 3, 3)")
    assert "(2, 1, 2, 2)" in str(info.value)


def test_blobs_with_the_wrong_bias_shape_are_refused():
    layer = create_layer(param_with_blobs([np.zeros((2, 1, 2, 2)),
                                           np.zeros(3)]), dtype=np.float64)
    with pytest.raises(KaffeShapeError) as info:
        layer.SetUp(blobs_from([np.ones((1, 1, 3, 3))]), empty_blobs(1))
    check_error(info, "blobs[1]", "(3)")


def test_a_missing_bias_blob_is_refused():
    layer = create_layer(param_with_blobs([np.zeros((2, 1, 2, 2))]),
                         dtype=np.float64)
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([np.ones((1, 1, 3, 3))]), empty_blobs(1))
    check_error(info, "blobs", "1")


# -- errors: one per validated field --------------------------------------

@pytest.mark.parametrize("num_output, extra, shape, field, received", [
    (0, "kernel_size: 3", (1, 3, 5, 5), "num_output", "0"),
    (4, "kernel_size: 3 group: 2", (1, 3, 5, 5), "group", "2"),
    (3, "kernel_size: 3 group: 2", (1, 4, 5, 5), "group", "2"),
    (4, "kernel_size: 3 group: 0", (1, 4, 5, 5), "group", "0"),
    (4, "kernel_size: 3 kernel_size: 3 kernel_size: 3", (1, 3, 5, 5),
     "kernel_size", "'3 values'"),
    (4, "", (1, 3, 5, 5), "kernel_size", "'0 values'"),
    (4, "kernel_size: 3 stride: 1 stride: 1 stride: 1", (1, 3, 5, 5),
     "stride", "'3 values'"),
    (4, "kernel_size: 3 pad: 1 pad: 1", (1, 3, 5, 5, 5), "pad",
     "'2 values'"),
    (4, "kernel_size: 3 dilation: 1 dilation: 1 dilation: 1", (1, 3, 5, 5),
     "dilation", "'3 values'"),
    (4, "kernel_size: 0", (1, 3, 5, 5), "kernel_size", "(0, 0)"),
    (4, "kernel_h: 3", (1, 3, 5, 5), "kernel_size", "(3, 0)"),
    (4, "kernel_size: 3 stride: 0", (1, 3, 5, 5), "stride", "(0, 0)"),
    (4, "kernel_size: 3 stride_h: 2", (1, 3, 5, 5), "stride", "(2, 0)"),
    (4, "kernel_size: 3 dilation: 1 dilation: 0", (1, 3, 5, 5), "dilation",
     "(1, 0)"),
    (4, "kernel_size: 3 kernel_h: 3 kernel_w: 3", (1, 3, 5, 5), "kernel_h",
     "'kernel_h: 3, kernel_w: 3 and kernel_size: 3'"),
    (4, "kernel_size: 3 stride: 1 stride_w: 2", (1, 3, 5, 5), "stride_w",
     "'stride_w: 2 and stride: 1'"),
    (4, "kernel_h: 3 kernel_w: 3", (1, 3, 5, 5, 5), "kernel_h",
     "'3 spatial axes'"),
    (4, "kernel_size: 3 pad_w: 1", (1, 3, 5, 5, 5), "pad_w",
     "'3 spatial axes'"),
])
def test_config_errors(num_output, extra, shape, field, received):
    text = ('name: "conv" type: "Convolution" convolution_param '
            f'{{ num_output: {num_output} {extra} }}')
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(text, [np.ones(shape)])
    check_error(info, f"convolution_param.{field}", received)


def test_axis_out_of_range():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(conv(2, "kernel_size: 1 axis: 4"), [np.ones((1, 2, 3, 3))])
    check_error(info, "convolution_param.axis", "4")


@pytest.mark.parametrize("extra, shape, received", [
    ("kernel_size: 5", (1, 2, 4, 6), "(5, 5)"),
    ("kernel_size: 3 dilation: 2", (1, 2, 4, 6), "(3, 3)"),
    ("kernel_size: 3 kernel_size: 3 kernel_size: 7 pad: 1", (1, 2, 4, 4, 4),
     "(3, 3, 7)"),
])
def test_kernel_larger_than_the_padded_input(extra, shape, received):
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(conv(2, extra), [np.ones(shape)])
    check_error(info, "convolution_param.kernel_size", received)


def test_kernel_that_just_fits_the_padded_input():
    _, _, top = setup_layer(conv(2, "kernel_size: 5 pad: 1"),
                            [np.ones((1, 2, 3, 3))])
    assert top[0].shape == (1, 2, 1, 1)


def test_channel_count_may_not_change_but_the_rest_may():
    layer, bottom, top = setup_layer(conv(2, "kernel_size: 3"),
                                     [np.ones((1, 3, 5, 5))])
    bottom[0].reshape((4, 3, 6, 7))
    layer.Forward(bottom, top)
    assert top[0].shape == (4, 2, 4, 5)
    bottom[0].reshape((4, 4, 6, 7))
    with pytest.raises(KaffeShapeError) as info:
        layer.Forward(bottom, top)
    check_error(info, "bottom", "4")
    bottom[0].reshape((3, 6, 7))
    with pytest.raises(KaffeShapeError) as info:
        layer.Forward(bottom, top)
    check_error(info, "bottom", "(3, 6, 7)")


def test_bottoms_of_different_shapes():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(conv(2, "kernel_size: 3"),
                    [np.ones((1, 3, 5, 5)), np.ones((1, 3, 5, 6))], n_top=2)
    check_error(info, "bottom", "(1, 3, 5, 6)")


def test_one_top_per_bottom():
    layer = make_layer(conv(2, "kernel_size: 3"))
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([np.ones((1, 3, 5, 5))] * 2), empty_blobs(1))
    check_error(info, "top", "'2 bottoms and 1 tops'")


def test_float32_layer_runs_in_float32():
    layer, _, top = setup_layer(conv(2, "kernel_size: 3"),
                                [random((1, 3, 5, 5))], dtype=np.float32)
    assert layer.blobs[0].data.dtype == np.float32
    assert top[0].data.dtype == np.float32


@pytest.mark.parametrize("extra, shape, geometry", [
    ("kernel_size: 3 pad: 1", (2, 3, 5, 5), dict(pad=1)),
    ("kernel_size: 1", (2, 3, 4, 4), {}),
    ("kernel_size: 2 stride: 2 axis: 2", (2, 2, 3, 4, 4), dict(stride=2)),
])
def test_forward_writes_the_ops_result_into_the_top(extra, shape, geometry):
    x = random(shape, 3).astype(np.float32)
    layer, _, top = setup_layer(conv(3, extra), [x], dtype=np.float32)
    axis = layer.channel_axis
    expected = conv_forward(x.reshape((-1,) + shape[axis:]),
                            layer.blobs[0].data, layer.blobs[1].data,
                            **geometry)
    np.testing.assert_array_equal(top[0].data, expected.reshape(top[0].shape))


def test_in_place_computes_from_the_whole_input():
    # Caffe would read inputs it has already overwritten; kaffe computes
    # aside and copies.
    x = random((1, 3, 5, 5), 4)
    layer, _, expected = setup_layer(conv(3, "kernel_size: 3 pad: 1"), [x])
    bottom = blobs_from([x])
    layer.Forward(bottom, bottom)
    np.testing.assert_array_equal(bottom[0].data, expected[0].data)


# -- the columns kept for the filter gradient ---------------------------------

def setup_float32(extra, phase, shape=(4, 3, 9, 9), num_output=5, n=1):
    layer = make_layer(conv(num_output, extra), phase, np.float32)
    bottom = blobs_from([random(shape, 20 + i) for i in range(n)],
                        np.float32)
    top = empty_blobs(n, np.float32)
    layer.SetUp(bottom, top)
    return layer, bottom, top


def backward_float32(layer, bottom, top):
    layer.Forward(bottom, top)
    for i, blob in enumerate(top):
        blob.diff[...] = random(blob.shape, 30 + i)
    for blob in layer.blobs:
        blob.diff[...] = 0
    layer.Backward(top, [True] * len(bottom), bottom)
    return [blob.diff.copy() for blob in layer.blobs + bottom]


@pytest.mark.parametrize("extra", ["kernel_size: 3",
                                   "kernel_size: 3 stride: 2 pad: 1",
                                   "kernel_size: 1 stride: 2"])
@pytest.mark.parametrize("n", [1, 2])
def test_training_keeps_the_columns_and_gets_the_same_gradients(extra, n):
    trained = setup_float32(extra, caffe_pb2.TRAIN, n=n)
    tested = setup_float32(extra, caffe_pb2.TEST, n=n)
    for blob, same in zip(tested[0].blobs, trained[0].blobs):
        blob.data[...] = same.data
    for _ in range(2):   # the second time, into the kept arrays
        with_columns = backward_float32(*trained)
        without = backward_float32(*tested)
        for a, b in zip(with_columns, without):
            np.testing.assert_array_equal(a, b)   # bit for bit
    assert tested[0]._saved is None
    assert len(trained[0]._saved) == n
    assert all(s.nbytes > 0 for s in trained[0]._saved)


def test_training_gradients_with_kept_columns():
    """The finite differences change the input between forwards: the kept
    columns must follow it."""
    layer, bottom, top = setup_layer(conv(3, "kernel_size: 3 pad: 1"),
                                     [random((2, 2, 5, 5), 5)],
                                     phase=caffe_pb2.TRAIN)
    check_gradients(layer, bottom, top, max_elements=60)
    assert layer._saved[0].nbytes > 0


def test_no_columns_kept_without_a_filter_gradient_to_come():
    layer, bottom, top = setup_float32("kernel_size: 3", caffe_pb2.TRAIN)
    layer.Forward(bottom, top)
    assert layer._saved[0].nbytes > 0
    # The net found that backward never runs: what was kept is dropped.
    layer.needs_backward = False
    layer.Forward(bottom, top)
    assert layer._saved is None
    # Frozen filters (lr_mult: 0) need no columns either.
    layer.needs_backward = True
    layer.set_param_propagate_down(0, False)
    layer.Forward(bottom, top)
    assert layer._saved is None


def test_no_columns_kept_in_place():
    layer = make_layer(conv(3, "kernel_size: 1"), caffe_pb2.TRAIN,
                       np.float32)
    blob = blobs_from([random((2, 3, 4, 4), 3)], np.float32)[0]
    layer.SetUp([blob], [blob])
    layer.Forward([blob], [blob])
    assert layer._saved[0].nbytes == 0


def test_kept_columns_respect_the_memory_budget(monkeypatch):
    # 4 images × 3·3·3 rows × 7·7 positions, plus the 4×3×9×9 input.
    needed = (4 * 27 * 49 + 4 * 3 * 81) * 4
    monkeypatch.setattr(conv_ops, "KEEP_COLUMNS_MAX_BYTES", needed - 1)
    layer, bottom, top = setup_float32("kernel_size: 3", caffe_pb2.TRAIN)
    layer.Forward(bottom, top)
    assert layer._saved[0].nbytes == 0
    monkeypatch.setattr(conv_ops, "KEEP_COLUMNS_MAX_BYTES", needed)
    layer, bottom, top = setup_float32("kernel_size: 3", caffe_pb2.TRAIN)
    layer.Forward(bottom, top)
    assert layer._saved[0].nbytes == needed
