"""ReLU / leaky ReLU: loop reference, gradients (also in place), errors."""
import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, empty_blobs,
                                    make_layer, setup_in_place, setup_layer)


def relu_text(slope=None):
    param = f"relu_param {{ negative_slope: {slope} }}" if slope is not None else ""
    return f'name: "relu" type: "ReLU" {param}'


def reference(x, slope):
    slope = float(np.float32(slope))  # negative_slope is a float field
    out = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        v = x[index]
        out[index] = max(v, 0.0) + slope * min(v, 0.0)
    return out


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4, 5), ()])
def test_top_has_bottom_shape(shape):
    _, _, top = setup_layer(relu_text(), [np.zeros(shape)])
    assert top[0].shape == shape


@pytest.mark.parametrize("slope", [None, 0.1, 2.0])
def test_forward_matches_loops(slope):
    x = np.random.default_rng(0).standard_normal((3, 4))
    x[0, 0] = 0.0
    _, _, top = setup_layer(relu_text(slope), [x])
    np.testing.assert_array_equal(top[0].data, reference(x, slope or 0.0))


@pytest.mark.parametrize("slope", [None, 0.01, 0.5])
def test_gradients(slope):
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    layer, bottom, top = setup_layer(relu_text(slope), [x])
    check_gradients(layer, bottom, top, kink=(0, 1e-3))


@pytest.mark.parametrize("slope", [None, 0.2])
def test_in_place(slope):
    x = np.random.default_rng(2).standard_normal((3, 5))
    layer, bottom, top = setup_in_place(relu_text(slope), [x])
    check_gradients(layer, bottom, top, kink=(0, 1e-3))


@pytest.mark.parametrize("slope", [None, 0.25])
def test_gradient_at_zero_takes_the_negative_side(slope):
    layer, bottom, top = setup_layer(relu_text(slope), [np.zeros(3)])
    top[0].diff[...] = 1.0
    layer.Backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff,
                                  [np.float32(slope or 0.0)] * 3)


@pytest.mark.parametrize("slope", [0.1, 2.0])
def test_float32_leaky_multiplies_by_1_or_the_slope(slope):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    layer, bottom, top = setup_layer(relu_text(slope), [x], dtype=np.float32)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    factor = np.where(x > 0, np.float32(1), np.float32(slope))
    for got, expected in ((top[0].data, x * factor),
                          (bottom[0].diff, dy * factor)):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got.view(np.uint32),
                                      expected.view(np.uint32))


def test_takes_one_bottom():
    layer = make_layer(relu_text())
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([np.zeros(2), np.zeros(2)]), empty_blobs(1))
    check_layer_error(info, "bottom", "'2 bottom blob(s)'", layer="relu")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_inputs_take_the_same_values(dtype):
    """From _CLIP_MIN_SIZE elements on the forward runs as clip(x, 0, inf):
    the same max(x, 0) for every value, NaN and infinities included, in
    place or not."""
    values = np.array([np.nan, -np.inf, -2.5, -0.0, 0.0, 1e-40, 3.0,
                       np.inf], dtype=dtype)
    x = np.resize(values, (4, 5, 30, 30))
    expected = np.maximum(x, 0)
    _, _, top = setup_layer(relu_text(), [x], dtype=dtype)
    np.testing.assert_array_equal(top[0].data, expected)
    layer, bottom, top = setup_in_place(relu_text(), [x], dtype=dtype)
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, expected)
