"""NetSpec (pycaffe's caffe.net_spec): prototxt generation, naming, routing.

The expected prototxts are written from pycaffe's rules (net_spec.py and its
test_net_spec.py), not from kaffe's output.
"""
import re

import numpy as np
import pytest
from google.protobuf import text_format

import kaffe as caffe
from kaffe import layers as L
from kaffe import params as P
from kaffe.core.errors import KaffeConfigError
from kaffe.net_spec import Function, Top, param_name_dict
from kaffe.proto import caffe_pb2


def lenet(batch_size):
    n = caffe.NetSpec()
    n.data, n.label = L.DummyData(shape=[dict(dim=[batch_size, 1, 28, 28]),
                                         dict(dim=[batch_size, 1, 1, 1])],
                                  transform_param=dict(scale=1. / 256), ntop=2)
    n.conv1 = L.Convolution(n.data, kernel_size=5, num_output=20,
                            weight_filler=dict(type="xavier"))
    n.pool1 = L.Pooling(n.conv1, kernel_size=2, stride=2, pool=P.Pooling.MAX)
    n.conv2 = L.Convolution(n.pool1, kernel_size=5, num_output=50,
                            weight_filler=dict(type="xavier"))
    n.pool2 = L.Pooling(n.conv2, kernel_size=2, stride=2, pool=P.Pooling.MAX)
    n.ip1 = L.InnerProduct(n.pool2, num_output=500,
                           weight_filler=dict(type="xavier"))
    n.relu1 = L.ReLU(n.ip1, in_place=True)
    n.ip2 = L.InnerProduct(n.relu1, num_output=10,
                           weight_filler=dict(type="xavier"))
    n.loss = L.SoftmaxWithLoss(n.ip2, n.label)
    return n.to_proto()


def anon_lenet(batch_size):
    data, label = L.DummyData(shape=[dict(dim=[batch_size, 1, 28, 28]),
                                     dict(dim=[batch_size, 1, 1, 1])],
                              transform_param=dict(scale=1. / 256), ntop=2)
    conv1 = L.Convolution(data, kernel_size=5, num_output=20,
                          weight_filler=dict(type="xavier"))
    pool1 = L.Pooling(conv1, kernel_size=2, stride=2, pool=P.Pooling.MAX)
    conv2 = L.Convolution(pool1, kernel_size=5, num_output=50,
                          weight_filler=dict(type="xavier"))
    pool2 = L.Pooling(conv2, kernel_size=2, stride=2, pool=P.Pooling.MAX)
    ip1 = L.InnerProduct(pool2, num_output=500,
                         weight_filler=dict(type="xavier"))
    relu1 = L.ReLU(ip1, in_place=True)
    ip2 = L.InnerProduct(relu1, num_output=10,
                         weight_filler=dict(type="xavier"))
    loss = L.SoftmaxWithLoss(ip2, label)
    return loss.to_proto()


LENET_50 = """
layer { name: "data" type: "DummyData" top: "data" top: "label"
  transform_param { scale: 0.00390625 }
  dummy_data_param { shape { dim: 50 dim: 1 dim: 28 dim: 28 }
                     shape { dim: 50 dim: 1 dim: 1 dim: 1 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 20 kernel_size: 5
                      weight_filler { type: "xavier" } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
  convolution_param { num_output: 50 kernel_size: 5
                      weight_filler { type: "xavier" } } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1"
  inner_product_param { num_output: 500 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label"
  top: "loss" }
"""

# pycaffe's automatic names: <Type><k>, counted per type; a layer takes its
# first top's name; the in-place ReLU names itself but writes its bottom.
ANON_LENET_NAMES = [
    ("DummyData1", [], ["DummyData1", "DummyData2"]),
    ("Convolution1", ["DummyData1"], ["Convolution1"]),
    ("Pooling1", ["Convolution1"], ["Pooling1"]),
    ("Convolution2", ["Pooling1"], ["Convolution2"]),
    ("Pooling2", ["Convolution2"], ["Pooling2"]),
    ("InnerProduct1", ["Pooling2"], ["InnerProduct1"]),
    ("ReLU1", ["InnerProduct1"], ["InnerProduct1"]),
    ("InnerProduct2", ["InnerProduct1"], ["InnerProduct2"]),
    ("SoftmaxWithLoss1", ["InnerProduct2", "DummyData2"],
     ["SoftmaxWithLoss1"]),
]


