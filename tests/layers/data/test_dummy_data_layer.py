"""DummyData: shapes (new and legacy), constant vs refilled random fillers."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError
from kaffe.core.random import set_random_seed
from kaffe.testing.gradient import check_layer_error, empty_blobs, make_layer

check_error = partial(check_layer_error, layer="dummy")


def dummy(param, n_top=1):
    layer = make_layer(f'name: "dummy" type: "DummyData" '
                       f"dummy_data_param {{ {param} }}")
    top = empty_blobs(n_top)
    layer.SetUp([], top)
    return layer, top


@pytest.mark.parametrize("param, n_top, shapes", [
    ("shape { dim: 2 dim: 3 }", 2, [(2, 3), (2, 3)]),
    ("shape { dim: 2 } shape { dim: 4 dim: 1 dim: 5 }", 2, [(2,), (4, 1, 5)]),
    ("num: 5 channels: 3 height: 2 width: 4", 1, [(5, 3, 2, 4)]),
    ("num: 5 num: 6 channels: 3 height: 2 width: 4 width: 1", 2,
     [(5, 3, 2, 4), (6, 3, 2, 1)])])
def test_shapes(param, n_top, shapes):
    _, top = dummy(param, n_top)
    assert [t.shape for t in top] == shapes


def test_default_filler_is_zero():
    _, top = dummy("shape { dim: 2 dim: 3 }")
    assert not top[0].data.any()


def test_constant_filler_fills_once():
    layer, top = dummy("shape { dim: 3 } data_filler { value: 7 }")
    np.testing.assert_array_equal(top[0].data, [7, 7, 7])
    top[0].data[...] = 1  # a constant top is never refilled
    layer.Forward([], top)
    np.testing.assert_array_equal(top[0].data, [1, 1, 1])


def test_random_filler_refills_every_forward():
    set_random_seed(5)
    layer, top = dummy(
        'shape { dim: 100 } data_filler { type: "uniform" min: 2 max: 3 }')
    layer.Forward([], top)
    first = top[0].data.copy()
    for value in first:
        assert 2 <= value <= 3
    layer.Forward([], top)
    assert (top[0].data != first).any()
    # The seed makes the sequence repeatable.
    set_random_seed(5)
    again, top2 = dummy(
        'shape { dim: 100 } data_filler { type: "uniform" min: 2 max: 3 }')
    again.Forward([], top2)
    np.testing.assert_array_equal(top2[0].data, first)


def test_one_filler_per_top():
    layer, top = dummy('shape { dim: 50 } data_filler { value: 3 } '
                       'data_filler { type: "gaussian" std: 1 }', n_top=2)
    layer.Forward([], top)
    np.testing.assert_array_equal(top[0].data, np.full(50, 3.0))
    first = top[1].data.copy()
    layer.Forward([], top)
    assert (top[1].data != first).any()
    np.testing.assert_array_equal(top[0].data, np.full(50, 3.0))


def test_three_tops_constant_gaussian_constant():
    """Caffe's DummyDataLayerTest.TestThreeTopConstantGaussianConstant: the
    constant tops are filled at setup, the Gaussian one only at each
    forward, and setting up draws no random numbers."""
    param = ("num: 5 channels: 3 height: 2 width: 4 "
             "data_filler { type: 'constant' value: 7 } "
             "data_filler { type: 'gaussian' } "
             "data_filler { type: 'constant' value: 9 }")
    set_random_seed(11)
    expected_first_draw = np.random.default_rng(11).standard_normal(120)
    layer, top = dummy(param, n_top=3)
    np.testing.assert_array_equal(top[0].data, np.full((5, 3, 2, 4), 7.0))
    np.testing.assert_array_equal(top[1].data, np.zeros((5, 3, 2, 4)))
    np.testing.assert_array_equal(top[2].data, np.full((5, 3, 2, 4), 9.0))
    layer.Forward([], top)
    # The forward's draws are the seed's first: setup drew nothing.
    np.testing.assert_allclose(top[1].data.ravel(), expected_first_draw)
    np.testing.assert_array_equal(top[0].data, np.full((5, 3, 2, 4), 7.0))
    np.testing.assert_array_equal(top[2].data, np.full((5, 3, 2, 4), 9.0))
    first = top[1].data.copy()
    layer.Forward([], top)
    assert (top[1].data != first).all()
    np.testing.assert_array_equal(top[2].data, np.full((5, 3, 2, 4), 9.0))


def test_an_unknown_random_filler_is_refused_at_setup():
    with pytest.raises(KaffeConfigError) as info:
        dummy('shape { dim: 2 } data_filler { value: 1 } '
              'data_filler { type: "gausian" }', n_top=2)
    check_error(info, "dummy_data_param.data_filler.type", "'gausian'")


def test_backward_does_nothing():
    layer, top = dummy("shape { dim: 2 }")
    layer.Backward(top, [], [])


def test_filler_count():
    with pytest.raises(KaffeConfigError) as info:
        dummy("shape { dim: 2 } data_filler {} data_filler {}", n_top=3)
    check_error(info, "dummy_data_param.data_filler", "'2 fillers'")


def test_shape_count():
    with pytest.raises(KaffeConfigError) as info:
        dummy("shape { dim: 2 } shape { dim: 3 }", n_top=3)
    check_error(info, "dummy_data_param.shape", "'2 shapes'")


def test_shape_with_legacy_fields():
    with pytest.raises(KaffeConfigError) as info:
        dummy("shape { dim: 2 } num: 1 width: 1")
    check_error(info, "dummy_data_param.shape", "'shape and num, width'")


@pytest.mark.parametrize("name", ["num", "channels", "height", "width"])
def test_legacy_field_count(name):
    values = {"num": 1, "channels": 1, "height": 1, "width": 1}
    param = " ".join(f"{k}: {v}" for k, v in values.items() if k != name)
    param += f" {name}: 2 {name}: 3"
    with pytest.raises(KaffeConfigError) as info:
        dummy(param, n_top=3)
    check_error(info, f"dummy_data_param.{name}", "'2 values'")


def test_unknown_filler():
    with pytest.raises(KaffeConfigError) as info:
        dummy('shape { dim: 2 } data_filler { type: "nope" }')
    check_error(info, "dummy_data_param.data_filler.type", "'nope'")
