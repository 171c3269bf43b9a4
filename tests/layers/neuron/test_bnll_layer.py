"""BNLL: loop reference (double-precision quirk), gradients, in place."""
import math

import numpy as np
import pytest

from kaffe.testing.gradient import (check_backward_overwrites,
                                    check_gradients, setup_in_place,
                                    setup_layer)

BNLL = 'name: "bnll" type: "BNLL"'


def reference(v):
    """Caffe's formula, in double: log(1 + e^x), with the x > 0 branch."""
    return v + math.log(1.0 + math.exp(-v)) if v > 0 else math.log(
        1.0 + math.exp(v))


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4, 5), (7,)])
def test_top_has_bottom_shape(shape):
    _, _, top = setup_layer(BNLL, [np.zeros(shape)])
    assert top[0].shape == shape


def test_forward_matches_loops():
    x = np.random.default_rng(0).standard_normal((3, 4)) * 5
    x[0, :4] = [0.0, -40.0, 60.0, 1000.0]
    _, _, top = setup_layer(BNLL, [x])
    for index in np.ndindex(*x.shape):
        assert top[0].data[index] == pytest.approx(reference(x[index]),
                                                   rel=1e-14, abs=0)


def test_forward_is_log_of_one_plus_exp_in_double():
    # Not log1p: below about -37 the double sum 1 + e^x is 1 and y is 0.
    _, _, top = setup_layer(BNLL, [np.array([-40.0, -30.0])])
    assert top[0].data[0] == 0.0
    assert top[0].data[1] == pytest.approx(math.exp(-30.0), rel=1e-3)
    # In a float32 net the value is still computed in double, then rounded:
    # float32 arithmetic alone would give 1 + 2e-9 = 1 and y = 0.
    _, _, top = setup_layer(BNLL, [np.array([-20.0, 100.0])],
                            dtype=np.float32)
    assert top[0].data[0] == np.float32(math.log(1.0 + math.exp(-20.0)))
    assert top[0].data[1] == 100.0


def test_backward_clamps_the_exponential_at_50():
    x = np.array([-3.0, 0.0, 40.0, 1000.0])
    layer, bottom, top = setup_layer(BNLL, [x])
    top[0].diff[...] = 2.0
    check_backward_overwrites(layer, bottom, top)
    layer.Backward(top, [True], bottom)
    for i, v in enumerate(x):
        e = math.exp(min(v, 50.0))
        assert bottom[0].diff[i] == pytest.approx(2.0 * e / (e + 1), rel=1e-14)
    assert bottom[0].diff[3] == 2.0  # not inf / inf


def test_gradients():
    x = np.random.default_rng(1).standard_normal((2, 3, 4)) * 3
    layer, bottom, top = setup_layer(BNLL, [x])
    check_gradients(layer, bottom, top)


def test_in_place_gradients():
    x = np.random.default_rng(2).standard_normal((2, 3, 4)) * 3
    layer, bottom, top = setup_in_place(BNLL, [x])
    check_gradients(layer, bottom, top)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_place_matches_separate_blobs(dtype):
    # The layer keeps a copy of its input: unlike Caffe's CPU code, the
    # in-place backward does not read the overwritten input y.
    x = np.random.default_rng(3).standard_normal((3, 4)) * 5
    x[0, :2] = [60.0, -40.0]
    dy = np.random.default_rng(4).standard_normal((3, 4))
    layer, bottom, top = setup_layer(BNLL, [x], dtype=dtype)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    in_place, blobs, _ = setup_in_place(BNLL, [x], dtype=dtype)
    in_place.Forward(blobs, blobs)
    np.testing.assert_array_equal(blobs[0].data, top[0].data)
    blobs[0].diff[...] = dy
    in_place.Backward(blobs, [True], blobs)
    np.testing.assert_array_equal(blobs[0].diff, bottom[0].diff)


def test_matches_torch_softplus():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(4).standard_normal((3, 5)) * 4
    layer, bottom, top = setup_layer(BNLL, [x])
    dy = np.random.default_rng(5).standard_normal((3, 5))
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.softplus(xt, threshold=50)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(top[0].data, yt.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(bottom[0].diff, xt.grad.numpy(), rtol=1e-13)
