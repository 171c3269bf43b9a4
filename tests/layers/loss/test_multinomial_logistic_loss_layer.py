"""MultinomialLogisticLoss: −log of the labelled probability, the 1e-20
clamp, gradients, torch parity, errors."""
import math
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import check_gradients, check_layer_error, setup_layer

check_error = partial(check_layer_error, layer="loss")

LOG_THRESHOLD = float(np.float32(1e-20))
TEXT = 'name: "loss" type: "MultinomialLogisticLoss"'


def reference(p, labels):
    """−Σ_n log(max(p[n, label_n], 1e-20)) / N; the label indexes the
    flattened item."""
    n = p.shape[0]
    flat = p.reshape(n, -1)
    return -sum(math.log(max(flat[i, int(labels.reshape(-1)[i])],
                             LOG_THRESHOLD)) for i in range(n)) / n


def data(shape=(4, 5), seed=0):
    """Probabilities (rows sum to 1), well away from 0."""
    rng = np.random.default_rng(seed)
    n = shape[0]
    p = rng.uniform(0.2, 1.0, size=(n, int(np.prod(shape[1:]))))
    p /= p.sum(axis=1, keepdims=True)
    labels = rng.integers(0, p.shape[1], size=n).astype(float)
    return p.reshape(shape), labels


@pytest.mark.parametrize("shape, label_shape", [
    ((4, 5), (4,)), ((4, 5), (4, 1, 1, 1)), ((2, 3, 2, 2), (2, 1))])
def test_shapes_and_forward(shape, label_shape):
    p, labels = data(shape)
    _, _, top = setup_layer(TEXT, [p, labels.reshape(label_shape)])
    assert top[0].shape == ()
    assert float(top[0].data) == pytest.approx(reference(p, labels),
                                               rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_probability_is_clamped_at_1e_20(dtype):
    p = np.array([[0.0, 1.0], [0.5, 0.5]])
    layer, bottom, top = setup_layer(TEXT, [p, np.array([0.0, 1.0])],
                                     dtype=dtype)
    expected = (-math.log(LOG_THRESHOLD) + math.log(2)) / 2   # 23.37
    assert float(top[0].data) == pytest.approx(expected, rel=1e-6)
    layer.Backward(top, [True, False], bottom)
    assert float(bottom[0].diff[0, 0]) == pytest.approx(
        -1 / (2 * LOG_THRESHOLD), rel=1e-6)


def test_backward_is_minus_one_over_n_p_at_the_label():
    p, labels = data((3, 2, 2), seed=1)
    layer, bottom, top = setup_layer(TEXT + " loss_weight: 2", [p, labels])
    layer.Backward(top, [True, False], bottom)
    expected = np.zeros((3, 4))
    flat = p.reshape(3, 4)
    for i in range(3):
        expected[i, int(labels[i])] = -2 / (3 * flat[i, int(labels[i])])
    np.testing.assert_allclose(bottom[0].diff.reshape(3, 4), expected,
                               rtol=1e-12)


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 2, 1)])
def test_gradients(shape):
    p, labels = data(shape, seed=2)
    layer, bottom, top = setup_layer(TEXT, [p, labels])
    check_gradients(layer, bottom, top, check_bottom=[0])


def test_matches_torch_nll_of_log():
    torch = pytest.importorskip("torch")
    p, labels = data((6, 4), seed=3)
    layer, bottom, top = setup_layer(TEXT, [p, labels])
    tp = torch.from_numpy(p).requires_grad_()
    loss = torch.nn.functional.nll_loss(torch.log(tp),
                                        torch.from_numpy(labels).long())
    loss.backward()
    assert float(top[0].data) == pytest.approx(loss.item(), rel=1e-12)
    layer.Backward(top, [True, False], bottom)
    np.testing.assert_allclose(bottom[0].diff, tp.grad.numpy(), rtol=1e-12)


def test_labels_never_get_gradient():
    layer, bottom, top = setup_layer(TEXT, list(data()))
    assert not layer.allow_force_backward(1)
    with pytest.raises(KaffeConfigError) as info:
        layer.Backward(top, [True, True], bottom)
    check_error(info, "propagate_down", "'true for bottom[1]'")


def test_one_label_per_item():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(TEXT, [np.full((4, 5), 0.2), np.zeros((4, 2))])
    check_error(info, "bottom[1]", "(4, 2)")


def test_label_out_of_range():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(TEXT, [np.full((2, 5), 0.2), np.array([0.0, 5.0])])
    check_error(info, "bottom[1]", "5")


def test_more_than_4_axes():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(TEXT, [np.full((2, 1, 1, 1, 3), 0.2), np.zeros(2)])
    check_error(info, "bottom[0]", "(2, 1, 1, 1, 3)")


def test_first_dims_must_match():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(TEXT, [np.full((2, 5), 0.2), np.zeros(3)])
    check_error(info, "bottom", "'(2, 5) and (3,)'")