def parse(text):
    return text_format.Parse(text, caffe_pb2.NetParameter())


def load_net(tmp_path, net_proto, phase=caffe.TEST):
    path = tmp_path / "net.prototxt"
    path.write_text(str(net_proto))
    return caffe.Net(str(path), phase)


def test_lenet_prototxt_text():
    assert str(lenet(50)) == str(parse(LENET_50))


def test_lenet_builds_with_nine_layers(tmp_path):
    net_proto = lenet(50)
    assert net_proto.layer[6].bottom == net_proto.layer[6].top  # relu in place
    net = load_net(tmp_path, net_proto)
    assert len(net.layers) == 9
    assert net.blobs["conv1"].shape == (50, 20, 24, 24)
    assert net.blobs["ip2"].shape == (50, 10)
    assert net.outputs == ["loss"]


def test_scale_is_stored_as_float32():
    n = caffe.NetSpec()
    n.data = L.DummyData(shape=dict(dim=[1]), transform_param=dict(scale=1. / 255))
    assert n.to_proto().layer[0].transform_param.scale == pytest.approx(
        1. / 255, rel=1e-7)


def test_anonymous_lenet_names_and_order(tmp_path):
    net_proto = anon_lenet(50)
    got = [(l.name, list(l.bottom), list(l.top)) for l in net_proto.layer]
    assert got == ANON_LENET_NAMES
    # Same layers as the named version, apart from the names.
    named = lenet(50)
    for anon, ref in zip(net_proto.layer, named.layer):
        assert anon.type == ref.type
        assert anon.convolution_param == ref.convolution_param
        assert anon.pooling_param == ref.pooling_param
    net = load_net(tmp_path, net_proto)
    assert len(net.layers) == 9


def test_anonymous_text_is_exact():
    top = L.ReLU(L.Convolution(L.Input(shape=dict(dim=[1, 1, 4, 4])),
                               kernel_size=3, num_output=2), in_place=True)
    assert str(top.to_proto()) == """\
layer {
  name: "Input1"
  type: "Input"
  top: "Input1"
  input_param {
    shape {
      dim: 1
      dim: 1
      dim: 4
      dim: 4
    }
  }
}
layer {
  name: "Convolution1"
  type: "Convolution"
  bottom: "Input1"
  top: "Convolution1"
  convolution_param {
    num_output: 2
    kernel_size: 3
  }
}
layer {
  name: "ReLU1"
  type: "ReLU"
  bottom: "Convolution1"
  top: "Convolution1"
}
"""


def silent_net():
    n = caffe.NetSpec()
    n.data, n.data2 = L.DummyData(shape=dict(dim=3), ntop=2)
    n.silence_data = L.Silence(n.data, ntop=0)
    n.silence_data2 = L.Silence(n.data2, ntop=0)
    return n.to_proto()


def test_zero_tops(tmp_path):
    net_proto = silent_net()
    assert [l.name for l in net_proto.layer] == [
        "data", "silence_data", "silence_data2"]
    assert list(net_proto.layer[1].top) == []
    net = load_net(tmp_path, net_proto)
    assert len(net.forward()) == 0


def test_anonymous_topless_layer_is_named_by_type():
    data = L.DummyData(shape=dict(dim=3))
    fn = L.Silence(data, ntop=0)
    assert isinstance(fn, Function)
    proto = caffe.to_proto(fn)
    assert [l.name for l in proto.layer] == ["DummyData1", "Silence1"]


def test_type_error():
    data = L.DummyData(ntop=2)  # a 2-tuple of Tops
    pattern = r"^Silence input 0 is not a Top \(type is <(type|class) 'tuple'>\)$"
    with pytest.raises(TypeError, match=pattern):
        L.Silence(data, ntop=0)
    L.Silence(*data, ntop=0)


def test_params_enums():
    assert P.Pooling.MAX == caffe_pb2.PoolingParameter.MAX
    assert P.Pooling.AVE == caffe_pb2.PoolingParameter.AVE
    assert P.Eltwise.SUM == caffe_pb2.EltwiseParameter.SUM
    assert P.Eltwise.PROD == caffe_pb2.EltwiseParameter.PROD
    assert P.LRN.WITHIN_CHANNEL == caffe_pb2.LRNParameter.WITHIN_CHANNEL
    assert P.Filler.FAN_IN == caffe_pb2.FillerParameter.FAN_IN
    assert P.Pooling.PoolMethod.Name(P.Pooling.STOCHASTIC) == "STOCHASTIC"
    with pytest.raises(AttributeError):
        P.NoSuchLayer


