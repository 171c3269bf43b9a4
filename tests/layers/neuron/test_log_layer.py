"""Log: loop reference for base/scale/shift, NaN for negatives, gradients
(also in place), errors."""
import math

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError
from kaffe.testing.gradient import (blobs_from, check_backward_overwrites,
                                    check_gradients, check_layer_error,
                                    empty_blobs, make_layer, setup_in_place,
                                    setup_layer)

# (base, scale, shift), as in Caffe's test_neuron_layer.cpp, and more.
CONFIGS = [(-1, 1, 0), (2, 1, 0), (2, 1, 1), (2, 3, 0), (2, 3, 1),
           (-1, 0.5, 0.2), (0.5, 2, 0), (10, 1, 0.5)]


def log_text(base=None, scale=None, shift=None):
    fields = "".join(f"{name}: {value} " for name, value in
                     (("base", base), ("scale", scale), ("shift", shift))
                     if value is not None)
    return f'name: "log" type: "Log" log_param {{ {fields}}}'


def f32(value):
    return float(np.float32(value))  # base, scale and shift are float fields


def positive(shape, seed):
    """exp of Gaussian values, as Caffe's tests feed the Log layer."""
    return np.exp(np.random.default_rng(seed).standard_normal(shape))


def reference(x, base, scale, shift):
    base, scale, shift = f32(base), f32(scale), f32(shift)
    out = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        value = math.log(shift + scale * x[index])
        out[index] = value if base == -1 else value / math.log(base)
    return out


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4, 5), (7,)])
def test_top_has_bottom_shape(shape):
    _, _, top = setup_layer(log_text(), [np.ones(shape)])
    assert top[0].shape == shape


@pytest.mark.parametrize("base, scale, shift", CONFIGS)
def test_forward_matches_loops(base, scale, shift):
    x = positive((3, 4), 0)
    _, _, top = setup_layer(log_text(base, scale, shift), [x])
    np.testing.assert_allclose(top[0].data, reference(x, base, scale, shift),
                               rtol=1e-13, atol=1e-15)


def test_default_base_is_exactly_e():
    x = positive(20, 1)
    _, _, top = setup_layer('name: "log" type: "Log"', [x])
    np.testing.assert_array_equal(top[0].data, np.log(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_negative_input_gives_nan_and_zero_gives_minus_inf(dtype):
    x = np.array([-1.0, 0.0, 1.0])
    _, _, top = setup_layer(log_text(), [x], dtype=dtype)
    assert np.isnan(top[0].data[0])
    assert top[0].data[1] == -np.inf and top[0].data[2] == 0.0
    _, _, top = setup_layer(log_text(2, 1, -2), [x], dtype=dtype)
    assert np.isnan(top[0].data).tolist() == [True, True, True]


@pytest.mark.parametrize("base, scale, shift", CONFIGS)
def test_gradients(base, scale, shift):
    x = positive((2, 3, 4), 2)
    layer, bottom, top = setup_layer(log_text(base, scale, shift), [x])
    check_gradients(layer, bottom, top)


def test_backward_formula():
    # dx = dy · (scale / ln(base)) / (shift + scale · x).
    x = positive(6, 3)
    layer, bottom, top = setup_layer(log_text(2, 3, 1), [x])
    top[0].diff[...] = 1.5
    check_backward_overwrites(layer, bottom, top)
    layer.Backward(top, [True], bottom)
    np.testing.assert_allclose(bottom[0].diff,
                               1.5 * (3 / math.log(2)) / (1 + 3 * x),
                               rtol=1e-14)


@pytest.mark.parametrize("base, scale, shift", [(-1, 1, 0), (2, 3, 1)])
def test_in_place_gradients(base, scale, shift):
    x = positive((2, 3, 4), 4)
    layer, bottom, top = setup_in_place(log_text(base, scale, shift), [x])
    check_gradients(layer, bottom, top)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("base, scale, shift", [(-1, 1, 0), (2, 3, 1)])
def test_in_place_matches_separate_blobs(base, scale, shift, dtype):
    # The layer keeps a copy of its input and builds its factor apart from
    # the (shared) diff: unlike Caffe's CPU code, the in-place backward is
    # the derivative, to the bit.
    x = positive((3, 4), 5)
    dy = np.random.default_rng(6).standard_normal((3, 4))
    text = log_text(base, scale, shift)
    layer, bottom, top = setup_layer(text, [x], dtype=dtype)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    in_place, blobs, _ = setup_in_place(text, [x], dtype=dtype)
    in_place.Forward(blobs, blobs)
    np.testing.assert_array_equal(blobs[0].data, top[0].data)
    blobs[0].diff[...] = dy
    in_place.Backward(blobs, [True], blobs)
    np.testing.assert_array_equal(blobs[0].diff, bottom[0].diff)


@pytest.mark.parametrize("base, received, problem", [
    (0, "0.0", "> 0"), (-2, "-2.0", "> 0"), ("inf", "inf", "finite"),
    (1, "1.0", "must not be 1")])
def test_base_errors(base, received, problem):
    layer = make_layer(log_text(base=base))
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([np.ones(3)]), empty_blobs(1))
    check_layer_error(info, "log_param.base", received, layer="log")
    assert problem in str(info.value)


def test_matches_torch():
    torch = pytest.importorskip("torch")
    x = positive((3, 5), 5)
    layer, bottom, top = setup_layer(log_text(3, 0.7, 0.4), [x])
    dy = np.random.default_rng(6).standard_normal((3, 5))
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.log(f32(0.4) + f32(0.7) * xt) / math.log(3)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(top[0].data, yt.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(bottom[0].diff, xt.grad.numpy(), rtol=1e-13)
