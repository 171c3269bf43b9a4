"""Deconvolution: shapes, a scatter-add loop reference, the bilinear
upsampling recipe, gradients, errors, accumulation, torch parity."""
import math
from functools import partial

import numpy as np
import pytest
from google.protobuf import text_format

import kaffe
from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.core.registry import create_layer
from kaffe.proto import caffe_pb2
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, empty_blobs,
                                    layer_param, setup_layer)

check_error = partial(check_layer_error, layer="deconv")

FILLERS = """
  weight_filler { type: "gaussian" std: 1 }
  bias_filler { type: "gaussian" std: 1 }"""


def deconv(num_output, extra="", fillers=FILLERS):
    return (f'name: "deconv" type: "Deconvolution" convolution_param {{ '
            f'num_output: {num_output} {fillers} {extra} }}')


def reference(x, w, b, stride, pad, dilation, group):
    """Loops over (n, c, input position): the input value times channel c's
    filters is added into the output at input·stride + kernel·dilation; the
    uncropped result loses ``pad`` cells on both sides of each axis.

    x: (N, C, *spatial); w: (C, M/group, *kernel); output channel
    g·M/group + m receives from the input channels of group g.
    """
    n_count, channels = x.shape[:2]
    kernel = w.shape[2:]
    m_per_group = w.shape[1]
    c_per_group = channels // group
    full = tuple(s * (i - 1) + d * (k - 1) + 1 for i, k, s, d
                 in zip(x.shape[2:], kernel, stride, dilation))
    y = np.zeros((n_count, m_per_group * group) + full)
    for n in range(n_count):
        for c in range(channels):
            g = c // c_per_group
            for i in np.ndindex(*x.shape[2:]):
                for m in range(m_per_group):
                    for k in np.ndindex(*kernel):
                        o = tuple(i[a] * stride[a] + k[a] * dilation[a]
                                  for a in range(len(kernel)))
                        y[(n, g * m_per_group + m) + o] += (
                            x[(n, c) + i] * w[(c, m) + k])
    crop = tuple(slice(p, f - p) for p, f in zip(pad, full))
    y = y[(slice(None), slice(None)) + crop]
    if b is not None:
        y += b.reshape((-1,) + (1,) * len(kernel))
    return y


def run_reference(layer, x):
    """The reference with the layer's geometry and parameters, axes before
    the channel axis flattened as Caffe does."""
    axis = layer.channel_axis
    lead = x.shape[:axis]
    x_nc = x.reshape((int(np.prod(lead)),) + x.shape[axis:])
    b = layer.blobs[1].data if layer.bias_term else None
    y = reference(x_nc, layer.blobs[0].data, b, layer.stride, layer.pad,
                  layer.dilation, layer.group)
    return y.reshape(lead + y.shape[1:])


