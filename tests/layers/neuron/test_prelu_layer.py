"""PReLU: slopes per channel or shared, loop reference, gradients (also in
place), slope-diff accumulation, errors, torch."""
import logging
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.core.random import set_random_seed
from kaffe.core.registry import create_layer
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, empty_blobs,
                                    layer_param, make_layer, setup_in_place,
                                    setup_layer)

check_error = partial(check_layer_error, layer="prelu")
GAUSS = 'filler { type: "gaussian" std: 0.5 }'


def prelu_text(shared=False, filler=GAUSS):
    return (f'name: "prelu" type: "PReLU" prelu_param {{ '
            f'channel_shared: {str(shared).lower()} {filler} }}')


def reference(x, slopes, shared):
    out = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        a = slopes.reshape(-1)[0 if shared else index[1]]
        out[index] = max(x[index], 0.0) + a * min(x[index], 0.0)
    return out


@pytest.mark.parametrize("shape, shared, slope_shape", [
    ((2, 3), False, (3,)), ((2, 3, 4, 5), False, (3,)),
    ((2, 4, 5), True, ()), ((3, 2, 2, 2), True, ())])
def test_shapes(shape, shared, slope_shape):
    layer, _, top = setup_layer(prelu_text(shared), [np.zeros(shape)])
    assert top[0].shape == shape
    assert layer.blobs[0].shape == slope_shape


@pytest.mark.parametrize("shared", [False, True])
def test_default_filler_is_a_quarter(shared):
    layer, _, _ = setup_layer(prelu_text(shared, filler=""),
                              [np.zeros((2, 3, 4))])
    np.testing.assert_array_equal(layer.blobs[0].data,
                                  np.full(layer.blobs[0].shape, 0.25))


@pytest.mark.parametrize("shape, shared", [((2, 3, 4, 5), False),
                                           ((2, 3, 4, 5), True),
                                           ((4, 6), False), ((2, 3, 7), False)])
def test_forward_matches_loops(shape, shared):
    set_random_seed(1)
    x = np.random.default_rng(0).standard_normal(shape)
    layer, _, top = setup_layer(prelu_text(shared), [x])
    np.testing.assert_array_equal(
        top[0].data, reference(x, layer.blobs[0].data, shared))


def test_default_slopes_match_leaky_relu():
    # Caffe's TestPReLUConsistencyReLU: slope 0.25 = ReLU negative_slope 0.25.
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    dy = np.random.default_rng(2).standard_normal((2, 3, 4))
    results = []
    for text in (prelu_text(filler=""),
                 'name: "relu" type: "ReLU" relu_param { negative_slope: 0.25 }'):
        layer, bottom, top = setup_layer(text, [x])
        top[0].diff[...] = dy
        layer.Backward(top, [True], bottom)
        results.append((top[0].data.copy(), bottom[0].diff.copy()))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape, shared", [((2, 3, 3, 2), False),
                                           ((2, 3, 3, 2), True), ((3, 4), False)])
def test_gradients(shape, shared):
    set_random_seed(2)
    x = np.random.default_rng(3).standard_normal(shape)
    layer, bottom, top = setup_layer(prelu_text(shared), [x])
    check_gradients(layer, bottom, top, kink=(0, 1e-3))


@pytest.mark.parametrize("shared", [False, True])
def test_in_place_gradients(shared):
    set_random_seed(4)
    x = np.random.default_rng(5).standard_normal((2, 3, 4))
    layer, bottom, top = setup_in_place(prelu_text(shared), [x])
    check_gradients(layer, bottom, top, kink=(0, 1e-3))


def test_in_place_matches_separate_blobs():
    # Caffe's TestPReLUInPlace: the layer keeps a copy of its input.
    x = np.random.default_rng(6).standard_normal((2, 3, 4))
    dy = np.random.default_rng(7).standard_normal((2, 3, 4))
    set_random_seed(8)
    separate, bottom, top = setup_layer(prelu_text(), [x])
    set_random_seed(8)
    in_place, blobs, _ = setup_in_place(prelu_text(), [x])
    in_place.Forward(blobs, blobs)
    np.testing.assert_array_equal(blobs[0].data, top[0].data)
    for layer, t, b in ((separate, top, bottom), (in_place, blobs, blobs)):
        layer.blobs[0].diff[...] = 0
        t[0].diff[...] = dy
        layer.Backward(t, [True], b)
    np.testing.assert_array_equal(blobs[0].diff, bottom[0].diff)
    np.testing.assert_array_equal(in_place.blobs[0].diff,
                                  separate.blobs[0].diff)


