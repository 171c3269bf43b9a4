"""Im2col: shapes, a loop reference in any rank, gradients, errors."""
import itertools
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (check_backward_overwrites,
                                    check_gradients, check_layer_error,
                                    setup_layer)

check_error = partial(check_layer_error, layer="im2col")


def im2col_text(param):
    return f'name: "im2col" type: "Im2col" convolution_param {{ {param} }}'


def reference(x, axis, kernel, stride, pad, dilation):
    """Channel (c, i0, i1, …) at output position o reads
    x[c, o·stride − pad + i·dilation] (0 outside the image)."""
    lead, channels, spatial = x.shape[:axis], x.shape[axis], x.shape[axis + 1:]
    out = tuple((s + 2 * p - (d * (k - 1) + 1)) // st + 1 for s, k, st, p, d
                in zip(spatial, kernel, stride, pad, dilation))
    offsets = list(itertools.product(*map(range, kernel)))
    y = np.zeros(lead + (channels * len(offsets),) + out)
    for b in np.ndindex(*lead):
        for c in range(channels):
            for r, offset in enumerate(offsets):
                for o in np.ndindex(*out):
                    source = tuple(oa * st - p + i * d for oa, st, p, i, d in
                                   zip(o, stride, pad, offset, dilation))
                    if all(0 <= s < size for s, size in zip(source, spatial)):
                        y[b + (c * len(offsets) + r,) + o] = x[b + (c,)
                                                               + source]
    return y


@pytest.mark.parametrize("shape, param, expected", [
    # Caffe's test_im2col_layer setup.
    ((2, 3, 10, 11), "kernel_size: 3 stride: 2 dilation: 3", (2, 27, 2, 3)),
    ((2, 3, 6, 5), "kernel_h: 5 kernel_w: 3 stride: 2", (2, 45, 1, 2)),
    ((2, 3, 6, 5), "kernel_size: 3 pad: 1", (2, 27, 6, 5)),
    ((2, 2, 5, 4, 3), "kernel_size: 2 kernel_size: 3 kernel_size: 1",
     (2, 12, 4, 2, 3)),
    ((2, 3, 4, 5), "kernel_size: 2 axis: 2", (2, 3, 8, 4)),
])
def test_shapes(shape, param, expected):
    _, _, top = setup_layer(im2col_text(param), [np.zeros(shape)])
    assert top[0].shape == expected


CASES = [
    ((2, 3, 6, 5), 1, "kernel_size: 3 stride: 2", (3, 3), (2, 2), (0, 0),
     (1, 1)),
    ((2, 3, 6, 5), 1, "kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 "
     "pad_h: 1 pad_w: 2", (3, 2), (2, 1), (1, 2), (1, 1)),
    ((1, 2, 7, 6), 1, "kernel_size: 2 dilation: 2 dilation: 3 pad: 1",
     (2, 2), (1, 1), (1, 1), (2, 3)),
    ((2, 2, 4, 3, 5), 1, "kernel_size: 2 stride: 1 stride: 2 stride: 2 "
     "pad: 1", (2, 2, 2), (1, 2, 2), (1, 1, 1), (1, 1, 1)),
    ((2, 2, 3, 5), 2, "kernel_size: 2 pad: 1", (2,), (1,), (1,), (1,)),
]


@pytest.mark.parametrize("shape, axis, param, kernel, stride, pad, dilation",
                         CASES)
def test_forward_matches_loops(shape, axis, param, kernel, stride, pad,
                               dilation):
    x = np.random.default_rng(0).standard_normal(shape)
    _, _, top = setup_layer(im2col_text(f"{param} axis: {axis}"), [x])
    np.testing.assert_array_equal(
        top[0].data, reference(x, axis, kernel, stride, pad, dilation))


@pytest.mark.parametrize("shape, axis, param, kernel, stride, pad, dilation",
                         CASES)
