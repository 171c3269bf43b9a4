"""Embed: shapes, a loop reference, weight gradients, errors."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.core.registry import create_layer
from kaffe.proto import caffe_pb2
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, empty_blobs,
                                    setup_layer)

check_error = partial(check_layer_error, layer="embed")

FILLERS = """
  weight_filler { type: "gaussian" std: 1 }
  bias_filler { type: "gaussian" std: 1 }"""


def embed(num_output=4, input_dim=5, extra=""):
    return (f'name: "embed" type: "Embed" embed_param {{ '
            f'num_output: {num_output} input_dim: {input_dim} {FILLERS} '
            f'{extra} }}')


def indices(shape, input_dim=5, seed=0):
    return np.random.default_rng(seed).integers(0, input_dim, size=shape)


def reference(x, w, b):
    """Each input value picks a row of W (then the bias is added)."""
    y = np.zeros(x.shape + (w.shape[1],))
    for i in np.ndindex(*x.shape):
        for n in range(w.shape[1]):
            y[i + (n,)] = w[int(x[i]), n] + (b[n] if b is not None else 0.0)
    return y


@pytest.mark.parametrize("shape, expected", [
    ((4,), (4, 3)), ((2, 3), (2, 3, 3)), ((4, 1, 1, 1), (4, 1, 1, 1, 3))])
def test_shapes(shape, expected):
    layer, _, top = setup_layer(embed(3), [np.zeros(shape)])
    assert top[0].shape == expected
    assert layer.blobs[0].shape == (5, 3)
    assert layer.blobs[1].shape == (3,)


def test_no_bias_has_one_blob():
    layer, _, _ = setup_layer(embed(extra="bias_term: false"), [[1.0]])
    assert len(layer.blobs) == 1


@pytest.mark.parametrize("bias", [True, False])
def test_forward_matches_loops(bias):
    x = indices((3, 4))
    layer, _, top = setup_layer(
        embed(extra=f"bias_term: {str(bias).lower()}"), [x])
    b = layer.blobs[1].data if bias else None
    np.testing.assert_allclose(top[0].data,
                               reference(x, layer.blobs[0].data, b),
                               rtol=1e-15)


@pytest.mark.parametrize("extra", ["", "bias_term: false"])
def test_gradients(extra):
    # Repeated indices: rows of W that are read twice get two gradients.
    layer, bottom, top = setup_layer(embed(extra=extra),
                                     [[[0, 3, 3], [1, 0, 3]]])
    check_gradients(layer, bottom, top, check_bottom=[])


def test_param_diffs_accumulate():
    x = np.array([2.0, 0.0, 2.0, 4.0])
    layer, bottom, top = setup_layer(embed(), [x])
    dy = np.random.default_rng(1).standard_normal((4, 4))
    top[0].diff[...] = dy
    for blob in layer.blobs:
        blob.diff[...] = 0
    layer.Backward(top, [False], bottom)
    first = [blob.diff.copy() for blob in layer.blobs]
    # The loop reference: dW[k] = Σ over the inputs equal to k of dy.
    for k in range(5):
        expected = sum((dy[m] for m in range(4) if x[m] == k),
                       np.zeros(4))
        np.testing.assert_allclose(first[0][k], expected)
    np.testing.assert_allclose(first[1], dy.sum(axis=0))
    layer.Backward(top, [False], bottom)
    for blob, once in zip(layer.blobs, first):
        np.testing.assert_allclose(blob.diff, 2 * once)


def test_param_propagate_down_false_leaves_param_diffs():
    layer, bottom, top = setup_layer(embed(), [[1.0, 2.0]])
    for j, blob in enumerate(layer.blobs):
        blob.diff[...] = 7
        layer.set_param_propagate_down(j, False)
    top[0].diff[...] = 1
    layer.Backward(top, [False], bottom)
    assert all((blob.diff == 7).all() for blob in layer.blobs)


def test_matches_torch_embedding():
    torch = pytest.importorskip("torch")
    x = indices((6,), seed=2)
    layer, bottom, top = setup_layer(embed(extra="bias_term: false"), [x])
    dy = np.random.default_rng(3).standard_normal((6, 4))
    top[0].diff[...] = dy
    layer.blobs[0].diff[...] = 0
    layer.Backward(top, [False], bottom)
    w = torch.from_numpy(layer.blobs[0].data.copy()).requires_grad_()
    y = torch.nn.functional.embedding(torch.from_numpy(x), w)
    y.backward(torch.from_numpy(dy))
    np.testing.assert_array_equal(top[0].data, y.detach().numpy())
    np.testing.assert_allclose(layer.blobs[0].diff, w.grad.numpy(),
                               rtol=1e-15)


def test_no_force_backward_to_the_indices():
    layer, _, _ = setup_layer(embed(), [[1.0]])
    assert not layer.allow_force_backward(0)


def test_no_gradient_for_the_indices():
    layer, bottom, top = setup_layer(embed(), [[1.0]])
    with pytest.raises(KaffeConfigError) as info:
        layer.Backward(top, [True], bottom)
    check_error(info, "propagate_down", "'true for bottom[0]'")


def test_blobs_from_the_layer_parameter_are_kept():
    param = caffe_pb2.LayerParameter(name="embed", type="Embed")
    param.embed_param.num_output = 2
    param.embed_param.input_dim = 3
    w = np.arange(6.0).reshape(3, 2)
    b = np.array([10.0, 20.0])
    for array in (w, b):
        blob = param.blobs.add()
        blob.shape.dim.extend(array.shape)
        blob.double_data.extend(array.ravel())
    layer = create_layer(param, dtype=np.float64)
    bottom, top = blobs_from([[2.0, 0.0]]), empty_blobs(1)
    layer.SetUp(bottom, top)
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, [[14.0, 25.0], [10.0, 21.0]])


def test_loaded_weight_shape_must_match():
    param = caffe_pb2.LayerParameter(name="embed", type="Embed")
    param.embed_param.num_output = 2
    param.embed_param.input_dim = 3
    param.embed_param.bias_term = False
    blob = param.blobs.add()
    blob.shape.dim.extend([2, 3])
    blob.double_data.extend([0.0] * 6)
    layer = create_layer(param, dtype=np.float64)
    with pytest.raises(KaffeShapeError) as info:
        layer.SetUp(blobs_from([[0.0]]), empty_blobs(1))
    check_error(info, "blobs[0]", "(2, 3)")


@pytest.mark.parametrize("field", ["num_output", "input_dim"])
def test_sizes_must_be_positive(field):
    sizes = {"num_output": 4, "input_dim": 5, field: 0}
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(embed(**sizes), [[0.0]])
    check_error(info, f"embed_param.{field}", "0")


@pytest.mark.parametrize("value", [5.0, -1.0, 1.5, np.nan])
def test_indices_must_be_integers_in_range(value):
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(embed(), [[0.0, value]])
    check_error(info, "bottom", str(value))
