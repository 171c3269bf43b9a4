"""Crop: shapes from the reference, offsets, zero-padded backward, errors."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, make_layer, setup_layer)

check_error = partial(check_layer_error, layer="crop")


def crop(param=""):
    return f'name: "crop" type: "Crop" top: "crop" crop_param {{ {param} }}'


def reference(x, shape, offsets):
    """top[i] = x[i + offsets] for every index i of the top, by loops."""
    y = np.empty(shape)
    for index in np.ndindex(shape):
        y[index] = x[tuple(i + o for i, o in zip(index, offsets))]
    return y


X = np.random.default_rng(0).standard_normal((2, 4, 5, 6))


@pytest.mark.parametrize("param, ref, expected", [
    ("", (9, 9, 3, 2), (2, 4, 3, 2)),                  # default axis 2
    ("axis: 0", (1, 2, 3, 4), (1, 2, 3, 4)),
    ("axis: -1", (9, 9, 9, 2), (2, 4, 5, 2)),
    ("axis: 1 offset: 1", (2, 3, 4, 5), (2, 3, 4, 5)),
    ("", (2, 4, 5, 6, 7), (2, 4, 5, 6))])              # extra reference axes are ignored
def test_shapes(param, ref, expected):
    _, _, top = setup_layer(crop(param), [X, np.zeros(ref)])
    assert top[0].shape == expected


@pytest.mark.parametrize("param, ref, offsets", [
    ("", (1, 1, 3, 2), (0, 0, 0, 0)),
    ("offset: 2", (1, 1, 3, 4), (0, 0, 2, 2)),
    ("axis: 0 offset: 0 offset: 1 offset: 1 offset: 2", (2, 3, 4, 4), (0, 1, 1, 2)),
    ("axis: 1 offset: 1 offset: 2 offset: 0", (2, 3, 3, 6), (0, 1, 2, 0)),
    ("axis: -1 offset: 3", (2, 4, 5, 3), (0, 0, 0, 3))])
def test_forward_matches_loops(param, ref, offsets):
    _, _, top = setup_layer(crop(param), [X, np.zeros(ref)])
    np.testing.assert_array_equal(top[0].data,
                                  reference(X, top[0].shape, offsets))


def test_backward_pads_with_zeros():
    x = np.zeros((1, 1, 4, 4))
    layer, bottom, top = setup_layer(crop("offset: 1 offset: 2"),
                                     [x, np.zeros((1, 1, 2, 2))])
    top[0].diff[...] = [[[[1.0, 2.0], [3.0, 4.0]]]]
    bottom[0].diff[...] = 9.0
    layer.Backward(top, [True, False], bottom)
    expected = np.zeros((4, 4))
    for i in range(2):
        for j in range(2):
            expected[1 + i, 2 + j] = top[0].diff[0, 0, i, j]
    np.testing.assert_array_equal(bottom[0].diff[0, 0], expected)


@pytest.mark.parametrize("param, ref", [
    ("offset: 1", (1, 1, 3, 4)), ("axis: 1 offset: 0 offset: 1 offset: 2", (2, 3, 3, 3))])
def test_gradients(param, ref):
    x = np.random.default_rng(1).standard_normal((2, 4, 4, 5))
    layer, bottom, top = setup_layer(crop(param), [x, np.zeros(ref)])
    check_gradients(layer, bottom, top, check_bottom=[0])


def test_reference_gets_no_gradient():
    layer, bottom, top = setup_layer(crop(), [X, np.zeros((1, 1, 2, 2))])
    top[0].diff[...] = 1.0
    bottom[1].diff[...] = 5.0
    layer.Backward(top, [True, True], bottom)
    assert (bottom[1].diff == 5.0).all()


def test_bottom_diff_is_overwritten_and_respects_propagate_down():
    layer, bottom, top = setup_layer(crop("offset: 1"), [X, np.zeros((1, 1, 2, 2))])
    top[0].diff[...] = 3.0
    layer.Backward(top, [True, False], bottom)
    first = bottom[0].diff.copy()
    layer.Backward(top, [True, False], bottom)
    np.testing.assert_array_equal(bottom[0].diff, first)
    bottom[0].diff[...] = 5
    layer.Backward(top, [False, False], bottom)
    assert (bottom[0].diff == 5).all()


def test_in_place_when_nothing_is_cut():
    layer = make_layer(crop())
    bottom = blobs_from([X, np.zeros((2, 4, 5, 6))])
    top = [bottom[0]]
    layer.SetUp(bottom, top)
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, X)
    top[0].diff[...] = 2.0
    layer.Backward(top, [True, False], bottom)
    assert (bottom[0].diff == 2.0).all()


def test_not_in_place_when_cutting():
    layer = make_layer(crop())
    bottom = blobs_from([X, np.zeros((1, 1, 2, 2))])
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(bottom, [bottom[0]])
    check_error(info, "top", "'crop'")


def test_offset_count_must_match_the_cropped_axes():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(crop("offset: 1 offset: 1 offset: 1"), [X, np.zeros((1, 1, 2, 2))])
    check_error(info, "crop_param.offset", "'3 values'")


def test_crop_must_fit_in_the_input():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(crop("offset: 1 offset: 5"), [X, np.zeros((1, 1, 2, 2))])
    check_error(info, "crop_param.offset", "5")
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(crop(), [X, np.zeros((1, 1, 6, 2))])
    check_error(info, "crop_param.offset", "0")


def test_reference_needs_the_input_axes():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(crop(), [X, np.zeros((2, 2, 2))])
    check_error(info, "bottom[1]", "(2, 2, 2)")


def test_axis_out_of_range():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(crop("axis: 4"), [X, np.zeros((1, 1, 2, 2))])
    check_error(info, "crop_param.axis", "4")


def test_blob_counts():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(crop(), [X])
    check_error(info, "bottom", "'1 bottom blob(s)'")
