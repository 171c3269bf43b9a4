"""HingeLoss: L1 and L2 one-versus-all hinge, labels over the flattened
item, gradients, errors."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import check_gradients, check_layer_error, setup_layer

check_error = partial(check_layer_error, layer="loss")


def loss_text(norm=None, extra=""):
    param = f"hinge_loss_param {{ norm: {norm} }}" if norm else ""
    return f'name: "loss" type: "HingeLoss" {param} {extra}'


def reference(x, labels, power=1):
    """Σ_n Σ_k max(0, 1 − t·x)^power / N, t = +1 at the label of item n
    (an index into the flattened item), −1 elsewhere."""
    n = x.shape[0]
    flat = x.reshape(n, -1)
    loss = 0.0
    for i in range(n):
        for k in range(flat.shape[1]):
            t = 1.0 if k == int(labels.reshape(-1)[i]) else -1.0
            loss += max(0.0, 1 - t * flat[i, k]) ** power
    return loss / n


def reference_gradient(x, labels, power=1, weight=1.0):
    """−t·(p·h^(p−1)) / N with h = max(0, 1 − t·x); the L1 one is
    −t·sign(h) / N, 0 where the hinge is flat."""
    n = x.shape[0]
    flat = x.reshape(n, -1)
    grad = np.zeros_like(flat)
    for i in range(n):
        for k in range(flat.shape[1]):
            t = 1.0 if k == int(labels.reshape(-1)[i]) else -1.0
            h = max(0.0, 1 - t * flat[i, k])
            grad[i, k] = -t * (2 * h if power == 2 else np.sign(h))
    return (weight * grad / n).reshape(x.shape)


def data(shape=(5, 4), seed=0):
    """Scores kept away from the hinge's kinks at ±1."""
    rng = np.random.default_rng(seed)
    magnitude = rng.choice([rng.uniform(0.1, 0.8), rng.uniform(1.2, 2.0)],
                           size=shape)
    x = magnitude * rng.choice([-1.0, 1.0], size=shape)
    dim = int(np.prod(shape[1:]))
    labels = rng.integers(0, dim, size=shape[0]).astype(float)
    return x, labels


@pytest.mark.parametrize("shape, label_shape", [
    ((5, 4), (5,)), ((5, 4), (5, 1, 1, 1)), ((3, 2, 2, 2), (3,))])
@pytest.mark.parametrize("norm, power", [(None, 1), ("L1", 1), ("L2", 2)])
def test_shapes_and_forward(shape, label_shape, norm, power):
    x, labels = data(shape)
    _, _, top = setup_layer(loss_text(norm), [x, labels.reshape(label_shape)])
    assert top[0].shape == ()
    assert float(top[0].data) == pytest.approx(reference(x, labels, power),
                                               rel=1e-12)


def test_a_4d_label_indexes_the_flattened_item():
    # With (N, C, H, W) scores there are C·H·W classes: label 5 of a
    # (1, 2, 2, 2) item is the cell (c=1, h=0, w=1).
    x = np.zeros((1, 2, 2, 2))
    _, _, top = setup_layer(loss_text(), [x, np.array([5.0])])
    assert float(top[0].data) == 8.0       # every hinge term is 1
    x[0, 1, 0, 1] = 1.0                    # the true class reaches margin
    _, _, top = setup_layer(loss_text(), [x, np.array([5.0])])
    assert float(top[0].data) == 7.0


def test_labels_are_the_first_n_values_of_bottom_1():
    # Caffe reads label[i] for i < N from the flat label blob.
    x, labels = data((3, 4), seed=1)
    # (3, 2) labels: the first row holds items 0 and 1, the second item 2
    # and a value that is never read.
    wide = np.concatenate([labels, [9.0, 9.0, 9.0]]).reshape(3, 2)
    _, _, top = setup_layer(loss_text(), [x, wide])
    expected = reference(x, labels)
    assert float(top[0].data) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("norm, power", [("L1", 1), ("L2", 2)])
def test_backward_matches_the_formula(norm, power):
    x, labels = data((4, 5), seed=2)
    x[0, 1 if labels[0] != 1 else 2] = -1.0      # a flat hinge term: 0
    layer, bottom, top = setup_layer(loss_text(norm, "loss_weight: 2"),
                                     [x, labels])
    layer.Backward(top, [True, False], bottom)
    np.testing.assert_allclose(
        bottom[0].diff, reference_gradient(x, labels, power, weight=2.0),
        rtol=1e-12)


@pytest.mark.parametrize("norm", ["L1", "L2"])
@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 2, 1)])
def test_gradients(norm, shape):
    x, labels = data(shape, seed=3)
    layer, bottom, top = setup_layer(loss_text(norm), [x, labels])
    check_gradients(layer, bottom, top, check_bottom=[0])


def test_labels_never_get_gradient():
    layer, bottom, top = setup_layer(loss_text(), list(data()))
    assert not layer.allow_force_backward(1)
    with pytest.raises(KaffeConfigError) as info:
        layer.Backward(top, [True, True], bottom)
    check_error(info, "propagate_down", "'true for bottom[1]'")


@pytest.mark.parametrize("label", [4.0, -1.0])
def test_label_out_of_range(label):
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(loss_text(), [np.zeros((2, 4)), np.array([0.0, label])])
    check_error(info, "bottom[1]", str(int(label)))


def test_more_than_4_axes():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(loss_text(), [np.zeros((2, 1, 1, 1, 3)), np.zeros(2)])
    check_error(info, "bottom[0]", "(2, 1, 1, 1, 3)")


def test_first_dims_must_match():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(loss_text(), [np.zeros((2, 4)), np.zeros(3)])
    check_error(info, "bottom", "'(2, 4) and (3,)'")
