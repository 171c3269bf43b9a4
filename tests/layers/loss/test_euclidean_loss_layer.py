"""EuclideanLoss: Σ(a − b)² / (2N), gradients into both bottoms."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeShapeError
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, empty_blobs, make_layer,
                                    setup_layer)

check_error = partial(check_layer_error, layer="loss")


def loss_text(extra=""):
    return f'name: "loss" type: "EuclideanLoss" {extra}'


def reference(a, b):
    n = a.shape[0]
    fa, fb = a.reshape(-1), b.reshape(-1)
    return sum((fa[i] - fb[i]) ** 2 for i in range(fa.size)) / n / 2


def pair(shape_a=(4, 3), shape_b=None, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape_a),
            rng.standard_normal(shape_b or shape_a)]


@pytest.mark.parametrize("shape_a, shape_b", [((4, 3), None),
                                              ((2, 3, 2, 2), (2, 12)),
                                              ((5,), None)])
def test_forward_matches_loops(shape_a, shape_b):
    a, b = pair(shape_a, shape_b)
    _, _, top = setup_layer(loss_text(), [a, b])
    assert top[0].shape == ()
    assert float(top[0].data) == pytest.approx(reference(a, b), rel=1e-12)


def test_matches_torch():
    torch = pytest.importorskip("torch")
    a, b = pair((6, 4), seed=1)
    _, _, top = setup_layer(loss_text(), [a, b])
    expected = torch.nn.functional.mse_loss(
        torch.from_numpy(a), torch.from_numpy(b), reduction="sum").item() / 12
    assert float(top[0].data) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("shape_a, shape_b", [((3, 4), None),
                                              ((2, 3, 2), (2, 6))])
def test_gradients_of_both_bottoms(shape_a, shape_b):
    layer, bottom, top = setup_layer(loss_text(), pair(shape_a, shape_b, 2))
    assert layer.allow_force_backward(1)
    check_gradients(layer, bottom, top)


def backward(extra, a, b):
    layer, bottom, top = setup_layer(loss_text(extra), [a, b])
    loss = layer.Forward(bottom, top)
    layer.Backward(top, [True, True], bottom)
    return loss, bottom[0].diff.copy(), bottom[1].diff.copy()


def test_default_loss_weight_is_one():
    a, b = pair(seed=3)
    layer = make_layer(loss_text())
    bottom, top = blobs_from([a, b]), empty_blobs(1)
    layer.SetUp(bottom, top)
    assert layer.loss(0) == 1.0
    loss, da, db = backward("", a, b)
    assert loss == pytest.approx(reference(a, b))
    np.testing.assert_allclose(da, (a - b) / 4, rtol=1e-12)
    np.testing.assert_allclose(db, -(a - b) / 4, rtol=1e-12)


def test_loss_weight_scales_loss_and_gradient():
    a, b = pair(seed=4)
    loss1, da1, db1 = backward("", a, b)
    loss2, da2, db2 = backward("loss_weight: 0.5", a, b)
    assert loss2 == pytest.approx(0.5 * loss1)
    np.testing.assert_allclose(da2, 0.5 * da1, rtol=1e-12)
    np.testing.assert_allclose(db2, 0.5 * db1, rtol=1e-12)


def test_values_per_item_must_match():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(loss_text(), pair((4, 3), (4, 4)))
    check_error(info, "bottom", "'(4, 3) and (4, 4)'")


def test_first_dims_must_match():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(loss_text(), pair((4, 3), (3, 4)))
    check_error(info, "bottom", "'(4, 3) and (3, 4)'")
