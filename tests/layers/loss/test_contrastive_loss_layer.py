"""ContrastiveLoss: both margin forms, truncated similarity labels, Caffe's
1e-4-guarded gradient, errors."""
import math
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeShapeError
from kaffe.testing.gradient import check_gradients, check_layer_error, setup_layer

check_error = partial(check_layer_error, layer="loss")


def loss_text(param="", extra=""):
    return (f'name: "loss" type: "ContrastiveLoss" '
            f'contrastive_loss_param {{ {param} }} {extra}')


def reference(a, b, y, margin=1.0, legacy=False):
    """Σ over pairs of d² (similar) or max(margin − d, 0)² (dissimilar;
    legacy: max(margin − d², 0)), / 2N. y truncates to an int; not 0 is
    similar."""
    n = a.shape[0]
    a, b, y = a.reshape(n, -1), b.reshape(n, -1), y.reshape(-1)
    loss = 0.0
    for i in range(n):
        d_sq = sum((a[i, c] - b[i, c]) ** 2 for c in range(a.shape[1]))
        if int(y[i]) != 0:
            loss += d_sq
        elif legacy:
            loss += max(margin - d_sq, 0.0)
        else:
            loss += max(margin - math.sqrt(d_sq), 0.0) ** 2
    return loss / n / 2


def reference_gradient_a(a, b, y, margin=1.0, legacy=False, weight=1.0):
    """Caffe's gradient of a (b gets its negation): (a − b)/N for similar
    pairs; for dissimilar ones with margin − d > 0 (legacy: margin − d²),
    −(a − b)/N (legacy) or −(margin − d)/(d + 1e-4)·(a − b)/N; else 0."""
    n = a.shape[0]
    a2, b2, y = a.reshape(n, -1), b.reshape(n, -1), y.reshape(-1)
    grad = np.zeros_like(a2)
    for i in range(n):
        diff = a2[i] - b2[i]
        d = math.sqrt(float(diff @ diff))
        if int(y[i]) != 0:
            grad[i] = diff
        elif legacy and margin - d * d > 0:
            grad[i] = -diff
        elif not legacy and margin - d > 0:
            grad[i] = -(margin - d) / (d + 1e-4) * diff
    return (weight * grad / n).reshape(a.shape)


def data(n=6, c=3, seed=0, scale=0.4):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, c)) * scale
    b = rng.standard_normal((n, c)) * scale
    y = (rng.uniform(size=n) > 0.5).astype(float)
    return a, b, y


@pytest.mark.parametrize("shapes", [
    ((6, 3), (6, 3), (6,)), ((6, 3, 1, 1), (6, 3, 1, 1), (6, 1, 1, 1)),
    ((6, 3), (6, 3, 1), (6, 1))])
def test_shapes_and_forward(shapes):
    a, b, y = data()
    a, b, y = a.reshape(shapes[0]), b.reshape(shapes[1]), y.reshape(shapes[2])
    _, _, top = setup_layer(loss_text(), [a, b, y])
    assert top[0].shape == ()
    assert float(top[0].data) == pytest.approx(reference(a, b, y), rel=1e-12)


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("margin", [1.0, 0.5, 2.0])
def test_forward_matches_loops(legacy, margin):
    a, b, y = data(n=8, seed=1)
    param = f"margin: {margin} legacy_version: {str(legacy).lower()}"
    _, _, top = setup_layer(loss_text(param), [a, b, y])
    expected = reference(a, b, y, margin, legacy)
    assert float(top[0].data) == pytest.approx(expected, rel=1e-12)


def test_similarity_is_the_truncated_label():
    # 0.7 and −0.5 truncate to 0 (dissimilar); 1.3, 2 and −1 are similar.
    a = np.array([[0.3], [0.3], [0.3], [0.3], [0.3]])
    b = np.zeros((5, 1))
    y = np.array([0.7, -0.5, 1.3, 2.0, -1.0])
    _, _, top = setup_layer(loss_text(), [a, b, y])
    expected = (2 * 0.7 ** 2 + 3 * 0.09) / 5 / 2
    assert float(top[0].data) == pytest.approx(expected, rel=1e-12)


