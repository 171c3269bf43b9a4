"""pycaffe's Net surface (python/caffe/test/test_net.py and pycaffe.py):
forward/backward with kwargs and start/end, forward_all batching, the id
methods, hooks, save/load, levels and stages."""
from collections import OrderedDict

import numpy as np
import pytest

import kaffe as caffe
from kaffe.core.errors import KaffeConfigError
from kaffe.testing.nets import simple_net_file


@pytest.fixture
def net(tmp_path):
    caffe.set_random_seed(1)
    net = caffe.Net(simple_net_file(tmp_path, 13), caffe.TRAIN)
    net.blobs["label"].data[...] = np.random.default_rng(0).integers(
        13, size=net.blobs["label"].data.shape)
    return net


def test_memory_outlives_the_net(net):
    params = sum(map(list, net.params.values()), [])
    blobs = list(net.blobs.values())
    del net
    total = 0
    for p in params:
        total += p.data.sum() + p.diff.sum()
    for b in blobs:
        total += b.data.sum() + b.diff.sum()
    assert np.isfinite(total)


def test_layer_dict(net):
    assert list(net.layer_dict) == list(net._layer_names)
    for i, name in enumerate(net._layer_names):
        assert net.layer_dict[name].type == net.layers[i].type


def test_layers_have_pycaffe_members(net):
    conv = net.layers[1]
    assert conv.type == "Convolution"
    assert [b.shape for b in conv.blobs] == [(11, 2, 2, 2), (11,)]
    assert callable(conv.setup) and callable(conv.reshape)


def test_forward_backward(net):
    out = net.forward()
    # The output is SoftmaxWithLoss of the InnerProduct's scores.
    assert set(out) == {"loss"}
    scores = net.blobs["ip_blob"].data.astype(np.float64)
    label = net.blobs["label"].data.reshape(-1).astype(int)
    shifted = scores - scores.max(axis=1, keepdims=True)
    prob = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    rows = np.arange(len(label))
    # Caffe clamps the probability at FLT_MIN before the log.
    tiny = np.finfo(np.float32).tiny
    expected = -np.log(np.maximum(prob[rows, label], tiny)).mean()
    np.testing.assert_allclose(out["loss"], expected, rtol=1e-5)
    # Backward writes the loss's gradient through the net: the net has no
    # inputs (DummyData), so no diffs come back, but the parameters get
    # theirs. InnerProduct's weight diff is (prob − onehot)ᵀ · x / N.
    assert net.backward() == {}
    onehot = np.zeros_like(prob)
    onehot[rows, label] = 1
    x = net.blobs["conv"].data.reshape(len(label), -1).astype(np.float64)
    np.testing.assert_allclose(net.params["ip"][0].diff,
                               (prob - onehot).T @ x / len(label),
                               rtol=1e-4, atol=1e-6)
    assert np.abs(net.params["conv"][0].diff).sum() > 0
    assert np.abs(net.blobs["data"].diff).sum() > 0    # force_backward


def test_forward_start_end(net):
    conv_blob = net.blobs["conv"]
    ip_blob = net.blobs["ip_blob"]
    sample = np.random.default_rng(1).uniform(size=conv_blob.data.shape)
    conv_blob.data[:] = sample.astype(np.float32)
    out = net.forward(start="ip", end="ip")
    assert set(out) == {"ip_blob"}
    w, b = net.params["ip"][0].data, net.params["ip"][1].data
    manual = np.array([w @ conv_blob.data[i].reshape(-1) + b
                       for i in range(conv_blob.data.shape[0])])
    np.testing.assert_allclose(ip_blob.data, manual, rtol=1e-3, atol=1e-5)


def test_backward_start_end(net):
    conv_blob = net.blobs["conv"]
    ip_blob = net.blobs["ip_blob"]
    sample = np.random.default_rng(2).uniform(size=ip_blob.data.shape)
    ip_blob.diff[:] = sample.astype(np.float32)
    out = net.backward(start="ip", end="ip")
    assert "conv" in out
    w = net.params["ip"][0].data
    manual = np.array([w.T @ sample[i] for i in range(sample.shape[0])])
    np.testing.assert_allclose(conv_blob.diff,
                               manual.reshape(conv_blob.data.shape),
                               rtol=1e-3, atol=1e-5)


