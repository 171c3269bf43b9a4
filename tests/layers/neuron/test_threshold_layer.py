"""Threshold: loop reference (strictly greater), zero gradient, in place."""
import numpy as np
import pytest

from kaffe.testing.gradient import (check_backward_overwrites,
                                    check_gradients, setup_in_place,
                                    setup_layer)


def threshold_text(threshold=None):
    param = (f"threshold_param {{ threshold: {threshold} }}"
             if threshold is not None else "")
    return f'name: "thr" type: "Threshold" {param}'


def f32(value):
    return float(np.float32(value))  # threshold is a float field


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4, 5), (7,)])
def test_top_has_bottom_shape(shape):
    _, _, top = setup_layer(threshold_text(), [np.zeros(shape)])
    assert top[0].shape == shape


@pytest.mark.parametrize("threshold", [None, 0.3, -1.0])
def test_forward_matches_loops(threshold):
    t = f32(threshold or 0.0)
    x = np.random.default_rng(0).standard_normal((3, 4))
    x[0, :2] = [t, np.nextafter(t, np.inf)]
    _, _, top = setup_layer(threshold_text(threshold), [x])
    for index in np.ndindex(*x.shape):
        assert top[0].data[index] == (1.0 if x[index] > t else 0.0)
    assert top[0].data[0, 0] == 0.0 and top[0].data[0, 1] == 1.0


def test_backward_writes_zeros():
    # Caffe has no backward (NOT_IMPLEMENTED); the step's derivative is 0.
    x = np.random.default_rng(1).standard_normal((2, 3))
    layer, bottom, top = setup_layer(threshold_text(0.1), [x])
    top[0].diff[...] = 3.0
    bottom[0].diff[...] = 9.0
    check_backward_overwrites(layer, bottom, top)
    layer.Backward(top, [True], bottom)
    assert not bottom[0].diff.any()


def test_gradients_away_from_the_threshold():
    x = np.random.default_rng(2).standard_normal((2, 3, 4))
    layer, bottom, top = setup_layer(threshold_text(0.2), [x])
    check_gradients(layer, bottom, top, kink=(f32(0.2), 1e-3))


def test_in_place():
    x = np.random.default_rng(3).standard_normal((3, 4))
    layer, bottom, top = setup_in_place(threshold_text(0.5), [x])
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, (x > f32(0.5)).astype(float))
    check_gradients(layer, bottom, top, kink=(f32(0.5), 1e-3))
