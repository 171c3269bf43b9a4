"""BN (SegNet fork): LEARN and INFERENCE against a NumPy reference written
from bn_layer.cpp, the statistics tops, gradients, blob layout."""
import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, empty_blobs,
                                    make_layer, setup_in_place, setup_layer)

FILLERS = ('scale_filler { type: "gaussian" std: 1 } '
           'shift_filler { type: "gaussian" std: 1 }')


def text(mode="LEARN"):
    return f'name: "bn" type: "BN" bn_param {{ bn_mode: {mode} {FILLERS} }}'


def reference(x, scale, shift, learn):
    """The fork's arithmetic: E over (H, W) then over N; var = E[x²] − E[x]²;
    (x − μ) / sqrt(var + 1e-9) · scale + shift."""
    if not learn:
        return x * scale + shift, None, None
    n, _, h, w = x.shape
    mean = x.sum(axis=(2, 3), keepdims=True) / (h * w)
    mean = mean.sum(axis=0, keepdims=True) / n
    square = (x * x).sum(axis=(2, 3), keepdims=True) / (h * w)
    square = square.sum(axis=0, keepdims=True) / n
    variance = square - mean * mean
    return ((x - mean) / np.sqrt(variance + 1e-9)) * scale + shift, mean, \
        variance


@pytest.mark.parametrize("mode", ["LEARN", "INFERENCE"])
def test_forward_and_gradients(mode):
    x = np.random.default_rng(0).standard_normal((3, 2, 4, 5)) * 3 + 1
    n_top = 3 if mode == "LEARN" else 1
    layer, bottom, top = setup_layer(text(mode), [x], n_top=n_top)
    scale, shift = (b.data for b in layer.blobs)
    assert scale.shape == shift.shape == (1, 2, 1, 1)
    y, mean, variance = reference(x, scale, shift, mode == "LEARN")
    np.testing.assert_allclose(top[0].data, y, rtol=1e-10, atol=1e-10)
    if mode == "LEARN":
        np.testing.assert_allclose(top[1].data, mean, rtol=1e-12)
        np.testing.assert_allclose(top[2].data, variance, rtol=1e-10)
    check_gradients(layer, bottom, top, check_top=[0])


def test_in_place_inference_gradients():
    x = np.random.default_rng(1).standard_normal((2, 2, 3, 3))
    layer, bottom, top = setup_in_place(text("INFERENCE"), [x])
    check_gradients(layer, bottom, top)


def test_statistic_tops_need_learn_mode():
    layer = make_layer(text("INFERENCE"))
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([np.zeros((1, 2, 2, 2))]), empty_blobs(2))
    assert info.value.field == "top"


def test_loaded_blobs_must_match_the_channels():
    layer = make_layer(text())
    layer.blobs = blobs_from([np.ones((1, 3, 1, 1)), np.zeros((1, 3, 1, 1))])
    with pytest.raises(KaffeShapeError) as info:
        layer.SetUp(blobs_from([np.zeros((1, 2, 2, 2))]), empty_blobs(1))
    check_layer_error(info, "blobs[0]", "(1, 3, 1, 1)", layer="bn")


# -- PSPNet's BN: the same type and message, four blobs ----------------------
PSP = ('name: "bn" type: "BN" bn_param { slope_filler { type: "gaussian" '
       'std: 1 } bias_filler { type: "gaussian" std: 1 } momentum: 0.75 }')


def test_pspnet_test_phase_uses_the_running_statistics():
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 4)) * 2
    layer = make_layer(PSP)
    bottom, top = blobs_from([x]), empty_blobs(1)
    layer.SetUp(bottom, top)
    assert [b.shape for b in layer.blobs] == [(1, 3, 1, 1)] * 4
    mean, var = np.array([0.5, -1.0, 2.0]), np.array([1.5, 0.25, 4.0])
    layer.blobs[2].data[...] = mean.reshape(1, 3, 1, 1)
    layer.blobs[3].data[...] = var.reshape(1, 3, 1, 1)
    layer.Forward(bottom, top)
    scale, shift = (b.data for b in layer.blobs[:2])
    expected = (scale * (x - mean.reshape(1, 3, 1, 1))
                / np.sqrt(var.reshape(1, 3, 1, 1) + 1e-5) + shift)
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-10)
    # the statistics are not learned: lr_mult 0, and no gradient asked
    assert [p.lr_mult for p in layer.layer_param.param][2:] == [0, 0]
    check_gradients(layer, bottom, top, check_params=False)
    layer.blobs[0].diff[...] = 0
    top[0].diff[...] = 1
    layer.Backward(top, [True], bottom)
    np.testing.assert_allclose(
        layer.blobs[0].diff.ravel(),
        ((x - mean.reshape(1, 3, 1, 1)) / np.sqrt(var.reshape(1, 3, 1, 1)
                                                   + 1e-5)).sum(axis=(0, 2, 3)))


def test_pspnet_train_phase_uses_and_records_batch_statistics():
    from kaffe.proto import caffe_pb2
    x = np.random.default_rng(4).standard_normal((3, 2, 3, 5)) + 1
    layer, bottom, top = setup_layer(PSP, [x], phase=caffe_pb2.TRAIN)
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(0, 2, 3), keepdims=True)
    scale, shift = (b.data for b in layer.blobs[:2])
    np.testing.assert_allclose(
        top[0].data, scale * (x - mean) / np.sqrt(var + 1e-5) + shift,
        rtol=1e-10)
    # the running statistics start at 0: one forward gives (1 − momentum) ·
    # batch
    np.testing.assert_allclose(layer.blobs[2].data, 0.25 * mean, rtol=1e-12)
    np.testing.assert_allclose(layer.blobs[3].data, 0.25 * var, rtol=1e-12)
    check_gradients(layer, bottom, top, check_params=True)


def test_four_given_blobs_select_pspnet():
    layer = make_layer('name: "bn" type: "BN"')
    layer.blobs = blobs_from([np.ones((1, 2, 1, 1)), np.zeros((1, 2, 1, 1)),
                              np.zeros((1, 2, 1, 1)), np.ones((1, 2, 1, 1))])
    layer.SetUp(blobs_from([np.zeros((1, 2, 2, 2))]), empty_blobs(1))
    assert layer.pspnet


def test_mixing_the_two_forks_fields_is_refused():
    layer = make_layer('name: "bn" type: "BN" bn_param { bn_mode: INFERENCE '
                       'frozen: true }')
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([np.zeros((1, 2, 2, 2))]), empty_blobs(1))
    check_layer_error(info, "bn_param.bn_mode", "'INFERENCE'", layer="bn")


def test_pspnet_frozen_uses_the_running_statistics_and_learns_nothing():
    from kaffe.proto import caffe_pb2
    text = PSP.replace("momentum: 0.75", "frozen: true")
    x = np.random.default_rng(5).standard_normal((2, 2, 3, 3))
    layer, bottom, top = setup_layer(text, [x], phase=caffe_pb2.TRAIN)
    # frozen: the running variance starts at 1, the mean at 0
    scale, shift = (b.data for b in layer.blobs[:2])
    np.testing.assert_allclose(top[0].data,
                               scale * x / np.sqrt(1 + 1e-5) + shift)
    assert [p.lr_mult for p in layer.layer_param.param] == [0, 0, 0, 0]
    check_gradients(layer, bottom, top, check_params=False)