def test_clear_param_diffs(net):
    net.forward()
    net.backward()
    diff = net.params["conv"][0].diff
    assert diff.max() > 0
    net.clear_param_diffs()
    assert (diff == 0).all()


def test_inputs_outputs(net):
    assert net.inputs == []
    assert net.outputs == ["loss"]
    assert net._inputs == []
    assert net._outputs == [list(net.blobs).index("loss")]


def test_top_bottom_names(net):
    assert net.top_names == OrderedDict([
        ("data", ["data", "label"]), ("conv", ["conv"]),
        ("ip", ["ip_blob"]), ("loss", ["loss"])])
    assert net.bottom_names == OrderedDict([
        ("data", []), ("conv", ["data"]), ("ip", ["conv"]),
        ("loss", ["ip_blob", "label"])])


def test_top_and_bottom_ids_are_methods(net):
    names = list(net.blobs)
    assert [names[i] for i in net._top_ids(0)] == ["data", "label"]
    assert [names[i] for i in net._bottom_ids(3)] == ["ip_blob", "label"]
    ids = net._top_ids(0)
    ids.append(99)                       # a copy, as pycaffe's
    assert net._top_ids(0) == [0, 1]
    assert net._top_ids[0] == [0, 1]     # kaffe's own indexing still works


def test_blob_loss_weights(net):
    assert net.blob_loss_weights["loss"] == 1
    assert net._blob_loss_weights[list(net.blobs).index("loss")] == 1
    assert net.blob_loss_weights["conv"] == 0


def test_save_and_read(net, tmp_path):
    weights = str(tmp_path / "w.caffemodel")
    net.save(weights)
    net_file = simple_net_file(tmp_path, 13)
    caffe.Net(net_file, weights, caffe.TRAIN)          # legacy constructor
    net2 = caffe.Net(net_file, caffe.TRAIN, weights=weights)
    for name in net.params:
        for i in range(len(net.params[name])):
            assert abs(net.params[name][i].data
                       - net2.params[name][i].data).sum() == 0


def test_save_hdf5(net, tmp_path):
    pytest.importorskip("h5py")
    weights = str(tmp_path / "w.h5")
    net.save_hdf5(weights)
    net2 = caffe.Net(simple_net_file(tmp_path, 13), caffe.TRAIN)
    net2.load_hdf5(weights)
    for name in net.params:
        for i in range(len(net.params[name])):
            assert abs(net.params[name][i].data
                       - net2.params[name][i].data).sum() == 0


def test_hooks_run_per_layer_in_order(net):
    events = []
    net.before_forward(lambda i: events.append(("bf", i)))
    net.after_forward(lambda i: events.append(("af", i)))
    net.before_backward(lambda i: events.append(("bb", i)))
    net.after_backward(lambda i: events.append(("ab", i)))
    net.forward()
    assert events == [(k, i) for i in range(4) for k in ("bf", "af")]
    events.clear()
    net.backward()
    assert events == [(k, i) for i in range(3, -1, -1) for k in ("bb", "ab")]
    events.clear()
    net.forward(start="conv", end="ip")
    assert events == [("bf", 1), ("af", 1), ("bf", 2), ("af", 2)]


# -- a net with an Input, for kwargs and batching --------------------------
INPUT_NET = """
name: "affine" force_backward: true
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 4 dim: 3 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param { num_output: 2
          weight_filler { type: "gaussian" std: 1 }
          bias_filler { type: "gaussian" std: 1 } } }
layer { name: "relu" type: "ReLU" bottom: "ip" top: "relu" }
"""


@pytest.fixture
def affine(tmp_path):
    path = tmp_path / "affine.prototxt"
    path.write_text(INPUT_NET)
    return caffe.Net(str(path), caffe.TEST)


def reference(net, x):
    w, b = net.params["ip"][0].data, net.params["ip"][1].data
    ip = x @ w.T + b
    return ip, np.maximum(ip, 0)


