"""SoftmaxWithLoss: normalization modes, ignore_label, the FLT_MIN clamp,
spatial labels, loss weights, gradients and errors."""
import math
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, empty_blobs, make_layer,
                                    setup_layer)

check_error = partial(check_layer_error, layer="loss")

FLT_MIN = 1.1754943508222875e-38  # the smallest normal float32


def loss_text(loss_param="", extra=""):
    return (f'name: "loss" type: "SoftmaxWithLoss" loss_param {{ {loss_param} }}'
            f" {extra}")


def reference(scores, labels, axis=1, mode="VALID", ignore_label=None):
    """−Σ log(max(p_label, FLT_MIN)) / normalizer, looping over items."""
    axis = axis % scores.ndim
    outer = int(np.prod(scores.shape[:axis]))
    channels = scores.shape[axis]
    inner = int(np.prod(scores.shape[axis + 1:]))
    s = scores.reshape(outer, channels, inner)
    lab = labels.reshape(outer, inner)
    loss = 0.0
    count = 0
    for i in range(outer):
        for j in range(inner):
            label = int(lab[i, j])
            if ignore_label is not None and label == ignore_label:
                continue
            biggest = max(s[i, c, j] for c in range(channels))
            total = sum(math.exp(s[i, c, j] - biggest) for c in range(channels))
            p = math.exp(s[i, label, j] - biggest) / total
            loss -= math.log(max(p, FLT_MIN))
            count += 1
    normalizer = {"FULL": outer * inner, "VALID": count,
                  "BATCH_SIZE": outer, "NONE": 1}[mode]
    return loss / max(1, normalizer)


def data(shape=(4, 5), axis=1, seed=0, ignore=None):
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal(shape) * 2
    label_shape = shape[:axis] + shape[axis + 1:]
    labels = rng.integers(0, shape[axis], size=label_shape).astype(float)
    if ignore is not None:
        labels.reshape(-1)[::3] = ignore
    return scores, labels


@pytest.mark.parametrize("shape, axis, label_shape", [
    ((4, 5), 1, (4,)), ((2, 3, 4), 1, (2, 4)), ((2, 3, 4), 2, (2, 3))])
def test_shapes(shape, axis, label_shape):
    layer, _, top = setup_layer(
        loss_text(extra=f"softmax_param {{ axis: {axis} }} "
                        "loss_weight: 1 loss_weight: 0"),
        [np.zeros(shape), np.zeros(label_shape)], n_top=2)
    assert top[0].shape == ()
    assert top[1].shape == shape


@pytest.mark.parametrize("mode", ["VALID", "FULL", "BATCH_SIZE", "NONE"])
@pytest.mark.parametrize("ignore", [None, 2])
def test_normalization_modes(mode, ignore):
    scores, labels = data(shape=(3, 4, 5), seed=1, ignore=ignore)
    ignore_param = f"ignore_label: {ignore}" if ignore is not None else ""
    _, _, top = setup_layer(
        loss_text(f"normalization: {mode} {ignore_param}"), [scores, labels])
    expected = reference(scores, labels, mode=mode, ignore_label=ignore)
    assert float(top[0].data) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("loss_param, mode", [
    ("", "VALID"), ("normalize: true", "VALID"),
    ("normalize: false", "BATCH_SIZE"),
    ("normalize: false normalization: FULL", "FULL")])
def test_deprecated_normalize(loss_param, mode):
    scores, labels = data(shape=(3, 4, 2), seed=2, ignore=0)
    _, _, top = setup_layer(loss_text(loss_param + " ignore_label: 0"),
                            [scores, labels])
    expected = reference(scores, labels, mode=mode, ignore_label=0)
    assert float(top[0].data) == pytest.approx(expected, rel=1e-12)


def test_everything_ignored_gives_zero():
    scores, _ = data()
    _, _, top = setup_layer(loss_text("ignore_label: 1"),
                            [scores, np.ones(4)])
    assert float(top[0].data) == 0.0


@pytest.mark.parametrize("dtype, gap", [(np.float32, 1000.0),
                                        (np.float64, 200.0)])
def test_hopeless_prediction_gives_87_3365(dtype, gap):
    # p_label underflows below FLT_MIN (in float32 to 0): the clamp gives
    # −log(FLT_MIN) = 87.3365, Caffe's famous stuck loss.
    scores = np.array([[0.0, gap], [gap, 0.0]])
    _, _, top = setup_layer(loss_text(), [scores, np.array([0.0, 1.0])],
                            dtype=dtype)
    assert float(top[0].data) == pytest.approx(87.3365, abs=1e-4)
    assert float(top[0].data) == pytest.approx(-math.log(FLT_MIN), rel=1e-6)


@pytest.mark.parametrize("shape, axis", [((2, 3, 4), 2), ((2, 3, 4), -1),
                                         ((2, 4, 3, 2), 1)])
def test_spatial_labels_match_loops(shape, axis):
    scores, labels = data(shape=shape, axis=axis % len(shape), seed=3,
                          ignore=1)
    _, _, top = setup_layer(
        loss_text("ignore_label: 1", f"softmax_param {{ axis: {axis} }}"),
        [scores, labels])
    expected = reference(scores, labels, axis=axis, ignore_label=1)
    assert float(top[0].data) == pytest.approx(expected, rel=1e-12)


