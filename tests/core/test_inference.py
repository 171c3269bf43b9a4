"""The inference path: a deploy net allocates no gradients, and in-place layers
really compute in place (one Blob, one buffer, no full-size temporaries).

On a small net built here, and on open_nsfw (ResNet-50 1by2 with BatchNorm,
Scale, ReLU in place) from the shared model directory when it is there.
"""
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import kaffe
from kaffe.proto import caffe_pb2
from kaffe.proto.io import parse_text

MODEL_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "models" / "open_nsfw"
PROTOTXT = MODEL_DIR / "deploy.prototxt"
WEIGHTS = MODEL_DIR / "resnet_50_1by2_nsfw.caffemodel"

DEPLOY = """
name: "deploy"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 1 dim: 3 dim: 16 dim: 16 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 8 kernel_size: 3 pad: 1
                            weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool" top: "conv2"
        convolution_param { num_output: 8 kernel_size: 1
                            weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "sum" type: "Eltwise" bottom: "pool" bottom: "conv2" top: "sum" }
layer { name: "relu2" type: "ReLU" bottom: "sum" top: "sum" }
layer { name: "ip" type: "InnerProduct" bottom: "sum" top: "ip"
        inner_product_param { num_output: 4 weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "drop" type: "Dropout" bottom: "ip" top: "ip" }
layer { name: "prob" type: "Softmax" bottom: "ip" top: "prob" }
"""


def small_net():
    kaffe.set_random_seed(1)
    return kaffe.Net(parse_text(DEPLOY, caffe_pb2.NetParameter()), kaffe.TEST)


def set_batch(net, batch, seed=0):
    shape = (batch,) + net.blobs["data"].shape[1:]
    net.blobs["data"].reshape(shape)
    net.reshape()
    net.blobs["data"].data[...] = np.random.default_rng(seed).standard_normal(shape)


def diffs_allocated(net):
    """Names of the blobs and params that hold a gradient buffer."""
    blobs = [name for name, blob in net.blobs.items() if blob.has_diff]
    params = [f"{name}[{j}]" for name, blob_list in net.params.items()
              for j, blob in enumerate(blob_list) if blob.has_diff]
    return blobs + params


def address(blob):
    return blob.data.__array_interface__["data"][0]


def in_place_layers(net, types=None):
    """Indices of the layers whose tops are their bottoms."""
    return [i for i, layer in enumerate(net.layers)
            if net._top_ids[i] and net._top_ids[i] == net._bottom_ids[i]
            and (types is None or layer.type in types)]


def check_in_place(net, types):
    """Each in-place layer's top is its bottom's Blob, and its forward keeps
    writing into the buffer that was there before it ran."""
    layers = in_place_layers(net, types)
    assert layers
    for i in layers:
        bottom, top = net._bottoms(i), net._tops(i)
        assert all(t is b for t, b in zip(top, bottom)), net._layer_names[i]
        before = address(top[0])
        net.layers[i].Forward(bottom, top)
        assert address(top[0]) == before, net._layer_names[i]
    return layers


@pytest.mark.parametrize("batch", [1, 8])
def test_small_deploy_net_allocates_no_gradients(batch):
    net = small_net()
    set_batch(net, batch)
    assert diffs_allocated(net) == []
    out = net.forward()
    assert out["prob"].shape == (batch, 4)
    assert diffs_allocated(net) == []
    assert not any(net.layer_need_backward)


def test_small_net_in_place_layers_share_blob_and_buffer():
    net = small_net()
    set_batch(net, 8)
    net.forward()
    layers = check_in_place(net, ("ReLU", "Dropout"))
    assert [net._layer_names[i] for i in layers] == ["relu", "relu2", "drop"]
    # One data buffer per distinct blob: in-place tops and split tops add none.
    buffers = {address(blob) for blob in net.blobs.values()}
    assert len(buffers) == len(net.blobs) - 2    # the two split tops share pool's


def test_relu_in_place_makes_no_full_size_temporary():
    net = small_net()
    set_batch(net, 8)
    net.forward()
    i = net._layer_names.index("relu")
    bottom, top = net._bottoms(i), net._tops(i)
    tracemalloc.start()
    try:
        net.layers[i].Forward(bottom, top)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < top[0].data.nbytes / 4


# -- open_nsfw ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def open_nsfw():
    if not (PROTOTXT.is_file() and WEIGHTS.is_file()):
        pytest.skip(f"open_nsfw model not found in {MODEL_DIR.resolve()} (it is not part "
                    "of the repository)")
    missing = [t for t in ("BatchNorm", "Scale") if t not in kaffe.layer_type_list()]
    if missing:
        pytest.skip(f"layer types {missing} are not registered yet")
    return kaffe.Net(str(PROTOTXT), kaffe.TEST, weights=str(WEIGHTS))


@pytest.mark.parametrize("batch", [1, 8])
def test_open_nsfw_forward_allocates_no_gradients(open_nsfw, batch):
    net = open_nsfw
    set_batch(net, batch)
    prob = net.forward()["prob"]
    assert prob.shape == (batch, 2)
    assert diffs_allocated(net) == []


def test_open_nsfw_in_place_layers_share_blob_and_buffer(open_nsfw):
    net = open_nsfw
    set_batch(net, 1)
    net.forward()
    layers = check_in_place(net, ("ReLU", "BatchNorm", "Scale"))
    kinds = [net.layers[i].type for i in layers]
    assert (kinds.count("BatchNorm"), kinds.count("Scale"), kinds.count("ReLU")) == (53, 53, 49)
    # conv_1, bn_1, scale_1 and relu_1 are one blob with one buffer.
    assert net.top_names["relu_1"] == ["conv_1"]
    # Buffers: one per blob that is not an in-place top or a split copy.
    buffers = {address(blob) for blob in net.blobs.values()}
    splits = sum(len(net.top_names[name]) for name, layer in net.layer_dict.items()
                 if layer.type == "Split")
    assert len(buffers) == len(net.blobs) - splits


def test_open_nsfw_relu_in_place_makes_no_full_size_temporary(open_nsfw):
    net = open_nsfw
    set_batch(net, 1)
    net.forward()
    i = net._layer_names.index("relu_1")
    bottom, top = net._bottoms(i), net._tops(i)
    tracemalloc.start()
    try:
        net.layers[i].Forward(bottom, top)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < top[0].data.nbytes / 4


def test_open_nsfw_layers_hold_no_activation_sized_state(open_nsfw):
    net = open_nsfw
    set_batch(net, 1)
    net.forward()
    held = {f"{name}.{attribute}": value.nbytes
            for name, layer in net.layer_dict.items()
            for attribute, value in vars(layer).items()
            if isinstance(value, np.ndarray) and value.nbytes > 64 * 1024}
    assert held == {}
