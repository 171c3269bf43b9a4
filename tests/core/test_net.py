"""Net construction and execution rules (Caffe's net.cpp / insert_splits.cpp)."""
import logging

import numpy as np
import pytest

import kaffe
from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.proto import caffe_pb2
from kaffe.proto.io import parse_text


def net_from(text, phase=kaffe.TEST, tmp_path=None, **kwargs):
    if tmp_path is not None:
        path = tmp_path / "net.prototxt"
        path.write_text(text)
        return kaffe.Net(str(path), phase, **kwargs)
    param = parse_text(text, caffe_pb2.NetParameter())
    param.state.phase = phase
    return kaffe.Net(param, **kwargs)


MLP = """
name: "mlp"
layer { name: "data" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 4 dim: 5 } shape { dim: 4 } } }
layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
        inner_product_param { num_output: 6 weight_filler { type: "gaussian" std: 0.5 }
                              bias_filler { type: "gaussian" std: 0.5 } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
        inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
layer { name: "accuracy" type: "Accuracy" bottom: "ip2" bottom: "label" top: "accuracy"
        include { phase: TEST } }
"""


def fill_inputs(net, seed=0):
    rng = np.random.default_rng(seed)
    net.blobs["data"].data[...] = rng.standard_normal(net.blobs["data"].shape)
    net.blobs["label"].data[...] = rng.integers(0, 3, net.blobs["label"].shape)


def test_splits_are_inserted_with_caffe_names():
    net = net_from(MLP)
    assert net._layer_names == [
        "data", "label_data_1_split", "ip1", "relu1", "ip2", "ip2_ip2_0_split",
        "loss", "accuracy"]
    assert list(net.blobs) == [
        "data", "label", "label_data_1_split_0", "label_data_1_split_1", "ip1",
        "ip2", "ip2_ip2_0_split_0", "ip2_ip2_0_split_1", "loss", "accuracy"]
    assert net.bottom_names["loss"] == ["ip2_ip2_0_split_0", "label_data_1_split_0"]
    assert net.bottom_names["accuracy"] == ["ip2_ip2_0_split_1", "label_data_1_split_1"]


def test_phase_rules_filter_layers():
    train = net_from(MLP, kaffe.TRAIN)
    assert "accuracy" not in train.layer_dict
    assert "ip2_ip2_0_split" not in train.layer_dict
    assert train.outputs == ["loss"]


def test_outputs_are_alphabetical_and_inputs_listed():
    net = net_from(MLP)
    assert net.outputs == ["accuracy", "loss"]
    assert net.inputs == ["data", "label"]


def test_in_place_layers_share_the_blob():
    net = net_from(MLP)
    relu = net._layer_names.index("relu1")
    assert net._bottom_ids[relu] == net._top_ids[relu]
    fill_inputs(net)
    net.forward()
    assert (net.blobs["ip1"].data >= 0).all()


def test_backward_need_analysis():
    net = net_from(MLP, kaffe.TEST)
    need = dict(zip(net._layer_names, net.layer_need_backward))
    assert need["ip1"] and need["ip2"] and need["loss"] and need["relu1"]
    assert not need["data"] and not need["accuracy"]
    assert not need["label_data_1_split"]


def test_forward_backward_matches_numeric_gradient():
    net = net_from(MLP, kaffe.TRAIN, dtype=np.float64)
    fill_inputs(net)
    loss = net.forward()["loss"].item()
    net.clear_param_diffs()
    net.backward()
    w = net.params["ip1"][0]
    analytic = w.diff.copy()
    eps = 1e-6
    for idx in [(0, 0), (2, 3), (5, 4)]:
        w.data[idx] += eps
        plus = net.forward()["loss"].item()
        w.data[idx] -= 2 * eps
        minus = net.forward()["loss"].item()
        w.data[idx] += eps
        assert analytic[idx] == pytest.approx((plus - minus) / (2 * eps), abs=1e-7)
    assert net.forward()["loss"].item() == pytest.approx(loss)


