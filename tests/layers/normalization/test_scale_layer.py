"""Scale: broadcasting rules, learned or bottom[1] factors, the bias term,
gradients, the accumulation quirk, in place, stored blobs, errors."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.core.registry import create_layer
from kaffe.testing.gradient import (blobs_from, check_backward_overwrites,
                                    check_gradients, check_layer_error,
                                    empty_blobs, layer_param, make_layer,
                                    setup_in_place, setup_layer)

check_error = partial(check_layer_error, layer="scale")
RANDOM = 'filler { type: "gaussian" } bias_filler { type: "gaussian" }'


def scale(param=""):
    return f'name: "scale" type: "Scale" top: "scale" scale_param {{ {param} }}'


def reference(x, s, axis, b=None):
    """y[i] = x[i]·s[i[axis : axis + s.ndim]] (+ b[same]), by loops."""
    axis = 0 if s.ndim == 0 else axis % x.ndim
    y = np.empty_like(x)
    for index in np.ndindex(x.shape):
        j = index[axis:axis + s.ndim]
        y[index] = x[index] * s[j] + (b[j] if b is not None else 0.0)
    return y


X = np.random.default_rng(0).standard_normal((2, 3, 4, 2))


@pytest.mark.parametrize("param, blob_shape", [
    ("", (3,)), ("axis: 0 num_axes: -1", (2, 3, 4, 2)), ("num_axes: 0", ()),
    ("axis: -2 num_axes: 2", (4, 2)), ("axis: 2 num_axes: -1", (4, 2)),
    ("axis: 1 num_axes: 2 bias_term: true", (3, 4))])
def test_shapes_and_blobs(param, blob_shape):
    layer, _, top = setup_layer(scale(param), [X])
    assert top[0].shape == X.shape
    n_blobs = 2 if "bias_term" in param else 1
    assert [b.shape for b in layer.blobs] == [blob_shape] * n_blobs


def test_default_fillers_give_the_identity():
    layer, _, top = setup_layer(scale("bias_term: true"), [X])
    np.testing.assert_array_equal(layer.blobs[0].data, np.ones(3))
    np.testing.assert_array_equal(layer.blobs[1].data, np.zeros(3))
    np.testing.assert_array_equal(top[0].data, X)


@pytest.mark.parametrize("param, axis", [
    ("", 1), ("axis: 0 num_axes: -1", 0), ("num_axes: 0", 0),
    ("axis: -2 num_axes: 2", 2), ("axis: 1 num_axes: 2 bias_term: true", 1),
    ("axis: 3 bias_term: true", 3)])
def test_forward_with_a_learned_scale(param, axis):
    layer, _, top = setup_layer(scale(f"{param} {RANDOM}"), [X])
    s = layer.blobs[0].data
    b = layer.blobs[1].data if "bias_term" in param else None
    np.testing.assert_allclose(top[0].data, reference(X, s, axis, b),
                               rtol=1e-12)


@pytest.mark.parametrize("param, s_shape, axis", [
    ("axis: 0", (2, 3, 4, 2), 0), ("axis: 0", (2,), 0), ("", (3, 4), 1),
    ("axis: -1", (2,), 3), ("axis: 2", (4, 2), 2), ("", (), 0),
    # A scalar bottom[1] ignores the axis, even an out-of-range one.
    ("axis: 7", (), 0)])
def test_forward_with_a_scale_bottom(param, s_shape, axis):
    s = np.random.default_rng(1).standard_normal(s_shape)
    layer, _, top = setup_layer(scale(param), [X, s])
    assert layer.blobs == []
    np.testing.assert_allclose(top[0].data, reference(X, s, axis), rtol=1e-12)


def test_scale_bottom_with_a_bias_term():
    s = np.random.default_rng(2).standard_normal((3, 4))
    layer, _, top = setup_layer(scale(f"bias_term: true {RANDOM}"), [X, s])
    assert [b.shape for b in layer.blobs] == [(3, 4)]
    b = layer.blobs[0].data
    np.testing.assert_allclose(top[0].data, reference(X, s, 1, b), rtol=1e-12)


@pytest.mark.parametrize("param", [
    "", "axis: 0 num_axes: -1", "num_axes: 0", "axis: -2 num_axes: 2",
    "axis: 1 num_axes: 2 bias_term: true", "num_axes: 0 bias_term: true"])
def test_gradients_with_a_learned_scale(param):
    x = np.random.default_rng(3).standard_normal((2, 3, 2, 2))
    layer, bottom, top = setup_layer(scale(f"{param} {RANDOM}"), [x])
    check_gradients(layer, bottom, top)


@pytest.mark.parametrize("param, s_shape", [
    ("axis: 0", (2, 3, 2, 2)), ("", (3,)), ("axis: 2", (2, 2)), ("", ()),
    ("bias_term: true", (3, 2))])
def test_gradients_with_a_scale_bottom(param, s_shape):
    rng = np.random.default_rng(4)
    x, s = rng.standard_normal((2, 3, 2, 2)), rng.standard_normal(s_shape)
    layer, bottom, top = setup_layer(scale(f"{param} {RANDOM}"), [x, s])
    check_gradients(layer, bottom, top)


def test_gradients_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x, dy = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    layer, bottom, top = setup_layer(scale(f"bias_term: true {RANDOM}"), [x])
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    tx = torch.tensor(x, requires_grad=True)
    ts = torch.tensor(layer.blobs[0].data, requires_grad=True)
    tb = torch.tensor(layer.blobs[1].data, requires_grad=True)
    ty = tx * ts[None, :, None] + tb[None, :, None]
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(top[0].data, ty.detach().numpy(), rtol=1e-12)
    for ours, theirs in ((bottom[0], tx), (layer.blobs[0], ts),
                         (layer.blobs[1], tb)):
        np.testing.assert_allclose(ours.diff, theirs.grad.numpy(), rtol=1e-12)


def backward_twice(layer, bottom, top):
    top[0].diff[...] = np.random.default_rng(6).standard_normal(top[0].shape)
    for blob in layer.blobs:
        blob.diff[...] = 0
    layer.Backward(top, [True] * len(bottom), bottom)
    once = [blob.diff.copy() for blob in layer.blobs]
    layer.Backward(top, [True] * len(bottom), bottom)
    return once, [blob.diff.copy() for blob in layer.blobs]


@pytest.mark.parametrize("shape, param", [
    ((2, 3, 2), ""), ((2, 3), "axis: 1"), ((3, 4), "axis: 0 num_axes: 0")])
def test_scale_diff_accumulates(shape, param):
    x = np.random.default_rng(7).standard_normal(shape)
    layer, bottom, top = setup_layer(scale(f"{param} bias_term: true"), [x])
    once, twice = backward_twice(layer, bottom, top)
    for first, second in zip(once, twice):
        np.testing.assert_allclose(second, 2 * first)


@pytest.mark.parametrize("shape, param", [
    ((3, 2), "axis: 0"), ((3, 2), "axis: 0 num_axes: -1"), ((1,), "axis: 0")])
def test_scale_diff_is_overwritten_where_caffe_overwrites_it(shape, param):
    # Caffe quirk: nothing before the axis (outer = 1) and not a scalar
    # applied to several elements ⇒ the learned scale's diff is overwritten.
    # The bias diff still accumulates.
    x = np.random.default_rng(8).standard_normal(shape)
    layer, bottom, top = setup_layer(scale(f"{param} bias_term: true"), [x])
    once, twice = backward_twice(layer, bottom, top)
    np.testing.assert_allclose(twice[0], once[0])
    np.testing.assert_allclose(twice[1], 2 * once[1])


def test_scale_bottom_diff_is_overwritten():
    rng = np.random.default_rng(9)
    x, s = rng.standard_normal((2, 3, 2)), rng.standard_normal(3)
    layer, bottom, top = setup_layer(scale(), [x, s])
    top[0].diff[...] = rng.standard_normal(x.shape)
    layer.Backward(top, [True, True], bottom)
    first = bottom[1].diff.copy()
    layer.Backward(top, [True, True], bottom)
    np.testing.assert_array_equal(bottom[1].diff, first)
    # Loop reference: ds[c] = Σ_{n,h} dy[n, c, h]·x[n, c, h].
    for c in range(3):
        expected = sum(top[0].diff[n, c, h] * x[n, c, h]
                       for n in range(2) for h in range(2))
        assert first[c] == pytest.approx(expected)


def test_param_propagate_down_false_leaves_param_diffs():
    layer, bottom, top = setup_layer(scale("bias_term: true"), [X])
    for i, blob in enumerate(layer.blobs):
        blob.diff[...] = 7
        layer.set_param_propagate_down(i, False)
    top[0].diff[...] = 1
    layer.Backward(top, [True], bottom)
    assert all((blob.diff == 7).all() for blob in layer.blobs)


def test_bottom_diff_is_overwritten_and_respects_propagate_down():
    layer, bottom, top = setup_layer(scale(RANDOM), [X])
    top[0].diff[...] = 2.0
    check_backward_overwrites(layer, bottom, top)


@pytest.mark.parametrize("param", ["bias_term: true", "axis: 0 num_axes: -1"])
def test_in_place_with_a_learned_scale(param):
    x = np.random.default_rng(10).standard_normal((2, 3, 2))
    layer, bottom, top = setup_in_place(scale(f"{param} {RANDOM}"), [x])
    check_gradients(layer, bottom, top)


def test_in_place_with_a_scale_bottom():
    rng = np.random.default_rng(11)
    x, s = rng.standard_normal((2, 3, 2)), rng.standard_normal((3,))
    layer = make_layer(scale())
    bottom = blobs_from([x, s])
    top = [bottom[0]]
    layer.SetUp(bottom, top)
    check_gradients(layer, bottom, top)


def test_in_place_keeps_the_input_for_the_scale_gradient():
    x = np.random.default_rng(12).standard_normal((2, 3))
    layer, bottom, top = setup_in_place(scale(RANDOM), [x])
    layer.Forward(bottom, top)
    top[0].diff[...] = 1.0
    layer.blobs[0].diff[...] = 0
    layer.Backward(top, [True], bottom)
    np.testing.assert_allclose(layer.blobs[0].diff, x.sum(axis=0))


def in_place_float32(text, x, needs_backward):
    layer = make_layer(text, dtype=np.float32)
    layer.needs_backward = needs_backward
    bottom = blobs_from([x], np.float32)
    layer.SetUp(bottom, list(bottom))
    layer.Forward(bottom, bottom)
    return layer, bottom[0].data


@pytest.mark.parametrize("needs_backward", [True, False])
def test_float32_forward_multiplies_then_adds(needs_backward):
    # Caffe's two roundings: x·s, then + b; in place, as after BatchNorm.
    x = np.random.default_rng(13).standard_normal((2, 3, 4)).astype(np.float32)
    layer, y = in_place_float32(scale(f"bias_term: true {RANDOM}"), x,
                                needs_backward)
    s = layer.blobs[0].data.reshape(1, 3, 1)
    b = layer.blobs[1].data.reshape(1, 3, 1)
    np.testing.assert_array_equal(y.view(np.uint32),
                                  (x * s + b).view(np.uint32))


@pytest.mark.parametrize("needs_backward, scale_learns, keeps", [
    (True, True, True), (False, True, False),
    # lr_mult 0: the gradient of s, the only reader of the input, never runs.
    (True, False, False)])
def test_in_place_keeps_the_input_only_for_a_scale_gradient(
        needs_backward, scale_learns, keeps):
    layer = make_layer(scale(RANDOM), dtype=np.float32)
    layer.needs_backward = needs_backward
    layer.set_param_propagate_down(0, scale_learns)  # as a net does
    bottom = blobs_from([np.ones((2, 3))], np.float32)
    layer.SetUp(bottom, bottom)
    layer.Forward(bottom, bottom)
    assert (layer.saved_input is not None) == keeps


def test_in_place_with_a_frozen_scale_still_propagates():
    # No saved input, and backward needs none: dx = dy·s, db = Σ dy.
    x = np.random.default_rng(15).standard_normal((2, 3))
    layer, bottom, top = setup_in_place(scale(f"bias_term: true {RANDOM}"),
                                        [x])
    layer.set_param_propagate_down(0, False)
    layer.Forward(bottom, top)
    assert layer.saved_input is None
    dy = np.random.default_rng(16).standard_normal(x.shape)
    top[0].diff[...] = dy
    layer.blobs[0].diff[...] = 0
    layer.blobs[1].diff[...] = 0
    layer.Backward(top, [True], bottom)
    np.testing.assert_allclose(bottom[0].diff, dy * layer.blobs[0].data)
    np.testing.assert_allclose(layer.blobs[1].diff, dy.sum(axis=0))
    assert not layer.blobs[0].diff.any()


def stored(param, arrays):
    lp = layer_param(scale(param))
    for array in arrays:
        blob = lp.blobs.add()
        blob.shape.dim.extend(np.shape(array))
        blob.double_data.extend(np.ravel(array))
    return create_layer(lp, dtype=np.float64)


def test_stored_scale_and_bias():
    layer = stored("bias_term: true", [[2.0, 3.0], [10.0, 20.0]])
    bottom, top = blobs_from([np.ones((1, 2))]), empty_blobs(1)
    layer.SetUp(bottom, top)
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, [[12.0, 23.0]])


def test_one_stored_blob_with_a_bias_term_copies_it_into_the_bias():
    # Caffe quirk: the inner Bias layer is built from a copy of this layer's
    # parameter, stored blobs included, so it starts from the scale's values.
    layer = stored("bias_term: true", [[2.0, 3.0]])
    bottom, top = blobs_from([np.ones((1, 2))]), empty_blobs(1)
    layer.SetUp(bottom, top)
    np.testing.assert_array_equal(layer.blobs[1].data, [2.0, 3.0])
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, [[4.0, 6.0]])


def test_scale_bottom_with_a_stored_bias():
    layer = stored("bias_term: true", [[1.0, -1.0]])
    bottom, top = blobs_from([np.ones((1, 2)), [3.0, 4.0]]), empty_blobs(1)
    layer.SetUp(bottom, top)
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, [[4.0, 3.0]])


def test_num_axes_below_minus_one():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(scale("num_axes: -2"), [X])
    check_error(info, "scale_param.num_axes", "-2")


def test_num_axes_past_the_input():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(scale("axis: 2 num_axes: 3"), [X])
    check_error(info, "scale_param.num_axes", "3")


def test_axis_out_of_range():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(scale("axis: 4"), [X])
    check_error(info, "scale_param.axis", "4")


def test_scale_bottom_shape_must_match():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(scale(), [X, np.ones((4,))])
    check_error(info, "bottom[1]", "(4)")


def test_scale_bottom_past_the_input():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(scale("axis: 3"), [X, np.ones((2, 2))])
    check_error(info, "bottom[1]", "(2, 2)")


def test_scale_bottom_is_checked_before_shaping_the_bias():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(scale("axis: 3 bias_term: true"), [X, np.ones((2, 2))])
    check_error(info, "bottom[1]", "(2, 2)")


def test_learned_scale_must_keep_matching_the_input():
    layer, bottom, top = setup_layer(scale(), [X])
    bottom[0].reshape((2, 5))
    with pytest.raises(KaffeShapeError) as info:
        layer.Forward(bottom, top)
    check_error(info, "blobs[0]", "(3)")


def test_unknown_filler():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(scale('filler { type: "magic" }'), [X])
    check_error(info, "scale_param.filler.type", "'magic'")


def test_unknown_bias_filler():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(scale('bias_term: true bias_filler { type: "magic" }'), [X])
    check_error(info, "scale_param.bias_filler.type", "'magic'")


def test_blob_counts():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(scale(), [X, X, X])
    check_error(info, "bottom", "'3 bottom blob(s)'")
