"""Pooling's ceil_mode (the forks of BVLC pull request #3057) is round_mode."""
import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError
from kaffe.testing.gradient import (blobs_from, check_layer_error,
                                    empty_blobs, make_layer, setup_layer)


@pytest.mark.parametrize("flag, mode, size", [("false", "FLOOR", 3),
                                              ("true", "CEIL", 4)])
def test_ceil_mode_is_round_mode(flag, mode, size):
    text = ('name: "pool" type: "Pooling" pooling_param { pool: MAX '
            f'kernel_size: 3 stride: 2 ceil_mode: {flag} }}')
    layer, _, top = setup_layer(text, [np.zeros((1, 1, 8, 8))])
    assert layer.round_mode == mode and top[0].shape[2:] == (size, size)
    same = text.replace(f"ceil_mode: {flag}", f"round_mode: {mode}")
    _, _, other = setup_layer(same, [np.zeros((1, 1, 8, 8))])
    assert other[0].shape == top[0].shape


def test_ceil_mode_contradicting_round_mode_is_refused():
    layer = make_layer('name: "pool" type: "Pooling" pooling_param { '
                       'kernel_size: 2 ceil_mode: false round_mode: CEIL }')
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([np.zeros((1, 1, 4, 4))]), empty_blobs(1))
    check_layer_error(info, "pooling_param.ceil_mode",
                      "'ceil_mode: false with round_mode: CEIL'", layer="pool")