def test_split_backward_sums_the_branches():
    text = """
    layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }
    layer { name: "a" type: "EuclideanLoss" bottom: "x" bottom: "y" top: "la" }
    layer { name: "yy" type: "Input" top: "y" input_param { shape { dim: 2 dim: 3 } } }
    """
    # 'x' used by one layer only: no split, and Input gives no gradient need.
    text = """
    force_backward: true
    layer { name: "in" type: "Input" top: "x" top: "t" input_param { shape { dim: 2 dim: 3 } } }
    layer { name: "a" type: "EuclideanLoss" bottom: "x" bottom: "t" top: "la" }
    layer { name: "b" type: "EuclideanLoss" bottom: "x" bottom: "t" top: "lb"
            loss_weight: 3 }
    """
    net = net_from(text, dtype=np.float64)
    net.blobs["x"].data[...] = [[1, 2, 3], [4, 5, 6]]
    net.blobs["t"].data[...] = 0
    out = net.forward()
    assert out["la"] == pytest.approx(91 / 4)
    net.backward()
    # d/dx of la + 3 lb = (1 + 3) * x / N
    np.testing.assert_allclose(net.blobs["x"].diff, 4 * net.blobs["x"].data / 2)


def test_loss_weight_on_a_consumed_top_moves_to_the_split():
    text = """
    layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }
    layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y" loss_weight: 2
            inner_product_param { num_output: 2 weight_filler { type: "constant" value: 1 } } }
    layer { name: "sig" type: "Sigmoid" bottom: "y" top: "z" }
    """
    net = net_from(text, dtype=np.float64)
    split = net.layer_dict["y_ip_0_split"]
    assert list(split.layer_param.loss_weight) == [2, 0]
    assert list(net.layer_dict["ip"].layer_param.loss_weight) == []
    assert net.blob_loss_weights["y_ip_0_split_0"] == 2
    net.blobs["x"].data[...] = 1
    out_loss = net._forward(0, len(net.layers) - 1)
    assert out_loss == pytest.approx(2 * 12)


def test_param_sharing_shares_data_and_accumulates_diff():
    text = """
    force_backward: true
    layer { name: "in" type: "Input" top: "a" top: "b" top: "t"
            input_param { shape { dim: 2 dim: 3 } shape { dim: 2 dim: 3 } shape { dim: 2 dim: 2 } } }
    layer { name: "ip_a" type: "InnerProduct" bottom: "a" top: "ya"
            param { name: "shared_w" } param { name: "shared_b" }
            inner_product_param { num_output: 2 weight_filler { type: "gaussian" } } }
    layer { name: "ip_b" type: "InnerProduct" bottom: "b" top: "yb"
            param { name: "shared_w" } param { name: "shared_b" }
            inner_product_param { num_output: 2 weight_filler { type: "gaussian" } } }
    layer { name: "sum" type: "Eltwise" bottom: "ya" bottom: "yb" top: "y" }
    layer { name: "loss" type: "EuclideanLoss" bottom: "y" bottom: "t" top: "loss" }
    """
    net = net_from(text, dtype=np.float64)
    wa, wb = net.params["ip_a"][0], net.params["ip_b"][0]
    np.testing.assert_array_equal(wa.data, wb.data)
    wa.data[...] = 0.5
    np.testing.assert_array_equal(wb.data, 0.5)
    assert len(net.learnable_params) == 2
    assert net.param_owners == [-1, -1, 0, 1]
    rng = np.random.default_rng(1)
    for name in "abt":
        net.blobs[name].data[...] = rng.standard_normal(net.blobs[name].shape)
    net.forward()
    net.clear_param_diffs()
    net.backward()
    dy = net.blobs["y"].diff
    expected = dy.T @ net.blobs["a"].data + dy.T @ net.blobs["b"].data
    np.testing.assert_allclose(wa.diff, expected)


