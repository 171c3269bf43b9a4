"""ArgMax: shapes, a loop reference with Caffe's tie order, errors."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import check_layer_error, setup_layer

check_error = partial(check_layer_error, layer="argmax")


def argmax(param=""):
    return f'name: "argmax" type: "ArgMax" argmax_param {{ {param} }}'


def ranked(values, k):
    """Caffe's order: (value, index) pairs sorted descending, so the larger
    index comes first among equal values. The first k (index, value)."""
    pairs = sorted(((v, j) for j, v in enumerate(values)), reverse=True)
    return [(j, v) for v, j in pairs[:k]]


def reference(x, top_k, out_max_val, axis):
    """Without axis, item n ranks x[n].ravel(); with it, every line along
    the axis is ranked on its own."""
    if axis is None:
        rows = x.reshape(x.shape[0], -1)
        y = np.ones((x.shape[0], 2 if out_max_val else 1, top_k)
                    + (1,) * (max(x.ndim, 3) - 3))
        for n in range(x.shape[0]):
            for j, (index, value) in enumerate(ranked(rows[n], top_k)):
                y[(n, 0, j) + (0,) * (y.ndim - 3)] = index
                if out_max_val:
                    y[(n, 1, j) + (0,) * (y.ndim - 3)] = value
        return y
    moved = np.moveaxis(x, axis, -1)
    y = np.zeros(moved.shape[:-1] + (top_k,))
    for i in np.ndindex(*moved.shape[:-1]):
        for j, (index, value) in enumerate(ranked(moved[i], top_k)):
            y[i + (j,)] = value if out_max_val else index
    return np.moveaxis(y, -1, axis)


@pytest.mark.parametrize("shape, param, expected", [
    ((10, 3, 4, 5), "", (10, 1, 1, 1)),
    ((10, 3, 4, 5), "out_max_val: true top_k: 4", (10, 2, 4, 1)),
    ((10, 7), "top_k: 3", (10, 1, 3)),
    ((10,), "", (10, 1, 1)),
    ((2, 3, 4, 5, 6), "top_k: 2", (2, 1, 2, 1, 1)),
    ((10, 3, 4, 5), "axis: 0 top_k: 2", (2, 3, 4, 5)),
    ((10, 3, 4, 5), "axis: -2", (10, 3, 1, 5)),
    ((10, 3, 4, 5), "axis: 2 top_k: 3 out_max_val: true", (10, 3, 3, 5)),
])
def test_shapes(shape, param, expected):
    _, _, top = setup_layer(argmax(param), [np.zeros(shape)])
    assert top[0].shape == expected


@pytest.mark.parametrize("shape, top_k, out_max_val, axis", [
    ((4, 3, 2, 5), 1, False, None),
    ((4, 3, 2, 5), 5, True, None),
    ((4, 6), 3, False, None),
    ((4, 3, 2, 5), 1, False, 0),
    ((4, 3, 2, 5), 2, False, 2),
    ((4, 3, 2, 5), 4, True, -1),
    ((4, 3, 2, 5), 3, True, 1),
])
def test_forward_matches_loops(shape, top_k, out_max_val, axis):
    # Few distinct values, so that ties are common.
    x = np.random.default_rng(0).integers(-2, 3, size=shape).astype(float)
    param = f"top_k: {top_k} out_max_val: {str(out_max_val).lower()}"
    if axis is not None:
        param += f" axis: {axis}"
    _, _, top = setup_layer(argmax(param), [x])
    np.testing.assert_array_equal(top[0].data,
                                  reference(x, top_k, out_max_val, axis))


def test_ties_go_to_the_larger_index():
    x = np.array([[1.0, 3.0, 3.0, 2.0, 3.0, -0.0, 0.0]])
    _, _, top = setup_layer(argmax("top_k: 7 out_max_val: true"), [x])
    # -0.0 and 0.0 are equal values: index 6 before index 5.
    np.testing.assert_array_equal(top[0].data[0, 0], [4, 2, 1, 3, 0, 6, 5])
    np.testing.assert_array_equal(top[0].data[0, 1], [3, 3, 3, 2, 1, 0, 0])
    _, _, top = setup_layer(argmax("axis: 1"), [x])
    assert top[0].data[0, 0] == 4


def test_gradient_is_zero():
    x = np.random.default_rng(1).standard_normal((2, 5))
    layer, bottom, top = setup_layer(argmax(), [x])
    bottom[0].diff[...] = 3
    top[0].diff[...] = 1
    layer.Backward(top, [True], bottom)
    assert not bottom[0].diff.any()
    bottom[0].diff[...] = 3
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 3).all()


def test_top_k_must_be_positive():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(argmax("top_k: 0"), [np.zeros((2, 3))])
    check_error(info, "argmax_param.top_k", "0")


@pytest.mark.parametrize("param", ["top_k: 7", "top_k: 4 axis: 1"])
def test_top_k_must_fit(param):
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(argmax(param), [np.zeros((2, 3, 2))])
    check_error(info, "argmax_param.top_k", param.split()[1])


def test_axis_out_of_range():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(argmax("axis: 2"), [np.zeros((2, 3))])
    check_error(info, "argmax_param.axis", "2")
