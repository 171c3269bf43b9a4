"""The public graph on Net (kaffe.core.graph): what every reader reads."""
import dataclasses

import numpy as np
import pytest

import kaffe
from kaffe.core.graph import LayerNode, ParamNode
from kaffe.errors import KaffeConfigError
from kaffe.ops.geometry import ConvGeometry, PoolGeometry
from kaffe.proto import caffe_pb2
from kaffe.proto.io import parse_text

NET = """
name: "graphnet"
layer { name: "data" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } shape { dim: 2 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        param { name: "w" lr_mult: 2 decay_mult: 0.5 } param { lr_mult: 3 decay_mult: 0 }
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 stride: 2
                            weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool"
        pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "data" top: "conv2"
        param { name: "w" } param { lr_mult: 0 }
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 stride: 2 } }
layer { name: "ip" type: "InnerProduct" bottom: "pool" top: "ip"
        inner_product_param { num_output: 3 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""


def make_net(text=NET, phase=kaffe.TRAIN):
    param = parse_text(text, caffe_pb2.NetParameter())
    param.state.phase = phase
    return kaffe.Net(param)


def test_one_node_per_layer_in_execution_order_splits_marked():
    net = make_net()
    graph = net.graph
    assert isinstance(graph, tuple)
    assert all(isinstance(node, LayerNode) for node in graph)
    assert [n.name for n in graph] == list(net._layer_names)
    assert [n.index for n in graph] == list(range(len(net.layers)))
    assert [n.layer for n in graph] == net.layers
    inserted = [n.name for n in graph if n.inserted]
    assert inserted == ["data_data_0_split"]
    split = net.node("data_data_0_split")
    assert split.type == "Split"
    assert split.bottoms == ("data",)
    assert split.tops == ("data_data_0_split_0", "data_data_0_split_1")
    assert not net.node("conv").inserted


def test_nodes_match_pycaffe_views():
    net = make_net()
    for node in net.graph:
        assert list(node.bottoms) == net.bottom_names[node.name]
        assert list(node.tops) == net.top_names[node.name]
        assert node.param is node.layer.layer_param
        assert node.type == node.param.type
        assert [net.blobs[b] for b in node.bottoms] == list(node.bottom_blobs)
        assert [net.blobs[t] for t in node.tops] == list(node.top_blobs)
        assert node.need_backward == net.layer_need_backward[node.index]
        assert list(node.bottom_need_backward) == \
            net.bottom_need_backward[node.index]
    assert net.node("loss").loss_weights == (1.0,)
    assert net.node("ip").loss_weights == (0.0,)


def test_in_place_is_a_top_that_is_also_a_bottom():
    net = make_net()
    assert net.node("relu").in_place
    assert not net.node("conv").in_place
    assert not net.node("pool").in_place


def test_params_owners_and_multipliers():
    net = make_net()
    conv, conv2 = net.node("conv"), net.node("conv2")
    assert all(isinstance(p, ParamNode) for p in conv.params + conv2.params)
    w, b = conv.params
    assert (w.layer, w.index, w.name, w.owner) == ("conv", 0, "w", None)
    assert (w.lr_mult, w.decay_mult) == (2.0, 0.5)
    assert (b.name, b.owner, b.lr_mult, b.decay_mult) == ("", None, 3.0, 0.0)
    assert (w.display_name, b.display_name) == ("w", "1")
    shared_w, b2 = conv2.params
    assert shared_w.owner == ("conv", 0)
    # A shared parameter takes the owner's multipliers (Caffe's params_lr).
    assert (shared_w.lr_mult, shared_w.decay_mult) == (2.0, 0.5)
    assert shared_w.learnable_index == w.learnable_index
    assert shared_w.blob.data is not None
    np.testing.assert_array_equal(shared_w.blob.data, w.blob.data)
    assert b2.owner is None and b2.lr_mult == 0.0
    assert net.node("relu").params == ()
    # learnable_params / params_lr / params_weight_decay line up with them.
    for node in net.graph:
        for p in node.params:
            if p.owner is None:
                assert net.learnable_params[p.learnable_index] is p.blob
            assert net.params_lr[p.learnable_index] == p.lr_mult
            assert net.params_weight_decay[p.learnable_index] == p.decay_mult
    assert len(net.learnable_params) == len(net.params_lr) == \
        len(net.params_weight_decay) == 5


def test_geometry_is_the_layers_own():
    net = make_net()
    conv = net.node("conv")
    assert conv.geometry is conv.layer.geometry
    assert conv.geometry == ConvGeometry(
        kernel=(3, 3), stride=(2, 2), pad=(1, 1), dilation=(1, 1), group=1,
        num_output=4, axis=1, bias_term=True, deconv=False)
    assert conv.geometry.output_spatial((8, 8)) == \
        net.blobs["conv"].shape[2:]
    pool = net.node("pool")
    assert pool.geometry == PoolGeometry("AVE", (2, 2), (2, 2), (0, 0),
                                         False, "CEIL")
    assert net.node("relu").geometry is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        conv.name = "other"


def test_global_pooling_geometry_follows_the_input():
    net = make_net(NET.replace("pool: AVE kernel_size: 2 stride: 2",
                               "pool: MAX global_pooling: true"))
    assert net.node("pool").geometry.kernel == (4, 4)
    net.blobs["data"].reshape(2, 3, 12, 12)
    net.reshape()
    geometry = net.node("pool").geometry
    assert geometry.kernel == (6, 6) and geometry.global_pooling
    assert geometry.output_spatial((6, 6)) == (1, 1)


def test_node_error_suggests_close_names():
    net = make_net()
    with pytest.raises(KaffeConfigError, match="received 'conv3'.*did you mean 'conv' or 'conv2'"):
        net.node("conv3")


def test_blob_shapes_are_current():
    net = make_net()
    shapes = net.blob_shapes()
    assert list(shapes) == list(net.blobs)
    assert shapes["data"] == (2, 3, 8, 8)
    assert shapes["conv"] == (2, 4, 4, 4)
    assert shapes["loss"] == ()
    net.blobs["data"].reshape(1, 3, 8, 8)
    net.blobs["label"].reshape(1)
    net.reshape()
    assert net.blob_shapes()["conv"] == (1, 4, 4, 4)


def test_phase_name_inputs_outputs():
    net = make_net(phase=kaffe.TEST)
    assert net.phase == kaffe.TEST
    assert net.name == "graphnet"
    assert net.inputs == ["data", "label"]
    assert net.outputs == ["conv2", "loss"]


def test_forward_from_to_returns_the_loss_and_hooks_can_be_removed():
    net = make_net()
    net.blobs["data"].data[...] = np.random.default_rng(0).standard_normal(
        net.blobs["data"].shape)
    net.blobs["label"].data[...] = [0, 2]
    seen = []
    net.after_forward(seen.append)
    loss = net.forward_from_to(0, len(net.layers) - 1)
    assert loss == pytest.approx(float(net.blobs["loss"].data))
    assert seen == list(range(len(net.layers)))
    net.remove_hook(seen.append)
    net.forward()
    assert seen == list(range(len(net.layers)))
    net.backward_from_to(len(net.layers) - 1, 0)
    assert np.abs(net.params["ip"][0].diff).sum() > 0
