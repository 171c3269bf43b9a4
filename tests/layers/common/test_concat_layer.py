"""Concat: shapes along several axes, a loop reference, gradients, errors."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (check_gradients, check_layer_error,
                                    empty_blobs, make_layer, setup_layer)

check_error = partial(check_layer_error, layer="cat")


def concat_text(param=""):
    return f'name: "cat" type: "Concat" concat_param {{ {param} }}'


def reference(arrays, axis):
    """Element by element: find which input an output index falls into."""
    shape = list(arrays[0].shape)
    shape[axis] = sum(a.shape[axis] for a in arrays)
    out = np.zeros(shape)
    for index in np.ndindex(*shape):
        position = index[axis]
        for a in arrays:
            if position < a.shape[axis]:
                source = list(index)
                source[axis] = position
                out[index] = a[tuple(source)]
                break
            position -= a.shape[axis]
    return out


def inputs(axis, sizes=(1, 2, 3), base=(2, 3, 4)):
    rng = np.random.default_rng(axis + 10)
    arrays = []
    for size in sizes:
        shape = list(base)
        shape[axis] = size
        arrays.append(rng.standard_normal(shape))
    return arrays


@pytest.mark.parametrize("param, axis, expected", [
    ("axis: 0", 0, (6, 3, 4)), ("", 1, (2, 6, 4)), ("axis: 2", 2, (2, 3, 6)),
    ("axis: -1", 2, (2, 3, 6)), ("concat_dim: 0", 0, (6, 3, 4))])
def test_shapes(param, axis, expected):
    _, _, top = setup_layer(concat_text(param), inputs(axis))
    assert top[0].shape == expected


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_forward_matches_loops(axis):
    arrays = inputs(axis)
    _, _, top = setup_layer(concat_text(f"axis: {axis}"), arrays)
    np.testing.assert_array_equal(top[0].data, reference(arrays, axis))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_gradients(axis):
    arrays = inputs(axis, sizes=(1, 2), base=(2, 2, 3))
    layer, bottom, top = setup_layer(concat_text(f"axis: {axis}"), arrays)
    check_gradients(layer, bottom, top)


def test_backward_slices_the_top_diff():
    arrays = inputs(1)
    layer, bottom, top = setup_layer(concat_text(), arrays)
    top[0].diff[...] = np.arange(top[0].count).reshape(top[0].shape)
    bottom[1].diff[...] = 42
    layer.Backward(top, [True, False, True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, top[0].diff[:, :1])
    assert (bottom[1].diff == 42).all()
    np.testing.assert_array_equal(bottom[2].diff, top[0].diff[:, 3:])


def test_one_bottom_shares_data_and_diff():
    x = np.random.default_rng(0).standard_normal((2, 3))
    layer, bottom, top = setup_layer(concat_text(), [x])
    assert top[0].shape == (2, 3)
    assert np.shares_memory(top[0].data, bottom[0].data)
    np.testing.assert_array_equal(top[0].data, x)
    top[0].diff[...] = 5
    layer.Backward(top, [True], bottom)
    assert np.shares_memory(top[0].diff, bottom[0].diff)
    assert (bottom[0].diff == 5).all()


def test_axis_and_concat_dim_together():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(concat_text("axis: 1 concat_dim: 1"), inputs(1))
    check_error(info, "concat_param.axis", "'axis 1 and concat_dim 1'")


def test_axis_out_of_range():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(concat_text("axis: 3"), inputs(1))
    check_error(info, "concat_param.axis", "3")


def test_concat_dim_out_of_range():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(concat_text("concat_dim: 5"), inputs(1))
    check_error(info, "concat_param.concat_dim", "5")


@pytest.mark.parametrize("second", [(2, 3, 5), (2, 3)])
def test_other_dims_must_agree(second):
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(concat_text(), [np.zeros((2, 3, 4)), np.zeros(second)])
    check_error(info, "bottom", f"'(2, 3, 4) and {second}'")


def test_needs_a_bottom():
    layer = make_layer(concat_text())
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp([], empty_blobs(1))
    check_error(info, "bottom", "'0 bottom blob(s)'")
