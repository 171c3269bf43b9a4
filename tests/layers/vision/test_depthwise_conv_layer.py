"""ConvolutionDepthwise and DepthwiseConvolution (MobileNet / ShuffleNet
forks): the fork's loop bit for bit, Convolution's results, gradients."""
import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, empty_blobs,
                                    make_layer, setup_layer)

FILLERS = ('weight_filler { type: "gaussian" std: 1 } '
           'bias_filler { type: "gaussian" std: 1 }')


def text(kind, extra="kernel_size: 3 pad: 1"):
    return (f'name: "dw" type: "{kind}" convolution_param {{ {extra} '
            f'{FILLERS} }}')


def fork_loop(x, w, b, stride, pad, dilation):
    """conv_dw_layer.cpp's Forward_cpu: per output value, the taps summed in
    (kh, kw) order from 0, padding skipped, bias added afterwards."""
    n_, c_, h_, w_ = x.shape
    kh, kw = w.shape[2:]
    oh = (h_ + 2 * pad[0] - (dilation[0] * (kh - 1) + 1)) // stride[0] + 1
    ow = (w_ + 2 * pad[1] - (dilation[1] * (kw - 1) + 1)) // stride[1] + 1
    out = np.zeros((n_, c_, oh, ow), dtype=x.dtype)
    for n, c, i, j in np.ndindex(n_, c_, oh, ow):
        value = x.dtype.type(0)
        for a in range(kh):
            for bb in range(kw):
                hi = -pad[0] + i * stride[0] + a * dilation[0]
                wi = -pad[1] + j * stride[1] + bb * dilation[1]
                if 0 <= hi < h_ and 0 <= wi < w_:
                    value += w[c, 0, a, bb] * x[n, c, hi, wi]
        out[n, c, i, j] = value
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


@pytest.mark.parametrize("extra, geometry", [
    ("kernel_size: 3 pad: 1", ((1, 1), (1, 1), (1, 1))),
    ("kernel_h: 3 kernel_w: 2 stride: 2 pad_h: 1 pad_w: 0",
     ((2, 2), (1, 0), (1, 1))),
    ("kernel_size: 3 dilation: 2 pad: 2 stride_h: 1 stride_w: 2",
     ((1, 2), (2, 2), (2, 2)))])
def test_convolution_depthwise_is_the_fork_loop_bit_for_bit(extra, geometry):
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 8)).astype(
        np.float32)
    layer, _, top = setup_layer(text("ConvolutionDepthwise",
                                     "num_output: 99 " + extra), [x],
                                dtype=np.float32)
    w, b = (blob.data for blob in layer.blobs)
    assert w.shape[:2] == (3, 1) and top[0].shape[1] == 3  # num_output unread
    np.testing.assert_array_equal(top[0].data, fork_loop(x, w, b, *geometry))


@pytest.mark.parametrize("kind", ["ConvolutionDepthwise",
                                  "DepthwiseConvolution"])
def test_gradients(kind):
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 5))
    extra = "num_output: 3 group: 3 kernel_size: 3 pad: 1 stride: 2"
    layer, bottom, top = setup_layer(text(kind, extra), [x])
    check_gradients(layer, bottom, top)


def test_param_diffs_accumulate():
    x = np.random.default_rng(2).standard_normal((1, 2, 4, 4))
    layer, bottom, top = setup_layer(text("ConvolutionDepthwise"), [x])
    top[0].diff[...] = 1.0
    layer.Backward(top, [True], bottom)
    once = [blob.diff.copy() for blob in layer.blobs]
    layer.Backward(top, [True], bottom)
    for blob, first in zip(layer.blobs, once):
        np.testing.assert_allclose(blob.diff, 2 * first)


@pytest.mark.parametrize("extra", [
    "num_output: 4 group: 4 kernel_size: 3 pad: 1 stride: 2",   # depthwise
    "num_output: 8 group: 2 kernel_size: 3"])                  # general
def test_depthwise_convolution_equals_convolution(extra):
    x = np.random.default_rng(3).standard_normal((2, 4, 7, 7))
    layer, _, top = setup_layer(text("DepthwiseConvolution", extra), [x])
    conv = make_layer(text("Convolution", extra))
    conv.blobs = layer.blobs
    ref = empty_blobs(1)
    conv.SetUp(blobs_from([x]), ref)
    conv.Forward(blobs_from([x]), ref)
    np.testing.assert_allclose(top[0].data, ref[0].data, rtol=1e-12,
                               atol=1e-12)


def test_given_weights_of_the_wrong_shape_are_refused():
    layer = make_layer(text("ConvolutionDepthwise"))
    layer.blobs = blobs_from([np.zeros((3, 2, 3, 3)), np.zeros(3)])
    with pytest.raises(KaffeShapeError) as info:
        layer.SetUp(blobs_from([np.zeros((1, 3, 5, 5))]), empty_blobs(1))
    check_layer_error(info, "blobs[0]", "(3, 2, 3, 3)", layer="dw")


def test_kernel_larger_than_input_is_refused():
    layer = make_layer(text("ConvolutionDepthwise", "kernel_size: 5"))
    with pytest.raises(KaffeShapeError):
        layer.SetUp(blobs_from([np.zeros((1, 2, 3, 3))]), empty_blobs(1))


def test_missing_kernel_size_is_refused():
    layer = make_layer(text("ConvolutionDepthwise", "pad: 1"))
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([np.zeros((1, 2, 3, 3))]), empty_blobs(1))
    assert "kernel_size" in info.value.field


def test_publishes_a_depthwise_geometry():
    layer, _, _ = setup_layer(text("ConvolutionDepthwise",
                                   "kernel_size: 3 stride: 2 pad: 1"),
                              [np.zeros((1, 5, 6, 6))])
    g = layer.geometry
    assert (g.kernel, g.stride, g.pad, g.group, g.num_output) == (
        (3, 3), (2, 2), (1, 1), 5, 5)
    assert g.output_spatial((6, 6)) == (3, 3)
