"""kaffe.ops.lrn against naive references of Caffe's two regions."""
import numpy as np
import pytest

from kaffe.ops.lrn import (lrn_across_channels_backward,
                           lrn_across_channels_forward,
                           lrn_within_channel_backward,
                           lrn_within_channel_forward)
from kaffe.testing.gradient import numeric_gradient


def naive_across(x, n, alpha, beta, k):
    """scale[c] = k + α/n · Σ x[c']², c' in [c − (n−1)/2, c + (n−1)/2]
    clipped to the channels; y = x · scale^−β."""
    channels = x.shape[1]
    half = (n - 1) // 2
    scale = np.empty_like(x)
    for c in range(channels):
        window = x[:, max(0, c - half):min(channels, c + half + 1)]
        scale[:, c] = k + alpha / n * (window ** 2).sum(axis=1)
    return x * scale ** -beta, scale


def naive_within(x, n, alpha, beta):
    """Caffe's layer chain: Power(x, 2) → AVE Pooling (kernel n, stride 1,
    pad (n−1)/2, Caffe's divisor computed per window) → Power(1 + α·p, −β)
    → Eltwise PROD with x."""
    height, width = x.shape[2:]
    pad = (n - 1) // 2
    pooled = np.zeros_like(x)
    for h in range(height):
        for w in range(width):
            hs, ws = h - pad, w - pad
            he, we = min(hs + n, height + pad), min(ws + n, width + pad)
            rows = slice(max(hs, 0), min(he, height))
            cols = slice(max(ws, 0), min(we, width))
            squares = x[:, :, rows, cols] ** 2
            pooled[:, :, h, w] = squares.sum(axis=(2, 3)) / ((he - hs)
                                                             * (we - ws))
    scale = 1 + alpha * pooled
    return x * scale ** -beta, scale


# (shape, local_size, alpha, beta, k): AlexNet's values; a large alpha so
# that normalisation matters at these magnitudes; a window wider than the
# channels; local_size 1.
ACROSS = [
    ((2, 7, 3, 4), 5, 1e-4, 0.75, 1.0),
    ((2, 6, 2, 3), 3, 0.8, 0.6, 2.0),
    ((1, 3, 3, 2), 7, 0.5, 1.3, 0.5),
    ((1, 4, 2, 2), 1, 0.3, 0.75, 1.0),
]
# (shape, local_size, alpha, beta)
WITHIN = [
    ((2, 2, 5, 6), 3, 0.9, 0.75),
    ((1, 3, 4, 4), 5, 1.5, 0.6),
    ((1, 2, 2, 3), 5, 0.4, 1.2),  # window wider than the map
    ((1, 2, 3, 3), 1, 0.7, 0.75),
]


def tolerance(dtype):
    return 1e-6 if dtype == np.float32 else 1e-13


@pytest.mark.parametrize("shape, n, alpha, beta, k", ACROSS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_across_channels_forward(shape, n, alpha, beta, k, dtype):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    y, scale = lrn_across_channels_forward(x, n, alpha, beta, k)
    y_ref, scale_ref = naive_across(x.astype(np.float64), n, alpha, beta, k)
    assert y.dtype == dtype and scale.dtype == dtype
    tol = tolerance(dtype)
    np.testing.assert_allclose(scale, scale_ref, rtol=tol)
    np.testing.assert_allclose(y, y_ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("shape, n, alpha, beta, k", ACROSS)
def test_across_channels_backward(shape, n, alpha, beta, k):
    x = np.random.default_rng(1).standard_normal(shape)
    r = np.random.default_rng(2).standard_normal(shape)
    y, scale = lrn_across_channels_forward(x, n, alpha, beta, k)

    def loss():
        return np.vdot(lrn_across_channels_forward(x, n, alpha, beta, k)[0],
                       r)

    np.testing.assert_allclose(
        lrn_across_channels_backward(r, x, y, scale, n, alpha, beta),
        numeric_gradient(loss, x), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("shape, n, alpha, beta", WITHIN)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_within_channel_forward(shape, n, alpha, beta, dtype):
    x = np.random.default_rng(3).standard_normal(shape).astype(dtype)
    y, scale = lrn_within_channel_forward(x, n, alpha, beta)
    y_ref, scale_ref = naive_within(x.astype(np.float64), n, alpha, beta)
    assert y.dtype == dtype and scale.dtype == dtype
    tol = tolerance(dtype)
    np.testing.assert_allclose(scale, scale_ref, rtol=tol)
    np.testing.assert_allclose(y, y_ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("shape, n, alpha, beta", WITHIN)
def test_within_channel_backward(shape, n, alpha, beta):
    x = np.random.default_rng(4).standard_normal(shape)
    r = np.random.default_rng(5).standard_normal(shape)
    y, scale = lrn_within_channel_forward(x, n, alpha, beta)

    def loss():
        return np.vdot(lrn_within_channel_forward(x, n, alpha, beta)[0], r)

    np.testing.assert_allclose(
        lrn_within_channel_backward(r, x, y, scale, n, alpha, beta),
        numeric_gradient(loss, x), rtol=1e-6, atol=1e-9)


def test_across_channels_golden_values():
    # One pixel, channels [1, 2, 3], n = 3, α = 3 (α/n = 1), β = 1, k = 1:
    # scale = 1 + [1 + 4, 1 + 4 + 9, 4 + 9] = [6, 15, 14].
    x = np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1)
    y, scale = lrn_across_channels_forward(x, 3, 3.0, 1.0, 1.0)
    np.testing.assert_allclose(scale.ravel(), [6, 15, 14])
    np.testing.assert_allclose(y.ravel(), [1 / 6, 2 / 15, 3 / 14])


def test_within_channel_divides_by_the_full_window_at_borders():
    # A 1×3 map [2, 0, 0], n = 3, α = 9, β = 1: every pool divides by 9
    # (padding counts), so scale = 1 + 9 · [4, 4, 0] / 9 = [5, 5, 1].
    x = np.array([2.0, 0.0, 0.0]).reshape(1, 1, 1, 3)
    _, scale = lrn_within_channel_forward(x, 3, 9.0, 1.0)
    np.testing.assert_allclose(scale.ravel(), [5, 5, 1])


@pytest.mark.parametrize("forward", [
    lambda x: lrn_across_channels_forward(x, 4, 1.0, 0.75, 1.0),
    lambda x: lrn_within_channel_forward(x, 2, 1.0, 0.75),
])
def test_even_local_size_is_rejected(forward):
    with pytest.raises(ValueError, match="odd"):
        forward(np.zeros((1, 4, 3, 3)))
