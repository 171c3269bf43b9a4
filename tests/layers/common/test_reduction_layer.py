"""Reduction: shapes, a loop reference per operation, gradients, errors."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeShapeError
from kaffe.testing.gradient import (check_backward_overwrites,
                                    check_gradients, check_layer_error,
                                    setup_layer)

check_error = partial(check_layer_error, layer="red")

OPERATIONS = ("SUM", "ASUM", "SUMSQ", "MEAN")


def reduction(operation="SUM", axis=0, coeff=1.0):
    return (f'name: "red" type: "Reduction" reduction_param {{ '
            f'operation: {operation} axis: {axis} coeff: {coeff} }}')


def reference(x, operation, axis, coeff):
    """For every index i over the kept axes, reduce the values x[i, …]."""
    kept = x.shape[:axis]
    y = np.zeros(kept)
    for i in np.ndindex(*kept):
        values = x[i].ravel()
        total = 0.0
        for v in values:
            if operation == "ASUM":
                total += abs(v)
            elif operation == "SUMSQ":
                total += v * v
            else:
                total += v
        if operation == "MEAN":
            total /= values.size
        y[i] = coeff * total
    return y


@pytest.mark.parametrize("axis, expected", [
    (0, ()), (1, (2,)), (2, (2, 3)), (-1, (2, 3)), (-3, ())])
def test_shapes(axis, expected):
    _, _, top = setup_layer(reduction(axis=axis), [np.ones((2, 3, 4))])
    assert top[0].shape == expected


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("axis, coeff", [(0, 1.0), (1, -0.5), (2, 2.5)])
def test_forward_matches_loops(operation, axis, coeff):
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    _, _, top = setup_layer(reduction(operation, axis, coeff), [x])
    np.testing.assert_allclose(top[0].data,
                               reference(x, operation, axis, coeff),
                               rtol=1e-12, atol=1e-12)


def test_mean_folds_one_over_dim_into_coeff_in_float32():
    # Caffe computes coeff / dim once in the blob's type and multiplies the
    # sum by it: 5 · float32(1/3) = 1.6666667, whereas 5 / 3 = 1.6666666.
    x = np.array([[1.0, 2.0, 2.0]])
    _, _, top = setup_layer(reduction("MEAN", axis=1), [x],
                            dtype=np.float32)
    expected = np.float32(5) * (np.float32(1) / np.float32(3))
    assert expected != np.float32(5) / np.float32(3)
    assert top[0].data[0] == expected


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("axis, coeff", [(0, 1.0), (1, -0.5), (2, 2.5)])
def test_gradients(operation, axis, coeff):
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    layer, bottom, top = setup_layer(reduction(operation, axis, coeff), [x])
    check_gradients(layer, bottom, top, kink=(0.0, 1e-3))


def test_asum_gradient_at_zero_is_zero():
    x = np.array([[0.0, -2.0, 3.0]])
    layer, bottom, top = setup_layer(reduction("ASUM", axis=1, coeff=2),
                                     [x])
    top[0].diff[...] = 1.5
    layer.Backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, [[0.0, -3.0, 3.0]])


def test_backward_overwrites_bottom_diff():
    x = np.random.default_rng(2).standard_normal((3, 4))
    layer, bottom, top = setup_layer(reduction("SUMSQ", axis=1), [x])
    top[0].diff[...] = np.random.default_rng(3).standard_normal(3)
    check_backward_overwrites(layer, bottom, top)


def test_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(4).standard_normal((2, 3, 4))
    functions = {"SUM": lambda t: t.sum(-1), "ASUM": lambda t: t.abs().sum(-1),
                 "SUMSQ": lambda t: (t * t).sum(-1),
                 "MEAN": lambda t: t.mean(-1)}
    for operation, function in functions.items():
        layer, bottom, top = setup_layer(reduction(operation, 1, 0.75), [x])
        dy = np.random.default_rng(5).standard_normal(top[0].shape)
        top[0].diff[...] = dy
        layer.Backward(top, [True], bottom)
        t = torch.from_numpy(x).requires_grad_()
        y = 0.75 * function(t.reshape(2, -1))
        y.backward(torch.from_numpy(dy))
        np.testing.assert_allclose(top[0].data, y.detach().numpy(),
                                   rtol=1e-12)
        np.testing.assert_allclose(bottom[0].diff, t.grad.numpy(), rtol=1e-12)


def test_new_input_shape_is_followed():
    layer, bottom, top = setup_layer(reduction("MEAN", axis=1),
                                     [np.ones((2, 3))])
    bottom[0].reshape((4, 5))
    bottom[0].data[...] = 2.0
    layer.Forward(bottom, top)
    assert top[0].shape == (4,)
    np.testing.assert_allclose(top[0].data, 2.0)


def test_axis_out_of_range():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(reduction(axis=3), [np.ones((2, 3, 4))])
    check_error(info, "reduction_param.axis", "3")
