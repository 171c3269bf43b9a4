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
