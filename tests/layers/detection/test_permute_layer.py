"""Permute (SSD fork): the order with unlisted axes appended, forward as a
transpose, gradients, errors."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError
from kaffe.testing.gradient import (check_gradients, check_layer_error,
                                    setup_layer)

check_error = partial(check_layer_error, layer="perm")


def permute_text(*order):
    return ('name: "perm" type: "Permute" permute_param { '
            + " ".join(f"order: {o}" for o in order) + " }")


@pytest.mark.parametrize("order, full", [
    ((0, 2, 3, 1), (0, 2, 3, 1)),    # SSD's channels-last
    ((1, 0), (1, 0, 2, 3)),          # unlisted axes follow in order
    ((3,), (3, 0, 1, 2)),
    ((), (0, 1, 2, 3))])             # identity
def test_forward_is_the_transpose(order, full):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    layer, _, top = setup_layer(permute_text(*order), [x])
    assert layer.order == full
    np.testing.assert_array_equal(top[0].data, np.transpose(x, full))
    # element by element: top[i0, i1, i2, i3] = x at the permuted index
    for index in [(1, 2, 3, 0), (0, 0, 1, 2)]:
        if all(i < s for i, s in zip(index, top[0].shape)):
            source = [0] * 4
            for axis, i in zip(full, index):
                source[axis] = i
            assert top[0].data[index] == x[tuple(source)]


@pytest.mark.parametrize("order", [(0, 2, 3, 1), (2, 0), (1, 0, 2)])
def test_gradients(order):
    x = np.random.default_rng(1).standard_normal((2, 3, 2, 4)[:max(
        len(order), 3)] if len(order) == 3 else (2, 3, 2, 4))
    layer, bottom, top = setup_layer(permute_text(*order), [x])
    check_gradients(layer, bottom, top)


@pytest.mark.parametrize("order, received", [((0, 4), 4), ((1, 1), "(1, 1)")])
def test_errors(order, received):
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(permute_text(*order), [np.zeros((2, 3, 4, 5))])
    check_error(info, "permute_param.order", received)
