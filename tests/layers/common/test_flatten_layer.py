"""Flatten: shapes for axis/end_axis, shared data and diff, gradients, errors."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, make_layer, setup_layer)

check_error = partial(check_layer_error, layer="flat")


def flatten_text(param=""):
    return f'name: "flat" type: "Flatten" top: "flat" flatten_param {{ {param} }}'


@pytest.mark.parametrize("param, expected", [
    ("", (2, 60)), ("axis: 2", (2, 3, 20)), ("end_axis: -2", (2, 12, 5)),
    ("axis: 0 end_axis: 1", (6, 4, 5)), ("axis: 2 end_axis: 2", (2, 3, 4, 5)),
    ("axis: -3 end_axis: -2", (2, 12, 5))])
def test_shapes(param, expected):
    _, _, top = setup_layer(flatten_text(param), [np.zeros((2, 3, 4, 5))])
    assert top[0].shape == expected


def test_forward_is_row_major_and_shares_data():
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    _, bottom, top = setup_layer(flatten_text(), [x])
    for n in range(2):
        for c in range(3):
            for h in range(4):
                assert top[0].data[n, c * 4 + h] == x[n, c, h]
    assert np.shares_memory(top[0].data, bottom[0].data)


def test_backward_shares_diff():
    layer, bottom, top = setup_layer(flatten_text("axis: 0"), [np.zeros((2, 3))])
    top[0].diff[...] = np.arange(6.0)
    layer.Backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff,
                                  np.arange(6.0).reshape(2, 3))


@pytest.mark.parametrize("param", ["", "axis: 2", "axis: 0 end_axis: 1"])
def test_gradients(param):
    x = np.random.default_rng(1).standard_normal((2, 3, 2))
    layer, bottom, top = setup_layer(flatten_text(param), [x])
    check_gradients(layer, bottom, top)


def test_not_in_place():
    layer = make_layer(flatten_text())
    blob = blobs_from([np.zeros((2, 3))])[0]
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp([blob], [blob])
    check_error(info, "top", "'flat'")


def test_axis_out_of_range():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(flatten_text("axis: 3"), [np.zeros((2, 3, 4))])
    check_error(info, "flatten_param.axis", "3")


def test_end_axis_out_of_range():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(flatten_text("end_axis: -4"), [np.zeros((2, 3, 4))])
    check_error(info, "flatten_param.end_axis", "-4")


def test_end_axis_before_axis():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(flatten_text("axis: 2 end_axis: 1"), [np.zeros((2, 3, 4))])
    check_error(info, "flatten_param.end_axis", "1")