def test_sharing_shape_mismatch_strict_and_permissive():
    base = """
    layer {{ name: "in" type: "Input" top: "a" input_param {{ shape {{ dim: 2 dim: 6 }} }} }}
    layer {{ name: "f" type: "Flatten" bottom: "a" top: "b" }}
    layer {{ name: "ip1" type: "InnerProduct" bottom: "a" top: "y1" param {{ name: "w" }}
            inner_product_param {{ num_output: 2 bias_term: false }} }}
    layer {{ name: "ip2" type: "InnerProduct" bottom: "b" top: "y2" param {{ name: "w" {mode} }}
            inner_product_param {{ num_output: 3 bias_term: false transpose: true axis: {axis} }} }}
    """
    with pytest.raises(KaffeConfigError, match=r"ip2.*shapes differ; received \(6, 3\), expected \(2, 6\)"):
        net_from(base.format(mode="", axis=1))
    net = net_from(base.format(mode="share_mode: PERMISSIVE", axis=1).replace(
        "num_output: 3", "num_output: 2"))
    assert net.params["ip2"][0].shape == (6, 2)
    with pytest.raises(KaffeConfigError, match="counts differ"):
        net_from(base.format(mode="share_mode: PERMISSIVE", axis=1))


def test_shared_param_lr_mult_must_agree():
    text = """
    layer { name: "in" type: "Input" top: "a" input_param { shape { dim: 2 dim: 3 } } }
    layer { name: "ip1" type: "InnerProduct" bottom: "a" top: "y1" param { name: "w" lr_mult: 1 }
            inner_product_param { num_output: 2 bias_term: false } }
    layer { name: "ip2" type: "InnerProduct" bottom: "a" top: "y2" param { name: "w" lr_mult: 2 }
            inner_product_param { num_output: 2 bias_term: false } }
    """
    with pytest.raises(KaffeConfigError, match="lr_mult.*received 2.*expected 1"):
        net_from(text)


RULES = """
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 } } }
layer { name: "train_only" type: "ReLU" bottom: "x" top: "a" include { phase: TRAIN } }
layer { name: "not_train" type: "ReLU" bottom: "x" top: "b" exclude { phase: TRAIN } }
layer { name: "level2" type: "ReLU" bottom: "x" top: "c" include { min_level: 2 } }
layer { name: "max1" type: "ReLU" bottom: "x" top: "d" include { max_level: 1 } }
layer { name: "staged" type: "ReLU" bottom: "x" top: "e" include { stage: "s1" stage: "s2" } }
layer { name: "not_s1" type: "ReLU" bottom: "x" top: "f" include { not_stage: "s1" } }
layer { name: "either" type: "ReLU" bottom: "x" top: "g"
        include { stage: "s1" } include { stage: "s3" } }
"""


@pytest.mark.parametrize("phase, level, stages, expected", [
    (kaffe.TRAIN, 0, [], {"train_only", "max1", "not_s1"}),
    (kaffe.TEST, 0, [], {"not_train", "max1", "not_s1"}),
    (kaffe.TEST, 2, ["s1"], {"not_train", "level2", "either"}),
    (kaffe.TEST, 1, ["s1", "s2"], {"not_train", "max1", "staged", "either"}),
    (kaffe.TEST, 0, ["s3"], {"not_train", "max1", "not_s1", "either"}),
])
def test_net_state_rules(tmp_path, phase, level, stages, expected):
    path = tmp_path / "rules.prototxt"
    path.write_text(RULES)
    net = kaffe.Net(str(path), phase, level=level, stages=stages)
    assert set(net._layer_names) - {"in", "x_in_0_split"} == expected


def test_include_and_exclude_together_is_an_error(tmp_path):
    text = RULES + 'layer { name: "both" type: "ReLU" bottom: "x" top: "h" ' \
                   'include { phase: TRAIN } exclude { phase: TEST } }\n'
    with pytest.raises(KaffeConfigError, match=r"net.prototxt:11: layer 'both'.*include and exclude"):
        net_from(text, tmp_path=tmp_path)