def test_pairs_beyond_the_margin_cost_nothing():
    a, b = np.array([[3.0, 0.0]]), np.zeros((1, 2))
    layer, bottom, top = setup_layer(loss_text(), [a, b, np.zeros(1)])
    assert float(top[0].data) == 0.0
    layer.Backward(top, [True, True, False], bottom)
    assert not bottom[0].diff.any() and not bottom[1].diff.any()


@pytest.mark.parametrize("legacy", [False, True])
def test_backward_matches_caffes_formula(legacy):
    a, b, y = data(n=8, seed=2)
    param = f"margin: 1.5 legacy_version: {str(legacy).lower()}"
    layer, bottom, top = setup_layer(loss_text(param, "loss_weight: 3"),
                                     [a, b, y])
    layer.Backward(top, [True, True, False], bottom)
    expected = reference_gradient_a(a, b, y, 1.5, legacy, weight=3.0)
    np.testing.assert_allclose(bottom[0].diff, expected, rtol=1e-12)
    np.testing.assert_allclose(bottom[1].diff, -expected, rtol=1e-12)


def test_gradients_legacy_are_exact():
    a, b, y = data(n=8, seed=3)
    layer, bottom, top = setup_layer(loss_text("legacy_version: true"),
                                     [a, b, y])
    check_gradients(layer, bottom, top, check_bottom=[0, 1])


def test_gradients_with_the_1e_4_guard_are_close():
    # The guard changes the dissimilar gradient by a factor d / (d + 1e-4).
    a, b, y = data(n=8, seed=4)
    layer, bottom, top = setup_layer(loss_text(), [a, b, y])
    check_gradients(layer, bottom, top, check_bottom=[0, 1], tol=1e-3)


def test_matches_torch_autograd():
    torch = pytest.importorskip("torch")
    a, b, y = data(n=8, seed=5)
    layer, bottom, top = setup_layer(loss_text("margin: 1.5"), [a, b, y])
    ta = torch.from_numpy(a).requires_grad_()
    d = (ta - torch.from_numpy(b)).norm(dim=1)
    ty = torch.from_numpy(y)
    loss = (ty * d ** 2 + (1 - ty) * torch.clamp(1.5 - d, min=0) ** 2).sum()
    loss = loss / 8 / 2
    loss.backward()
    assert float(top[0].data) == pytest.approx(loss.item(), rel=1e-12)
    layer.Backward(top, [True, False, False], bottom)
    np.testing.assert_allclose(bottom[0].diff, ta.grad.numpy(), rtol=1e-3,
                               atol=1e-6)


def test_the_similarity_gets_no_gradient():
    layer, bottom, top = setup_layer(loss_text(), list(data()))
    assert [layer.allow_force_backward(i) for i in range(3)] == [
        True, True, False]
    bottom[2].diff[...] = 5
    layer.Backward(top, [True, True, True], bottom)
    assert (bottom[2].diff == 5).all()


def test_a_longer_similarity_blob_is_read_up_to_n():
    a, b, y = data(n=4, seed=6)
    _, _, top = setup_layer(loss_text(), [a, b, np.concatenate([y, [1, 0]])])
    assert float(top[0].data) == pytest.approx(reference(a, b, y), rel=1e-12)


@pytest.mark.parametrize("shapes, field, received", [
    (((4, 3), (4, 2), (4,)), "bottom[1]", "(4, 2)"),
    (((4, 3, 2), (4, 3, 2), (4,)), "bottom[0]", "(4, 3, 2)"),
    (((4, 3), (4, 3, 1, 2), (4,)), "bottom[1]", "(4, 3, 1, 2)"),
    (((4, 3), (4, 3), (4, 2)), "bottom[2]", "(4, 2)"),
    (((4, 3), (4, 3), (3,)), "bottom[2]", "'3 values'"),
    (((4, 3, 1, 1, 1), (4, 3), (4,)), "bottom[0]", "(4, 3, 1, 1, 1)"),
    (((4, 3), (3, 3), (4,)), "bottom", "'(4, 3) and (3, 3)'"),
])
def test_shape_errors(shapes, field, received):
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(loss_text(), [np.zeros(s) for s in shapes])
    check_error(info, field, received)
