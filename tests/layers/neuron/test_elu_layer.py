"""ELU: loop reference, gradient at 0, gradients (also in place), torch."""
import math

import numpy as np
import pytest

from kaffe.testing.gradient import (check_backward_overwrites,
                                    check_gradients, setup_in_place,
                                    setup_layer)


def elu_text(alpha=None):
    param = f"elu_param {{ alpha: {alpha} }}" if alpha is not None else ""
    return f'name: "elu" type: "ELU" {param}'


def f32(value):
    return float(np.float32(value))  # alpha is a float field


def reference(x, alpha):
    out = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        v = x[index]
        out[index] = v if v > 0 else alpha * (math.exp(v) - 1)
    return out


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4, 5), (7,)])
def test_top_has_bottom_shape(shape):
    _, _, top = setup_layer(elu_text(), [np.zeros(shape)])
    assert top[0].shape == shape


@pytest.mark.parametrize("alpha", [None, 0.5, 0.0, 2.0])
def test_forward_matches_loops(alpha):
    x = np.random.default_rng(0).standard_normal((3, 4)) * 2
    x[0, 0] = 0.0
    _, _, top = setup_layer(elu_text(alpha), [x])
    expected = reference(x, f32(1.0 if alpha is None else alpha))
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-14, atol=1e-16)


def test_alpha_zero_is_relu():
    x = np.random.default_rng(1).standard_normal((4, 5))
    _, _, top = setup_layer(elu_text(0), [x])
    np.testing.assert_array_equal(top[0].data, np.maximum(x, 0))


@pytest.mark.parametrize("alpha", [None, 0.3])
def test_gradient_at_zero_is_alpha(alpha):
    # dx = dy · ((x > 0) + (α + y)(x ≤ 0)): at x = 0, y = 0, so α.
    layer, bottom, top = setup_layer(elu_text(alpha), [np.zeros(3)])
    top[0].diff[...] = 2.0
    check_backward_overwrites(layer, bottom, top)
    layer.Backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff,
                                  [2.0 * f32(alpha or 1.0)] * 3)


@pytest.mark.parametrize("alpha", [None, 0.5, 0.0])
def test_gradients(alpha):
    x = np.random.default_rng(2).standard_normal((2, 3, 4))
    layer, bottom, top = setup_layer(elu_text(alpha), [x])
    check_gradients(layer, bottom, top, kink=(0, 1e-3))


@pytest.mark.parametrize("alpha", [None, 0.5])
def test_in_place(alpha):
    x = np.random.default_rng(3).standard_normal((3, 5))
    layer, bottom, top = setup_in_place(elu_text(alpha), [x])
    check_gradients(layer, bottom, top, kink=(0, 1e-3))


def test_matches_torch_elu():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(4).standard_normal((3, 5))
    layer, bottom, top = setup_layer(elu_text(0.7), [x])
    dy = np.random.default_rng(5).standard_normal((3, 5))
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.elu(xt, alpha=f32(0.7))
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(top[0].data, yt.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(bottom[0].diff, xt.grad.numpy(), rtol=1e-13)
