"""Normalize (SSD fork): loop reference for the four across_spatial /
channel_shared settings, float64 gradients (also in place), scale-diff
accumulation, default scale, errors."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.blob import Blob
from kaffe.core.errors import KaffeShapeError
from kaffe.core.random import set_random_seed
from kaffe.testing.gradient import (check_gradients, check_layer_error,
                                    setup_in_place, setup_layer)

check_error = partial(check_layer_error, layer="norm")
GAUSS = 'scale_filler { type: "gaussian" std: 1 mean: 2 }'


def norm_text(across, shared, extra=GAUSS):
    return (f'name: "norm" type: "Normalize" norm_param {{ across_spatial: '
            f'{str(across).lower()} channel_shared: {str(shared).lower()} '
            f'{extra} }}')


def reference(x, scale, across, eps=1e-10):
    n, c, h, w = x.shape
    out = np.empty_like(x)
    scale = np.broadcast_to(np.asarray(scale).reshape(-1), (c,))
    for i in range(n):
        if across:
            norm = np.sqrt(sum(v * v for v in x[i].ravel()) + eps)
        for y in range(h):
            for z in range(w):
                if not across:
                    norm = np.sqrt(sum(x[i, k, y, z] ** 2 for k in range(c))
                                   + eps)
                for k in range(c):
                    out[i, k, y, z] = scale[k] * x[i, k, y, z] / norm
    return out


SETTINGS = [(True, True), (True, False), (False, True), (False, False)]


@pytest.mark.parametrize("across, shared", SETTINGS)
def test_forward_matches_loops(across, shared):
    set_random_seed(2)
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    layer, _, top = setup_layer(norm_text(across, shared), [x])
    assert layer.blobs[0].shape == (() if shared else (3,))
    np.testing.assert_allclose(
        top[0].data, reference(x, layer.blobs[0].data, across), rtol=1e-12)


def test_default_scale_is_one_and_eps_is_the_forks():
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 3))
    layer, _, top = setup_layer(norm_text(False, False, extra=""), [x])
    assert (layer.blobs[0].data == 1).all()
    assert layer.eps == pytest.approx(1e-10)
    np.testing.assert_allclose(top[0].data, reference(x, 1.0, False))


@pytest.mark.parametrize("across, shared", SETTINGS)
def test_gradients(across, shared):
    set_random_seed(3)
    x = np.random.default_rng(4).standard_normal((2, 3, 2, 3))
    layer, bottom, top = setup_layer(norm_text(across, shared), [x])
    check_gradients(layer, bottom, top)


def test_in_place_gradients():
    set_random_seed(5)
    x = np.random.default_rng(6).standard_normal((2, 3, 2, 2))
    layer, bottom, top = setup_in_place(norm_text(False, False), [x])
    check_gradients(layer, bottom, top)


def test_scale_diff_accumulates():
    set_random_seed(7)
    x = np.random.default_rng(8).standard_normal((2, 3, 2, 2))
    layer, bottom, top = setup_layer(norm_text(False, False), [x])
    top[0].diff[...] = 1
    layer.Backward(top, [False], bottom)
    once = layer.blobs[0].diff.copy()
    layer.Backward(top, [False], bottom)
    np.testing.assert_allclose(layer.blobs[0].diff, 2 * once)


def test_saved_scales_must_match_the_channels():
    layer, _, top = setup_layer(norm_text(False, False), [np.ones((1, 3, 2, 2))])
    with pytest.raises(KaffeShapeError) as info:
        layer.reshape([Blob((1, 4, 2, 2))], top)
    check_error(info, "bottom[0]", "'shape (1, 4, 2, 2)'")