def random(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("shape, num_output, extra, top, weight", [
    # Caffe's TestSetup: k=3, s=2 on 6×4: 2·5 + 3 = 13, 2·3 + 3 = 9.
    ((2, 3, 6, 4), 4, "kernel_size: 3 stride: 2", (2, 4, 13, 9),
     (3, 4, 3, 3)),
    # ... and group 3 does not change the shape, only the weights.
    ((2, 3, 6, 4), 3, "kernel_size: 3 stride: 2 group: 3", (2, 3, 13, 9),
     (3, 1, 3, 3)),
    # pad crops, dilation widens: 1·4 + 2·2 + 1 − 2 = 7, 1·6 + 3 − 2 = 7.
    ((1, 2, 5, 7), 3, "kernel_size: 3 dilation: 2 dilation: 1 pad: 1",
     (1, 3, 7, 7), (2, 3, 3, 3)),
    # The _h/_w forms, a rectangular kernel: 2·4 + 3 − 2, 3·3 + 2 − 0.
    ((1, 2, 5, 4), 4, "kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 3 "
     "pad_h: 1 pad_w: 0", (1, 4, 9, 11), (2, 4, 3, 2)),
    # 3 spatial axes.
    ((2, 2, 3, 4, 2), 3, "kernel_size: 2 stride: 2", (2, 3, 6, 8, 4),
     (2, 3, 2, 2, 2)),
    # axis 2: the first two axes are batch axes.
    ((2, 3, 4, 3, 3), 2, "kernel_size: 2 axis: 2", (2, 3, 2, 4, 4),
     (4, 2, 2, 2)),
])
def test_shapes(shape, num_output, extra, top, weight):
    layer, _, tops = setup_layer(deconv(num_output, extra), [np.zeros(shape)])
    assert tops[0].shape == top
    assert layer.blobs[0].shape == weight
    assert layer.blobs[1].shape == (num_output,)


def test_simple_deconvolution_with_overlaps():
    # Caffe's TestSimpleDeconvolution: ones through 3×3 ones filters with
    # stride 2 over 3 channels, bias 0.1; the even interior rows/columns
    # are covered by two windows. (The filler value is a float32 field.)
    bias = float(np.float32(0.1))
    fillers = ('weight_filler { type: "constant" value: 1 } '
               'bias_filler { type: "constant" value: 0.1 }')
    _, _, top = setup_layer(
        deconv(4, "kernel_size: 3 stride: 2", fillers),
        [np.ones((2, 3, 6, 4)), np.ones((2, 3, 6, 4))], n_top=2)
    for blob in top:
        height, width = blob.shape[2:]
        for h in range(height):
            for w in range(width):
                h_overlap = h % 2 == 0 and 0 < h < height - 1
                w_overlap = w % 2 == 0 and 0 < w < width - 1
                expected = 3 + bias + (9 if h_overlap and w_overlap else
                                  3 if h_overlap or w_overlap else 0)
                np.testing.assert_allclose(blob.data[:, :, h, w], expected,
                                           rtol=1e-12)


@pytest.mark.parametrize("shape, num_output, extra", [
    ((2, 3, 4, 3), 4, "kernel_size: 3 stride: 2"),
    ((2, 6, 3, 4), 4, "kernel_size: 3 stride: 2 pad: 1 group: 2"),
    ((1, 4, 4, 5), 6, "kernel_size: 3 dilation: 2 pad: 2 group: 2"),
    ((1, 3, 4, 3), 2, "kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 3 "
     "pad_h: 1 pad_w: 0"),
    ((1, 3, 4, 5), 3, "kernel_size: 1"),
    ((1, 2, 3, 2, 3), 3, "kernel_size: 3 kernel_size: 2 kernel_size: 2 "
     "stride: 2 pad: 1"),
    ((2, 2, 3, 3, 3), 2, "kernel_size: 2 axis: 2 bias_term: false"),
])
def test_forward_matches_loops(shape, num_output, extra):
    x = random(shape)
    layer, _, top = setup_layer(deconv(num_output, extra), [x])
    np.testing.assert_allclose(top[0].data, run_reference(layer, x),
                               rtol=1e-10, atol=1e-10)


def test_zero_spatial_axes_is_a_transposed_fully_connected_layer():
    # axis 3 of a 4-D input leaves no spatial axes: each of the 2·3·6
    # positions is a vector of 4 channels, and w is (C, num_output).
    x = random((2, 3, 6, 4))
    layer, bottom, top = setup_layer(deconv(3, "axis: 3"), [x])
    assert top[0].shape == (2, 3, 6, 3)
    assert layer.blobs[0].shape == (4, 3)
    w, b = layer.blobs[0].data, layer.blobs[1].data
    expected = np.zeros((2, 3, 6, 3))
    for index in np.ndindex(2, 3, 6):
        for m in range(3):
            expected[index + (m,)] = b[m] + sum(
                w[c, m] * x[index + (c,)] for c in range(4))
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-12)
    check_gradients(layer, bottom, top, max_elements=20)


def test_deconvolution_is_the_transpose_of_convolution():
    # <conv(x), y> = <x, deconv(y)> with the same weights and geometry.
    extra = "kernel_size: 3 stride: 2 pad: 1 dilation: 1 group: 2"
    conv_text = deconv(6, extra).replace("Deconvolution", "Convolution")
    x = random((2, 4, 7, 7), 1)
    conv, _, conv_top = setup_layer(conv_text + " ", [x])
    y = random(conv_top[0].shape, 2)
    param = layer_param(deconv(4, extra + " bias_term: false"))
    blob = param.blobs.add()
    blob.shape.dim.extend(conv.blobs[0].shape)
    blob.double_data.extend(conv.blobs[0].data.ravel())
    layer = create_layer(param, dtype=np.float64)
    bottom, top = blobs_from([y]), empty_blobs(1)
    layer.SetUp(bottom, top)
    layer.Forward(bottom, top)
    assert top[0].shape == x.shape
    conv_no_bias = conv_top[0].data - conv.blobs[1].data.reshape(-1, 1, 1)
    assert np.sum(conv_no_bias * y) == pytest.approx(np.sum(x * top[0].data),
                                                     rel=1e-10)


# -- the bilinear upsampling recipe -----------------------------------------

