"""SPP: shapes, a loop reference per level, gradients, errors."""
import math
from functools import partial

import numpy as np
import pytest

from kaffe.core.blob import Blob
from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.core.random import set_random_seed
from kaffe.proto import caffe_pb2
from kaffe.testing.gradient import (check_backward_overwrites,
                                    check_gradients, check_layer_error,
                                    empty_blobs, make_layer, setup_layer)

check_error = partial(check_layer_error, layer="spp")


def spp(height, pool="MAX"):
    return (f'name: "spp" type: "SPP" spp_param {{ pyramid_height: {height} '
            f'pool: {pool} }}')


def reference(x, height, pool):
    """Level l cuts each plane into 2^l × 2^l windows: kernel k =
    ceil(size / bins), padded by (k·bins − size + 1) // 2, stride k. MAX
    takes the largest in-image cell; AVE divides the in-image sum by the
    window clipped to the padded image. Levels are flattened per item
    (channel-major) and concatenated, level 0 first."""
    n_count, c_count, h_size, w_size = x.shape
    levels = []
    for level in range(height):
        bins = 2 ** level
        kh, kw = math.ceil(h_size / bins), math.ceil(w_size / bins)
        ph, pw = (kh * bins - h_size + 1) // 2, (kw * bins - w_size + 1) // 2
        y = np.zeros((n_count, c_count, bins, bins))
        for n, c, i, j in np.ndindex(*y.shape):
            h0, w0 = i * kh - ph, j * kw - pw
            h1, w1 = min(h0 + kh, h_size + ph), min(w0 + kw, w_size + pw)
            cells = [x[n, c, h, w]
                     for h in range(max(h0, 0), min(h1, h_size))
                     for w in range(max(w0, 0), min(w1, w_size))]
            if pool == "MAX":
                y[n, c, i, j] = max(cells)
            else:
                y[n, c, i, j] = sum(cells) / ((h1 - h0) * (w1 - w0))
        levels.append(y.reshape(n_count, -1))
    if height == 1:
        return levels[0].reshape(n_count, c_count, 1, 1)
    return np.concatenate(levels, axis=1)


@pytest.mark.parametrize("shape, height, expected", [
    # Caffe's test_spp_layer setups.
    ((2, 3, 9, 8), 3, (2, 63)),
    ((10, 3, 7, 7), 3, (10, 63)),
    ((1, 3, 1024, 765), 5, (1, 1023)),
    ((2, 3, 5, 4), 1, (2, 3, 1, 1)),
    ((2, 4, 6, 6), 2, (2, 20)),
])
def test_shapes(shape, height, expected):
    layer = make_layer(spp(height), dtype=np.float32)
    top = empty_blobs(1, np.float32)
    layer.SetUp([Blob(shape, dtype=np.float32)], top)
    assert top[0].shape == expected


@pytest.mark.parametrize("pool", ["MAX", "AVE"])
@pytest.mark.parametrize("shape, height", [
    ((2, 3, 9, 8), 3), ((1, 2, 7, 7), 3), ((2, 2, 5, 4), 1),
    ((1, 2, 6, 11), 2)])
def test_forward_matches_loops(pool, shape, height):
    x = np.random.default_rng(0).standard_normal(shape)
    _, _, top = setup_layer(spp(height, pool), [x])
    np.testing.assert_allclose(top[0].data, reference(x, height, pool),
                               rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("pool", ["MAX", "AVE"])
@pytest.mark.parametrize("shape, height", [((1, 2, 7, 6), 3),
                                           ((2, 2, 3, 5), 1)])
def test_gradients(pool, shape, height):
    x = np.random.default_rng(1).standard_normal(shape)
    layer, bottom, top = setup_layer(spp(height, pool), [x])
    check_gradients(layer, bottom, top)


def test_backward_sums_the_levels_and_overwrites():
    x = np.random.default_rng(2).standard_normal((1, 1, 4, 4))
    layer, bottom, top = setup_layer(spp(3, "AVE"), [x])
    top[0].diff[...] = 1
    layer.Backward(top, [True], bottom)
    # Each cell is in one window per level: 1/16 + 1/4 + 1/1.
    np.testing.assert_allclose(bottom[0].diff, 1 / 16 + 1 / 4 + 1)
    check_backward_overwrites(layer, bottom, top)


def test_new_input_size_rebuilds_the_levels():
    layer, bottom, top = setup_layer(spp(2, "AVE"), [np.ones((1, 1, 4, 4))])
    bottom[0].reshape((2, 3, 9, 7))
    x = np.random.default_rng(3).standard_normal((2, 3, 9, 7))
    bottom[0].data[...] = x
    layer.Forward(bottom, top)
    assert top[0].shape == (2, 15)
    np.testing.assert_allclose(top[0].data, reference(x, 2, "AVE"),
                               rtol=1e-13)


def test_stochastic_levels_always_sample():
    # Caffe builds the inner Pooling layers with the default phase, TRAIN:
    # even in a TEST net each output is one sampled input cell.
    x = np.random.default_rng(4).random((1, 2, 8, 8)) + 0.1
    set_random_seed(5)
    layer, bottom, top = setup_layer(spp(3, "STOCHASTIC"), [x],
                                     phase=caffe_pb2.TEST)
    assert top[0].shape == (1, 42)
    assert np.isin(top[0].data, x).all()
    first = top[0].data.copy()
    set_random_seed(6)
    layer.Forward(bottom, top)
    assert (top[0].data != first).any()


def test_pyramid_height_must_be_positive():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(spp(0), [np.ones((1, 1, 4, 4))])
    check_error(info, "spp_param.pyramid_height", "0")


def test_pyramid_too_high_for_the_input():
    # 3 rows in 4 bins: kernel 1, padding 1 — pooling needs pad < kernel.
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(spp(3), [np.ones((1, 1, 3, 8))])
    check_error(info, "spp_param.pyramid_height", "3")


def test_stochastic_cannot_pad():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(spp(2, "STOCHASTIC"), [np.ones((1, 1, 5, 4))])
    check_error(info, "spp_param.pool", "'STOCHASTIC'")


def test_input_must_be_four_dimensional():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(spp(2), [np.ones((2, 3, 4))])
    check_error(info, "bottom", "(2, 3, 4)")
