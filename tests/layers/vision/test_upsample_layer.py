"""Upsample (SegNet / ENet forks): unpooling with the pooling mask, sizes,
gradient, bad masks."""
import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, empty_blobs,
                                    make_layer, setup_layer)


def text(fields):
    return f'name: "up" type: "Upsample" upsample_param {{ {fields} }}'


def pooled_with_mask(x):
    """2×2 stride-2 MAX pooling through kaffe's Pooling layer: values and
    the argmax mask."""
    _, _, top = setup_layer('name: "pool" type: "Pooling" pooling_param { '
                            'pool: MAX kernel_size: 2 stride: 2 }', [x],
                            n_top=2)
    return top[0].data.copy(), top[1].data.copy()


def fork_loop(values, mask, out_hw):
    out = np.zeros(values.shape[:2] + out_hw, dtype=values.dtype)
    for n, c in np.ndindex(*values.shape[:2]):
        flat = out[n, c].reshape(-1)
        for i, (v, idx) in enumerate(zip(values[n, c].ravel(),
                                         mask[n, c].ravel())):
            flat[int(idx)] = v
    return out


@pytest.mark.parametrize("fields, in_hw, out_hw", [
    ("scale: 2", (6, 8), (6, 8)),
    ("upsample_h: 7 upsample_w: 9", (7, 9), (7, 9)),
    ("scale: 2 pad_out_h: true", (7, 8), (7, 8)),
    ("scale_h: 2 scale_w: 2 pad_out_w: true", (6, 9), (6, 9))])
def test_puts_values_back_where_pooling_found_them(fields, in_hw, out_hw):
    x = np.random.default_rng(0).standard_normal((2, 3) + in_hw)
    values, mask = pooled_with_mask(x)
    layer, bottom, top = setup_layer(text(fields), [values, mask])
    assert top[0].shape == (2, 3) + out_hw
    np.testing.assert_array_equal(top[0].data,
                                  fork_loop(values, mask, out_hw))
    # every pooled maximum is back at its own place
    kept = top[0].data != 0
    np.testing.assert_array_equal(top[0].data[kept], x[kept])
    check_gradients(layer, bottom, top, check_bottom=[0])


def test_later_duplicate_index_wins():
    values = np.array([[[[1.0, 2.0]]]])
    mask = np.array([[[[3.0, 3.0]]]])
    _, _, top = setup_layer(text("upsample_h: 2 upsample_w: 2"),
                            [values, mask])
    np.testing.assert_array_equal(top[0].data.ravel(), [0, 0, 0, 2])


def test_index_outside_the_output_is_refused():
    layer = make_layer(text("scale: 2"))
    bottom = blobs_from([np.ones((1, 1, 2, 2)), np.full((1, 1, 2, 2), 16.0)])
    top = empty_blobs(1)
    layer.SetUp(bottom, top)
    with pytest.raises(KaffeShapeError) as info:
        layer.Forward(bottom, top)
    check_layer_error(info, "bottom[1]", "16", layer="up")


@pytest.mark.parametrize("fields, field", [
    ("scale: 1", "upsample_param.scale"),
    ("scale: 3 pad_out_h: true", "upsample_param.pad_out_h"),
    ("upsample_h: 1 upsample_w: 4", "upsample_param.upsample_h"),
    ("scale: 2 scale_h: 2 scale_w: 2", "upsample_param")])
def test_config_errors(fields, field):
    layer = make_layer(text(fields))
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([np.zeros((1, 1, 2, 2))] * 2), empty_blobs(1))
    assert info.value.field == field and "layer 'up'" in str(info.value)


def test_mask_of_another_shape_is_refused():
    layer = make_layer(text("scale: 2"))
    with pytest.raises(KaffeShapeError):
        layer.SetUp(blobs_from([np.zeros((1, 1, 2, 2)),
                                np.zeros((1, 1, 2, 3))]), empty_blobs(1))