def bilinear_upsample(channels, factor):
    kernel = 2 * factor - factor % 2
    pad = math.ceil((factor - 1) / 2)
    return deconv(channels, f"kernel_size: {kernel} stride: {factor} "
                  f"pad: {pad} group: {channels} bias_term: false",
                  'weight_filler { type: "bilinear" }')


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_bilinear_recipe_upsamples_a_constant_exactly(factor):
    # Away from the border every output cell is covered by windows whose
    # weights sum to 1, so a constant image stays the same constant.
    values = np.array([1.5, -2.0, 7.25])
    x = np.broadcast_to(values.reshape(1, 3, 1, 1), (2, 3, 5, 6)).copy()
    layer, _, top = setup_layer(bilinear_upsample(3, factor), [x])
    assert top[0].shape == (2, 3, 5 * factor, 6 * factor)
    assert layer.blobs[0].shape[:2] == (3, 1)
    border = factor
    interior = top[0].data[:, :, border:-border, border:-border]
    np.testing.assert_allclose(
        interior, np.broadcast_to(values.reshape(1, 3, 1, 1), interior.shape),
        rtol=1e-12)
    # Each channel is upsampled on its own (group = C).
    np.testing.assert_allclose(top[0].data, run_reference(layer, x),
                               rtol=1e-12, atol=1e-12)


def test_bilinear_recipe_interpolates_a_ramp_linearly():
    # 2× upsampling: output cell o sits at input coordinate (o − 0.5) / 2,
    # and a linear ramp is reproduced exactly in the interior.
    x = np.arange(6.0)[None, None, None, :] + np.zeros((1, 1, 4, 6))
    _, _, top = setup_layer(bilinear_upsample(1, 2), [x])
    row = top[0].data[0, 0, 2]
    expected = (np.arange(12) - 0.5) / 2
    np.testing.assert_allclose(row[1:-1], expected[1:-1], rtol=1e-12)


def test_bilinear_recipe_with_lr_mult_0_keeps_the_weights_fixed():
    # The upsampling sits between a learned convolution and a loss: it
    # back-propagates to the convolution but leaves its own weights alone.
    text = """
    name: "up" state { phase: TRAIN }
    layer { name: "data" type: "Input" top: "data" top: "target"
            input_param { shape { dim: 1 dim: 2 dim: 3 dim: 3 }
                          shape { dim: 1 dim: 2 dim: 6 dim: 6 } } }
    layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
            convolution_param { num_output: 2 kernel_size: 1
                                weight_filler { type: "gaussian" } } }
    layer { name: "up" type: "Deconvolution" bottom: "conv" top: "up"
            param { lr_mult: 0 decay_mult: 0 }
            convolution_param { num_output: 2 group: 2 kernel_size: 4
                                stride: 2 pad: 1 bias_term: false
                                weight_filler { type: "bilinear" } } }
    layer { name: "loss" type: "EuclideanLoss" bottom: "up" bottom: "target"
            top: "loss" }
    """
    net = kaffe.Net.from_param(
        text_format.Parse(text, caffe_pb2.NetParameter()))
    net.blobs["data"].data[...] = random((1, 2, 3, 3))
    net.blobs["target"].data[...] = random((1, 2, 6, 6), 1)
    net.forward()
    for blobs in net.params.values():
        for blob in blobs:
            blob.diff[...] = 0
    net.backward()
    assert not net.params["up"][0].diff.any()
    assert net.params["conv"][0].diff.any()
    assert net.blobs["conv"].diff.any()


# -- gradients and accumulation -----------------------------------------------

@pytest.mark.parametrize("shape, num_output, extra", [
    ((2, 3, 3, 2), 1, "kernel_size: 2"),       # Caffe's TestGradient
    ((2, 4, 3, 3), 4, "kernel_size: 3 stride: 2 pad: 1 group: 2"),
    ((1, 2, 3, 4), 3, "kernel_size: 2 dilation: 2 pad: 1"),
    ((1, 2, 3, 2), 2, "kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 "
     "pad_w: 1"),
    ((1, 2, 2, 3, 2), 2, "kernel_size: 2 stride: 2 stride: 1 stride: 1 "
     "pad: 1"),
    ((2, 2, 3, 3, 3), 2, "kernel_size: 2 axis: 2 bias_term: false"),
])
def test_gradients(shape, num_output, extra):
    layer, bottom, top = setup_layer(deconv(num_output, extra),
                                     [random(shape, 5)])
    check_gradients(layer, bottom, top, max_elements=60)


def test_gradients_two_bottoms():
    layer, bottom, top = setup_layer(deconv(2, "kernel_size: 3 stride: 2"),
                                     [random((1, 2, 3, 3), 6),
                                      random((1, 2, 3, 3), 7)], n_top=2)
    check_gradients(layer, bottom, top, max_elements=40)


def test_param_diffs_accumulate_and_bottom_diff_is_overwritten():
    x = random((2, 3, 3, 4), 8)
    layer, bottom, top = setup_layer(deconv(4, "kernel_size: 3 stride: 2"),
                                     [x])
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


