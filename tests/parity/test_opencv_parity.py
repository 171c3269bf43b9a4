"""Forward parity with an independent Caffe implementation: OpenCV's dnn importer.

Each net is written here, given random weights by kaffe's fillers, saved as
prototxt + caffemodel, and read back by ``cv2.dnn.readNetFromCaffe``; every
named layer's output must match kaffe's blob.
"""
import numpy as np
import pytest

from kaffe.testing.parity import assert_close, opencv_net, saved_random_net

cv2 = pytest.importorskip("cv2", reason="opencv-python-headless (test extra) not installed")

HEAD = """
name: "parity"
layer {{ name: "data" type: "Input" top: "data"
        input_param {{ shape {{ dim: {n} dim: {c} dim: {h} dim: {w} }} }} }}
"""

GAUSS = 'weight_filler { type: "gaussian" std: 0.3 } bias_filler { type: "gaussian" std: 0.3 }'

NETS = {
    "conv_variants": (2, 6, 17, 15, f"""
layer {{ name: "conv_group" type: "Convolution" bottom: "data" top: "conv_group"
        convolution_param {{ num_output: 8 kernel_size: 3 pad: 1 group: 2 {GAUSS} }} }}
layer {{ name: "conv_dilated" type: "Convolution" bottom: "conv_group" top: "conv_dilated"
        convolution_param {{ num_output: 5 kernel_size: 3 dilation: 2 pad: 2 {GAUSS} }} }}
layer {{ name: "conv_strided" type: "Convolution" bottom: "conv_dilated" top: "conv_strided"
        convolution_param {{ num_output: 7 kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 3
                            pad_h: 1 pad_w: 0 {GAUSS} }} }}
layer {{ name: "conv_nobias" type: "Convolution" bottom: "conv_strided" top: "conv_nobias"
        convolution_param {{ num_output: 4 kernel_size: 1 bias_term: false
                            weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "relu" type: "ReLU" bottom: "conv_nobias" top: "relu"
        relu_param {{ negative_slope: 0.1 }} }}
"""),
    "pooling_modes": (2, 3, 13, 12, f"""
layer {{ name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param {{ num_output: 4 kernel_size: 3 {GAUSS} }} }}
layer {{ name: "max_ceil" type: "Pooling" bottom: "conv" top: "max_ceil"
        pooling_param {{ pool: MAX kernel_size: 3 stride: 2 }} }}
layer {{ name: "max_ceil_pad" type: "Pooling" bottom: "conv" top: "max_ceil_pad"
        pooling_param {{ pool: MAX kernel_size: 3 stride: 2 pad: 1 }} }}
layer {{ name: "ave_ceil_pad" type: "Pooling" bottom: "conv" top: "ave_ceil_pad"
        pooling_param {{ pool: AVE kernel_size: 3 stride: 2 pad: 1 }} }}
layer {{ name: "ave_rect" type: "Pooling" bottom: "conv" top: "ave_rect"
        pooling_param {{ pool: AVE kernel_h: 2 kernel_w: 3 stride_h: 1 stride_w: 2 }} }}
layer {{ name: "global_ave" type: "Pooling" bottom: "conv" top: "global_ave"
        pooling_param {{ pool: AVE global_pooling: true }} }}
layer {{ name: "global_max" type: "Pooling" bottom: "conv" top: "global_max"
        pooling_param {{ pool: MAX global_pooling: true }} }}
layer {{ name: "cat" type: "Concat" bottom: "global_ave" bottom: "global_max" top: "cat" }}
"""),
    # OpenCV's LRN reads its offset from a "bias" parameter, and its Caffe
    # importer does not map lrn_param.k onto it: k != 1 is checked against the
    # naive reference in tests/ops/test_lrn_ops.py instead.
    "lrn_and_heads": (3, 8, 9, 9, f"""
layer {{ name: "lrn_across" type: "LRN" bottom: "data" top: "lrn_across"
        lrn_param {{ local_size: 5 alpha: 0.5 beta: 0.75 k: 1 }} }}
layer {{ name: "lrn_within" type: "LRN" bottom: "data" top: "lrn_within"
        lrn_param {{ local_size: 3 alpha: 0.4 beta: 0.6 norm_region: WITHIN_CHANNEL }} }}
layer {{ name: "cat" type: "Concat" bottom: "lrn_across" bottom: "lrn_within" top: "cat"
        concat_param {{ axis: 1 }} }}
layer {{ name: "sum" type: "Eltwise" bottom: "lrn_across" bottom: "lrn_within" top: "sum"
        eltwise_param {{ operation: SUM coeff: 0.5 coeff: -2 }} }}
layer {{ name: "prod" type: "Eltwise" bottom: "lrn_across" bottom: "lrn_within" top: "prod"
        eltwise_param {{ operation: PROD }} }}
layer {{ name: "emax" type: "Eltwise" bottom: "lrn_across" bottom: "lrn_within" top: "emax"
        eltwise_param {{ operation: MAX }} }}
layer {{ name: "sig" type: "Sigmoid" bottom: "sum" top: "sig" }}
layer {{ name: "tanh" type: "TanH" bottom: "prod" top: "tanh" }}
layer {{ name: "flat" type: "Flatten" bottom: "cat" top: "flat" }}
layer {{ name: "ip" type: "InnerProduct" bottom: "flat" top: "ip"
        inner_product_param {{ num_output: 10 {GAUSS} }} }}
layer {{ name: "drop" type: "Dropout" bottom: "ip" top: "ip" }}
layer {{ name: "prob" type: "Softmax" bottom: "ip" top: "prob" }}
"""),
}


def build(tmp_path, key):
    n, c, h, w, body = NETS[key]
    return saved_random_net(tmp_path, key, HEAD.format(n=n, c=c, h=h, w=w) + body)


@pytest.mark.parametrize("key", sorted(NETS))
def test_forward_matches_opencv(tmp_path, key):
    net, prototxt, weights = build(tmp_path, key)
    rng = np.random.default_rng(11)
    x = rng.standard_normal(net.blobs["data"].shape).astype(np.float32)
    net.blobs["data"].data[...] = x
    net.forward()
    reference = opencv_net(prototxt, weights, {"data": x})
    names = [name for name in net._layer_names if name != "data" and name in net.blobs
             and name != "drop"]
    outputs = reference.forward(names)
    for name, expected in zip(names, outputs):
        assert_close(net.blobs[name].data, expected, f"layer {name}")
