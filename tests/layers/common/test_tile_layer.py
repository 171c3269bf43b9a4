"""Tile: whole-block copies along an axis, summed gradients, errors."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (blobs_from, check_backward_overwrites,
                                    check_gradients, check_layer_error,
                                    make_layer, setup_in_place, setup_layer)

check_error = partial(check_layer_error, layer="tile")


def tile(param):
    return f'name: "tile" type: "Tile" top: "tiled" tile_param {{ {param} }}'


X = np.random.default_rng(0).standard_normal((2, 3, 4))


@pytest.mark.parametrize("param, expected", [
    ("tiles: 2", (2, 6, 4)), ("axis: 0 tiles: 3", (6, 3, 4)),
    ("axis: -1 tiles: 2", (2, 3, 8)), ("tiles: 1", (2, 3, 4))])
def test_shapes(param, expected):
    _, _, top = setup_layer(tile(param), [X])
    assert top[0].shape == expected


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_forward_repeats_whole_blocks(axis):
    _, _, top = setup_layer(tile(f"axis: {axis} tiles: 3"), [X])
    d = X.shape[axis]
    for index in np.ndindex(top[0].shape):
        source = list(index)
        source[axis] = index[axis] % d
        assert top[0].data[index] == X[tuple(source)]


def test_backward_sums_the_tiles():
    layer, bottom, top = setup_layer(tile("tiles: 2"), [X])
    dy = np.random.default_rng(1).standard_normal(top[0].shape)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    for index in np.ndindex(X.shape):
        n, c, h = index
        assert bottom[0].diff[index] == pytest.approx(dy[n, c, h] + dy[n, c + 3, h])
    check_backward_overwrites(layer, bottom, top)


@pytest.mark.parametrize("param", ["tiles: 3", "axis: 0 tiles: 2", "axis: 2 tiles: 2"])
def test_gradients(param):
    x = np.random.default_rng(2).standard_normal((2, 2, 3))
    layer, bottom, top = setup_layer(tile(param), [x])
    check_gradients(layer, bottom, top)


def test_matches_torch_repeat():
    torch = pytest.importorskip("torch")
    dy = np.random.default_rng(3).standard_normal((2, 3, 12))
    layer, bottom, top = setup_layer(tile("axis: 2 tiles: 3"), [X])
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    tx = torch.tensor(X, requires_grad=True)
    ty = tx.repeat(1, 1, 3)
    ty.backward(torch.tensor(dy))
    np.testing.assert_array_equal(top[0].data, ty.detach().numpy())
    np.testing.assert_allclose(bottom[0].diff, tx.grad.numpy(), rtol=1e-12)


def test_in_place_with_one_tile():
    layer, bottom, top = setup_in_place(tile("tiles: 1"), [X])
    check_gradients(layer, bottom, top)


def test_not_in_place_with_several_tiles():
    layer = make_layer(tile("tiles: 2"))
    blob = blobs_from([X])[0]
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp([blob], [blob])
    check_error(info, "top", "'tiled'")


def test_tiles_must_be_given():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(tile("axis: 1"), [X])
    check_error(info, "tile_param.tiles", "'nothing'")


@pytest.mark.parametrize("tiles", [0, -2])
def test_tiles_must_be_positive(tiles):
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(tile(f"tiles: {tiles}"), [X])
    check_error(info, "tile_param.tiles", str(tiles))


def test_axis_out_of_range():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(tile("axis: 3 tiles: 2"), [X])
    check_error(info, "tile_param.axis", "3")
