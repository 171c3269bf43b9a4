"""Filter: shapes (Caffe's first-reshape rule), a loop reference, gradients,
errors."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, empty_blobs,
                                    make_layer, setup_layer)

check_error = partial(check_layer_error, layer="filter")

FILTER = 'name: "filter" type: "Filter"'


def inputs(selector=(0, 1, 1, 0)):
    rng = np.random.default_rng(0)
    n = len(selector)
    data = rng.standard_normal((n, 3, 2, 2))
    labels = rng.integers(0, 5, size=(n, 1, 1, 1)).astype(float)
    return [data, labels, np.array(selector, float).reshape(n, 1, 1, 1)]


def reference(blob, selector):
    """The items whose selector value is nonzero, in batch order."""
    return np.array([blob[n] for n in range(len(selector)) if selector[n]]
                    ).reshape((-1,) + blob.shape[1:])


def test_setup_gives_all_items_forward_the_selected():
    layer = make_layer(FILTER)
    bottom, top = blobs_from(inputs()), empty_blobs(2)
    layer.SetUp(bottom, top)
    assert top[0].shape == (4, 3, 2, 2) and top[1].shape == (4, 1, 1, 1)
    layer.Forward(bottom, top)
    assert top[0].shape == (2, 3, 2, 2) and top[1].shape == (2, 1, 1, 1)


@pytest.mark.parametrize("selector", [(0, 1, 1, 0), (1, 1, 1, 1),
                                      (3.5, 0, -1, np.nan), (0, 0, 0, 1)])
def test_forward_matches_loops(selector):
    arrays = inputs(selector)
    _, _, top = setup_layer(FILTER, arrays, n_top=2)
    flags = arrays[2].ravel()
    for blob, array in zip(top, arrays):
        np.testing.assert_array_equal(blob.data, reference(array, flags))


def test_two_dimensional_selector_and_inputs():
    x = np.arange(12.0).reshape(6, 2)
    _, _, top = setup_layer(FILTER, [x, [[1], [0], [0], [1], [1], [0]]])
    np.testing.assert_array_equal(top[0].data, x[[0, 3, 4]])


def test_nothing_selected_gives_empty_tops_and_zero_gradients():
    layer, bottom, top = setup_layer(FILTER, inputs((0, 0, 0, 0)), n_top=2)
    assert top[0].shape == (0, 3, 2, 2)
    bottom[0].diff[...] = 5
    layer.Backward(top, [True, False, False], bottom)
    assert not bottom[0].diff.any()


def test_gradients():
    layer, bottom, top = setup_layer(FILTER, inputs(), n_top=2)
    check_gradients(layer, bottom, top, check_bottom=[0, 1])


def test_backward_scatters_and_zeroes_the_rest():
    layer, bottom, top = setup_layer(FILTER, inputs(), n_top=2)
    top[0].diff[...] = np.arange(top[0].count).reshape(top[0].shape)
    bottom[0].diff[...] = 9
    bottom[1].diff[...] = 9
    layer.Backward(top, [True, False, False], bottom)
    np.testing.assert_array_equal(bottom[0].diff[[0, 3]], 0)
    np.testing.assert_array_equal(bottom[0].diff[[1, 2]], top[0].diff)
    assert (bottom[1].diff == 9).all()


def test_no_gradient_for_the_selector():
    layer, bottom, top = setup_layer(FILTER, inputs(), n_top=2)
    assert layer.allow_force_backward(0) and layer.allow_force_backward(1)
    assert not layer.allow_force_backward(2)
    with pytest.raises(KaffeConfigError) as info:
        layer.Backward(top, [True, False, True], bottom)
    check_error(info, "propagate_down", "'true for bottom[2]'")


def test_one_top_per_filtered_bottom():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(FILTER, inputs(), n_top=1)
    check_error(info, "top", "'1 tops for 3 bottoms'")


def test_selector_must_be_one_value_per_item():
    arrays = inputs()
    arrays[2] = np.ones((4, 2))
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(FILTER, arrays, n_top=2)
    check_error(info, "bottom[2]", "(4, 2)")


def test_items_must_match_the_selector():
    arrays = inputs()
    arrays[1] = np.ones((3, 1))
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(FILTER, arrays, n_top=2)
    check_error(info, "bottom[1]", "(3, 1)")
