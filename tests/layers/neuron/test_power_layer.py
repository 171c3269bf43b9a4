"""Power: loop reference, Caffe's special cases, gradients, in place."""
import math

import numpy as np
import pytest

from kaffe.testing.gradient import (check_backward_overwrites,
                                    check_gradients, setup_in_place,
                                    setup_layer)

# (power, scale, shift): Caffe's test_power_layer.cpp cases, and more.
CONFIGS = [(0.37, 0.83, -2.4), (0.37, 0.83, 0.0), (0.0, 0.83, -2.4),
           (1.0, 0.83, -2.4), (2.0, 0.34, -2.4), (2.0, 0.5, 0.0),
           (3.0, 1.0, 0.5), (-1.5, 2.0, 0.0), (2.5, 0.0, 1.5), (1.0, 1.0, 0.0)]


def power_text(power=None, scale=None, shift=None):
    fields = "".join(f"{name}: {value} " for name, value in
                     (("power", power), ("scale", scale), ("shift", shift))
                     if value is not None)
    return f'name: "pow" type: "Power" power_param {{ {fields}}}'


def f32(value):
    return float(np.float32(value))  # power, scale and shift are float fields


def reference(x, power, scale, shift):
    """(shift + scale·x)^power; 1 for power 0; NaN for a negative base with
    a non-integer power and inf for 0 to a negative power (std::pow)."""
    power, scale, shift = f32(power), f32(scale), f32(shift)
    out = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        base = shift + scale * x[index]
        if power == 0:
            out[index] = 1.0
        elif base < 0 and power != int(power):
            out[index] = math.nan
        elif base == 0 and power < 0:
            out[index] = math.inf
        else:
            out[index] = base ** power
    return out


def nonnegative_base(x, scale, shift):
    """Caffe's trick for its gradient tests: reflect values with
    shift + scale·x < 0 to the other side of the root."""
    root = -f32(shift) / f32(scale)
    return np.where(x < root, 2 * root - x, x)


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4, 5), (7,)])
def test_top_has_bottom_shape(shape):
    _, _, top = setup_layer(power_text(2), [np.zeros(shape)])
    assert top[0].shape == shape


@pytest.mark.parametrize("power, scale, shift", CONFIGS)
def test_forward_matches_loops(power, scale, shift):
    x = np.random.default_rng(0).standard_normal((3, 4)) * 2
    x[0, 0] = 0.0
    _, _, top = setup_layer(power_text(power, scale, shift), [x])
    np.testing.assert_allclose(top[0].data,
                               reference(x, power, scale, shift),
                               rtol=1e-13, atol=0)


def test_power_zero_ignores_the_input():
    # Also 0^0 and negative bases give 1; scale 0 gives shift^power.
    x = np.array([-3.0, 0.0, np.inf, np.nan])
    _, _, top = setup_layer(power_text(0, 1, 0), [x])
    np.testing.assert_array_equal(top[0].data, [1.0] * 4)
    _, _, top = setup_layer(power_text(3, 0, 2), [x])
    np.testing.assert_array_equal(top[0].data, [8.0] * 4)


@pytest.mark.parametrize("power, scale, shift", CONFIGS)
def test_gradients(power, scale, shift):
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    if power not in (0, 1, 2) and scale != 0:
        x = nonnegative_base(x, scale, shift)
    layer, bottom, top = setup_layer(power_text(power, scale, shift), [x])
    check_gradients(layer, bottom, top, kink=(-f32(shift) / f32(scale), 1e-2)
                    if scale != 0 else None)


def test_gradient_of_a_constant_is_zero_even_for_infinite_dy():
    # diff_scale = power·scale = 0: Caffe writes 0 and skips the dy product.
    layer, bottom, top = setup_layer(power_text(0, 2, 1), [np.ones(3)])
    top[0].diff[...] = np.inf
    layer.Backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, [0.0] * 3)


def test_power_one_gradient_is_scale():
    layer, bottom, top = setup_layer(power_text(1, 0.5, 3), [np.arange(3.0)])
    top[0].diff[...] = [1.0, 2.0, 4.0]
    check_backward_overwrites(layer, bottom, top)
    layer.Backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, [0.5, 1.0, 2.0])


def test_shift_zero_gradient_is_power_y_over_x_nan_at_zero():
    # Caffe computes dy/dx = power · y / x when shift = 0: at x = 0 that is
    # 0 / 0 = NaN even where the true derivative is 0 (power 3).
    x = np.array([0.0, 2.0])
    layer, bottom, top = setup_layer(power_text(3, 1, 0), [x])
    top[0].diff[...] = 1.0
    layer.Backward(top, [True], bottom)
    assert np.isnan(bottom[0].diff[0]) and bottom[0].diff[1] == 12.0


# One config per case of Caffe's backward (diff_scale 0, power 1, power 2,
# shift 0, general).
IN_PLACE_CONFIGS = [(0.0, 0.83, -2.4), (1.0, 3.0, 0.5), (2.0, 0.5, 1.0),
                    (3.0, 1.0, 0.0), (1.5, 2.0, 1.0)]


@pytest.mark.parametrize("power, scale, shift", IN_PLACE_CONFIGS)
def test_in_place_gradients(power, scale, shift):
    x = np.random.default_rng(2).uniform(0.5, 2.0, (2, 3, 4))
    layer, bottom, top = setup_in_place(power_text(power, scale, shift), [x])
    check_gradients(layer, bottom, top)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("power, scale, shift", IN_PLACE_CONFIGS)
def test_in_place_matches_separate_blobs(power, scale, shift, dtype):
    # The layer keeps a copy of its input and builds its factor apart from
    # the (shared) diff: unlike Caffe's CPU code, the in-place backward is
    # the derivative, to the bit.
    x = np.random.default_rng(5).uniform(0.5, 2.0, (3, 4))
    dy = np.random.default_rng(6).standard_normal((3, 4))
    text = power_text(power, scale, shift)
    layer, bottom, top = setup_layer(text, [x], dtype=dtype)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    in_place, blobs, _ = setup_in_place(text, [x], dtype=dtype)
    in_place.Forward(blobs, blobs)
    np.testing.assert_array_equal(blobs[0].data, top[0].data)
    blobs[0].diff[...] = dy
    in_place.Backward(blobs, [True], blobs)
    np.testing.assert_array_equal(blobs[0].diff, bottom[0].diff)


def test_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(3).uniform(0.1, 3.0, (3, 5))
    layer, bottom, top = setup_layer(power_text(1.7, 0.6, 0.2), [x])
    dy = np.random.default_rng(4).standard_normal((3, 5))
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    xt = torch.tensor(x, requires_grad=True)
    yt = (f32(0.2) + f32(0.6) * xt) ** f32(1.7)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(top[0].data, yt.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(bottom[0].diff, xt.grad.numpy(), rtol=1e-13)
