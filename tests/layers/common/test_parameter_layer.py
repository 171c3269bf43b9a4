"""Parameter: the top is the learnable blob, in a layer and in a net."""
from functools import partial

import numpy as np
import pytest
from google.protobuf import text_format

import kaffe
from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.core.registry import create_layer
from kaffe.proto import caffe_pb2
from kaffe.testing.gradient import (blobs_from, check_layer_error,
                                    empty_blobs, layer_param, make_layer)

check_error = partial(check_layer_error, layer="p")


def parameter(*dims):
    shape = " ".join(f"dim: {d}" for d in dims)
    return (f'name: "p" type: "Parameter" '
            f'parameter_param {{ shape {{ {shape} }} }}')


def set_up(text):
    layer = make_layer(text)
    top = empty_blobs(1)
    layer.SetUp([], top)
    return layer, top


@pytest.mark.parametrize("dims", [(2, 3), (4,), (1, 2, 3, 4), ()])
def test_shapes(dims):
    layer, top = set_up(parameter(*dims))
    assert top[0].shape == dims
    assert layer.blobs[0].shape == dims
    assert not layer.blobs[0].data.any()  # Caffe fills nothing


def test_top_shares_data_and_diff_with_the_blob():
    layer, top = set_up(parameter(2, 3))
    layer.blobs[0].data[...] = np.arange(6.0).reshape(2, 3)
    layer.Forward([], top)
    np.testing.assert_array_equal(top[0].data, layer.blobs[0].data)
    top[0].diff[...] = 5
    assert (layer.blobs[0].diff == 5).all()
    layer.blobs[0].data[0, 0] = -1
    assert top[0].data[0, 0] == -1
    layer.Backward([top[0]], [], [])  # nothing to do
    assert (layer.blobs[0].diff == 5).all()


NET = """
name: "p"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 2 dim: 3 } } }
layer { name: "p" type: "Parameter" top: "p"
        parameter_param { shape { dim: 2 dim: 3 } } }
layer { name: "prod" type: "Eltwise" bottom: "data" bottom: "p" top: "prod"
        eltwise_param { operation: PROD } }
layer { name: "loss" type: "Reduction" bottom: "prod" top: "loss"
        loss_weight: 1 }
"""


def test_gradients_reach_the_blob_in_a_net():
    param = text_format.Parse(NET, caffe_pb2.NetParameter())
    net = kaffe.Net.from_param(param, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((2, 3))
    w = np.random.default_rng(1).standard_normal((2, 3))
    net.params["p"][0].data[...] = w
    net.blobs["data"].data[...] = x
    net.forward()
    assert net.blobs["loss"].data == pytest.approx(float((x * w).sum()))
    net.clear_param_diffs()
    net.backward()
    # d(Σ x·w)/dw = x.
    np.testing.assert_allclose(net.params["p"][0].diff, x)


def test_blob_from_the_layer_parameter_is_kept():
    param = layer_param(parameter(3))
    blob = param.blobs.add()
    blob.shape.dim.append(3)
    blob.double_data.extend([1.0, 2.0, 3.0])
    layer = create_layer(param, dtype=np.float64)
    top = empty_blobs(1)
    layer.SetUp([], top)
    layer.Forward([], top)
    np.testing.assert_array_equal(top[0].data, [1.0, 2.0, 3.0])


def test_loaded_blob_must_fit_the_shape():
    param = layer_param(parameter(4))
    blob = param.blobs.add()
    blob.shape.dim.append(3)
    blob.double_data.extend([1.0, 2.0, 3.0])
    layer = create_layer(param, dtype=np.float64)
    with pytest.raises(KaffeShapeError) as info:
        layer.SetUp([], empty_blobs(1))
    check_error(info, "blobs[0]", "(3)")


def test_shape_must_not_be_negative():
    with pytest.raises(KaffeConfigError) as info:
        set_up(parameter(2, -1))
    check_error(info, "parameter_param.shape", "(2, -1)")


def test_takes_no_bottoms():
    layer = make_layer(parameter(2))
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([[1.0]]), empty_blobs(1))
    check_error(info, "bottom", "'1 bottom blob(s)'")
