"""LSTMUnit: shapes, a loop reference, gradients, cont, errors."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, empty_blobs, make_layer,
                                    setup_layer)

check_error = partial(check_layer_error, layer="unit")

UNIT = 'name: "unit" type: "LSTMUnit"'


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def reference(c_prev, gates, cont):
    """c = cont·σ(f)·c_prev + σ(i)·tanh(g), h = σ(o)·tanh(c), unit by unit;
    the gate inputs are blocks of H in the order i, f, o, g."""
    _, streams, hidden = c_prev.shape
    c = np.zeros_like(c_prev)
    h = np.zeros_like(c_prev)
    for n in range(streams):
        for d in range(hidden):
            i = sigmoid(gates[0, n, d])
            f = cont[0, n] * sigmoid(gates[0, n, hidden + d])
            o = sigmoid(gates[0, n, 2 * hidden + d])
            g = np.tanh(gates[0, n, 3 * hidden + d])
            c[0, n, d] = f * c_prev[0, n, d] + i * g
            h[0, n, d] = o * np.tanh(c[0, n, d])
    return c, h


def inputs(streams=3, hidden=4, cont=(1, 0, 1), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, (1, streams, hidden)),
            rng.uniform(-2, 2, (1, streams, 4 * hidden)),
            np.array([cont], dtype=float)]


@pytest.mark.parametrize("streams, hidden", [(3, 4), (1, 1), (5, 2)])
def test_shapes(streams, hidden):
    bottoms = inputs(streams, hidden, cont=[1] * streams)
    _, _, top = setup_layer(UNIT, bottoms, 2)
    assert top[0].shape == top[1].shape == (1, streams, hidden)


@pytest.mark.parametrize("cont", [(1, 0, 1), (0, 0, 0), (1, 1, 1),
                                  (0.5, 2, -1)])
def test_forward_matches_loops(cont):
    bottoms = inputs(cont=cont)
    _, _, top = setup_layer(UNIT, bottoms, 2)
    c, h = reference(*bottoms)
    np.testing.assert_allclose(top[0].data, c, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(top[1].data, h, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("cont", [(1, 0, 1), (0, 0, 0), (1, 1, 1)])
def test_gradients(cont):
    layer, bottom, top = setup_layer(UNIT, inputs(cont=cont), 2)
    check_gradients(layer, bottom, top, check_bottom=[0, 1])


def test_forget_gate_gradient_is_caffe_cpu_formula_for_fractional_cont():
    """With f = cont·σ(f'), Caffe's CPU backward gives the forget-gate input
    c_term·c_prev·f·(1 − f) (exact only for cont ∈ {0, 1})."""
    c_prev, gates, cont = inputs(streams=1, hidden=1, cont=(0.5,))
    layer, bottom, top = setup_layer(UNIT, [c_prev, gates, cont], 2)
    top[0].diff[...] = 0.3
    top[1].diff[...] = -0.7
    layer.Backward(top, [True, True, False], bottom)
    i, f, o, g = (sigmoid(gates[0, 0, 0]), 0.5 * sigmoid(gates[0, 0, 1]),
                  sigmoid(gates[0, 0, 2]), np.tanh(gates[0, 0, 3]))
    tanh_c = np.tanh(top[0].data[0, 0, 0])
    c_term = 0.3 - 0.7 * o * (1 - tanh_c ** 2)
    expected = c_term * c_prev[0, 0, 0] * f * (1 - f)
    assert bottom[1].diff[0, 0, 1] == pytest.approx(expected, rel=1e-12)
    assert bottom[0].diff[0, 0, 0] == pytest.approx(c_term * f, rel=1e-12)
    assert bottom[1].diff[0, 0, 3] == pytest.approx(c_term * i * (1 - g * g),
                                                    rel=1e-12)


def test_only_requested_bottom_diffs_are_written():
    layer, bottom, top = setup_layer(UNIT, inputs(), 2)
    top[0].diff[...] = top[1].diff[...] = 1
    bottom[0].diff[...] = 5
    layer.Backward(top, [False, True, False], bottom)
    assert (bottom[0].diff == 5).all() and bottom[1].diff.any()
    first = bottom[1].diff.copy()
    layer.Backward(top, [False, True, False], bottom)
    np.testing.assert_array_equal(bottom[1].diff, first)


def test_no_gradient_to_cont():
    layer, bottom, top = setup_layer(UNIT, inputs(), 2)
    assert not layer.allow_force_backward(2)
    assert layer.allow_force_backward(0) and layer.allow_force_backward(1)
    with pytest.raises(KaffeConfigError) as info:
        layer.Backward(top, [True, True, True], bottom)
    check_error(info, "propagate_down", "'true for bottom[2]'")


@pytest.mark.parametrize("index, shape, field", [
    (0, (2, 3, 4), "bottom[0] (c_prev)"),
    (0, (3, 4), "bottom[0] (c_prev)"),
    (1, (1, 3, 12), "bottom[1] (gates)"),
    (1, (1, 2, 16), "bottom[1] (gates)"),
    (2, (1, 3, 1), "bottom[2] (cont)"),
    (2, (3, 1), "bottom[2] (cont)"),
])
def test_shape_errors(index, shape, field):
    bottoms = inputs()
    bottoms[index] = np.zeros(shape)
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(UNIT, bottoms, 2)
    check_error(info, field, str(shape))


def test_blob_counts():
    layer = make_layer(UNIT)
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from(inputs()[:2]), empty_blobs(2))
    check_error(info, "bottom", "'2 bottom blob(s)'")
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from(inputs()), empty_blobs(1))
    check_error(info, "top", "'1 top blob(s)'")