def test_forward_kwargs_and_blobs(affine):
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    out = affine.forward(blobs=["ip"], data=x)
    assert set(out) == {"relu", "ip"}
    ip, relu = reference(affine, x)
    np.testing.assert_allclose(out["ip"], ip, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["relu"], relu, rtol=1e-5, atol=1e-6)


def test_forward_kwargs_must_match_inputs_and_batch(affine):
    with pytest.raises(KaffeConfigError):
        affine.forward(label=np.zeros((4, 3)))
    with pytest.raises(ValueError):
        affine.forward(data=np.zeros((3, 3)))


def test_backward_kwargs(affine):
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    affine.forward(data=x)
    top_diff = np.ones((4, 2), np.float32)
    out = affine.backward(diffs=["ip"], relu=top_diff)
    assert set(out) == {"data", "ip"}
    ip, _ = reference(affine, x)
    np.testing.assert_allclose(out["ip"], (ip > 0) * top_diff)


@pytest.mark.parametrize("n", [4, 8, 10, 3, 1])
def test_forward_all_batches_pads_and_strips(affine, n):
    x = np.random.default_rng(n).standard_normal((n, 3)).astype(np.float32)
    seen = []
    affine.after_forward(
        lambda i: seen.append(affine.blobs["data"].data.copy()) if i == 0
        else None)
    out = affine.forward_all(blobs=["ip"], data=x)
    assert set(out) == {"relu", "ip"}
    assert out["relu"].shape == (n, 2) and out["ip"].shape == (n, 2)
    ip, relu = reference(affine, x)
    np.testing.assert_allclose(out["relu"], relu, rtol=1e-5, atol=1e-6)
    assert len(seen) == -(-n // 4)
    pad = (-n) % 4
    if pad:
        assert (seen[-1][4 - pad:] == 0).all()      # zero-padded last batch


def test_forward_all_without_inputs_runs_once(affine):
    affine.blobs["data"].data[...] = 1
    out = affine.forward_all()
    assert out["relu"].shape == (4, 2)


def test_forward_backward_all(affine):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 3)).astype(np.float32)
    d = rng.standard_normal((6, 2)).astype(np.float32)
    blobs, diffs = affine.forward_backward_all(blobs=["ip"], diffs=["ip"],
                                               data=x, relu=d)
    ip, relu = reference(affine, x)
    np.testing.assert_allclose(blobs["relu"], relu, rtol=1e-5, atol=1e-6)
    assert blobs["ip"].shape == (6, 2)
    w = affine.params["ip"][0].data
    np.testing.assert_allclose(diffs["ip"], (ip > 0) * d, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(diffs["data"], ((ip > 0) * d) @ w,
                               rtol=1e-4, atol=1e-5)


def test_batch(affine):
    x = np.arange(30, dtype=np.float32).reshape(10, 3)
    batches = list(affine._batch({"data": x}))
    assert [b["data"].shape for b in batches] == [(4, 3)] * 3
    np.testing.assert_array_equal(batches[1]["data"], x[4:8])
    np.testing.assert_array_equal(batches[2]["data"][:2], x[8:])
    assert (batches[2]["data"][2:] == 0).all()


def test_blob_reshape_star_dims(affine):
    affine.blobs["data"].reshape(6, 3)
    assert affine.blobs["data"].shape == (6, 3)
    affine.reshape()
    assert affine.blobs["relu"].shape == (6, 2)
    blob = affine.blobs["data"]
    assert (blob.num, blob.channels, blob.height, blob.width) == (6, 3, 1, 1)
    assert blob.count == 18


# -- levels and stages (pycaffe's TestLevels, TestStages, TestAllInOne) ------
LEVELS = """
layer { name: "data" type: "DummyData" top: "data"
  dummy_data_param { shape { dim: 1 dim: 1 dim: 10 dim: 10 } } }
layer { name: "NoLevel" type: "InnerProduct" bottom: "data" top: "NoLevel"
  inner_product_param { num_output: 1 } }
layer { name: "Level0Only" type: "InnerProduct" bottom: "data" top: "Level0Only"
  include { min_level: 0 max_level: 0 } inner_product_param { num_output: 1 } }
layer { name: "Level1Only" type: "InnerProduct" bottom: "data" top: "Level1Only"
  include { min_level: 1 max_level: 1 } inner_product_param { num_output: 1 } }
layer { name: "Level>=0" type: "InnerProduct" bottom: "data" top: "Level>=0"
  include { min_level: 0 } inner_product_param { num_output: 1 } }
layer { name: "Level>=1" type: "InnerProduct" bottom: "data" top: "Level>=1"
  include { min_level: 1 } inner_product_param { num_output: 1 } }
"""

STAGES = """
layer { name: "data" type: "DummyData" top: "data"
  dummy_data_param { shape { dim: 1 dim: 1 dim: 10 dim: 10 } } }
layer { name: "A" type: "InnerProduct" bottom: "data" top: "A"
  include { stage: "A" } inner_product_param { num_output: 1 } }
layer { name: "B" type: "InnerProduct" bottom: "data" top: "B"
  include { stage: "B" } inner_product_param { num_output: 1 } }
layer { name: "AorB" type: "InnerProduct" bottom: "data" top: "AorB"
  include { stage: "A" } include { stage: "B" } inner_product_param { num_output: 1 } }
layer { name: "AandB" type: "InnerProduct" bottom: "data" top: "AandB"
  include { stage: "A" stage: "B" } inner_product_param { num_output: 1 } }
"""

ALL_IN_ONE = """
layer { name: "train_data" type: "DummyData" top: "data" top: "label"
  dummy_data_param { shape { dim: 1 dim: 1 dim: 10 dim: 10 }
                     shape { dim: 1 dim: 1 dim: 1 dim: 1 } }
  include { phase: TRAIN stage: "train" } }
layer { name: "val_data" type: "DummyData" top: "data" top: "label"
  dummy_data_param { shape { dim: 1 dim: 1 dim: 10 dim: 10 }
                     shape { dim: 1 dim: 1 dim: 1 dim: 1 } }
  include { phase: TEST stage: "val" } }
layer { name: "deploy_data" type: "Input" top: "data"
  input_param { shape { dim: 1 dim: 1 dim: 10 dim: 10 } }
  include { phase: TEST stage: "deploy" } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
  inner_product_param { num_output: 2 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label"
  top: "loss"
  include: { phase: TRAIN stage: "train" } include: { phase: TEST stage: "val" } }
layer { name: "pred" type: "Softmax" bottom: "ip" top: "pred"
  include: { phase: TEST stage: "deploy" } }
"""


def net_file(tmp_path, text):
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    return str(path)


def non_data_blobs(net):
    return [b for b in net.blobs if "data" not in b]


@pytest.mark.parametrize("level, blobs", [
    (0, ["NoLevel", "Level0Only", "Level>=0"]),
    (1, ["NoLevel", "Level1Only", "Level>=0", "Level>=1"])])
def test_levels(tmp_path, level, blobs):
    kwargs = {"level": level} if level else {}
    net = caffe.Net(net_file(tmp_path, LEVELS), caffe.TEST, **kwargs)
    assert non_data_blobs(net) == blobs


@pytest.mark.parametrize("stages, blobs", [
    (["A"], ["A", "AorB"]), (["B"], ["B", "AorB"]),
    (["A", "B"], ["A", "B", "AorB", "AandB"])])
def test_stages(tmp_path, stages, blobs):
    net = caffe.Net(net_file(tmp_path, STAGES), caffe.TEST, stages=stages)
    assert non_data_blobs(net) == blobs


@pytest.mark.parametrize("phase, stage, outputs", [
    (caffe.TRAIN, "train", ["loss"]), (caffe.TEST, "val", ["loss"]),
    (caffe.TEST, "deploy", ["pred"])])
def test_all_in_one(tmp_path, phase, stage, outputs):
    net = caffe.Net(net_file(tmp_path, ALL_IN_ONE), phase, stages=[stage])
    assert list(net.blobs["data"].shape) == [1, 1, 10, 10]
    assert net.outputs == outputs
