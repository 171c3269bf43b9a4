"""Axpy (SENet fork): a·x + y per channel, gradients, shape errors."""
import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, empty_blobs,
                                    make_layer, setup_layer)

TEXT = 'name: "axpy" type: "Axpy"'


def reference(a, x, y):
    out = np.empty_like(x)
    for n, c in np.ndindex(*x.shape[:2]):
        out[n, c] = a.reshape(x.shape[:2])[n, c] * x[n, c] + y[n, c]
    return out


@pytest.mark.parametrize("a_shape", [(2, 3, 1, 1), (2, 3)])
def test_forward_and_gradients(a_shape):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(a_shape)
    x, y = rng.standard_normal((2, 2, 3, 4, 5))
    layer, bottom, top = setup_layer(TEXT, [a, x, y])
    assert top[0].shape == x.shape
    np.testing.assert_allclose(top[0].data, reference(a, x, y), rtol=1e-14)
    check_gradients(layer, bottom, top)


def test_each_bottom_gradient_on_its_own():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((1, 2, 1, 1))
    x, y = rng.standard_normal((2, 1, 2, 3, 3))
    layer, bottom, top = setup_layer(TEXT, [a, x, y])
    top[0].diff[...] = 1.0
    for blob in bottom:
        blob.diff[...] = 7.0
    layer.Backward(top, [False, True, False], bottom)
    assert (bottom[0].diff == 7).all() and (bottom[2].diff == 7).all()
    np.testing.assert_allclose(bottom[1].diff,
                               np.broadcast_to(a, x.shape))


@pytest.mark.parametrize("shapes", [[(2, 4, 1, 1), (2, 3, 4, 4), (2, 3, 4, 4)],
                                    [(2, 3, 2, 1), (2, 3, 4, 4), (2, 3, 4, 4)],
                                    [(2, 3), (2, 3, 4, 4), (2, 3, 4, 5)]])
def test_shape_errors(shapes):
    layer = make_layer(TEXT)
    with pytest.raises(KaffeShapeError) as info:
        layer.SetUp(blobs_from([np.zeros(s) for s in shapes]), empty_blobs(1))
    assert info.value.field == "bottom" and "layer 'axpy'" in str(info.value)


def test_in_place_on_the_features_is_refused():
    layer = make_layer(TEXT + ' bottom: "a" bottom: "x" bottom: "y" top: "x"')
    bottom = blobs_from([np.zeros((1, 2)), np.zeros((1, 2, 3, 3)),
                         np.zeros((1, 2, 3, 3))])
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(bottom, [bottom[0], bottom[1], bottom[2]][1:2])
    check_layer_error(info, "top", "'x'", layer="axpy")
