"""Input: tops shaped by input_param.shape, values written by the user."""
import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError
from kaffe.testing.gradient import empty_blobs, make_layer


def input_layer(param, n_top=1):
    layer = make_layer(f'name: "data" type: "Input" input_param {{ {param} }}')
    top = empty_blobs(n_top)
    layer.SetUp([], top)
    return layer, top


@pytest.mark.parametrize("param, n_top, shapes", [
    ("shape { dim: 2 dim: 3 dim: 4 dim: 5 }", 1, [(2, 3, 4, 5)]),
    ("shape { dim: 10 dim: 3 }", 2, [(10, 3), (10, 3)]),
    ("shape { dim: 1 } shape { dim: 2 dim: 2 }", 2, [(1,), (2, 2)])])
def test_shapes(param, n_top, shapes):
    _, top = input_layer(param, n_top)
    assert [t.shape for t in top] == shapes


def test_no_shape_leaves_tops_alone():
    _, top = input_layer("", 2)
    assert [t.shape for t in top] == [(), ()]


def test_forward_keeps_what_the_user_wrote():
    layer, top = input_layer("shape { dim: 2 dim: 3 }")
    top[0].data[...] = np.arange(6.0).reshape(2, 3)
    layer.Forward([], top)
    np.testing.assert_array_equal(top[0].data, np.arange(6.0).reshape(2, 3))
    top[0].reshape((4, 3))  # the user may reshape an input; it stays so
    layer.Forward([], top)
    assert top[0].shape == (4, 3)
    layer.Backward(top, [], [])


def test_shape_count():
    with pytest.raises(KaffeConfigError) as info:
        input_layer("shape { dim: 1 } shape { dim: 2 }", n_top=3)
    message = str(info.value)
    assert info.value.field == "input_param.shape"
    assert "layer 'data'" in message and "input_param.shape" in message
    assert "received '2 shapes'" in message


def test_negative_dims():
    with pytest.raises(KaffeConfigError) as info:
        input_layer("shape { dim: 2 dim: -1 }")
    message = str(info.value)
    assert info.value.field == "input_param.shape"
    assert "layer 'data'" in message and "received (2, -1)" in message


def test_takes_no_bottoms():
    layer = make_layer('name: "data" type: "Input"')
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(empty_blobs(1), empty_blobs(1))
    assert info.value.field == "bottom"
    assert "received '1 bottom blob(s)'" in str(info.value)
