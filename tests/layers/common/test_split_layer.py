"""Split: tops share the bottom's data, backward sums the tops' diffs."""
import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError
from kaffe.testing.gradient import (blobs_from, check_gradients, empty_blobs,
                                    make_layer, setup_layer)

SPLIT = 'name: "split" type: "Split" top: "a" top: "b" top: "c"'


@pytest.mark.parametrize("shape, n_top", [((2, 3), 1), ((2, 3, 4), 3),
                                          ((5,), 2)])
def test_tops_have_bottom_shape(shape, n_top):
    _, _, top = setup_layer(SPLIT, [np.zeros(shape)], n_top=n_top)
    assert [t.shape for t in top] == [shape] * n_top


def test_tops_share_the_bottom_data():
    x = np.random.default_rng(0).standard_normal((2, 3))
    _, bottom, top = setup_layer(SPLIT, [x], n_top=3)
    bottom[0].data[0, 0] = 100.0
    for blob in top:
        np.testing.assert_array_equal(blob.data, bottom[0].data)
        assert np.shares_memory(blob.data, bottom[0].data)


def test_backward_sums_the_top_diffs():
    rng = np.random.default_rng(1)
    layer, bottom, top = setup_layer(SPLIT, [np.zeros((2, 3))], n_top=3)
    for blob in top:
        blob.diff[...] = rng.standard_normal((2, 3))
    bottom[0].diff[...] = 50.0  # overwritten, not accumulated
    layer.Backward(top, [True], bottom)
    for i in range(2):
        for j in range(3):
            expected = sum(blob.diff[i, j] for blob in top)
            assert bottom[0].diff[i, j] == pytest.approx(expected)


def test_propagate_down_false_leaves_diff():
    layer, bottom, top = setup_layer(SPLIT, [np.zeros((2,))], n_top=2)
    bottom[0].diff[...] = 3.0
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 3.0).all()


@pytest.mark.parametrize("n_top", [1, 3])
def test_gradients(n_top):
    x = np.random.default_rng(2).standard_normal((2, 3))
    layer, bottom, top = setup_layer(SPLIT, [x], n_top=n_top)
    check_gradients(layer, bottom, top)


def test_not_in_place():
    layer = make_layer(SPLIT)
    blob = blobs_from([np.zeros((2, 3))])[0]
    top = empty_blobs(2) + [blob]
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp([blob], top)
    message = str(info.value)
    assert info.value.field == "top"
    assert "layer 'split'" in message and "received 'c'" in message


def test_needs_a_top():
    layer = make_layer(SPLIT)
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([np.zeros(2)]), [])
    assert info.value.field == "top"
    assert "received '0 top blob(s)'" in str(info.value)
