"""InfogainLoss: H from bottom[2] or a binaryproto, the internal softmax,
axis, ignore_label, normalization, the row-sum gradient, errors."""
import math
from functools import partial

import numpy as np
import pytest

from kaffe.core.blob import Blob
from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, empty_blobs, make_layer,
                                    setup_layer)

check_error = partial(check_layer_error, layer="loss")

LOG_THRESHOLD = float(np.float32(1e-20))


def loss_text(param="", loss_param="", extra=""):
    return (f'name: "loss" type: "InfogainLoss" '
            f'infogain_loss_param {{ {param} }} loss_param {{ {loss_param} }} '
            f'{extra}')


def reference(scores, labels, h, axis=1, mode="VALID", ignore_label=None):
    """Per item: p = softmax over the class axis, then
    −Σ_k H[label, k]·log(max(p_k, 1e-20)); summed over the non-ignored items
    and divided by the normalizer."""
    axis = axis % scores.ndim
    outer = int(np.prod(scores.shape[:axis]))
    k_count = scores.shape[axis]
    inner = int(np.prod(scores.shape[axis + 1:]))
    s = scores.reshape(outer, k_count, inner)
    lab = labels.reshape(outer, inner)
    h = h.reshape(k_count, k_count)
    loss, count = 0.0, 0
    for i in range(outer):
        for j in range(inner):
            label = int(lab[i, j])
            if ignore_label is not None and label == ignore_label:
                continue
            exps = [math.exp(s[i, k, j]) for k in range(k_count)]
            for k in range(k_count):
                p = exps[k] / sum(exps)
                loss -= h[label, k] * math.log(max(p, LOG_THRESHOLD))
            count += 1
    normalizer = {"FULL": outer * inner, "VALID": count,
                  "BATCH_SIZE": outer, "NONE": 1}[mode]
    return loss / max(1, normalizer)


