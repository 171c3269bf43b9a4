"""Accuracy: top-k with ties counting against, ignore_label, per-class top."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (check_gradients, check_layer_error,
                                    setup_layer)

check_error = partial(check_layer_error, layer="acc")


def accuracy_text(param=""):
    return f'name: "acc" type: "Accuracy" accuracy_param {{ {param} }}'


def reference(scores, labels, axis=1, top_k=1, ignore_label=None):
    """Loop over (outer, inner) items; a class ranks above the true one when
    its score is >= the true score, so ties count against the prediction."""
    axis = axis % scores.ndim
    outer = int(np.prod(scores.shape[:axis]))
    channels = scores.shape[axis]
    inner = int(np.prod(scores.shape[axis + 1:]))
    s = scores.reshape(outer, channels, inner)
    lab = labels.reshape(outer, inner)
    correct = count = 0
    hits = [0] * channels
    totals = [0] * channels
    for i in range(outer):
        for j in range(inner):
            label = int(lab[i, j])
            if ignore_label is not None and label == ignore_label:
                continue
            count += 1
            totals[label] += 1
            better = -1  # the true class itself is counted
            for c in range(channels):
                if s[i, c, j] >= s[i, label, j]:
                    better += 1
            if better < top_k:
                correct += 1
                hits[label] += 1
    accuracy = correct / count if count else 0.0
    per_class = [hits[c] / totals[c] if totals[c] else 0.0
                 for c in range(channels)]
    return accuracy, per_class


def data(shape=(20, 5), axis=1, seed=0, label_range=None):
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal(shape)
    label_shape = shape[:axis] + shape[axis + 1:]
    labels = rng.integers(0, label_range or shape[axis], size=label_shape)
    return scores, labels.astype(float)


@pytest.mark.parametrize("shape, param, expected", [
    ((4, 3), "", (3,)), ((2, 3, 4), "axis: 2", (4,)),
    ((2, 3, 4, 5), "axis: 1", (3,))])
def test_shapes(shape, param, expected):
    scores = np.zeros(shape)
    axis = 2 if "axis: 2" in param else 1
    labels = np.zeros(shape[:axis] + shape[axis + 1:])
    _, _, top = setup_layer(accuracy_text(param), [scores, labels], n_top=2)
    assert top[0].shape == ()
    assert top[1].shape == expected


@pytest.mark.parametrize("top_k", [1, 2, 4])
def test_top_k_matches_loops(top_k):
    scores, labels = data(seed=top_k)
    _, _, top = setup_layer(accuracy_text(f"top_k: {top_k}"),
                            [scores, labels], n_top=2)
    accuracy, per_class = reference(scores, labels, top_k=top_k)
    assert float(top[0].data) == pytest.approx(accuracy)
    np.testing.assert_allclose(top[1].data, per_class)


def test_ties_count_against():
    scores = np.array([[1.0, 1.0, 0.0],     # tie with class 0: wrong for top-1
                       [2.0, 2.0, 2.0],     # three-way tie: wrong for top-2
                       [0.0, 3.0, 1.0]])    # clear win
    labels = np.array([1.0, 0.0, 1.0])
    _, _, top = setup_layer(accuracy_text(), [scores, labels])
    assert float(top[0].data) == pytest.approx(1 / 3)
    _, _, top = setup_layer(accuracy_text("top_k: 2"), [scores, labels])
    assert float(top[0].data) == pytest.approx(2 / 3)
    _, _, top = setup_layer(accuracy_text("top_k: 3"), [scores, labels])
    assert float(top[0].data) == 1.0


def test_ignore_label_and_per_class():
    scores, labels = data(shape=(30, 4), seed=7)
    labels[::3] = -1
    _, _, top = setup_layer(accuracy_text("ignore_label: -1"),
                            [scores, labels], n_top=2)
    accuracy, per_class = reference(scores, labels, ignore_label=-1)
    assert float(top[0].data) == pytest.approx(accuracy)
    np.testing.assert_allclose(top[1].data, per_class)


def test_absent_class_and_all_ignored_read_zero():
    scores = np.array([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    labels = np.array([0.0, 1.0])
    _, _, top = setup_layer(accuracy_text(), [scores, labels], n_top=2)
    np.testing.assert_array_equal(top[1].data, [1.0, 1.0, 0.0])
    _, _, top = setup_layer(accuracy_text("ignore_label: 0"),
                            [scores, np.zeros(2)])
    assert float(top[0].data) == 0.0


@pytest.mark.parametrize("axis", [2, -1])
def test_spatial_axis_matches_loops(axis):
    scores, labels = data(shape=(2, 3, 6), axis=2, seed=3)
    _, _, top = setup_layer(accuracy_text(f"axis: {axis} top_k: 2"),
                            [scores, labels], n_top=2)
    accuracy, per_class = reference(scores, labels, axis=2, top_k=2)
    assert float(top[0].data) == pytest.approx(accuracy)
    np.testing.assert_allclose(top[1].data, per_class)


def test_gradient_is_zero():
    # Piecewise constant: with untied scores the numeric gradient is 0 too.
    scores, labels = data(shape=(4, 3), seed=4)
    layer, bottom, top = setup_layer(accuracy_text(), [scores, labels])
    check_gradients(layer, bottom, top, check_bottom=[0])
    assert not bottom[0].diff.any()


def test_top_k_above_classes():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(accuracy_text("top_k: 6"), list(data()))
    check_error(info, "accuracy_param.top_k", "6")


def test_axis_out_of_range():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(accuracy_text("axis: 2"), list(data()))
    check_error(info, "accuracy_param.axis", "2")


def test_label_count_must_match():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(accuracy_text(), [np.zeros((4, 3)), np.zeros(2)])
    check_error(info, "bottom[1]", "'2 labels'")


def test_label_out_of_range():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(accuracy_text(), [np.zeros((2, 3)), np.array([0.0, 3.0])])
    check_error(info, "bottom[1]", "3")
