"""Forward parity of the neuron layers with OpenCV's Caffe importer.

One net holds every neuron layer OpenCV's importer knows: AbsVal, BNLL, ELU,
Exp, Log, Power, PReLU (per channel and channel-shared), Swish, Sigmoid and
TanH. It has no Threshold or Clip layer, and it ignores log_param and
swish_param (it computes ln(x) and x·σ(x)), so those run with their
defaults here; their other settings are checked against loop references in
tests/layers/neuron/. The net is saved as prototxt + caffemodel with weights
from kaffe's fillers and read back by ``cv2.dnn.readNetFromCaffe``; every
layer's output must match kaffe's blob.

OpenCV cannot create a 0-D array: it refuses the channel-shared slope blob,
which has no axes in Caffe (and kaffe). The caffemodel handed to it stores
that blob with shape (1) instead; the value is the same.
"""
import numpy as np
import pytest

import kaffe
from kaffe.testing.parity import assert_close, opencv_net
from kaffe.proto import caffe_pb2

cv2 = pytest.importorskip("cv2", reason="opencv-python-headless (test extra) not installed")

NET = """
name: "neuron_parity"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 2 dim: 4 dim: 5 dim: 6 } } }
layer { name: "abs" type: "AbsVal" bottom: "data" top: "abs" }
layer { name: "bnll" type: "BNLL" bottom: "data" top: "bnll" }
layer { name: "elu" type: "ELU" bottom: "data" top: "elu" }
layer { name: "elu_half" type: "ELU" bottom: "data" top: "elu_half"
        elu_param { alpha: 0.5 } }
layer { name: "exp" type: "Exp" bottom: "data" top: "exp" }
layer { name: "exp_base2" type: "Exp" bottom: "data" top: "exp_base2"
        exp_param { base: 2 scale: 0.5 shift: 0.1 } }
layer { name: "log" type: "Log" bottom: "bnll" top: "log" }
layer { name: "power_square" type: "Power" bottom: "data" top: "power_square"
        power_param { power: 2 scale: 0.5 shift: 0.1 } }
layer { name: "power_root" type: "Power" bottom: "abs" top: "power_root"
        power_param { power: 0.37 scale: 0.83 shift: 0.2 } }
layer { name: "power_affine" type: "Power" bottom: "data" top: "power_affine"
        power_param { scale: -1.5 shift: 0.3 } }
layer { name: "prelu" type: "PReLU" bottom: "data" top: "prelu"
        prelu_param { filler { type: "gaussian" std: 0.5 } } }
layer { name: "prelu_shared" type: "PReLU" bottom: "data" top: "prelu_shared"
        prelu_param { channel_shared: true filler { type: "uniform" min: -1 max: 1 } } }
layer { name: "prelu_default" type: "PReLU" bottom: "elu" top: "prelu_default" }
layer { name: "swish" type: "Swish" bottom: "data" top: "swish" }
layer { name: "sig" type: "Sigmoid" bottom: "data" top: "sig" }
layer { name: "tanh" type: "TanH" bottom: "data" top: "tanh" }
"""


def give_scalar_blobs_one_axis(weights):
    """Rewrite the caffemodel at ``weights`` with 0-axis blobs as shape (1)."""
    param = caffe_pb2.NetParameter()
    with open(weights, "rb") as f:
        param.ParseFromString(f.read())
    for layer in param.layer:
        for blob in layer.blobs:
            if not len(blob.shape.dim):
                blob.shape.dim.append(1)
    with open(weights, "wb") as f:
        f.write(param.SerializeToString())


def test_neuron_layers_match_opencv(tmp_path):
    prototxt = tmp_path / "neuron.prototxt"
    prototxt.write_text(NET)
    kaffe.set_random_seed(5)
    net = kaffe.Net(str(prototxt), kaffe.TEST)
    weights = tmp_path / "neuron.caffemodel"
    net.save(str(weights))
    assert net.params["prelu_shared"][0].shape == ()
    give_scalar_blobs_one_axis(weights)
    x = (np.random.default_rng(3).standard_normal(net.blobs["data"].shape)
         * 2).astype(np.float32)
    net.blobs["data"].data[...] = x
    net.forward()
    reference = opencv_net(prototxt, weights, {"data": x})
    names = [name for name in net._layer_names
             if name != "data" and name in net.blobs]
    outputs = reference.forward(names)
    for name, expected in zip(names, outputs):
        ours = net.blobs[name].data
        assert ours.shape == tuple(expected.shape), name
        assert_close(ours, expected, f"layer {name}")