def test_routing_into_the_type_parameter():
    x = L.Input(shape=dict(dim=[1, 3, 8, 8]))
    layer = L.Convolution(x, num_output=4, kernel_size=[3, 5], pad=1,
                          bias_term=False, engine=P.Convolution.CAFFE,
                          weight_filler=dict(type="gaussian", std=0.1)
                          ).to_proto().layer[-1]
    p = layer.convolution_param
    assert p.num_output == 4 and not p.bias_term
    assert list(p.kernel_size) == [3, 5]
    assert list(p.pad) == [1]              # one value for a repeated field
    assert p.weight_filler.type == "gaussian"
    assert p.weight_filler.std == pytest.approx(0.1)
    assert p.engine == caffe_pb2.ConvolutionParameter.CAFFE
    assert not layer.HasField("inner_product_param")


def test_generic_fields_go_to_the_layer():
    x = L.Input(shape=dict(dim=[2, 3]))
    layer = L.InnerProduct(
        x, num_output=5, name="fc", include=dict(phase=caffe.TRAIN),
        loss_weight=0.5, propagate_down=[False],
        param=[dict(lr_mult=1, decay_mult=1), dict(lr_mult=2, decay_mult=0)],
    ).to_proto().layer[-1]
    assert layer.name == "fc"
    assert layer.top == ["InnerProduct1"]   # the name kwarg renames the layer only
    assert layer.inner_product_param.num_output == 5
    assert len(layer.include) == 1 and layer.include[0].phase == caffe.TRAIN
    assert list(layer.loss_weight) == [0.5]
    assert list(layer.propagate_down) == [False]
    assert [(p.lr_mult, p.decay_mult) for p in layer.param] == [(1, 1), (2, 0)]


def test_explicit_param_fields_and_exclude():
    x = L.Input(shape=dict(dim=[2, 3, 4, 4]))
    layer = L.Pooling(x, pooling_param=dict(pool=P.Pooling.AVE, kernel_size=2),
                      exclude=[dict(phase=caffe.TEST), dict(stage="deploy")],
                      ).to_proto().layer[-1]
    assert layer.pooling_param.pool == caffe_pb2.PoolingParameter.AVE
    assert layer.pooling_param.kernel_size == 2
    assert [r.phase for r in layer.exclude[:1]] == [caffe.TEST]
    assert list(layer.exclude[1].stage) == ["deploy"]


def test_deconvolution_needs_an_explicit_convolution_param():
    x = L.Input(shape=dict(dim=[1, 2, 4, 4]))
    layer = L.Deconvolution(x, convolution_param=dict(
        num_output=3, kernel_size=4, stride=2)).to_proto().layer[-1]
    assert layer.type == "Deconvolution"
    assert layer.convolution_param.num_output == 3
    assert list(layer.convolution_param.stride) == [2]
    # pycaffe routes bare keywords of a type without <Type>Parameter to the
    # LayerParameter, which has no such field.
    with pytest.raises(KaffeConfigError) as info:
        L.Deconvolution(x, num_output=3, kernel_size=4).to_proto()
    message = str(info.value)
    assert "Deconvolution1" in message and "num_output" in message
    assert "convolution_param=dict(num_output=...)" in message


def test_routing_table_comes_from_the_schema():
    names = param_name_dict()
    assert names["Convolution"] == "convolution"
    assert names["InnerProduct"] == "inner_product"
    assert names["Python"] == "python"
    assert names["Transformation"] == "transform"
    assert "Deconvolution" not in names


def test_unknown_keyword_is_a_located_error():
    x = L.Input(shape=dict(dim=[1, 2]))
    with pytest.raises(KaffeConfigError, match="did you mean 'num_output'"):
        L.InnerProduct(x, num_ouput=3).to_proto()
    with pytest.raises(KaffeConfigError, match="did you mean 'type'"):
        L.InnerProduct(x, num_output=3, weight_filler=dict(tpye="xavier")).to_proto()
    with pytest.raises(KaffeConfigError, match="received 'three'"):
        L.InnerProduct(x, num_output="three").to_proto()


