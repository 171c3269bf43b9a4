"""BatchReindex: shapes, a loop reference, gradients, errors."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (check_gradients, check_layer_error,
                                    setup_layer)

check_error = partial(check_layer_error, layer="reindex")

REINDEX = 'name: "reindex" type: "BatchReindex"'

# Caffe's own test permutation: repeats and omissions.
PERMUTATION = [4, 0, 4, 0, 1, 2]


def data(shape=(5, 4, 3, 2)):
    return np.random.default_rng(0).standard_normal(shape)


def reference(x, permutation):
    """Element by element: top[i, …] = x[int(permutation[i]), …]."""
    y = np.zeros((len(permutation),) + x.shape[1:])
    for index in np.ndindex(*y.shape):
        y[index] = x[(int(permutation[index[0]]),) + index[1:]]
    return y


@pytest.mark.parametrize("shape, permutation, expected", [
    ((5, 4, 3, 2), PERMUTATION, (6, 4, 3, 2)),
    ((5, 7), [1, 2], (2, 7)),
    ((3,), [0, 0, 0, 0], (4,)),
    ((3, 2), [], (0, 2)),
])
def test_shapes(shape, permutation, expected):
    _, _, top = setup_layer(REINDEX, [data(shape), permutation])
    assert top[0].shape == expected


@pytest.mark.parametrize("permutation", [PERMUTATION, [3, 2, 1, 0, 4],
                                         [2.9, 0.5, 4.99]])
def test_forward_matches_loops(permutation):
    # Fractional indices are truncated toward zero (static_cast<int>).
    x = data()
    _, _, top = setup_layer(REINDEX, [x, permutation])
    np.testing.assert_array_equal(top[0].data, reference(x, permutation))


def test_gradients():
    layer, bottom, top = setup_layer(REINDEX, [data((5, 2, 3)),
                                               PERMUTATION])
    check_gradients(layer, bottom, top, check_bottom=[0])


def test_backward_accumulates_repeats_and_zeroes_the_rest():
    layer, bottom, top = setup_layer(REINDEX, [data((5, 2)), PERMUTATION])
    dy = np.random.default_rng(1).standard_normal((6, 2))
    top[0].diff[...] = dy
    bottom[0].diff[...] = 7
    layer.Backward(top, [True, False], bottom)
    expected = np.zeros((5, 2))
    for i, n in enumerate(PERMUTATION):
        expected[n] += dy[i]
    np.testing.assert_allclose(bottom[0].diff, expected)
    bottom[0].diff[...] = 7
    layer.Backward(top, [False, False], bottom)
    assert (bottom[0].diff == 7).all()


def test_matches_torch_index_select():
    torch = pytest.importorskip("torch")
    x = data((5, 3))
    layer, bottom, top = setup_layer(REINDEX, [x, PERMUTATION])
    dy = np.random.default_rng(2).standard_normal((6, 3))
    top[0].diff[...] = dy
    layer.Backward(top, [True, False], bottom)
    t = torch.from_numpy(x).requires_grad_()
    y = t.index_select(0, torch.tensor(PERMUTATION))
    y.backward(torch.from_numpy(dy))
    np.testing.assert_array_equal(top[0].data, y.detach().numpy())
    np.testing.assert_allclose(bottom[0].diff, t.grad.numpy(), rtol=1e-15)


def test_no_gradient_for_the_indices():
    layer, bottom, top = setup_layer(REINDEX, [data(), PERMUTATION])
    assert layer.allow_force_backward(0) and not layer.allow_force_backward(1)
    with pytest.raises(KaffeConfigError) as info:
        layer.Backward(top, [True, True], bottom)
    check_error(info, "propagate_down", "'true for bottom[1]'")


def test_indices_must_be_one_dimensional():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(REINDEX, [data(), [[0, 1]]])
    check_error(info, "bottom[1]", "(1, 2)")


@pytest.mark.parametrize("index", [5.0, -0.5, np.nan])
def test_indices_must_lie_in_the_batch(index):
    # -0.5 would truncate to 0, but Caffe checks the value itself.
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(REINDEX, [data(), [0.0, index]])
    check_error(info, "bottom[1]", str(index))