def data(shape=(4, 2, 5, 2), axis=2, seed=0, ignore=None):
    """Caffe's test setup: scores U(−0.5, 2), labels in [0, K), H U(0.1, 2)
    of shape (1, 1, K, K)."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(-0.5, 2.0, size=shape)
    k = shape[axis]
    label_shape = shape[:axis] + (1,) + shape[axis + 1:]
    labels = rng.integers(0, k, size=label_shape).astype(float)
    if ignore is not None:
        labels.reshape(-1)[::3] = ignore
    h = rng.uniform(0.1, 2.0, size=(1, 1, k, k))
    return scores, labels, h


def write_h(tmp_path, h):
    blob = Blob(h.shape, dtype=np.float32)
    blob.data[...] = h
    path = tmp_path / "infogain.binaryproto"
    path.write_bytes(blob.to_proto().SerializeToString())
    return str(path)


@pytest.mark.parametrize("shape, axis", [((4, 5), 1), ((4, 2, 5, 2), 2),
                                         ((3, 4, 2), -1)])
def test_shapes_and_forward(shape, axis):
    scores, labels, h = data(shape, axis % len(shape))
    _, _, top = setup_layer(
        loss_text(f"axis: {axis}", extra="loss_weight: 1 loss_weight: 0"),
        [scores, labels, h], n_top=2)
    assert top[0].shape == ()
    assert top[1].shape == shape
    expected = reference(scores, labels, h, axis=axis)
    assert float(top[0].data) == pytest.approx(expected, rel=1e-12)


def test_probability_top_is_the_softmax_along_axis():
    scores, labels, h = data()
    _, _, top = setup_layer(loss_text("axis: 2",
                                      extra="loss_weight: 1 loss_weight: 0"),
                            [scores, labels, h], n_top=2)
    exps = np.exp(scores)
    np.testing.assert_allclose(top[1].data,
                               exps / exps.sum(axis=2, keepdims=True),
                               rtol=1e-12)


def test_h_from_a_binaryproto_source(tmp_path):
    scores, labels, h = data(seed=1)
    h = h.astype(np.float32).astype(np.float64)   # as the file stores it
    source = write_h(tmp_path, h)
    _, _, top = setup_layer(loss_text(f'axis: 2 source: "{source}"'),
                            [scores, labels])
    expected = reference(scores, labels, h, axis=2)
    assert float(top[0].data) == pytest.approx(expected, rel=1e-12)


def test_bottom_h_replaces_source(tmp_path):
    scores, labels, h = data(seed=2)
    source = write_h(tmp_path, np.zeros_like(h))
    _, _, top = setup_layer(loss_text(f'axis: 2 source: "{source}"'),
                            [scores, labels, h])
    expected = reference(scores, labels, h, axis=2)
    assert float(top[0].data) == pytest.approx(expected, rel=1e-12)


def test_identity_h_is_softmax_with_loss():
    scores, labels, _ = data((5, 4), axis=1, seed=3)
    eye = np.eye(4)
    _, _, top = setup_layer(loss_text(), [scores, labels, eye])
    _, _, softmax_top = setup_layer('name: "loss" type: "SoftmaxWithLoss"',
                                    [scores, labels])
    assert float(top[0].data) == pytest.approx(float(softmax_top[0].data),
                                               rel=1e-12)


@pytest.mark.parametrize("mode", ["VALID", "FULL", "BATCH_SIZE", "NONE"])
@pytest.mark.parametrize("ignore", [None, 1])
def test_normalization_modes(mode, ignore):
    scores, labels, h = data(seed=4, ignore=ignore)
    ignore_param = f"ignore_label: {ignore}" if ignore is not None else ""
    _, _, top = setup_layer(
        loss_text("axis: 2", f"normalization: {mode} {ignore_param}"),
        [scores, labels, h])
    expected = reference(scores, labels, h, axis=2, mode=mode,
                         ignore_label=ignore)
    assert float(top[0].data) == pytest.approx(expected, rel=1e-12)


def test_the_log_is_clamped_at_1e_20():
    # p_1 = e^−100 / (1 + e^−100) underflows the clamp: log(1e-20) is used.
    scores = np.array([[0.0, -100.0]])
    h = np.array([[0.0, 1.0], [0.0, 0.0]])
    _, _, top = setup_layer(loss_text(), [scores, np.array([0.0]), h])
    assert float(top[0].data) == pytest.approx(-math.log(LOG_THRESHOLD),
                                               rel=1e-12)


@pytest.mark.parametrize("param, loss_param, ignore", [
    ("axis: 2", "", None), ("axis: 2", "ignore_label: 1", 1),
    ("axis: 1", "normalization: BATCH_SIZE", None),
    ("axis: -1", "normalization: NONE ignore_label: 0", 0)])
def test_gradients(param, loss_param, ignore):
    axis = {"axis: 2": 2, "axis: 1": 1, "axis: -1": 3}[param]
    scores, labels, h = data(axis=axis, seed=5, ignore=ignore)
    layer, bottom, top = setup_layer(loss_text(param, loss_param),
                                     [scores, labels, h])
    check_gradients(layer, bottom, top, check_bottom=[0])


def test_gradient_uses_the_row_sums_of_h(tmp_path):
    # d loss / dx_k = (p_k·Σ_j H[l, j] − H[l, k]) / N: H need not be
    # normalized; the same with H from the source file.
    scores, labels, h = data((3, 4), axis=1, seed=6)
    h = h.astype(np.float32).astype(np.float64)
    source = write_h(tmp_path, h)
    for bottoms, text in (([scores, labels, h], loss_text()),
                          ([scores, labels],
                           loss_text(f'source: "{source}"'))):
        layer, bottom, top = setup_layer(text + " loss_weight: 2", bottoms)
        layer.Backward(top, [True] + [False] * (len(bottoms) - 1), bottom)
        hk = h.reshape(4, 4)
        for i in range(3):
            label = int(labels[i, 0])
            p = np.exp(scores[i]) / np.exp(scores[i]).sum()
            expected = 2 * (p * hk[label].sum() - hk[label]) / 3
            np.testing.assert_allclose(bottom[0].diff[i], expected,
                                       rtol=1e-12)


def test_matches_torch_autograd():
    torch = pytest.importorskip("torch")
    scores, labels, h = data(seed=7)
    layer, bottom, top = setup_layer(loss_text("axis: 2"),
                                     [scores, labels, h])
    ts = torch.from_numpy(scores).requires_grad_()
    log_p = torch.log_softmax(ts, dim=2)                  # (4, 2, 5, 2)
    index = torch.from_numpy(labels.astype(np.int64))[:, :, 0, :]
    rows = torch.from_numpy(h.reshape(5, 5))[index]       # (4, 2, 2, 5)
    loss = -(rows * log_p.permute(0, 1, 3, 2)).sum() / 16
    loss.backward()
    assert float(top[0].data) == pytest.approx(loss.item(), rel=1e-12)
    layer.Backward(top, [True, False, False], bottom)
    np.testing.assert_allclose(bottom[0].diff, ts.grad.numpy(), rtol=1e-10,
                               atol=1e-14)


# -- errors ------------------------------------------------------------------------

def test_labels_and_h_never_get_gradient():
    layer, bottom, top = setup_layer(loss_text("axis: 2"), list(data()))
    with pytest.raises(KaffeConfigError) as info:
        layer.Backward(top, [True, True, False], bottom)
    check_error(info, "propagate_down", "'true for bottom[1]'")
    with pytest.raises(KaffeConfigError) as info:
        layer.Backward(top, [True, False, True], bottom)
    check_error(info, "propagate_down", "'true for bottom[2]'")


def test_deprecated_normalize_is_refused():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(loss_text("axis: 2", "normalize: true"), list(data()))
    check_error(info, "loss_param.normalize", "'true'")


def test_source_is_needed_without_a_third_bottom():
    scores, labels, _ = data()
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(loss_text("axis: 2"), [scores, labels])
    check_error(info, "infogain_loss_param.source", "'nothing'")


def test_missing_source_file(tmp_path):
    scores, labels, _ = data()
    path = str(tmp_path / "missing.binaryproto")
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(loss_text(f'axis: 2 source: "{path}"'), [scores, labels])
    check_error(info, "infogain_loss_param.source", repr(path))
    assert "not found" in str(info.value)


def test_h_of_the_wrong_size_in_bottom_2():
    scores, labels, _ = data()
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(loss_text("axis: 2"), [scores, labels, np.ones((4, 4))])
    check_error(info, "bottom[2]", "'16 values, shape (4, 4)'")


def test_h_of_the_wrong_size_in_source(tmp_path):
    scores, labels, _ = data()
    source = write_h(tmp_path, np.ones((1, 1, 3, 3)))
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(loss_text(f'axis: 2 source: "{source}"'), [scores, labels])
    check_error(info, "infogain_loss_param.source",
                "'9 values, shape (1, 1, 3, 3)'")


def test_label_count_must_match():
    scores, _, h = data()
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(loss_text("axis: 2"), [scores, np.zeros((4, 3)), h])
    check_error(info, "bottom[1]", "'12 labels, shape (4, 3)'")


def test_label_out_of_range():
    scores, labels, h = data()
    labels.reshape(-1)[3] = 5
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(loss_text("axis: 2"), [scores, labels, h])
    check_error(info, "bottom[1]", "5")


def test_axis_out_of_range():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(loss_text("axis: 4"), list(data()))
    check_error(info, "infogain_loss_param.axis", "4")


def test_at_most_three_bottoms_and_two_tops():
    layer = make_layer(loss_text("axis: 2"))
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from(list(data())), empty_blobs(3))
    check_error(info, "top", "'3 top blob(s)'")
