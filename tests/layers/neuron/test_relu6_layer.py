"""ReLU6 (MobileNet-v2 forks): loop reference, open-interval gradient mask,
in place."""
import numpy as np
import pytest

from kaffe.testing.gradient import (check_backward_overwrites,
                                    check_gradients, setup_in_place,
                                    setup_layer)

TEXT = 'name: "relu6" type: "ReLU6"'


def reference(x):
    out = np.empty_like(x)
    for i in np.ndindex(*x.shape):
        out[i] = 0.0 if x[i] < 0 else 6.0 if x[i] > 6 else x[i]
    return out


def away_from_kinks(x):
    for p in (0.0, 6.0):
        x = np.where(abs(x - p) < 1e-2, x + 0.05, x)
    return x


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (7,)])
def test_forward_matches_loops(shape):
    x = np.random.default_rng(0).standard_normal(shape) * 5
    _, _, top = setup_layer(TEXT, [x])
    assert top[0].shape == shape
    np.testing.assert_array_equal(top[0].data, reference(x))


def test_gradient_mask_excludes_both_ends():
    x = np.array([-1.0, 0.0, 3.0, 6.0, 7.0])
    layer, bottom, top = setup_layer(TEXT, [x])
    top[0].diff[...] = 2.0
    check_backward_overwrites(layer, bottom, top)
    layer.Backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, [0, 0, 2, 0, 0])


def test_gradients():
    x = away_from_kinks(np.random.default_rng(1).standard_normal((2, 3, 4)) * 5)
    layer, bottom, top = setup_layer(TEXT, [x])
    check_gradients(layer, bottom, top)


def test_in_place_gradients():
    x = away_from_kinks(np.random.default_rng(2).standard_normal((2, 3, 4)) * 5)
    layer, bottom, top = setup_in_place(TEXT, [x])
    check_gradients(layer, bottom, top)
