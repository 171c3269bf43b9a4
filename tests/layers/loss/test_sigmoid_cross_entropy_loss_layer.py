"""SigmoidCrossEntropyLoss: the stable logits form, BATCH_SIZE by default,
ignore_label on truncated targets, gradients, torch parity and errors."""
import math
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import check_gradients, check_layer_error, setup_layer

check_error = partial(check_layer_error, layer="loss")


def loss_text(loss_param="", extra=""):
    return (f'name: "loss" type: "SigmoidCrossEntropyLoss" '
            f'loss_param {{ {loss_param} }} {extra}')


def reference(x, t, mode="BATCH_SIZE", ignore_label=None):
    """−Σ [t·log σ(x) + (1 − t)·log(1 − σ(x))] / normalizer, element by
    element; log(1 − σ(x)) = log σ(−x), and log σ(x) = −log(1 + e^−x) is
    written so that it never overflows."""
    def log_sigmoid(v):
        return -math.log1p(math.exp(-v)) if v >= 0 else v - math.log1p(
            math.exp(v))

    loss, count = 0.0, 0
    for xi, ti in zip(x.reshape(-1), t.reshape(-1)):
        if ignore_label is not None and int(ti) == ignore_label:
            continue
        loss -= ti * log_sigmoid(xi) + (1 - ti) * log_sigmoid(-xi)
        count += 1
    normalizer = {"FULL": x.size, "VALID": count, "BATCH_SIZE": x.shape[0],
                  "NONE": 1}[mode]
    return loss / max(1, normalizer)


def data(shape=(4, 5), seed=0, ignore=None):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 2
    t = rng.uniform(0, 1, size=shape)
    if ignore is not None:
        t.reshape(-1)[::3] = ignore
    return x, t


@pytest.mark.parametrize("shape_x, shape_t", [
    ((4, 3), (4, 3)), ((2, 3, 2, 2), (2, 12)), ((5,), (5, 1))])
def test_shapes_and_forward(shape_x, shape_t):
    x, t = data(shape_x)
    t = t.reshape(shape_t)
    _, _, top = setup_layer(loss_text(), [x, t])
    assert top[0].shape == ()
    assert float(top[0].data) == pytest.approx(reference(x, t), rel=1e-12)


@pytest.mark.parametrize("mode", ["VALID", "FULL", "BATCH_SIZE", "NONE"])
@pytest.mark.parametrize("ignore", [None, -1])
def test_normalization_modes(mode, ignore):
    x, t = data((3, 4, 2), seed=1, ignore=ignore)
    ignore_param = f"ignore_label: {ignore}" if ignore is not None else ""
    _, _, top = setup_layer(loss_text(f"normalization: {mode} {ignore_param}"),
                            [x, t])
    expected = reference(x, t, mode=mode, ignore_label=ignore)
    assert float(top[0].data) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("loss_param, mode", [
    ("", "BATCH_SIZE"),                 # not VALID as in the other losses
    ("normalize: true", "VALID"), ("normalize: false", "BATCH_SIZE"),
    ("normalize: true normalization: FULL", "FULL")])
def test_default_and_deprecated_normalize(loss_param, mode):
    x, t = data((3, 4), seed=2, ignore=-1)
    _, _, top = setup_layer(loss_text(loss_param + " ignore_label: -1"),
                            [x, t])
    expected = reference(x, t, mode=mode, ignore_label=-1)
    assert float(top[0].data) == pytest.approx(expected, rel=1e-12)


def test_ignore_label_compares_the_truncated_target():
    # With ignore_label 0 every target in (−1, 1) truncates to 0: a soft
    # target of 0.5 is ignored, and only the target 1 counts.
    x = np.array([[0.3, -1.2, 2.0, 0.7]])
    t = np.array([[0.5, -0.5, 1.0, 0.0]])
    _, _, top = setup_layer(loss_text("ignore_label: 0 normalization: VALID"),
                            [x, t])
    assert float(top[0].data) == pytest.approx(math.log1p(math.exp(-2.0)),
                                               rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_stay_finite(dtype):
    # The stable form never takes exp of a large positive number.
    x = np.array([[100.0, -100.0, 100.0, -100.0, 0.0]])
    t = np.array([[0.0, 1.0, 1.0, 0.0, 0.5]])
    _, _, top = setup_layer(loss_text(), [x, t], dtype=dtype)
    assert float(top[0].data) == pytest.approx(200 + math.log(2), rel=1e-6)


def test_loss_weight_scales_the_loss():
    # Caffe's TestSigmoidCrossEntropyLoss uses loss_weight 3.7.
    x, t = data(seed=3)
    layer, bottom, top = setup_layer(loss_text(extra="loss_weight: 3.7"),
                                     [x, t])
    loss = layer.Forward(bottom, top)
    assert loss == pytest.approx(3.7 * reference(x, t), rel=1e-6)


@pytest.mark.parametrize("loss_param", [
    "", "normalization: VALID ignore_label: -1",
    "normalization: FULL ignore_label: 1", "normalization: NONE"])
def test_gradients(loss_param):
    x, t = data((3, 4, 2), seed=4, ignore=-1)
    layer, bottom, top = setup_layer(loss_text(loss_param), [x, t])
    check_gradients(layer, bottom, top, check_bottom=[0])


def test_gradient_is_sigmoid_minus_target_and_zero_where_ignored():
    # Caffe's TestIgnoreGradient, with the values spelled out.
    x, t = data((4, 6), seed=5)
    t[:2] = -1
    layer, bottom, top = setup_layer(
        loss_text("ignore_label: -1", "loss_weight: 2"), [x, t])
    layer.Backward(top, [True, False], bottom)
    dx = bottom[0].diff
    assert not dx[:2].any()
    for i in range(2, 4):
        for j in range(6):
            expected = 2 * (1 / (1 + math.exp(-x[i, j])) - t[i, j]) / 4
            assert dx[i, j] == pytest.approx(expected, rel=1e-12)


def test_matches_torch():
    torch = pytest.importorskip("torch")
    x, t = data((4, 3, 2), seed=6)
    layer, bottom, top = setup_layer(loss_text(), [x, t])
    tx = torch.from_numpy(x).requires_grad_()
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        tx, torch.from_numpy(t), reduction="sum") / 4
    expected.backward()
    assert float(top[0].data) == pytest.approx(expected.item(), rel=1e-12)
    layer.Backward(top, [True, False], bottom)
    np.testing.assert_allclose(bottom[0].diff, tx.grad.numpy(), rtol=1e-10,
                               atol=1e-15)


def test_targets_never_get_gradient():
    layer, bottom, top = setup_layer(loss_text(), list(data()))
    assert layer.allow_force_backward(0) and not layer.allow_force_backward(1)
    with pytest.raises(KaffeConfigError) as info:
        layer.Backward(top, [True, True], bottom)
    check_error(info, "propagate_down", "'true for bottom[1]'")


def test_target_count_must_match():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(loss_text(), [np.zeros((4, 3)), np.zeros((4, 2))])
    check_error(info, "bottom[1]", "'8 targets, shape (4, 2)'")


def test_first_dims_must_match():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(loss_text(), [np.zeros((4, 3)), np.zeros((3, 4))])
    check_error(info, "bottom", "'(4, 3) and (3, 4)'")
