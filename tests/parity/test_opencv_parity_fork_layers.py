"""Forward parity of the fork layers OpenCV 4.x implements: ReLU6,
ShuffleChannel, Interp, ConvolutionDepthwise, Axpy, and Pooling's
ceil_mode.

One small net in the style of the fork nets (a ShuffleNet unit with a
depthwise convolution, a DeepLab Interp head, an SE block with Axpy,
DenseNet-style ``ceil_mode: false`` pooling) is saved with kaffe's random
weights and read back by ``cv2.dnn.readNetFromCaffe``; every layer's output
must match kaffe's blob. Where OpenCV's importer differs:

- OpenCV reads ``ConvolutionDepthwise`` as a Convolution whose group it
  infers from the (C, 1, k, k) weights, so, as in ShuffleNet's own files,
  the layer states no group.
- For Interp OpenCV agrees on zoom_factor and height/width, but refuses
  shrink_factor alone and ignores pad_beg/pad_end and a shrink_factor given
  with zoom_factor (different output sizes); those are tested against the
  fork's loop in tests/layers/vision.
- OpenCV's importer computes Axpy as a·bottom[2] + bottom[1], while the
  SENet fork (``axpy_layer.cpp``) and kaffe compute a·bottom[1] +
  bottom[2]. OpenCV gets the prototxt with the last two bottoms swapped,
  so that both compute the fork's a·x + y. The batch is 1: the
  two-input Scale OpenCV builds for Axpy fails on a batch of 2.
"""
import numpy as np
import pytest

from kaffe.testing.parity import assert_close, opencv_net, saved_random_net

cv2 = pytest.importorskip("cv2", reason="opencv-python-headless (test extra) "
                                        "not installed")

FILL = ('weight_filler { type: "gaussian" std: 1 } '
        'bias_filler { type: "gaussian" std: 1 }')

NET = f"""
name: "fork_parity"
layer {{ name: "data" type: "Input" top: "data"
        input_param {{ shape {{ dim: 1 dim: 4 dim: 9 dim: 11 }} }} }}
layer {{ name: "gconv" type: "Convolution" bottom: "data" top: "gconv"
        convolution_param {{ num_output: 8 group: 2 kernel_size: 1 {FILL} }} }}
layer {{ name: "shuffle" type: "ShuffleChannel" bottom: "gconv" top: "shuffle"
        shuffle_channel_param {{ group: 2 }} }}
layer {{ name: "dw" type: "ConvolutionDepthwise" bottom: "shuffle" top: "dw"
        convolution_param {{ num_output: 8 kernel_size: 3 pad: 1
                            stride: 2 {FILL} }} }}
layer {{ name: "relu6" type: "ReLU6" bottom: "dw" top: "relu6" }}
layer {{ name: "zoom" type: "Interp" bottom: "relu6" top: "zoom"
        interp_param {{ zoom_factor: 3 }} }}
layer {{ name: "resize" type: "Interp" bottom: "data" top: "resize"
        interp_param {{ height: 5 width: 17 }} }}
layer {{ name: "pool_floor" type: "Pooling" bottom: "data" top: "pool_floor"
        pooling_param {{ pool: MAX kernel_size: 3 stride: 2 ceil_mode: false }} }}
layer {{ name: "pool_ceil" type: "Pooling" bottom: "data" top: "pool_ceil"
        pooling_param {{ pool: AVE kernel_size: 3 stride: 2 pad: 1
                        ceil_mode: true }} }}
layer {{ name: "squeeze" type: "Pooling" bottom: "data" top: "squeeze"
        pooling_param {{ pool: AVE global_pooling: true }} }}
layer {{ name: "excite" type: "Convolution" bottom: "squeeze" top: "excite"
        convolution_param {{ num_output: 4 kernel_size: 1 {FILL} }} }}
layer {{ name: "gate" type: "Sigmoid" bottom: "excite" top: "gate" }}
layer {{ name: "branch" type: "Convolution" bottom: "data" top: "branch"
        convolution_param {{ num_output: 4 kernel_size: 3 pad: 1 {FILL} }} }}
layer {{ name: "axpy" type: "Axpy" bottom: "gate" bottom: "branch"
        bottom: "data" top: "axpy" }}
"""


def test_fork_layers_match_opencv(tmp_path):
    net, prototxt, weights = saved_random_net(tmp_path, "forks", NET)
    swapped = tmp_path / "forks_opencv.prototxt"
    swapped.write_text(NET.replace('bottom: "branch"\n        bottom: "data"',
                                   'bottom: "data"\n        bottom: "branch"'))
    x = (np.random.default_rng(3).standard_normal(net.blobs["data"].shape)
         * 3).astype(np.float32)
    net.blobs["data"].data[...] = x
    net.forward()
    reference = opencv_net(swapped, weights, {"data": x})
    names = [name for name in net._layer_names
             if name != "data" and net.layer_dict[name].type != "Split"]
    assert set(names) <= set(reference.getLayerNames())
    for name, expected in zip(names, reference.forward(names)):
        ours = net.blobs[name].data
        assert ours.shape == tuple(expected.shape), name
        assert_close(ours, expected, f"layer {name}")
