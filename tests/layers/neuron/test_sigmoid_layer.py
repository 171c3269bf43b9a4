"""Sigmoid: loop reference, stability, gradients (also in place)."""
import math

import numpy as np
import pytest

from kaffe.testing.gradient import (check_gradients, setup_in_place,
                                    setup_layer)

SIGMOID = 'name: "sig" type: "Sigmoid"'


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4, 5), (7,)])
def test_top_has_bottom_shape(shape):
    _, _, top = setup_layer(SIGMOID, [np.zeros(shape)])
    assert top[0].shape == shape


def test_forward_matches_loops():
    x = np.random.default_rng(0).standard_normal((3, 4)) * 4
    _, _, top = setup_layer(SIGMOID, [x])
    for index in np.ndindex(*x.shape):
        assert top[0].data[index] == pytest.approx(
            1 / (1 + math.exp(-x[index])), rel=1e-12)


def test_extreme_inputs_saturate_without_overflow():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    with np.errstate(all="raise"):
        _, _, top = setup_layer(SIGMOID, [x], dtype=np.float32)
    np.testing.assert_allclose(top[0].data, [0, 0, 0.5, 1, 1], atol=1e-7)


def test_gradients():
    x = np.random.default_rng(1).standard_normal((2, 3, 4)) * 2
    layer, bottom, top = setup_layer(SIGMOID, [x])
    check_gradients(layer, bottom, top)


def test_in_place():
    x = np.random.default_rng(2).standard_normal((3, 4))
    layer, bottom, top = setup_in_place(SIGMOID, [x])
    check_gradients(layer, bottom, top)