def test_gradients(shape, axis, param, kernel, stride, pad, dilation):
    x = np.random.default_rng(1).standard_normal(shape)
    layer, bottom, top = setup_layer(im2col_text(f"{param} axis: {axis}"),
                                     [x])
    check_gradients(layer, bottom, top, max_elements=60)


def test_backward_overwrites_bottom_diff():
    x = np.random.default_rng(2).standard_normal((2, 3, 5, 5))
    layer, bottom, top = setup_layer(im2col_text("kernel_size: 3 pad: 1"),
                                     [x])
    top[0].diff[...] = np.random.default_rng(3).standard_normal(top[0].shape)
    check_backward_overwrites(layer, bottom, top)


def test_matches_torch_unfold():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(4).standard_normal((2, 3, 7, 6))
    param = ("kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 "
             "pad_w: 0 dilation: 2")
    layer, bottom, top = setup_layer(im2col_text(param), [x])
    dy = np.random.default_rng(5).standard_normal(top[0].shape)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    t = torch.from_numpy(x).requires_grad_()
    y = torch.nn.functional.unfold(t, (3, 2), dilation=2, padding=(1, 0),
                                   stride=(2, 1))
    y.backward(torch.from_numpy(dy.reshape(y.shape)))
    np.testing.assert_array_equal(top[0].data.reshape(y.shape),
                                  y.detach().numpy())
    np.testing.assert_allclose(bottom[0].diff, t.grad.numpy(), rtol=1e-13)


def test_new_input_size_is_followed():
    layer, bottom, top = setup_layer(im2col_text("kernel_size: 2"),
                                     [np.zeros((1, 1, 3, 3))])
    bottom[0].reshape((2, 1, 4, 5))
    layer.Forward(bottom, top)
    assert top[0].shape == (2, 4, 3, 4)


def test_kernel_size_is_required():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(im2col_text("stride: 1"), [np.zeros((1, 1, 3, 3))])
    check_error(info, "convolution_param.kernel_size", "'0 values'")


def test_kernel_must_be_positive():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(im2col_text("kernel_h: 0 kernel_w: 2"),
                    [np.zeros((1, 1, 3, 3))])
    check_error(info, "convolution_param.kernel_size", "(0, 2)")


def test_stride_must_be_positive():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(im2col_text("kernel_size: 2 stride: 0"),
                    [np.zeros((1, 1, 3, 3))])
    check_error(info, "convolution_param.stride", "(0, 0)")


def test_dilation_must_be_positive():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(im2col_text("kernel_size: 2 dilation: 0"),
                    [np.zeros((1, 1, 3, 3))])
    check_error(info, "convolution_param.dilation", "(0, 0)")


def test_pad_given_once_or_per_axis():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(im2col_text("kernel_size: 2 pad: 0 pad: 1 pad: 0"),
                    [np.zeros((1, 1, 3, 3))])
    check_error(info, "convolution_param.pad", "'3 values'")


def test_hw_form_is_two_dimensional_only():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(im2col_text("kernel_h: 2 kernel_w: 2"),
                    [np.zeros((1, 1, 3, 3, 3))])
    check_error(info, "convolution_param.kernel_h", "'3 spatial axes'")


def test_hw_form_not_mixed_with_repeated():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(im2col_text("kernel_size: 2 stride: 1 stride_h: 2 "
                                "stride_w: 2"), [np.zeros((1, 1, 3, 3))])
    check_error(info, "convolution_param.stride_h",
                "'stride_h: 2, stride_w: 2 and stride: 1'")


def test_needs_a_spatial_axis():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(im2col_text("kernel_size: 1 axis: -1"),
                    [np.zeros((2, 3))])
    check_error(info, "convolution_param.axis", "-1")


def test_kernel_must_fit_the_padded_input():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(im2col_text("kernel_size: 4"), [np.zeros((1, 1, 3, 3))])
    check_error(info, "convolution_param.kernel_size", "(4, 4)")
