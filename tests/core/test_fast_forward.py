"""The low-overhead forward (issue 12) keeps pycaffe's semantics: hooks,
start/end, forward_from_to, reshapes mid-life, in-place chains, Split
layers, debug_info, losses, and the same bits as the general paths."""
import logging

import numpy as np
import pytest

import kaffe
from kaffe.core.blob import Blob
from kaffe.ops import conv_small, pool_small

# MTCNN P-Net's shape: in-place PReLUs, MAX pooling, a blob read by two
# layers (a Split), 1×1 convolutions, a softmax; then a loss.
NET = """
name: "tiny"
force_backward: {force}
layer {{ name: "data" type: "Input" top: "data" top: "label"
  input_param {{ shape {{ dim: 2 dim: 3 dim: 12 dim: 12 }} shape {{ dim: 2 }} }} }}
layer {{ name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param {{ num_output: 6 kernel_size: 3
    weight_filler {{ type: "gaussian" std: 0.3 }}
    bias_filler {{ type: "gaussian" std: 0.1 }} }} }}
layer {{ name: "prelu1" type: "PReLU" bottom: "conv1" top: "conv1" }}
layer {{ name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}
layer {{ name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
  convolution_param {{ num_output: 8 kernel_size: 3 pad: 1
    weight_filler {{ type: "gaussian" std: 0.3 }}
    bias_filler {{ type: "gaussian" std: 0.1 }} }} }}
layer {{ name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }}
layer {{ name: "head1" type: "Convolution" bottom: "conv2" top: "head1"
  convolution_param {{ num_output: 2 kernel_size: 1
    weight_filler {{ type: "gaussian" std: 0.3 }} }} }}
layer {{ name: "head2" type: "Convolution" bottom: "conv2" top: "head2"
  convolution_param {{ num_output: 4 kernel_size: 1
    weight_filler {{ type: "gaussian" std: 0.3 }} }} }}
layer {{ name: "prob" type: "Softmax" bottom: "head1" top: "prob" }}
layer {{ name: "pool2" type: "Pooling" bottom: "head1" top: "pool2"
  pooling_param {{ pool: AVE global_pooling: true }} }}
layer {{ name: "flat" type: "Flatten" bottom: "pool2" top: "flat" }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "flat" bottom: "label"
  top: "loss" loss_weight: 0.5 }}
"""


def make_net(tmp_path, force=False, seed=5):
    path = tmp_path / f"tiny_{force}.prototxt"
    path.write_text(NET.format(force="true" if force else "false"))
    kaffe.set_random_seed(seed)
    return kaffe.Net(str(path), kaffe.TEST)


def feed(net, batch, seed=0):
    rng = np.random.default_rng(seed)
    net.blobs["data"].reshape(batch, 3, 12, 12)
    net.blobs["label"].reshape(batch)
    net.reshape()
    net.blobs["data"].data[...] = rng.standard_normal((batch, 3, 12, 12))
    net.blobs["label"].data[...] = rng.integers(0, 2, batch)


def bits(a):
    return np.ascontiguousarray(a).view(f"u{a.itemsize}")


def run(net, batch):
    feed(net, batch)
    out = net.forward()
    return {name: out[name].copy() for name in out}, {
        name: blob.data.copy() for name, blob in net.blobs.items()}


@pytest.mark.parametrize("batch", [1, 2, 5])
def test_same_bits_as_the_general_paths(tmp_path, monkeypatch, batch):
    fast_out, fast_blobs = run(make_net(tmp_path), batch)
    # The observed loop (a hook registered) ...
    observed = make_net(tmp_path)
    observed.before_forward(lambda i: None)
    observed_out, _ = run(observed, batch)
    # ... and conv_forward / max_pool_forward themselves.
    monkeypatch.setattr(conv_small, "MAX_COLUMN_ELEMENTS", 0)
    monkeypatch.setattr(pool_small, "MAX_BYTES", 0)
    slow_out, slow_blobs = run(make_net(tmp_path), batch)
    assert set(fast_out) == {"loss", "prob", "head2"}
    for name in fast_out:
        np.testing.assert_array_equal(bits(fast_out[name]),
                                      bits(slow_out[name]))
        np.testing.assert_array_equal(bits(fast_out[name]),
                                      bits(observed_out[name]))
    for name in fast_blobs:
        np.testing.assert_array_equal(bits(fast_blobs[name]),
                                      bits(slow_blobs[name]))