def test_propagate_down_false_stops_gradient():
    text = """
    layer { name: "in" type: "Input" top: "a" top: "t" input_param { shape { dim: 2 dim: 3 } } }
    layer { name: "ip" type: "InnerProduct" bottom: "a" top: "h"
            inner_product_param { num_output: 3 weight_filler { type: "gaussian" } } }
    layer { name: "sig" type: "Sigmoid" bottom: "h" top: "s" propagate_down: false }
    layer { name: "loss" type: "EuclideanLoss" bottom: "s" bottom: "t" top: "loss" }
    """
    net = net_from(text)
    need = dict(zip(net._layer_names, net.layer_need_backward))
    assert net.bottom_need_backward[net._layer_names.index("sig")] == [False]
    assert not need["ip"] and need["loss"]
    net.blobs["a"].data[...] = 1
    net.forward()
    net.clear_param_diffs()
    net.backward()
    np.testing.assert_array_equal(net.params["ip"][0].diff, 0)
    # force_backward overrides propagate_down (as in Caffe).
    forced = net_from("force_backward: true\n" + text)
    assert forced.bottom_need_backward[forced._layer_names.index("sig")] == [True]


def test_propagate_down_count_must_match(tmp_path):
    text = """
    layer { name: "in" type: "Input" top: "a" input_param { shape { dim: 2 dim: 3 } } }
    layer { name: "sig" type: "Sigmoid" bottom: "a" top: "s" propagate_down: false propagate_down: true }
    """
    with pytest.raises(KaffeConfigError, match="net.prototxt:3: layer 'sig'.*propagate_down"):
        net_from(text, tmp_path=tmp_path)


def test_force_backward_reaches_inputs_but_not_labels():
    net = net_from("force_backward: true\n" + MLP, kaffe.TRAIN)
    fill_inputs(net)
    net.forward()
    net.backward()
    assert np.abs(net.blobs["data"].diff).sum() > 0
    loss_index = net._layer_names.index("loss")
    assert net.bottom_need_backward[loss_index] == [True, False]
    without = net_from(MLP, kaffe.TRAIN)
    assert not without.bottom_need_backward[without._layer_names.index("ip1")][0]


def test_partial_forward_and_backward():
    net = net_from(MLP, dtype=np.float64)
    fill_inputs(net)
    out = net.forward(end="ip1")
    assert list(out) == ["ip1"]
    assert np.all(net.blobs["ip2"].data == 0)
    out = net.forward(start="ip2", blobs=["ip1"])
    assert set(out) == {"accuracy", "loss", "ip1"}
    full = net.forward()["loss"]
    assert out["loss"] == pytest.approx(full)
    diffs = net.backward(end="ip2")
    assert list(diffs) == ["ip1"]


def test_forward_with_keyword_inputs_checks_names_and_batch():
    net = net_from(MLP)
    data = np.ones((4, 5), dtype=np.float32)
    out = net.forward(data=data, label=np.zeros(4))
    assert set(out) == {"accuracy", "loss"}
    with pytest.raises(KaffeConfigError, match="exactly the net's inputs"):
        net.forward(data=data)
    with pytest.raises(KaffeShapeError, match="not batch sized"):
        net.forward(data=np.ones((3, 5)), label=np.zeros(4))


def test_reshape_changes_batch():
    net = net_from(MLP)
    net.blobs["data"].reshape(7, 5)
    net.blobs["label"].reshape(7)
    net.reshape()
    assert net.blobs["ip2"].shape == (7, 3)
    net.blobs["data"].data[...] = 1
    net.forward()
    assert net.blobs["ip2_ip2_0_split_1"].shape == (7, 3)


