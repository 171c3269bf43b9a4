"""CTCGreedyDecoder (OCR forks): the fork's best-path loop, blanks, merging,
sequence indicators, scores, no gradient."""
import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (blobs_from, empty_blobs, make_layer,
                                    setup_layer)


def text(fields=""):
    return (f'name: "ctc" type: "CTCGreedyDecoder" '
            f'ctc_decoder_param {{ {fields} }}')


def one_hot_steps(labels, classes=4, streams=1):
    """(T, N, C) scores whose best class at step t is labels[t]."""
    scores = np.full((len(labels), streams, classes), 0.1)
    for t, label in enumerate(labels):
        scores[t, :, label] = 0.7
    return scores


@pytest.mark.parametrize("fields, expected", [
    ("blank_index: 0", [1, 2, 1, 3]),
    ("blank_index: 0 ctc_merge_repeated: false", [1, 1, 2, 1, 3, 3]),
    ("blank_index: 3", [1, 0, 2, 0, 1])])
def test_best_path(fields, expected):
    scores = one_hot_steps([1, 1, 0, 2, 0, 1, 3, 3])
    _, _, top = setup_layer(text(fields), [scores], n_top=2)
    assert top[0].shape == (1, 8, 1, 1)
    row = top[0].data.reshape(-1)
    np.testing.assert_array_equal(row[:len(expected)], expected)
    assert (row[len(expected):] == -1).all()
    np.testing.assert_allclose(top[1].data.reshape(-1), [-0.7 * 8])


def test_negative_blank_is_the_last_class():
    _, _, top = setup_layer(text("blank_index: -1"),
                            [one_hot_steps([3, 2, 3, 0])])
    np.testing.assert_array_equal(top[0].data.reshape(-1), [2, 0, -1, -1])


def test_sequence_indicators_end_each_sequence():
    scores = np.concatenate([one_hot_steps([1, 2, 1, 2]),
                             one_hot_steps([2, 2, 1, 1])], axis=1)
    indicators = np.array([[1, 1], [1, 1], [0, 1], [1, 1]], float)
    _, _, top = setup_layer(text("blank_index: 0"), [scores, indicators],
                            n_top=2)
    np.testing.assert_array_equal(top[0].data.reshape(2, 4),
                                  [[1, 2, -1, -1], [2, 1, -1, -1]])
    np.testing.assert_allclose(top[1].data.reshape(-1), [-1.4, -2.8])


def test_first_maximum_wins_ties():
    scores = np.array([[[0.5, 0.5, 0.1]]])
    _, _, top = setup_layer(text("blank_index: 2"), [scores])
    assert top[0].data.reshape(-1)[0] == 0


def test_no_gradient():
    layer, bottom, top = setup_layer(text(), [one_hot_steps([1, 2])])
    with pytest.raises(KaffeConfigError) as info:
        layer.Backward(top, [True], bottom)
    assert info.value.field == "propagate_down"
    layer.Backward(top, [False], bottom)


def test_input_must_be_time_major_3d():
    layer = make_layer(text())
    with pytest.raises(KaffeShapeError):
        layer.SetUp(blobs_from([np.zeros((2, 3))]), empty_blobs(1))