def test_ntop_and_naming_of_unassigned_tops():
    n = caffe.NetSpec()
    a, b, c = L.Slice(L.Input(shape=dict(dim=[3, 6])), ntop=3,
                      slice_param=dict(axis=1))
    n.second = b
    n.out = L.Eltwise(a, c, operation=P.Eltwise.SUM)
    proto = n.to_proto()
    slice_layer = proto.layer[1]
    # Only the assigned top keeps its name; the layer takes its first top's.
    assert list(slice_layer.top) == ["Slice1", "second", "Slice2"]
    assert slice_layer.name == "Slice1"
    assert list(proto.layer[2].bottom) == ["Slice1", "Slice2"]
    assert proto.layer[2].eltwise_param.operation == caffe_pb2.EltwiseParameter.SUM
    assert isinstance(b, Top) and b.n == 1 and b.fn is a.fn


def test_layer_order_is_depth_first_from_each_assigned_top():
    n = caffe.NetSpec()
    data = L.Input(shape=dict(dim=[1, 4]))
    left = L.InnerProduct(data, num_output=2)
    right = L.InnerProduct(data, num_output=3)
    n.right = right
    n.cat = L.Concat(left, right)
    proto = n.to_proto()
    assert [l.name for l in proto.layer] == [
        "Input1", "right", "InnerProduct1", "cat"]
    assert [l.name for l in caffe.to_proto(n.cat, n.right).layer] == [
        "Input1", "InnerProduct1", "InnerProduct2", "Concat1"]


def test_netspec_item_access_and_errors():
    n = caffe.NetSpec()
    n["data"] = L.Input(shape=dict(dim=[1]))
    assert n["data"] is n.data
    assert list(n.tops) == ["data"]
    with pytest.raises(AttributeError, match="no top named 'nope'"):
        n.nope
    with pytest.raises(TypeError, match="ntop=2"):
        n.pair = L.DummyData(ntop=2)
    with pytest.raises(TypeError):
        n.number = 3


def test_any_type_name_works():
    x = L.Input(shape=dict(dim=[1, 5]))
    layer = L.ROIPooling(x).to_proto().layer[-1]
    assert layer.type == "ROIPooling"
    assert L.SmoothL1Loss.__name__ == "SmoothL1Loss"
    with pytest.raises(AttributeError):
        L._private
    with pytest.raises(AttributeError):
        L.__wrapped__


def test_python_layer_keywords_go_to_python_param():
    x = L.Input(shape=dict(dim=[1, 5]))
    top, aux = L.Python(x, module="my_layers", layer="MyLayer",
                        param_str="{'k': 2}", ntop=2, loss_weight=[1, 0])
    layer = caffe.to_proto(top, aux).layer[-1]
    assert layer.type == "Python"
    assert layer.python_param.module == "my_layers"
    assert layer.python_param.layer == "MyLayer"
    assert layer.python_param.param_str == "{'k': 2}"
    assert list(layer.loss_weight) == [1, 0]
    assert len(layer.top) == 2


def test_in_place_chain_and_net_runs(tmp_path):
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[2, 3]))
    n.ip = L.InnerProduct(n.data, num_output=4,
                          weight_filler=dict(type="constant", value=1),
                          bias_filler=dict(type="constant", value=-4))
    n.relu = L.ReLU(n.ip, in_place=True)
    n.scaled = L.Power(n.relu, scale=2)
    proto = n.to_proto()
    assert [(l.name, list(l.bottom), list(l.top)) for l in proto.layer] == [
        ("data", [], ["data"]), ("ip", ["data"], ["ip"]),
        ("relu", ["ip"], ["ip"]), ("scaled", ["ip"], ["scaled"])]
    assert proto.layer[3].power_param.scale == 2
    net = load_net(tmp_path, proto)
    x = np.array([[1, 2, 3], [0, 0, 1]], dtype=np.float32)
    out = net.forward(data=x)["scaled"]
    np.testing.assert_allclose(out, 2 * np.maximum(x.sum(1, keepdims=True) - 4, 0)
                               * np.ones((1, 4)))


def test_generated_text_parses_back():
    text = str(lenet(8))
    assert re.search(r'name: "relu1"\s+type: "ReLU"\s+bottom: "ip1"\s+top: "ip1"',
                     text)
    assert parse(text) == lenet(8)