def test_unknown_bottom_names_line_and_suggests(tmp_path):
    text = MLP.replace('bottom: "ip1" top: "ip2"', 'bottom: "ipl" top: "ip2"')
    with pytest.raises(KaffeConfigError) as info:
        net_from(text, tmp_path=tmp_path)
    message = str(info.value)
    assert "net.prototxt:9: layer 'ip2' (InnerProduct)" in message
    assert "unknown blob 'ipl'" in message and "did you mean 'ip1'" in message


def test_top_produced_twice_is_an_error():
    text = MLP.replace('bottom: "ip1" top: "ip1" }', 'bottom: "ip1" top: "data" }')
    with pytest.raises(KaffeConfigError, match="produced by more than one layer"):
        net_from(text)


def test_unknown_type_suggests_close_match(tmp_path):
    text = MLP.replace('type: "ReLU"', 'type: "Relu"')
    with pytest.raises(KaffeConfigError, match=r"net.prototxt:8: layer 'relu1' \(Relu\).*did you mean 'ReLU'\?"):
        net_from(text, tmp_path=tmp_path)


def test_too_many_param_specs():
    text = MLP.replace('bottom: "ip1" top: "ip2"', 'bottom: "ip1" top: "ip2" param {} param {} param {}')
    with pytest.raises(KaffeConfigError, match="layer 'ip2'.*param.*received 3, expected at most 2"):
        net_from(text)


def test_save_and_copy_from_round_trip(tmp_path):
    net = net_from(MLP, kaffe.TRAIN)
    path = tmp_path / "w.caffemodel"
    net.save(str(path))
    prototxt = tmp_path / "mlp.prototxt"
    prototxt.write_text(MLP)
    loaded = kaffe.Net(str(prototxt), kaffe.TEST, weights=str(path))
    deprecated = kaffe.Net(str(prototxt), str(path), kaffe.TEST)
    for name in ("ip1", "ip2"):
        for a, b, c in zip(net.params[name], loaded.params[name], deprecated.params[name]):
            np.testing.assert_array_equal(a.data, b.data)
            np.testing.assert_array_equal(a.data, c.data)


def test_copy_from_skips_unknown_layers_and_reports_mismatch(tmp_path, caplog):
    net = net_from(MLP, kaffe.TRAIN)
    path = tmp_path / "w.caffemodel"
    param = net.to_proto()
    extra = param.layer.add(name="ghost", type="ReLU")
    extra.blobs.add().shape.dim.append(1)
    from kaffe.proto.io import write_binary
    write_binary(param, str(path))
    with caplog.at_level(logging.INFO, logger="kaffe"):
        net.copy_from(str(path))
    assert "Ignoring source layer ghost" in caplog.text
    wide = net_from(MLP.replace("num_output: 6", "num_output: 7"), kaffe.TRAIN)
    with pytest.raises(KaffeShapeError) as info:
        wide.copy_from(str(path))
    message = str(info.value)
    assert "layer 'ip1'" in message and "param 0" in message
    assert "6 5 (30) in the file" in message and "7 5 (35) in the net" in message
    assert "rename the layer" in message


def test_weights_with_legacy_4d_blobs_load(tmp_path):
    net = net_from(MLP, kaffe.TRAIN)
    param = net.to_proto()
    for layer in param.layer:
        for blob in layer.blobs:
            shape = list(blob.shape.dim)
            legacy = [1] * (4 - len(shape)) + shape
            blob.ClearField("shape")
            blob.num, blob.channels, blob.height, blob.width = legacy
    path = tmp_path / "legacy.caffemodel"
    from kaffe.proto.io import write_binary
    write_binary(param, str(path))
    fresh = net_from(MLP, kaffe.TRAIN)
    fresh.copy_from(str(path))
    np.testing.assert_array_equal(fresh.params["ip1"][0].data, net.params["ip1"][0].data)
    np.testing.assert_array_equal(fresh.params["ip1"][1].data, net.params["ip1"][1].data)


def test_phase_argument_is_validated():
    with pytest.raises(KaffeConfigError, match="phase"):
        kaffe.Net(parse_text(MLP, caffe_pb2.NetParameter()), 5)
