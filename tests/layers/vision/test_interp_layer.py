"""Interp (DeepLab / PSPNet forks): the fork's interp2 loop bit for bit,
output sizes, the adjoint, errors."""
import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, empty_blobs,
                                    make_layer, setup_layer)


def text(fields):
    return f'name: "interp" type: "Interp" interp_param {{ {fields} }}'


def fork_interp2(x, y1, x1, height1, width1, height2, width2):
    """caffe_cpu_interp2<Dtype, false> transcribed: float32 ratio and
    positions, the blend in x's dtype."""
    f32 = np.float32
    out = np.empty(x.shape[:2] + (height2, width2), dtype=x.dtype)
    if (height1, width1) == (height2, width2):
        return x[:, :, y1:y1 + height1, x1:x1 + width1].copy()
    rh = f32(height1 - 1) / f32(height2 - 1) if height2 > 1 else f32(0)
    rw = f32(width1 - 1) / f32(width2 - 1) if width2 > 1 else f32(0)
    one = x.dtype.type(1)
    for h2 in range(height2):
        h1r = rh * f32(h2)
        h1 = int(h1r)
        h1p = 1 if h1 < height1 - 1 else 0
        l1 = x.dtype.type(h1r - f32(h1))
        l0 = one - l1
        for w2 in range(width2):
            w1r = rw * f32(w2)
            w1 = int(w1r)
            w1p = 1 if w1 < width1 - 1 else 0
            m1 = x.dtype.type(w1r - f32(w1))
            m0 = one - m1
            p = x[:, :, y1 + h1:, x1 + w1:]
            out[:, :, h2, w2] = (
                l0 * (m0 * p[:, :, 0, 0] + m1 * p[:, :, 0, w1p])
                + l1 * (m0 * p[:, :, h1p, 0] + m1 * p[:, :, h1p, w1p]))
    return out


@pytest.mark.parametrize("fields, in_hw, out_hw", [
    ("zoom_factor: 8", (5, 7), (33, 49)),
    ("shrink_factor: 2", (9, 8), (5, 4)),
    ("height: 13 width: 6", (5, 7), (13, 6)),
    ("shrink_factor: 2 zoom_factor: 3", (9, 9), (13, 13)),
    ("zoom_factor: 2 pad_beg: -1 pad_end: -1", (7, 9), (9, 13)),
    ("height: 5 width: 7", (5, 7), (5, 7))])
def test_sizes_and_the_fork_loop_bit_for_bit(fields, in_hw, out_hw):
    x = np.random.default_rng(0).standard_normal((2, 3) + in_hw).astype(
        np.float32)
    layer, _, top = setup_layer(text(fields), [x], dtype=np.float32)
    assert top[0].shape == (2, 3) + out_hw
    pad_beg = -1 if "pad_beg" in fields else 0
    size = tuple(s + 2 * pad_beg for s in in_hw)
    expected = fork_interp2(x, -pad_beg, -pad_beg, *size, *out_hw)
    np.testing.assert_array_equal(top[0].data, expected)


@pytest.mark.parametrize("fields", ["zoom_factor: 3", "shrink_factor: 2",
                                    "height: 4 width: 9",
                                    "zoom_factor: 2 pad_beg: -1 pad_end: -2"])
def test_gradients(fields):
    x = np.random.default_rng(1).standard_normal((1, 2, 6, 5))
    layer, bottom, top = setup_layer(text(fields), [x])
    check_gradients(layer, bottom, top)


def test_second_bottom_gives_the_size():
    x = np.random.default_rng(2).standard_normal((1, 2, 4, 4))
    ref = np.zeros((1, 5, 7, 3))
    layer, bottom, top = setup_layer('name: "interp" type: "Interp"', [x, ref])
    assert top[0].shape == (1, 2, 7, 3)
    check_gradients(layer, bottom, top, check_bottom=[0])


def test_second_bottom_with_a_size_field_is_ambiguous():
    layer = make_layer(text("zoom_factor: 2"))
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([np.zeros((1, 1, 3, 3))] * 2), empty_blobs(1))
    check_layer_error(info, "interp_param.zoom_factor", "2", layer="interp")


@pytest.mark.parametrize("fields, field, received", [
    ("zoom_factor: 2 pad_beg: 1", "interp_param.pad_beg", "1"),
    ("zoom_factor: 0", "interp_param.zoom_factor", "0"),
    ("height: 3", "interp_param", "'none of zoom_factor, shrink_factor, "
                                  "height + width'")])
def test_config_errors(fields, field, received):
    layer = make_layer(text(fields))
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([np.zeros((1, 1, 3, 3))]), empty_blobs(1))
    check_layer_error(info, field, received, layer="interp")


def test_crop_larger_than_the_input_is_refused():
    layer = make_layer(text("zoom_factor: 2 pad_beg: -2 pad_end: -2"))
    with pytest.raises(KaffeShapeError):
        layer.SetUp(blobs_from([np.zeros((1, 1, 3, 3))]), empty_blobs(1))