def test_input_shape_changes_mid_life(tmp_path):
    net = make_net(tmp_path)
    first, _ = run(net, 2)
    for batch in (3, 1, 2):
        out, _ = run(net, batch)
        fresh, _ = run(make_net(tmp_path), batch)
        assert out["prob"].shape == (batch, 2, 5, 5)
        for name in out:
            np.testing.assert_array_equal(bits(out[name]), bits(fresh[name]))
    np.testing.assert_array_equal(bits(out["prob"]), bits(first["prob"]))
    # A new spatial size too (without net.reshape(): Forward notices).
    net.blobs["data"].reshape(2, 3, 16, 16)
    net.blobs["data"].data[...] = 0.5
    assert net.forward()["prob"].shape == (2, 2, 7, 7)


def test_hooks_fire_and_remove_hook_restores_the_fast_loop(tmp_path):
    net = make_net(tmp_path)
    feed(net, 2)
    names = list(net.layer_dict)
    seen = []

    def before(i):
        seen.append(("before", i))

    def after(i):
        seen.append(("after", i))
        # The layer's tops are computed when after_forward runs.
        assert net.blobs[net.top_names[names[i]][0]].data.size

    net.before_forward(before)
    net.after_forward(after)
    net.forward()
    n = len(net.layers)
    assert seen == [(when, i) for i in range(n)
                    for when in ("before", "after")]
    seen.clear()
    net.forward(start="pool1", end="head1")
    first, last = names.index("pool1"), names.index("head1")
    assert [i for when, i in seen if when == "before"] == list(
        range(first, last + 1))
    net.remove_hook(before)
    net.remove_hook(after)
    seen.clear()
    net.forward()
    assert seen == []


def test_start_end_and_forward_from_to_run_only_their_layers(tmp_path):
    net = make_net(tmp_path)
    feed(net, 2)
    net.forward()
    ran = []
    for i, layer in enumerate(net.layers):
        original = layer.forward

        def counting(bottom, top, i=i, original=original):
            ran.append(i)
            original(bottom, top)

        layer.forward = counting
    out = net.forward(start="conv2", end="head1")
    first = list(net.layer_dict).index("conv2")
    last = list(net.layer_dict).index("head1")
    assert ran == list(range(first, last + 1))
    assert set(out) == {"head1"}
    ran.clear()
    out = net.forward(end="conv1", blobs=["data"])
    assert set(out) == {"conv1", "data"} and ran == [0, 1]
    ran.clear()
    loss = net.forward_from_to(0, len(net.layers) - 1)
    assert ran == list(range(len(net.layers)))
    assert loss == pytest.approx(0.5 * float(net.blobs["loss"].data))


def test_loss_weight_and_outputs(tmp_path):
    net = make_net(tmp_path)
    feed(net, 2)
    out = net.forward()
    assert out["loss"] is net.blobs["loss"].data
    # The loss weight is in the loss blob's diff (Caffe's convention).
    assert float(net.blobs["loss"].diff) == 0.5
    assert net.forward_from_to(0, len(net.layers) - 1) == pytest.approx(
        0.5 * float(out["loss"]))


def test_debug_info_logs_every_layer(tmp_path, caplog):
    net = make_net(tmp_path)
    feed(net, 1)
    net.debug_info = True
    with caplog.at_level(logging.INFO, logger="kaffe"):
        net.forward()
    text = caplog.text
    for name in net.layer_dict:
        assert f"[Forward] Layer {name}, top blob" in text


