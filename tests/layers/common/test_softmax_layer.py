"""Softmax: shapes, a loop reference, PyTorch, gradients (also in place), errors."""
import math

import numpy as np
import pytest

from kaffe.core.errors import KaffeShapeError
from kaffe.testing.gradient import (blobs_from, check_gradients, make_layer,
                                    setup_layer)


def softmax_text(axis=None):
    param = f"softmax_param {{ axis: {axis} }}" if axis is not None else ""
    return f'name: "prob" type: "Softmax" {param}'


def reference(x, axis):
    """exp(x − max) / Σ exp(x − max), one loop per (outer, inner) position."""
    axis = axis % x.ndim
    outer = int(np.prod(x.shape[:axis]))
    channels = x.shape[axis]
    inner = int(np.prod(x.shape[axis + 1:]))
    flat = x.reshape(outer, channels, inner)
    out = np.zeros_like(flat)
    for i in range(outer):
        for j in range(inner):
            biggest = max(flat[i, c, j] for c in range(channels))
            exps = [math.exp(flat[i, c, j] - biggest) for c in range(channels)]
            total = sum(exps)
            for c in range(channels):
                out[i, c, j] = exps[c] / total
    return out.reshape(x.shape)


@pytest.mark.parametrize("shape, axis", [((2, 3), None), ((2, 3, 4), -1),
                                         ((2, 3, 4), 0)])
def test_top_has_bottom_shape(shape, axis):
    _, _, top = setup_layer(softmax_text(axis), [np.zeros(shape)])
    assert top[0].shape == shape


@pytest.mark.parametrize("axis", [None, 0, 2, -1])
def test_forward_matches_loops(axis):
    x = np.random.default_rng(0).standard_normal((2, 3, 4)) * 3
    _, _, top = setup_layer(softmax_text(axis), [x])
    expected = reference(x, 1 if axis is None else axis)
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-12)


def test_large_scores_are_stable():
    x = np.array([[1000.0, 1000.0, -1000.0], [-800.0, 0.0, 800.0]])
    _, _, top = setup_layer(softmax_text(), [x], dtype=np.float32)
    np.testing.assert_allclose(top[0].data, [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])


def test_forward_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal((3, 4, 2, 2))
    for axis in (1, 3):
        _, _, top = setup_layer(softmax_text(axis), [x])
        expected = torch.softmax(torch.from_numpy(x), dim=axis).numpy()
        np.testing.assert_allclose(top[0].data, expected, rtol=1e-12)


@pytest.mark.parametrize("shape, axis", [((2, 4), None), ((2, 3, 2), 0),
                                         ((2, 3, 2), 2)])
def test_gradients(shape, axis):
    x = np.random.default_rng(2).standard_normal(shape)
    layer, bottom, top = setup_layer(softmax_text(axis), [x])
    check_gradients(layer, bottom, top)


def test_in_place_matches_out_of_place():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 2))
    dy = rng.standard_normal((2, 3, 2))
    layer, bottom, top = setup_layer(softmax_text(), [x])
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)

    in_place = make_layer(softmax_text())
    blob = blobs_from([x])[0]
    in_place.SetUp([blob], [blob])
    in_place.Forward([blob], [blob])
    np.testing.assert_allclose(blob.data, top[0].data, rtol=1e-12)
    blob.diff[...] = dy
    in_place.Backward([blob], [True], [blob])
    np.testing.assert_allclose(blob.diff, bottom[0].diff, rtol=1e-12,
                               atol=1e-15)


def test_axis_out_of_range():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(softmax_text(2), [np.zeros((2, 3))])
    message = str(info.value)
    assert info.value.field == "softmax_param.axis"
    assert "layer 'prob'" in message and "softmax_param.axis" in message
    assert "received 2" in message
