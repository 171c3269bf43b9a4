"""Reverse and Transpose (OCR forks): loops, inverse backward, errors."""
import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, empty_blobs,
                                    make_layer, setup_layer)


def reverse_text(axis):
    return f'name: "rev" type: "Reverse" reverse_param {{ axis: {axis} }}'


def transpose_text(dims):
    fields = " ".join(f"dim: {d}" for d in dims)
    return f'name: "tr" type: "Transpose" transpose_param {{ {fields} }}'


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_reverse_matches_a_loop(axis):
    x = np.random.default_rng(0).standard_normal((4, 3, 5))
    layer, bottom, top = setup_layer(reverse_text(axis), [x])
    expected = np.empty_like(x)
    d = x.shape[axis]
    for index in np.ndindex(*x.shape):
        source = list(index)
        source[axis] = d - 1 - index[axis]
        expected[index] = x[tuple(source)]
    np.testing.assert_array_equal(top[0].data, expected)
    check_gradients(layer, bottom, top)


def test_reverse_axis_out_of_range():
    layer = make_layer(reverse_text(3))
    with pytest.raises(KaffeShapeError) as info:
        layer.SetUp(blobs_from([np.zeros((2, 3, 4))]), empty_blobs(1))
    check_layer_error(info, "reverse_param.axis", "3", layer="rev")


def test_transpose_is_the_fork_index_map():
    # The CRNN head: (N, C, H, W) → (W, H, N, C).
    x = np.random.default_rng(1).standard_normal((2, 3, 1, 5))
    layer, bottom, top = setup_layer(transpose_text((3, 2, 0, 1)), [x])
    assert top[0].shape == (5, 1, 2, 3)
    for n, c, h, w in np.ndindex(*x.shape):
        assert top[0].data[w, h, n, c] == x[n, c, h, w]
    check_gradients(layer, bottom, top)


@pytest.mark.parametrize("dims", [(0, 1), (0, 0, 1), (0, 1, 3)])
def test_transpose_needs_a_permutation(dims):
    layer = make_layer(transpose_text(dims))
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([np.zeros((2, 3, 4))]), empty_blobs(1))
    assert info.value.field == "transpose_param.dim"


@pytest.mark.parametrize("text", [reverse_text(0), transpose_text((1, 0))])
def test_no_in_place(text):
    layer = make_layer(text + ' bottom: "x" top: "x"')
    blobs = blobs_from([np.zeros((2, 3))])
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs, blobs)
    assert info.value.field == "top"
