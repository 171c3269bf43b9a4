"""Silence: any number of bottoms, no tops, zero gradient."""
import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError
from kaffe.testing.gradient import (blobs_from, check_gradients, empty_blobs,
                                    make_layer, setup_layer)

SILENCE = 'name: "quiet" type: "Silence"'


@pytest.mark.parametrize("shapes", [[(2, 3)], [(2,), (3, 4), (1, 1, 5)]])
def test_takes_any_bottoms_and_keeps_their_data(shapes):
    arrays = [np.full(shape, 4.0) for shape in shapes]
    _, bottom, top = setup_layer(SILENCE, arrays, n_top=0)
    assert top == []
    for blob, array in zip(bottom, arrays):
        np.testing.assert_array_equal(blob.data, array)


def test_backward_zeroes_the_diffs_asked_for():
    layer, bottom, top = setup_layer(SILENCE, [np.ones(3), np.ones(2)],
                                     n_top=0)
    for blob in bottom:
        blob.diff[...] = 7.0
    layer.Backward(top, [True, False], bottom)
    assert (bottom[0].diff == 0).all()
    assert (bottom[1].diff == 7.0).all()


def test_gradients_are_zero():
    layer, bottom, top = setup_layer(
        SILENCE, [np.random.default_rng(0).standard_normal((2, 3))], n_top=0)
    check_gradients(layer, bottom, top)


def test_needs_a_bottom():
    layer = make_layer(SILENCE)
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp([], [])
    assert info.value.field == "bottom"
    assert "layer 'quiet'" in str(info.value)
    assert "received '0 bottom blob(s)'" in str(info.value)


def test_has_no_tops():
    layer = make_layer(SILENCE)
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([np.ones(2)]), empty_blobs(1))
    assert info.value.field == "top"
    assert "received '1 top blob(s)'" in str(info.value)
