"""Reshape: 0 = copy, −1 = infer, axis/num_axes spans, shared data and
diff, gradients, errors."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, make_layer, setup_layer)

check_error = partial(check_layer_error, layer="reshape")


def reshape(dims, extra=""):
    shape = " ".join(f"dim: {d}" for d in dims)
    return (f'name: "reshape" type: "Reshape" top: "reshaped" '
            f'reshape_param {{ shape {{ {shape} }} {extra} }}')


# The cases of Caffe's own tests, on a (2, 3, 6, 5) input.
@pytest.mark.parametrize("dims, extra, expected", [
    ((0, -1, 1, 1), "", (2, 90, 1, 1)),                 # flatten
    ((0, 0, 3, 10), "", (2, 3, 3, 10)),                 # copy dims
    ((0, 3, 10, -1), "", (2, 3, 10, 3)),                # infer
    ((3, 10, -1), "axis: 1", (2, 3, 10, 3)),            # infer after axis 1
    ((1, 1, 1), "axis: 0 num_axes: 0", (1, 1, 1, 2, 3, 6, 5)),
    ((1, 1, 1), "axis: 2 num_axes: 0", (2, 3, 1, 1, 1, 6, 5)),
    ((1, 1, 1), "axis: -1 num_axes: 0", (2, 3, 6, 5, 1, 1, 1)),
    ((-1,), "axis: 1 num_axes: 2", (2, 18, 5)),         # flatten the middle
    ((-1, 0), "axis: 1", (2, 15, 6)),                  # copies axis 2
    ((), "axis: 0 num_axes: 0", (2, 3, 6, 5)),
    ((2, 3, 30), "axis: -5", (2, 3, 30)),
    ((3, 2, 15), "axis: -4", (2, 3, 2, 15)),
])
def test_shapes(dims, extra, expected):
    _, _, top = setup_layer(reshape(dims, extra), [np.zeros((2, 3, 6, 5))])
    assert top[0].shape == expected


def test_forward_keeps_row_major_order_and_shares_data_and_diff():
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    _, bottom, top = setup_layer(reshape((0, -1)), [x])
    for n in range(2):
        for c in range(3):
            for h in range(4):
                assert top[0].data[n, c * 4 + h] == x[n, c, h]
    assert np.shares_memory(top[0].data, bottom[0].data)
    assert np.shares_memory(top[0].diff, bottom[0].diff)


def test_backward_gives_the_top_diff_in_the_bottom_shape():
    layer, bottom, top = setup_layer(reshape((-1,)), [np.zeros((2, 3))])
    top[0].diff[...] = np.arange(6.0)
    layer.Backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, np.arange(6.0).reshape(2, 3))


@pytest.mark.parametrize("dims, extra", [((0, -1), ""), ((3, 2), "axis: 1 num_axes: 1")])
def test_gradients(dims, extra):
    x = np.random.default_rng(1).standard_normal((2, 6, 2))
    layer, bottom, top = setup_layer(reshape(dims, extra), [x])
    check_gradients(layer, bottom, top)


def test_new_input_shape_is_followed():
    layer, bottom, top = setup_layer(reshape((0, -1)), [np.zeros((2, 3, 4))])
    bottom[0].reshape((5, 2, 2))
    bottom[0].data[...] = np.arange(20.0).reshape(5, 2, 2)
    layer.Forward(bottom, top)
    assert top[0].shape == (5, 4)
    np.testing.assert_array_equal(top[0].data, np.arange(20.0).reshape(5, 4))


def test_not_in_place():
    layer = make_layer(reshape((-1,)))
    blob = blobs_from([np.zeros((2, 3))])[0]
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp([blob], [blob])
    check_error(info, "top", "'reshaped'")


def test_at_most_one_inferred_dim():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(reshape((-1, -1)), [np.zeros((2, 3))])
    check_error(info, "reshape_param.shape", "(-1, -1)")


def test_dims_below_minus_one():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(reshape((2, -3)), [np.zeros((2, 3))])
    check_error(info, "reshape_param.shape", "(2, -3)")


@pytest.mark.parametrize("axis", [3, -4])
def test_axis_out_of_range(axis):
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(reshape((-1,), f"axis: {axis}"), [np.zeros((2, 3))])
    check_error(info, "reshape_param.axis", str(axis))


def test_num_axes_below_minus_one():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(reshape((-1,), "num_axes: -2"), [np.zeros((2, 3))])
    check_error(info, "reshape_param.num_axes", "-2")


def test_num_axes_past_the_input():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(reshape((-1,), "axis: 1 num_axes: 2"), [np.zeros((2, 3))])
    check_error(info, "reshape_param.num_axes", "2")


def test_copy_without_an_input_axis():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(reshape((6, 0)), [np.zeros((2, 3))])
    check_error(info, "reshape_param.shape", "(6, 0)")


def test_count_not_divisible_by_the_given_dims():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(reshape((4, -1)), [np.zeros((2, 3))])
    check_error(info, "reshape_param.shape", "(4, -1)")


def test_inferring_from_an_empty_input():
    # Caffe divides by zero here.
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(reshape((0, -1)), [np.zeros((0, 3))])
    check_error(info, "reshape_param.shape", "(0, -1)")


def test_count_must_match():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(reshape((4, 2)), [np.zeros((2, 3))])
    check_error(info, "reshape_param.shape", "(4, 2)")
