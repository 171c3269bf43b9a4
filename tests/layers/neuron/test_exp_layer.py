"""Exp: loop reference for base/scale/shift, base −1 = e, gradients, errors."""
import math

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError
from kaffe.testing.gradient import (blobs_from, check_backward_overwrites,
                                    check_gradients, check_layer_error,
                                    empty_blobs, make_layer, setup_in_place,
                                    setup_layer)

# (base, scale, shift), as in Caffe's test_neuron_layer.cpp, and more.
CONFIGS = [(-1, 1, 0), (-1, 1, 1), (-1, 0.5, -0.3), (2, 1, 0), (2, 1, 1),
           (2, 3, 0), (2, 3, 1), (0.5, -2, 0.3), (10, 0.2, -1)]


def exp_text(base=None, scale=None, shift=None):
    fields = "".join(f"{name}: {value} " for name, value in
                     (("base", base), ("scale", scale), ("shift", shift))
                     if value is not None)
    return f'name: "exp" type: "Exp" exp_param {{ {fields}}}'


def f32(value):
    return float(np.float32(value))  # base, scale and shift are float fields


def reference(x, base, scale, shift):
    base, scale, shift = f32(base), f32(scale), f32(shift)
    out = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        power = shift + scale * x[index]
        out[index] = math.exp(power) if base == -1 else base ** power
    return out


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4, 5), (7,)])
def test_top_has_bottom_shape(shape):
    _, _, top = setup_layer(exp_text(), [np.zeros(shape)])
    assert top[0].shape == shape


@pytest.mark.parametrize("base, scale, shift", CONFIGS)
def test_forward_matches_loops(base, scale, shift):
    x = np.random.default_rng(0).standard_normal((3, 4))
    _, _, top = setup_layer(exp_text(base, scale, shift), [x])
    np.testing.assert_allclose(top[0].data, reference(x, base, scale, shift),
                               rtol=1e-13)


def test_default_base_is_exactly_e():
    # base −1 sets ln(base) = 1 exactly and skips the scaling: y = exp(x).
    # An explicit 2.718281828 is a float field, rounded off e.
    x = np.random.default_rng(1).standard_normal(20) * 3
    _, _, top = setup_layer('name: "exp" type: "Exp"', [x])
    np.testing.assert_array_equal(top[0].data, np.exp(x))
    layer, _, top = setup_layer(exp_text(base=2.718281828), [x])
    assert layer.inner_scale != 1
    np.testing.assert_allclose(top[0].data, np.exp(x), rtol=1e-6)


def test_base_one_is_constant():
    _, _, top = setup_layer(exp_text(1, 3, 2), [np.arange(4.0)])
    np.testing.assert_array_equal(top[0].data, [1.0] * 4)


def test_overflow_gives_inf():
    _, _, top = setup_layer(exp_text(), [np.array([100.0, 1000.0])],
                            dtype=np.float32)
    assert np.isinf(top[0].data).all()


@pytest.mark.parametrize("base, scale, shift", CONFIGS)
def test_gradients(base, scale, shift):
    x = np.random.default_rng(2).standard_normal((2, 3, 4))
    layer, bottom, top = setup_layer(exp_text(base, scale, shift), [x])
    check_gradients(layer, bottom, top)


def test_backward_uses_the_output():
    x = np.random.default_rng(3).standard_normal(6)
    layer, bottom, top = setup_layer(exp_text(2, 3, 1), [x])
    top[0].diff[...] = 1.5
    check_backward_overwrites(layer, bottom, top)
    layer.Backward(top, [True], bottom)
    inner = math.log(2.0) * 3  # ln(base) · scale, in the net's type
    np.testing.assert_allclose(bottom[0].diff, 1.5 * top[0].data * inner,
                               rtol=1e-15)


@pytest.mark.parametrize("base, scale, shift", [(-1, 1, 0), (2, 3, 1)])
def test_in_place(base, scale, shift):
    x = np.random.default_rng(4).standard_normal((3, 5))
    layer, bottom, top = setup_in_place(exp_text(base, scale, shift), [x])
    check_gradients(layer, bottom, top)


@pytest.mark.parametrize("base, received", [(0, "0.0"), (-2, "-2.0"),
                                            ("inf", "inf"), ("nan", "nan")])
def test_base_must_be_minus_one_or_positive_and_finite(base, received):
    layer = make_layer(exp_text(base=base))
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([np.ones(3)]), empty_blobs(1))
    check_layer_error(info, "exp_param.base", received, layer="exp")


def test_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(5).standard_normal((3, 5))
    layer, bottom, top = setup_layer(exp_text(3, 0.7, -0.4), [x])
    dy = np.random.default_rng(6).standard_normal((3, 5))
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.pow(torch.tensor(f32(3), dtype=torch.float64),
                   f32(-0.4) + f32(0.7) * xt)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(top[0].data, yt.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(bottom[0].diff, xt.grad.numpy(), rtol=1e-13)