def test_probability_top_matches_softmax():
    scores, labels = data(shape=(2, 3, 4), seed=4)
    _, _, top = setup_layer(loss_text(extra="loss_weight: 1 loss_weight: 0"),
                            [scores, labels], n_top=2)
    for i in range(2):
        for j in range(4):
            exps = [math.exp(scores[i, c, j]) for c in range(3)]
            for c in range(3):
                assert top[1].data[i, c, j] == pytest.approx(
                    exps[c] / sum(exps), rel=1e-12)


@pytest.mark.parametrize("mode, reduction, divide", [
    ("VALID", "mean", 1), ("NONE", "sum", 1), ("FULL", "sum", 2 * 5),
    ("BATCH_SIZE", "sum", 2)])
def test_matches_torch_cross_entropy(mode, reduction, divide):
    torch = pytest.importorskip("torch")
    scores, labels = data(shape=(2, 4, 5), seed=5, ignore=-1)
    _, _, top = setup_layer(
        loss_text(f"normalization: {mode} ignore_label: -1"), [scores, labels])
    expected = torch.nn.functional.cross_entropy(
        torch.from_numpy(scores), torch.from_numpy(labels).long(),
        ignore_index=-1, reduction=reduction).item() / divide
    assert float(top[0].data) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("loss_param", [
    "", "normalization: FULL ignore_label: 0", "normalization: BATCH_SIZE",
    "normalization: NONE ignore_label: 2", "normalize: false"])
def test_gradients(loss_param):
    scores, labels = data(shape=(3, 4, 2), seed=6, ignore=0)
    layer, bottom, top = setup_layer(loss_text(loss_param), [scores, labels])
    check_gradients(layer, bottom, top, check_bottom=[0])


def test_gradients_spatial_axis_and_probability_top():
    scores, labels = data(shape=(2, 3, 4), axis=2, seed=7, ignore=1)
    layer, bottom, top = setup_layer(
        loss_text("ignore_label: 1",
                  "softmax_param { axis: 2 } loss_weight: 1 loss_weight: 0"),
        [scores, labels], n_top=2)
    check_gradients(layer, bottom, top, check_bottom=[0], check_top=[0])


def gradient(loss_extra, scores, labels):
    layer, bottom, top = setup_layer(loss_text(extra=loss_extra),
                                     [scores, labels])
    loss = layer.Forward(bottom, top)
    layer.Backward(top, [True, False], bottom)
    return loss, bottom[0].diff.copy(), float(top[0].data)


def test_default_loss_weight_is_one():
    scores, labels = data(seed=8)
    layer = make_layer(loss_text())
    bottom, top = blobs_from([scores, labels]), empty_blobs(1)
    layer.SetUp(bottom, top)
    assert layer.loss(0) == 1.0
    assert float(top[0].diff) == 1.0
    loss, dx, value = gradient("", scores, labels)
    assert loss == pytest.approx(value)
    # d loss / d score = (p − onehot) / N with the default VALID normalizer.
    for i in range(4):
        exps = [math.exp(scores[i, c]) for c in range(5)]
        for c in range(5):
            onehot = 1.0 if c == int(labels[i]) else 0.0
            assert dx[i, c] == pytest.approx(
                (exps[c] / sum(exps) - onehot) / 4, rel=1e-10)


def test_loss_weight_scales_loss_and_gradient():
    scores, labels = data(seed=9)
    loss1, dx1, value1 = gradient("", scores, labels)
    loss3, dx3, value3 = gradient("loss_weight: 2.5", scores, labels)
    assert value3 == pytest.approx(value1)
    assert loss3 == pytest.approx(2.5 * loss1)
    np.testing.assert_allclose(dx3, 2.5 * dx1, rtol=1e-12)


def test_labels_never_get_gradient():
    layer, bottom, top = setup_layer(loss_text(), list(data()))
    assert layer.allow_force_backward(0) and not layer.allow_force_backward(1)
    with pytest.raises(KaffeConfigError) as info:
        layer.Backward(top, [True, True], bottom)
    message = str(info.value)
    check_error(info, "propagate_down", "'true for bottom[1]'")
    assert "label" in message


def test_two_tops_need_two_loss_weights():
    layer = make_layer(loss_text())
    scores, labels = data()
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([scores, labels]), empty_blobs(2))
    check_error(info, "loss_weight", "'1 value(s)'")


def test_label_count_must_match():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(loss_text(), [np.zeros((4, 5, 2)), np.zeros((4, 3))])
    check_error(info, "bottom[1]", "'12 labels, shape (4, 3)'")


def test_first_dims_must_match():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(loss_text(), [np.zeros((4, 5)), np.zeros((2, 2))])
    check_error(info, "bottom", "'(4, 5) and (2, 2)'")


def test_label_out_of_range():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(loss_text(), [np.zeros((2, 3)), np.array([0.0, 3.0])])
    check_error(info, "bottom[1]", "3")


def test_axis_out_of_range():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(loss_text(extra="softmax_param { axis: 2 }"),
                    [np.zeros((2, 3)), np.zeros(2)])
    check_error(info, "softmax_param.axis", "2")
