"""Swish: loop reference for β, gradients (also in place), torch."""
import math

import numpy as np
import pytest

from kaffe.testing.gradient import (check_backward_overwrites,
                                    check_gradients, setup_in_place,
                                    setup_layer)


def swish_text(beta=None):
    param = f"swish_param {{ beta: {beta} }}" if beta is not None else ""
    return f'name: "swish" type: "Swish" {param}'


def f32(value):
    return float(np.float32(value))  # beta is a float field


def reference(x, beta):
    out = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        out[index] = x[index] / (1 + math.exp(-beta * x[index]))
    return out


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4, 5), (7,)])
def test_top_has_bottom_shape(shape):
    _, _, top = setup_layer(swish_text(), [np.zeros(shape)])
    assert top[0].shape == shape


@pytest.mark.parametrize("beta", [None, 1.5, 0.0, -0.7])
def test_forward_matches_loops(beta):
    x = np.random.default_rng(0).standard_normal((3, 4)) * 3
    _, _, top = setup_layer(swish_text(beta), [x])
    expected = reference(x, f32(1.0 if beta is None else beta))
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-13, atol=1e-15)


def test_beta_zero_is_linear():
    # Caffe's TestSwishAsLinear: σ(0) = 1/2.
    x = np.random.default_rng(1).standard_normal(10)
    _, _, top = setup_layer(swish_text(0), [x])
    np.testing.assert_array_equal(top[0].data, x / 2)


def test_extreme_inputs_do_not_overflow():
    x = np.array([-1000.0, 1000.0])
    with np.errstate(all="raise"):
        _, _, top = setup_layer(swish_text(), [x], dtype=np.float32)
    np.testing.assert_array_equal(top[0].data, [-0.0, 1000.0])


@pytest.mark.parametrize("beta", [None, 1.5, 0.0, -0.7])
def test_gradients(beta):
    x = np.random.default_rng(2).standard_normal((2, 3, 4)) * 2
    layer, bottom, top = setup_layer(swish_text(beta), [x])
    check_gradients(layer, bottom, top)


def test_backward_formula():
    # dx = dy · (β·y + σ(βx)·(1 − β·y)).
    x = np.random.default_rng(3).standard_normal(6)
    layer, bottom, top = setup_layer(swish_text(2), [x])
    top[0].diff[...] = 3.0
    check_backward_overwrites(layer, bottom, top)
    layer.Backward(top, [True], bottom)
    s = 1 / (1 + np.exp(-2 * x))
    y = x * s
    np.testing.assert_allclose(bottom[0].diff, 3 * (2 * y + s * (1 - 2 * y)),
                               rtol=1e-13)


@pytest.mark.parametrize("beta", [None, 2.5])
def test_in_place(beta):
    x = np.random.default_rng(4).standard_normal((3, 5))
    layer, bottom, top = setup_in_place(swish_text(beta), [x])
    check_gradients(layer, bottom, top)


def test_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(5).standard_normal((3, 5)) * 2
    layer, bottom, top = setup_layer(swish_text(1.3), [x])
    dy = np.random.default_rng(6).standard_normal((3, 5))
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    xt = torch.tensor(x, requires_grad=True)
    yt = xt * torch.sigmoid(f32(1.3) * xt)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(top[0].data, yt.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(bottom[0].diff, xt.grad.numpy(), rtol=1e-12)
