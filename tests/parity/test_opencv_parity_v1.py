"""Old formats against an independent reader: a V1 prototxt (``layers { type:
CONVOLUTION }``, ``input:``/``input_dim:`` fields) with a V1 binary caffemodel
(V1 layers carrying legacy 4-D blobs, as the first Caffe model-zoo files),
both built here from the V1 messages, loaded by kaffe and by OpenCV's Caffe
importer (``cv2.dnn.readNetFromCaffe``, which runs its own copy of Caffe's
upgrade code): same parameter blobs, same forward outputs.

OpenCV's importer does not read ``double_data`` blobs; kaffe's reading of them
is checked against the float form of the same file.
"""
import numpy as np
import pytest
from google.protobuf import text_format

import kaffe
from kaffe.testing.parity import assert_close, opencv_net
from kaffe.proto import caffe_pb2

V1_PROTOTXT = """
name: "OldNet"
input: "data"
input_dim: 2 input_dim: 4 input_dim: 15 input_dim: 15
layers { name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1"
  blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0
  convolution_param { num_output: 6 kernel_size: 3 pad: 1 group: 2 } }
layers { name: "relu1" type: RELU bottom: "conv1" top: "conv1" }
layers { name: "pool1" type: POOLING bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layers { name: "norm1" type: LRN bottom: "pool1" top: "norm1"
  lrn_param { local_size: 3 alpha: 0.1 beta: 0.75 } }
layers { name: "conv2" type: CONVOLUTION bottom: "norm1" top: "conv2"
  convolution_param { num_output: 8 kernel_size: 2 stride: 2 } }
layers { name: "relu2" type: RELU bottom: "conv2" top: "conv2" }
layers { name: "pool2" type: POOLING bottom: "conv2" top: "pool2"
  pooling_param { pool: AVE kernel_size: 2 stride: 1 } }
layers { name: "ip1" type: INNER_PRODUCT bottom: "pool2" top: "ip1"
  blobs_lr: 1 blobs_lr: 2
  inner_product_param { num_output: 5 } }
layers { name: "drop1" type: DROPOUT bottom: "ip1" top: "ip1"
  dropout_param { dropout_ratio: 0.5 } }
layers { name: "prob" type: SOFTMAX bottom: "ip1" top: "prob" }
"""

# Parameter shapes, as the net defines them.
SHAPES = {"conv1": [(6, 2, 3, 3), (6,)], "conv2": [(8, 6, 2, 2), (8,)],
          "ip1": [(5, 8 * 2 * 2), (5,)]}


def v1_weights(double=False):
    """The V1 NetParameter with blobs in the legacy num/channels/height/width
    form (a bias is 1×1×1×N, an InnerProduct weight 1×1×M×K)."""
    param = text_format.Parse(V1_PROTOTXT, caffe_pb2.NetParameter())
    rng = np.random.default_rng(0)
    values = {}
    for layer in param.layers:
        for shape in SHAPES.get(layer.name, []):
            blob = layer.blobs.add()
            blob.num, blob.channels, blob.height, blob.width = \
                (1,) * (4 - len(shape)) + shape
            array = (rng.standard_normal(shape) * 0.5).astype(np.float32)
            target = blob.double_data if double else blob.data
            target.extend(array.ravel().tolist())
            values.setdefault(layer.name, []).append(array)
    assert not len(param.layer) and len(param.layers) == 10
    return param, values


def write_files(tmp_path, double=False):
    prototxt = tmp_path / "old.prototxt"
    prototxt.write_text(V1_PROTOTXT)
    param, values = v1_weights(double)
    weights = tmp_path / ("old_double.caffemodel" if double else "old.caffemodel")
    weights.write_bytes(param.SerializeToString())
    return str(prototxt), str(weights), values


def test_v1_prototxt_and_weights_match_opencv(tmp_path):
    pytest.importorskip("cv2", reason="opencv-python-headless (test extra) not installed")
    prototxt, weights, values = write_files(tmp_path)
    net = kaffe.Net(prototxt, kaffe.TEST, weights=weights)
    assert net.inputs == ["data"]
    assert [layer.type for layer in net.layers][:3] == ["Input", "Convolution", "ReLU"]
    reference = opencv_net(prototxt, weights)

    # The same parameter blobs (OpenCV keeps a bias as 1×N: compare values).
    for name, expected in values.items():
        layer_id = reference.getLayerId(name)
        for j, blob in enumerate(net.params[name]):
            assert blob.shape == expected[j].shape
            np.testing.assert_array_equal(blob.data, expected[j])
            theirs = reference.getParam(layer_id, j)
            np.testing.assert_array_equal(blob.data.ravel(), theirs.ravel(),
                                          err_msg=f"{name} param {j}")

    # The same forward outputs, layer by layer.
    x = np.random.default_rng(1).standard_normal((2, 4, 15, 15)).astype(np.float32)
    net.blobs["data"].data[...] = x
    net.forward()
    reference.setInput(x, "data")
    # kaffe blob -> the OpenCV layer whose output it holds (in-place layers
    # overwrite their bottom's blob in kaffe, as in Caffe).
    last_writer = {"conv1": "relu1", "pool1": "pool1", "norm1": "norm1",
                   "conv2": "relu2", "pool2": "pool2", "ip1": "drop1", "prob": "prob"}
    outputs = reference.forward(list(last_writer.values()))
    for name, expected in zip(last_writer, outputs):
        assert_close(net.blobs[name].data, expected, f"blob {name}")


def test_double_data_weights_load_as_their_float_form(tmp_path):
    prototxt, weights, values = write_files(tmp_path, double=True)
    _, float_weights, _ = write_files(tmp_path)
    doubles = kaffe.Net(prototxt, kaffe.TEST, weights=weights)
    floats = kaffe.Net(prototxt, kaffe.TEST, weights=float_weights)
    for name in values:
        for a, b, expected in zip(doubles.params[name], floats.params[name], values[name]):
            np.testing.assert_array_equal(a.data, b.data)
            np.testing.assert_array_equal(a.data, expected)
    # A float64 net reads the doubles without rounding them.
    param, _ = v1_weights(double=True)
    exact = kaffe.Net(prototxt, kaffe.TEST, dtype=np.float64)
    exact.copy_from(weights)
    stored = np.asarray(param.layers[0].blobs[0].double_data)
    np.testing.assert_array_equal(exact.params["conv1"][0].data.ravel(), stored)
