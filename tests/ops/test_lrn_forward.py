"""kaffe.ops.lrn_forward (ACROSS_CHANNELS LRN by pair sums) against a
direct float64 reference of Caffe's formula."""
import numpy as np
import pytest

from kaffe.ops.lrn_forward import (lrn_across_forward, lrn_across_image,
                                   lrn_across_range)


def reference(x, n, alpha, beta, k):
    """scale[c] = k + α/n · Σ x[c']² over the n channels centred on c
    (zero beyond the ends), y = x · scale^−β, in float64."""
    x = x.astype(np.float64)
    channels, half = x.shape[1], (n - 1) // 2
    scale = np.empty_like(x)
    for c in range(channels):
        window = x[:, max(0, c - half):min(channels, c + half + 1)]
        scale[:, c] = k + alpha / n * (window ** 2).sum(axis=1)
    power = scale ** -beta
    return x * power, scale, power


@pytest.mark.parametrize("shape, n", [
    ((2, 7, 3, 5), 5),    # interior and edge channels, two images
    ((1, 12, 4, 4), 5),
    ((1, 9, 2, 3), 3),
    ((1, 10, 3, 3), 7),
    ((1, 11, 2, 2), 9),
    ((1, 4, 3, 3), 5),    # every channel an edge one
    ((1, 3, 2, 2), 7),    # window wider than the channels
    ((2, 1, 3, 3), 5),    # one channel
    ((1, 2, 3, 3), 3),
    ((1, 5, 2, 3), 1),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lrn_across_forward_matches_the_formula(shape, n, dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    alpha, beta, k = 0.7, 0.75, 1.5  # large alpha: the sums matter
    y_ref, scale_ref, power_ref = reference(x, n, alpha, beta, k)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    plane = shape[2] * shape[3]
    # blocks of one channel, of three, and whole images
    for block in (plane, 3 * plane, shape[1] * plane):
        y, scale, power = (np.full(shape, np.nan, dtype) for _ in range(3))
        result = lrn_across_forward(x, n, alpha, beta, k, y, scale, power,
                                    block_elements=block)
        assert result[0] is y and result[1] is scale and result[2] is power
        np.testing.assert_allclose(scale, scale_ref, rtol=tol)
        np.testing.assert_allclose(power, power_ref, rtol=tol)
        np.testing.assert_allclose(y, y_ref, rtol=tol, atol=tol)


def test_lrn_across_image_writes_only_its_image():
    x = np.random.default_rng(1).standard_normal((3, 6, 2, 2))
    y, scale, power = (np.zeros_like(x) for _ in range(3))
    lrn_across_image(x, 5, 1e-2, 0.75, 2.0, y, scale, power, 1)
    y_ref, scale_ref, _ = reference(x, 5, 1e-2, 0.75, 2.0)
    np.testing.assert_allclose(y[1], y_ref[1], rtol=1e-13)
    np.testing.assert_allclose(scale[1], scale_ref[1], rtol=1e-13)
    for buffer in (y, scale, power):
        assert not buffer[0].any() and not buffer[2].any()


def test_lrn_across_range_writes_only_its_channels():
    x = np.random.default_rng(2).standard_normal((2, 9, 2, 3))
    y, scale, power = (np.zeros_like(x) for _ in range(3))
    lrn_across_range(x, 5, 1e-2, 0.75, 2.0, y, scale, power, 1, 3, 7)
    y_ref, scale_ref, power_ref = reference(x, 5, 1e-2, 0.75, 2.0)
    np.testing.assert_allclose(y[1, 3:7], y_ref[1, 3:7], rtol=1e-13)
    np.testing.assert_allclose(scale[1, 3:7], scale_ref[1, 3:7], rtol=1e-13)
    np.testing.assert_allclose(power[1, 3:7], power_ref[1, 3:7], rtol=1e-13)
    for buffer in (y, scale, power):
        assert not buffer[0].any()
        assert not buffer[1, :3].any() and not buffer[1, 7:].any()


@pytest.mark.parametrize("shape", [(0, 4, 3, 3), (2, 0, 3, 3)])
def test_empty_input(shape):
    x = np.zeros(shape, np.float32)
    y, scale, power = (np.empty_like(x) for _ in range(3))
    result = lrn_across_forward(x, 5, 1e-4, 0.75, 1.0, y, scale, power)
    assert result[0] is y and y.shape == shape
