"""Bias: broadcasting rules, learned or bottom[1] bias, gradients,
accumulation, in place, errors."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (blobs_from, check_backward_overwrites,
                                    check_gradients, check_layer_error,
                                    make_layer, setup_in_place, setup_layer)

check_error = partial(check_layer_error, layer="bias")
RANDOM = 'filler { type: "gaussian" }'


def bias(param=""):
    return f'name: "bias" type: "Bias" top: "bias" bias_param {{ {param} }}'


def reference(x, b, axis):
    """y[i] = x[i] + b[i[axis : axis + b.ndim]], by loops."""
    axis = 0 if b.ndim == 0 else axis % x.ndim
    y = np.empty_like(x)
    for index in np.ndindex(x.shape):
        y[index] = x[index] + b[index[axis:axis + b.ndim]]
    return y


X = np.random.default_rng(0).standard_normal((2, 3, 4, 2))


@pytest.mark.parametrize("param, blob_shape", [
    ("", (3,)), ("axis: 0 num_axes: -1", (2, 3, 4, 2)), ("num_axes: 0", ()),
    ("axis: -2 num_axes: 2", (4, 2))])
def test_shapes_and_blobs(param, blob_shape):
    layer, _, top = setup_layer(bias(param), [X])
    assert top[0].shape == X.shape
    assert [b.shape for b in layer.blobs] == [blob_shape]


def test_default_filler_is_zero():
    layer, _, top = setup_layer(bias(), [X])
    assert not layer.blobs[0].data.any()
    np.testing.assert_array_equal(top[0].data, X)


@pytest.mark.parametrize("param, axis", [
    ("", 1), ("axis: 0 num_axes: -1", 0), ("num_axes: 0", 0),
    ("axis: -2 num_axes: 2", 2)])
def test_forward_with_a_learned_bias(param, axis):
    layer, _, top = setup_layer(bias(f"{param} {RANDOM}"), [X])
    np.testing.assert_allclose(
        top[0].data, reference(X, layer.blobs[0].data, axis), rtol=1e-12)


@pytest.mark.parametrize("param, b_shape, axis", [
    ("axis: 0", (2, 3, 4, 2), 0), ("axis: 0", (2,), 0), ("", (3, 4), 1),
    ("axis: -1", (2,), 3), ("", (), 0), ("axis: 9", (), 0)])
def test_forward_with_a_bias_bottom(param, b_shape, axis):
    b = np.random.default_rng(1).standard_normal(b_shape)
    layer, _, top = setup_layer(bias(param), [X, b])
    assert layer.blobs == []
    np.testing.assert_allclose(top[0].data, reference(X, b, axis), rtol=1e-12)


@pytest.mark.parametrize("param", [
    "", "axis: 0 num_axes: -1", "num_axes: 0", "axis: 2 num_axes: 2"])
def test_gradients_with_a_learned_bias(param):
    x = np.random.default_rng(2).standard_normal((2, 3, 2, 2))
    layer, bottom, top = setup_layer(bias(f"{param} {RANDOM}"), [x])
    check_gradients(layer, bottom, top)


@pytest.mark.parametrize("param, b_shape", [
    ("axis: 0", (2, 3, 2, 2)), ("", (3,)), ("axis: 2", (2, 2)), ("", ())])
def test_gradients_with_a_bias_bottom(param, b_shape):
    rng = np.random.default_rng(3)
    x, b = rng.standard_normal((2, 3, 2, 2)), rng.standard_normal(b_shape)
    layer, bottom, top = setup_layer(bias(param), [x, b])
    check_gradients(layer, bottom, top)


def test_bias_diff_is_the_summed_top_diff_and_accumulates():
    layer, bottom, top = setup_layer(bias("axis: 0 num_axes: -1"), [X])
    top[0].diff[...] = np.random.default_rng(4).standard_normal(X.shape)
    layer.blobs[0].diff[...] = 0
    layer.Backward(top, [True], bottom)
    np.testing.assert_allclose(layer.blobs[0].diff, top[0].diff)
    layer.Backward(top, [True], bottom)
    np.testing.assert_allclose(layer.blobs[0].diff, 2 * top[0].diff)


def test_bias_bottom_diff_is_overwritten():
    rng = np.random.default_rng(5)
    layer, bottom, top = setup_layer(bias(), [X, rng.standard_normal(3)])
    top[0].diff[...] = rng.standard_normal(X.shape)
    for _ in range(2):
        layer.Backward(top, [True, True], bottom)
        for c in range(3):
            assert bottom[1].diff[c] == pytest.approx(top[0].diff[:, c].sum())


def test_param_propagate_down_false_leaves_the_param_diff():
    layer, bottom, top = setup_layer(bias(), [X])
    layer.blobs[0].diff[...] = 7
    layer.set_param_propagate_down(0, False)
    top[0].diff[...] = 1
    layer.Backward(top, [True], bottom)
    assert (layer.blobs[0].diff == 7).all()


def test_bottom_diff_is_overwritten_and_respects_propagate_down():
    layer, bottom, top = setup_layer(bias(RANDOM), [X])
    top[0].diff[...] = 2.0
    check_backward_overwrites(layer, bottom, top)


def test_in_place():
    x = np.random.default_rng(6).standard_normal((2, 3, 2))
    layer, bottom, top = setup_in_place(bias(RANDOM), [x])
    check_gradients(layer, bottom, top)
    rng = np.random.default_rng(7)
    layer = make_layer(bias())
    bottom = blobs_from([x, rng.standard_normal((3, 2))])
    top = [bottom[0]]
    layer.SetUp(bottom, top)
    check_gradients(layer, bottom, top)


def test_num_axes_below_minus_one():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(bias("num_axes: -3"), [X])
    check_error(info, "bias_param.num_axes", "-3")


def test_num_axes_past_the_input():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(bias("axis: -1 num_axes: 2"), [X])
    check_error(info, "bias_param.num_axes", "2")


def test_axis_out_of_range():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(bias("axis: -5"), [X])
    check_error(info, "bias_param.axis", "-5")


def test_bias_bottom_shape_must_match():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(bias("axis: 2"), [X, np.ones((4, 3))])
    check_error(info, "bottom[1]", "(4, 3)")


def test_learned_bias_must_keep_matching_the_input():
    layer, bottom, top = setup_layer(bias(), [X])
    bottom[0].reshape((2, 4, 2))
    with pytest.raises(KaffeShapeError) as info:
        layer.Forward(bottom, top)
    check_error(info, "blobs[0]", "(3)")


def test_unknown_filler():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(bias('filler { type: "magic" }'), [X])
    check_error(info, "bias_param.filler.type", "'magic'")
