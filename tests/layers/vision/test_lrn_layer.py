"""LRN: shapes, loop references for both regions, gradients, errors."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeShapeError, KaffeConfigError
from kaffe.testing.gradient import (check_backward_overwrites,
                                    check_gradients, check_layer_error,
                                    setup_layer)

check_error = partial(check_layer_error, layer="norm")


def lrn(extra=""):
    return f'name: "norm" type: "LRN" lrn_param {{ {extra} }}'


def across_reference(x, size, alpha, beta, k):
    """scale = k + α/n · Σ x[c']² over the n channels centred on c (those
    past the first and last channel count as 0); y = x · scale^−β."""
    y = np.zeros_like(x)
    channels = x.shape[1]
    half = (size - 1) // 2
    for n, c, h, w in np.ndindex(*x.shape):
        total = sum(x[n, c2, h, w] ** 2
                    for c2 in range(max(0, c - half),
                                    min(channels, c + half + 1)))
        y[n, c, h, w] = x[n, c, h, w] * (k + alpha / size * total) ** -beta
    return y


def within_reference(x, size, alpha, beta):
    """scale = 1 + α/n² · Σ x² over the n×n square centred on (h, w) (zero
    outside the image; always divided by n²); y = x · scale^−β. No k."""
    y = np.zeros_like(x)
    height, width = x.shape[2:]
    half = (size - 1) // 2
    for n, c, h, w in np.ndindex(*x.shape):
        total = sum(x[n, c, h2, w2] ** 2
                    for h2 in range(max(0, h - half), min(height, h + half + 1))
                    for w2 in range(max(0, w - half), min(width, w + half + 1)))
        y[n, c, h, w] = x[n, c, h, w] * (1 + alpha / size ** 2 * total) ** -beta
    return y


def f32(value):
    """lrn_param's alpha, beta and k are proto floats: 0.6 is read as the
    float32 nearest to it."""
    return float(np.float32(value))


def random(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("extra", ["", "norm_region: WITHIN_CHANNEL",
                                   "local_size: 3"])
def test_shapes(extra):
    layer, _, top = setup_layer(lrn(extra), [np.ones((2, 7, 3, 4))])
    assert top[0].shape == (2, 7, 3, 4)
    assert layer.blobs == []


def test_defaults():
    layer, _, _ = setup_layer(lrn(), [np.ones((1, 2, 2, 2))])
    assert (layer.size, layer.alpha, layer.beta, layer.k) == (5, 1, 0.75, 1)
    assert layer.norm_region == "ACROSS_CHANNELS"


@pytest.mark.parametrize("size, alpha, beta, k, channels", [
    (5, 1.0, 0.75, 1.0, 7),     # Caffe's defaults
    (3, 0.5, 0.6, 2.0, 5),      # k ≠ 1
    (5, 2.0, 1.2, 0.5, 3),      # window wider than the channels
    (1, 1.5, 0.75, 3.0, 4),
])
def test_across_channels_matches_loops(size, alpha, beta, k, channels):
    x = random((2, channels, 3, 2), 1)
    extra = f"local_size: {size} alpha: {alpha} beta: {beta} k: {k}"
    _, _, top = setup_layer(lrn(extra), [x])
    np.testing.assert_allclose(top[0].data,
                               across_reference(x, size, f32(alpha),
                                                f32(beta), f32(k)),
                               rtol=1e-12)


def test_across_channels_known_value():
    # One channel with x = 2, n = 3 (the neighbours are outside): scale =
    # k + α/3 · 4 = 1 + 3/3 · 4 = 5 with α = 3; y = 2 · 5^−1 with β = 1.
    _, _, top = setup_layer(lrn("local_size: 3 alpha: 3 beta: 1"),
                            [np.full((1, 1, 1, 1), 2.0)])
    assert top[0].data[0, 0, 0, 0] == pytest.approx(0.4)


@pytest.mark.parametrize("size, alpha, beta", [(3, 1.0, 0.75), (5, 2.0, 0.6)])
def test_within_channel_matches_loops(size, alpha, beta):
    x = random((2, 2, 5, 6), 2)
    extra = (f"local_size: {size} alpha: {alpha} beta: {beta} "
             "norm_region: WITHIN_CHANNEL")
    _, _, top = setup_layer(lrn(extra), [x])
    np.testing.assert_allclose(top[0].data,
                               within_reference(x, size, f32(alpha),
                                                f32(beta)),
                               rtol=1e-12)


def test_within_channel_ignores_k():
    x = random((1, 2, 4, 4), 3)
    outputs = []
    for k in (1, 5):
        _, _, top = setup_layer(lrn(f"norm_region: WITHIN_CHANNEL k: {k} "
                                    "local_size: 3"), [x])
        outputs.append(top[0].data.copy())
    np.testing.assert_array_equal(outputs[0], outputs[1])
    # ACROSS_CHANNELS does use it.
    _, _, top = setup_layer(lrn("k: 5 local_size: 3"), [x])
    assert not np.allclose(top[0].data, outputs[0])


def test_across_channels_matches_torch():
    torch = pytest.importorskip("torch")
    x = random((2, 6, 3, 4), 4)
    _, _, top = setup_layer(lrn("local_size: 5 alpha: 0.5 beta: 0.75 k: 2"),
                            [x])
    y = torch.nn.functional.local_response_norm(torch.from_numpy(x), 5,
                                                alpha=0.5, beta=0.75, k=2.0)
    np.testing.assert_allclose(top[0].data, y.numpy(), rtol=1e-10)


@pytest.mark.parametrize("extra", [
    "local_size: 3 alpha: 0.8 beta: 0.75 k: 2",
    "local_size: 5",
    "local_size: 3 alpha: 0.8 beta: 0.75 norm_region: WITHIN_CHANNEL",
    "local_size: 5 alpha: 2 beta: 1.5 k: 3 norm_region: WITHIN_CHANNEL",
])
def test_gradients(extra):
    layer, bottom, top = setup_layer(lrn(extra), [random((2, 4, 3, 3), 5)])
    check_gradients(layer, bottom, top)


def test_bottom_diff_is_overwritten_and_propagate_down_respected():
    layer, bottom, top = setup_layer(lrn("local_size: 3"),
                                     [random((1, 3, 2, 2), 6)])
    top[0].diff[...] = random(top[0].shape, 7)
    check_backward_overwrites(layer, bottom, top)


@pytest.mark.parametrize("size", [4, 0, 2])
def test_local_size_must_be_odd_and_positive(size):
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(lrn(f"local_size: {size}"), [np.ones((1, 5, 2, 2))])
    check_error(info, "lrn_param.local_size", str(size))


@pytest.mark.parametrize("shape", [(2, 3), (1, 2, 3, 4, 5)])
def test_input_must_be_4d(shape):
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(lrn(), [np.ones(shape)])
    check_error(info, "bottom", "(" + ", ".join(map(str, shape)) + ")")
