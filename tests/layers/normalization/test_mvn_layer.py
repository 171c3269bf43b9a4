"""MVN: the legacy 4-D top, eps on the standard deviation, Caffe's backward
formula, gradients (also in place), errors."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeShapeError
from kaffe.testing.gradient import (check_backward_overwrites, check_gradients,
                                    check_layer_error, numeric_gradient,
                                    setup_in_place, setup_layer)

check_error = partial(check_layer_error, layer="mvn")


def mvn(param=""):
    return f'name: "mvn" type: "MVN" top: "mvn" mvn_param {{ {param} }}'


def groups(x, across_channels):
    """x as (groups, D): one row per (n, c), or per n across channels."""
    shape4 = x.shape + (1,) * (4 - x.ndim)
    n, c = shape4[0], shape4[1]
    return x.reshape(n if across_channels else n * c, -1)


def reference(x, across_channels, normalize_variance, eps):
    """y = (x − mean) / (sqrt(var) + eps) per group, by loops."""
    rows = groups(x, across_channels)
    out = np.empty_like(rows)
    for g, row in enumerate(rows):
        mean = sum(row) / len(row)
        std = np.sqrt(sum((v - mean) ** 2 for v in row) / len(row))
        for k, v in enumerate(row):
            out[g, k] = (v - mean) / (std + eps) if normalize_variance else v - mean
    return out


def caffe_backward(y, dy, denom):
    """Caffe's normalize_variance backward, element by element:
    dx = (dy − mean(dy) − mean(dy·y)·y) / denom."""
    dx = np.empty_like(y)
    for g in range(y.shape[0]):
        d = y.shape[1]
        mean_dy = sum(dy[g]) / d
        mean_dyy = sum(dy[g, k] * y[g, k] for k in range(d)) / d
        for k in range(d):
            dx[g, k] = (dy[g, k] - mean_dy - mean_dyy * y[g, k]) / denom[g]
    return dx


def std_plus_eps(x, across_channels, eps):
    rows = groups(x, across_channels)
    return rows.std(axis=1) + eps


@pytest.mark.parametrize("shape, expected", [
    ((2, 3, 4, 5), (2, 3, 4, 5)), ((2, 3, 4), (2, 3, 4, 1)),
    ((2, 3), (2, 3, 1, 1)), ((5,), (5, 1, 1, 1))])
def test_top_is_the_legacy_4d_shape(shape, expected):
    _, _, top = setup_layer(mvn(), [np.ones(shape)])
    assert top[0].shape == expected


@pytest.mark.parametrize("across, normalize", [
    (False, True), (True, True), (False, False), (True, False)])
def test_forward_matches_loops(across, normalize):
    x = np.random.default_rng(0).standard_normal((2, 3, 2, 3)) * 2 + 1
    # A large eps shows that it is added to the standard deviation.
    param = (f"across_channels: {str(across).lower()} "
             f"normalize_variance: {str(normalize).lower()} eps: 0.5")
    _, _, top = setup_layer(mvn(param), [x])
    expected = reference(x, across, normalize, 0.5)
    np.testing.assert_allclose(top[0].data.reshape(expected.shape), expected,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape, param", [
    ((2, 3, 2, 3), ""), ((2, 3, 2, 3), "across_channels: true"),
    ((2, 3, 2, 3), "normalize_variance: false"),
    ((2, 3, 4), "normalize_variance: false across_channels: true"),
    ((3, 4), "across_channels: true")])
def test_gradients(shape, param):
    # With the default eps (1e-9) Caffe's formula is the true gradient to
    # well within the tolerance.
    x = np.random.default_rng(1).standard_normal(shape)
    layer, bottom, top = setup_layer(mvn(param), [x])
    check_gradients(layer, bottom, top)


@pytest.mark.parametrize("across", [False, True])
def test_backward_is_caffes_formula_which_ignores_eps(across):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 2, 3))
    dy = rng.standard_normal((2, 2, 3, 1))
    param = f"eps: 0.5 across_channels: {str(across).lower()}"
    layer, bottom, top = setup_layer(mvn(param), [x])
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    y = groups(top[0].data, across)
    expected = caffe_backward(y, groups(dy, across),
                              std_plus_eps(x, across, np.float32(0.5).item()))
    np.testing.assert_allclose(groups(bottom[0].diff, across), expected,
                               rtol=1e-12)
    # It is not the true gradient of y = (x − mean) / (std + eps).
    eps = np.float32(0.5).item()

    def loss():
        return float((reference(x, across, True, eps).reshape(dy.shape)
                      * dy).sum())
    true = numeric_gradient(loss, x)
    assert not np.allclose(bottom[0].diff, true, atol=1e-3)


def test_gradients_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x, dy = rng.standard_normal((2, 3, 2, 2)), rng.standard_normal((2, 3, 2, 2))
    layer, bottom, top = setup_layer(mvn(), [x])
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    tx = torch.tensor(x, requires_grad=True)
    centered = tx - tx.mean(dim=(2, 3), keepdim=True)
    std = centered.pow(2).mean(dim=(2, 3), keepdim=True).sqrt()
    ty = centered / (std + np.float32(1e-9).item())
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(top[0].data, ty.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(bottom[0].diff, tx.grad.numpy(), rtol=1e-6,
                               atol=1e-9)


def test_backward_reads_the_top_data_at_backward_time():
    # Like Caffe, MVN keeps no copy of y: a later in-place layer that
    # changes the top data changes this gradient.
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, 3))
    layer, bottom, top = setup_layer(mvn(), [x])
    top[0].diff[...] = rng.standard_normal(top[0].shape)
    top[0].data[...] = np.maximum(top[0].data, 0)
    layer.Backward(top, [True], bottom)
    expected = caffe_backward(groups(top[0].data, False),
                              groups(top[0].diff, False),
                              std_plus_eps(x, False, np.float32(1e-9).item()))
    np.testing.assert_allclose(groups(bottom[0].diff, False), expected,
                               rtol=1e-12)


def test_in_place_mean_only():
    x = np.random.default_rng(5).standard_normal((2, 3, 2, 2))
    layer, bottom, top = setup_in_place(mvn("normalize_variance: false"), [x])
    check_gradients(layer, bottom, top)


@pytest.mark.parametrize("param", ["", "across_channels: true"])
def test_in_place_with_variance_gradients(param):
    x = np.random.default_rng(6).standard_normal((2, 2, 3, 1))
    layer, bottom, top = setup_in_place(mvn(param), [x])
    check_gradients(layer, bottom, top)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("param", ["", "normalize_variance: false",
                                   "eps: 0.5 across_channels: true"])
def test_in_place_matches_separate_blobs(param, dtype):
    # The backward reads the top diff before writing the bottom diff:
    # unlike Caffe's CPU code, which overwrites the top diff it still needs
    # when normalize_variance is set.
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 2, 3, 1))
    dy = rng.standard_normal(x.shape)
    layer, bottom, top = setup_layer(mvn(param), [x], dtype=dtype)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    in_place, blobs, _ = setup_in_place(mvn(param), [x], dtype=dtype)
    in_place.Forward(blobs, blobs)
    np.testing.assert_array_equal(blobs[0].data, top[0].data)
    blobs[0].diff[...] = dy
    in_place.Backward(blobs, [True], blobs)
    np.testing.assert_array_equal(blobs[0].diff, bottom[0].diff)


@pytest.mark.parametrize("param", ["", "normalize_variance: false"])
def test_bottom_diff_is_overwritten_and_respects_propagate_down(param):
    x = np.random.default_rng(7).standard_normal((2, 2, 3))
    layer, bottom, top = setup_layer(mvn(param), [x])
    top[0].diff[...] = np.random.default_rng(8).standard_normal(top[0].shape)
    check_backward_overwrites(layer, bottom, top)


def test_more_than_four_axes():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(mvn(), [np.ones((2, 3, 2, 2, 2))])
    check_error(info, "bottom", "(2, 3, 2, 2, 2)")
