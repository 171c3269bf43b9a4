"""ShuffleChannel (ShuffleNet fork): the fork's copy loop, inverse in
backward, errors."""
import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, empty_blobs,
                                    make_layer, setup_layer)


def text(group):
    return (f'name: "shuffle" type: "ShuffleChannel" '
            f'shuffle_channel_param {{ group: {group} }}')


def fork_loop(x, group):
    """Resize_cpu: channel i·cols + j of the input goes to j·group + i."""
    out = np.empty_like(x)
    cols = x.shape[1] // group
    for n in range(x.shape[0]):
        for i in range(group):
            for j in range(cols):
                out[n, j * group + i] = x[n, i * cols + j]
    return out


@pytest.mark.parametrize("group, shape", [(2, (2, 6, 3, 4)), (3, (1, 6, 5)),
                                          (1, (2, 4, 2, 2)), (6, (1, 6, 1, 1))])
def test_forward_matches_the_fork_and_gradients(group, shape):
    x = np.random.default_rng(0).standard_normal(shape)
    layer, bottom, top = setup_layer(text(group), [x])
    np.testing.assert_array_equal(top[0].data, fork_loop(x, group))
    check_gradients(layer, bottom, top)


def test_group_must_divide_channels():
    layer = make_layer(text(4))
    with pytest.raises(KaffeShapeError) as info:
        layer.SetUp(blobs_from([np.zeros((1, 6, 2, 2))]), empty_blobs(1))
    check_layer_error(info, "shuffle_channel_param.group", "4",
                      layer="shuffle")


def test_group_zero_is_refused():
    layer = make_layer(text(0))
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([np.zeros((1, 6, 2, 2))]), empty_blobs(1))
    check_layer_error(info, "shuffle_channel_param.group", "0",
                      layer="shuffle")