def test_in_place_backward_computes_from_the_whole_top_diff():
    # Top and bottom of one shape (kernel 3, pad 1): in place, the bottom
    # diff is the top diff, which the backward pass must read entirely.
    x = random((1, 3, 4, 4), 10)
    layer, bottom, top = setup_layer(deconv(3, "kernel_size: 3 pad: 1"), [x])
    dy = random(top[0].shape, 11)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    expected = bottom[0].diff.copy()
    shared = blobs_from([x])
    shared[0].diff[...] = dy
    layer.Backward(shared, [True], shared)
    np.testing.assert_array_equal(shared[0].diff, expected)


def test_param_propagate_down_false_leaves_param_diffs():
    layer, bottom, top = setup_layer(deconv(2, "kernel_size: 2"),
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


# -- torch: conv_transpose forward and autograd gradients -----------------------

@pytest.mark.parametrize("shape, num_output, extra, options", [
    ((2, 4, 5, 4), 6, "kernel_size: 3 stride: 2 pad: 1 group: 2",
     dict(stride=2, padding=1, groups=2)),
    ((1, 4, 4, 5), 4, "kernel_size: 3 dilation: 2 pad: 2 group: 4",
     dict(dilation=2, padding=2, groups=4)),
    ((2, 3, 4, 3), 2, "kernel_h: 3 kernel_w: 2 stride_h: 1 stride_w: 3 "
     "pad_h: 1 pad_w: 0", dict(stride=(1, 3), padding=(1, 0))),
    ((1, 4, 3, 4, 3), 6, "kernel_size: 3 kernel_size: 2 kernel_size: 3 "
     "stride: 2 stride: 1 stride: 2 pad: 1 dilation: 1 dilation: 2 "
     "dilation: 1 group: 2",
     dict(stride=(2, 1, 2), padding=1, dilation=(1, 2, 1), groups=2)),
])
def test_matches_torch_conv_transpose(shape, num_output, extra, options):
    torch = pytest.importorskip("torch")
    x = random(shape, 3)
    layer, bottom, top = setup_layer(deconv(num_output, extra), [x])
    tx = torch.from_numpy(x).requires_grad_()
    tw = torch.from_numpy(layer.blobs[0].data.copy()).requires_grad_()
    tb = torch.from_numpy(layer.blobs[1].data.copy()).requires_grad_()
    function = (torch.nn.functional.conv_transpose2d if len(shape) == 4
                else torch.nn.functional.conv_transpose3d)
    ty = function(tx, tw, tb, **options)
    np.testing.assert_allclose(top[0].data, ty.detach().numpy(), rtol=1e-10,
                               atol=1e-10)
    dy = random(top[0].shape, 4)
    ty.backward(torch.from_numpy(dy))
    top[0].diff[...] = dy
    for blob in layer.blobs:
        blob.diff[...] = 0
    layer.Backward(top, [True], bottom)
    for ours, theirs in ((bottom[0].diff, tx.grad), (layer.blobs[0].diff,
                                                      tw.grad),
                         (layer.blobs[1].diff, tb.grad)):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-10,
                                   atol=1e-10)


# -- errors ----------------------------------------------------------------------

@pytest.mark.parametrize("shape, extra, received", [
    ((1, 2, 1, 3), "kernel_size: 2 pad: 1", "(1, 1)"),   # 2 − 2 = 0 rows
    ((1, 2, 3, 3), "kernel_size: 1 stride: 1 pad: 0 pad: 2", "(0, 2)"),
])
def test_padding_that_leaves_no_output(shape, extra, received):
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(deconv(2, extra), [np.ones(shape)])
    check_error(info, "convolution_param.pad", received)


@pytest.mark.parametrize("num_output, extra, shape, field, received", [
    (0, "kernel_size: 3", (1, 3, 5, 5), "num_output", "0"),
    (3, "kernel_size: 3 group: 2", (1, 4, 5, 5), "group", "2"),
    (4, "kernel_size: 3 group: 2", (1, 3, 5, 5), "group", "2"),
    (4, "", (1, 3, 5, 5), "kernel_size", "'0 values'"),
    (4, "kernel_size: 3 stride: 0", (1, 3, 5, 5), "stride", "(0, 0)"),
])
def test_config_errors(num_output, extra, shape, field, received):
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(deconv(num_output, extra), [np.ones(shape)])
    check_error(info, f"convolution_param.{field}", received)


def test_given_blobs_must_have_the_reversed_weight_shape():
    # A convolution-shaped (num_output, C, k, k) weight is refused.
    param = layer_param(deconv(4, "kernel_size: 2 bias_term: false"))
    blob = param.blobs.add()
    blob.shape.dim.extend((4, 2, 2, 2))
    blob.double_data.extend(np.zeros(32))
    layer = create_layer(param, dtype=np.float64)
    with pytest.raises(KaffeShapeError) as info:
        layer.SetUp(blobs_from([np.ones((1, 2, 3, 3))]), empty_blobs(1))
    check_error(info, "blobs[0]", "(4, 2, 2, 2)")
    assert "(2, 4, 2, 2)" in str(info.value)