@pytest.mark.parametrize("shared", [False, True])
def test_slope_diff_accumulates_and_bottom_diff_is_overwritten(shared):
    set_random_seed(9)
    x = np.random.default_rng(10).standard_normal((2, 3, 5))
    layer, bottom, top = setup_layer(prelu_text(shared), [x])
    dy = np.random.default_rng(11).standard_normal((2, 3, 5))
    top[0].diff[...] = dy
    layer.blobs[0].diff[...] = 0
    layer.Backward(top, [True], bottom)
    once = layer.blobs[0].diff.copy()
    first_bottom = bottom[0].diff.copy()
    layer.Backward(top, [True], bottom)
    np.testing.assert_allclose(layer.blobs[0].diff, 2 * once, rtol=1e-15)
    np.testing.assert_array_equal(bottom[0].diff, first_bottom)
    # Loop reference: da_c = Σ over channel c of dy · x · (x ≤ 0).
    expected = np.zeros(3)
    for index in np.ndindex(*x.shape):
        if x[index] <= 0:
            expected[0 if shared else index[1]] += dy[index] * x[index]
    np.testing.assert_allclose(once, expected.sum() if shared else expected,
                               rtol=1e-13)


def test_param_propagate_down_false_leaves_the_slope_diff():
    layer, bottom, top = setup_layer(prelu_text(),
                                     [-np.ones((2, 3, 4))])
    layer.blobs[0].diff[...] = 7
    layer.set_param_propagate_down(0, False)
    top[0].diff[...] = 1
    layer.Backward(top, [True], bottom)
    assert (layer.blobs[0].diff == 7).all()
    bottom[0].diff[...] = 5
    layer.set_param_propagate_down(0, True)
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 5).all() and (layer.blobs[0].diff != 7).all()


def test_slopes_from_the_layer_parameter_are_kept(caplog):
    param = layer_param(prelu_text())
    blob = param.blobs.add()
    blob.shape.dim.append(3)
    blob.double_data.extend([0.5, -1.0, 2.0])
    layer = create_layer(param, dtype=np.float64)
    bottom, top = blobs_from([-np.ones((1, 3, 2))]), empty_blobs(1)
    with caplog.at_level(logging.INFO, logger="kaffe"):
        layer.SetUp(bottom, top)
    assert "Skipping parameter initialization" in caplog.text
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data[0, :, 0], [-0.5, 1.0, -2.0])


@pytest.mark.parametrize("shared, count, received", [
    (False, 2, "'2 slope(s) of shape (2,)'"),
    (True, 3, "'3 slope(s) of shape (3,)'")])
def test_saved_slopes_must_fit_the_configuration(shared, count, received):
    param = layer_param(prelu_text(shared))
    blob = param.blobs.add()
    blob.shape.dim.append(count)
    blob.double_data.extend([0.1] * count)
    layer = create_layer(param, dtype=np.float64)
    with pytest.raises(KaffeShapeError) as info:
        layer.SetUp(blobs_from([np.ones((2, 3, 4))]), empty_blobs(1))
    check_error(info, "blobs[0]", received)


@pytest.mark.parametrize("shape, received", [((5,), "'shape (5,)'"),
                                             ((1, 2, 3, 4, 5),
                                              "'shape (1, 2, 3, 4, 5)'")])
def test_input_needs_two_to_four_axes(shape, received):
    layer = make_layer(prelu_text())
    with pytest.raises(KaffeShapeError) as info:
        layer.SetUp(blobs_from([np.ones(shape)]), empty_blobs(1))
    check_error(info, "bottom[0]", received)


def test_channels_must_not_change():
    layer, bottom, top = setup_layer(prelu_text(), [np.ones((2, 3, 4))])
    bottom[0].reshape(2, 4, 4)
    with pytest.raises(KaffeShapeError) as info:
        layer.Forward(bottom, top)
    check_error(info, "bottom[0]", "'4 channels, shape (2, 4, 4)'")
    shared, bottom, top = setup_layer(prelu_text(True), [np.ones((2, 3, 4))])
    bottom[0].reshape(2, 4, 4)
    shared.Forward(bottom, top)  # one slope fits any channel count


def test_unknown_filler_type():
    layer = make_layer(prelu_text(filler='filler { type: "nope" }'))
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([np.ones((2, 3))]), empty_blobs(1))
    check_error(info, "prelu_param.filler.type", "'nope'")


@pytest.mark.parametrize("shared", [False, True])
def test_matches_torch_prelu(shared):
    torch = pytest.importorskip("torch")
    set_random_seed(12)
    x = np.random.default_rng(13).standard_normal((2, 3, 4, 2))
    layer, bottom, top = setup_layer(prelu_text(shared), [x])
    dy = np.random.default_rng(14).standard_normal(x.shape)
    top[0].diff[...] = dy
    layer.blobs[0].diff[...] = 0
    layer.Backward(top, [True], bottom)
    xt = torch.tensor(x, requires_grad=True)
    at = torch.tensor(layer.blobs[0].data.reshape(-1), requires_grad=True)
    yt = torch.nn.functional.prelu(xt, at)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(top[0].data, yt.detach().numpy(), rtol=1e-14)
    np.testing.assert_allclose(bottom[0].diff, xt.grad.numpy(), rtol=1e-14)
    np.testing.assert_allclose(layer.blobs[0].diff.reshape(-1),
                               at.grad.numpy(), rtol=1e-12)
