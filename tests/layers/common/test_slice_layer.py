"""Slice: slice points, equal splits, the deprecated slice_dim, one shared
top, gradients, errors."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, empty_blobs, make_layer,
                                    setup_layer)

check_error = partial(check_layer_error, layer="slice")


def slice_text(param=""):
    return f'name: "slice" type: "Slice" top: "a" top: "b" slice_param {{ {param} }}'


X = np.random.default_rng(0).standard_normal((2, 6, 3, 4))


@pytest.mark.parametrize("param, n_top, sizes, axis", [
    ("slice_point: 1 slice_point: 4", 3, (1, 3, 2), 1),
    ("", 3, (2, 2, 2), 1),
    ("axis: -1", 2, (2, 2), 3),
    ("axis: 0 slice_point: 1", 2, (1, 1), 0),
    ("slice_dim: 2 slice_point: 2", 2, (2, 1), 2),
    ("axis: 2 slice_point: 1 slice_point: 3", 3, (1, 2, 0), 2)])  # empty last piece
def test_shapes(param, n_top, sizes, axis):
    _, _, top = setup_layer(slice_text(param), [X], n_top=n_top)
    for blob, size in zip(top, sizes):
        expected = list(X.shape)
        expected[axis] = size
        assert blob.shape == tuple(expected)


@pytest.mark.parametrize("param, n_top, axis, points", [
    ("slice_point: 1 slice_point: 4", 3, 1, (1, 4)), ("", 3, 1, (2, 4)),
    ("axis: -1 slice_point: 3", 2, 3, (3,)), ("slice_dim: 0", 2, 0, (1,))])
def test_forward_matches_loops(param, n_top, axis, points):
    _, _, top = setup_layer(slice_text(param), [X], n_top=n_top)
    starts = (0,) + points
    for blob, start in zip(top, starts):
        for index in np.ndindex(blob.shape):
            source = list(index)
            source[axis] += start
            assert blob.data[index] == X[tuple(source)]


def test_backward_places_every_top_diff():
    layer, bottom, top = setup_layer(slice_text("slice_point: 2"), [X], n_top=2)
    top[0].diff[...] = 1.0
    top[1].diff[...] = 2.0
    layer.Backward(top, [True], bottom)
    assert (bottom[0].diff[:, :2] == 1.0).all()
    assert (bottom[0].diff[:, 2:] == 2.0).all()
    bottom[0].diff[...] = 5
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 5).all()


@pytest.mark.parametrize("param, n_top", [
    ("slice_point: 1 slice_point: 4", 3), ("axis: 2", 3), ("axis: 0", 2)])
def test_gradients(param, n_top):
    x = np.random.default_rng(1).standard_normal((2, 6, 3))
    layer, bottom, top = setup_layer(slice_text(param), [x], n_top=n_top)
    check_gradients(layer, bottom, top)


def test_one_top_shares_data_and_diff():
    layer, bottom, top = setup_layer(slice_text(), [X], n_top=1)
    assert np.shares_memory(top[0].data, bottom[0].data)
    assert np.shares_memory(top[0].diff, bottom[0].diff)
    check_gradients(layer, bottom, top)


def test_axis_and_slice_dim_together():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(slice_text("axis: 1 slice_dim: 1"), [X], n_top=2)
    check_error(info, "slice_param.axis", "'axis 1 and slice_dim 1'")


def test_slice_point_count_must_be_one_less_than_the_tops():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(slice_text("slice_point: 1 slice_point: 2"), [X], n_top=2)
    check_error(info, "slice_param.slice_point", "(1, 2)")


@pytest.mark.parametrize("points", [(0, 2), (3, 3), (4, 2), (2, 7)])
def test_slice_points_must_increase_within_the_axis(points):
    param = " ".join(f"slice_point: {p}" for p in points)
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(slice_text(param), [X], n_top=3)
    check_error(info, "slice_param.slice_point", str(points))


def test_more_tops_than_the_axis_size():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(slice_text("axis: 0 slice_point: 1 slice_point: 2"), [X],
                    n_top=3)
    check_error(info, "slice_param.slice_point", "(1, 2)")


def test_equal_split_must_divide_the_axis():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(slice_text("axis: 2"), [X], n_top=2)
    check_error(info, "top", "'2 tops'")


def test_slice_dim_out_of_range():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(slice_text("slice_dim: 4"), [X], n_top=2)
    check_error(info, "slice_param.slice_dim", "4")


def test_axis_out_of_range():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(slice_text("axis: -5"), [X], n_top=2)
    check_error(info, "slice_param.axis", "-5")


def test_not_in_place_with_several_tops():
    layer = make_layer(slice_text())
    bottom = blobs_from([X])
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(bottom, [bottom[0]] + empty_blobs(1))
    check_error(info, "top", "'a, b'")
