"""TanH: loop reference, gradients (also in place)."""
import math

import numpy as np
import pytest

from kaffe.testing.gradient import (check_gradients, setup_in_place,
                                    setup_layer)

TANH = 'name: "tanh" type: "TanH"'


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4, 5), (7,)])
def test_top_has_bottom_shape(shape):
    _, _, top = setup_layer(TANH, [np.zeros(shape)])
    assert top[0].shape == shape


def test_forward_matches_loops():
    x = np.random.default_rng(0).standard_normal((3, 4)) * 3
    x[0, 0] = 800.0
    _, _, top = setup_layer(TANH, [x])
    for index in np.ndindex(*x.shape):
        v = x[index]
        expected = (math.exp(2 * v) - 1) / (math.exp(2 * v) + 1) if v < 300 else 1.0
        assert top[0].data[index] == pytest.approx(expected, rel=1e-12)


def test_gradients():
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    layer, bottom, top = setup_layer(TANH, [x])
    check_gradients(layer, bottom, top)


def test_in_place():
    x = np.random.default_rng(2).standard_normal((3, 4))
    layer, bottom, top = setup_in_place(TANH, [x])
    check_gradients(layer, bottom, top)