DEPLOY = """
layer { name: "data" type: "Input" top: "data"
  input_param { shape { dim: 2 dim: 3 dim: 6 dim: 6 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 3
    weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "prelu" type: "PReLU" bottom: "conv" top: "conv" }
"""


def test_in_place_layers_keep_their_input_only_for_backward(tmp_path):
    path = tmp_path / "deploy.prototxt"
    path.write_text(DEPLOY)
    infer = kaffe.Net(str(path), kaffe.TEST)
    infer.blobs["data"].data[...] = np.random.default_rng(2).standard_normal(
        (2, 3, 6, 6))
    infer.forward()
    layer = infer.layer_dict["prelu"]
    assert not layer.needs_backward and layer.bottom_memory is None
    # A layer the net exempted from backward says so if asked anyway.
    blob = infer.blobs["conv"]
    with pytest.raises(kaffe.errors.KaffeConfigError, match="kept no copy"):
        layer.Backward([blob], [True], [blob])
    # Under a loss the copy is kept, and backward is exact.
    trained = make_net(tmp_path, force=True)
    feed(trained, 2)
    trained.forward()
    prelu = trained.layer_dict["prelu1"]
    assert prelu.needs_backward and prelu.bottom_memory is not None
    # The copy is conv1's output before PReLU overwrote it.
    conv1_out = Blob(prelu.bottom_memory.shape)
    trained.layer_dict["conv1"].forward([trained.blobs["data"]], [conv1_out])
    np.testing.assert_array_equal(prelu.bottom_memory, conv1_out.data)
    trained.backward()
    assert trained.blobs["data"].diff.any()


def test_blob_views_stay_valid_and_follow_the_blob():
    blob = Blob((2, 3))
    view = blob.data
    assert blob.data is view
    view[...] = 7
    np.testing.assert_array_equal(blob.data, 7)
    blob.reshape(3, 2)           # same count: the same memory, new shape
    assert blob.data.shape == (3, 2) and blob.data is not view
    assert np.shares_memory(blob.data, view)
    blob.reshape(4, 4)           # grows: a new zeroed buffer
    assert not blob.data.any()
    other = Blob((4, 4))
    other.data[...] = 3
    blob.share_data(other)
    np.testing.assert_array_equal(blob.data, 3)
    other.data[...] = 4
    np.testing.assert_array_equal(blob.data, 4)
    diff = blob.diff
    assert blob.diff is diff
    blob.share_diff(other)
    assert blob.diff is not diff and np.shares_memory(blob.diff, other.diff)
    blob.release()
    assert not blob.data.any() and not np.shares_memory(blob.data,
                                                        other.data)


def test_views_taken_before_forward_see_its_results(tmp_path):
    net = make_net(tmp_path)
    feed(net, 2)
    prob = net.blobs["prob"].data
    data = net.blobs["data"].data
    data[...] = 0.25
    out = net.forward()
    assert out["prob"] is prob
    np.testing.assert_allclose(prob.sum(axis=1), 1, rtol=1e-6)


def test_forward_reshapes_for_other_blobs_of_other_shapes():
    # Blob.reshapes alone does not skip the check: the same layer handed
    # other blobs (made earlier, of another shape) reshapes for them.
    from kaffe.layers.neuron.relu import ReLULayer
    layer = ReLULayer()
    small, large = Blob((2, 3)), Blob((4, 5))
    large.data[...] = -1
    out_small, out_large = Blob((2, 3)), Blob((1,))
    layer.SetUp([small], [out_small])
    layer.Forward([small], [out_small])
    bottom = [large]
    layer.Forward(bottom, [out_large])
    assert out_large.shape == (4, 5) and not out_large.data.any()
    # The same list object, its blob replaced.
    bottom[0] = small
    layer.Forward(bottom, [out_large])
    assert out_large.shape == (2, 3)
