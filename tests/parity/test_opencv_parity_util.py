"""Forward parity of the utility layers with OpenCV's Caffe importer.

OpenCV's ``readNetFromCaffe`` knows none of Reduction, ArgMax, Embed, Filter,
BatchReindex, Parameter, Im2col or SPP (checked with OpenCV 4.14):
``test_direct`` tries the one-input ones and skips while OpenCV lacks them.
Two are still checked independently through layers OpenCV has:

* SPP against its definition written as OpenCV Pooling (the per-level
  kernel, pad and stride) → Flatten → Concat layers;
* Im2col against an OpenCV Convolution whose C·kh·kw filters are one-hot,
  filter (c, i, j) picking input channel c at kernel offset (i, j).
"""
import math

import numpy as np
import pytest

import kaffe
from kaffe.testing.parity import assert_close, opencv_net

cv2 = pytest.importorskip("cv2", reason="opencv-python-headless (test extra) "
                                        "not installed")


def input_layer(shape, name="data"):
    dims = " ".join(f"dim: {d}" for d in shape)
    return (f'layer {{ name: "{name}" type: "Input" top: "{name}" '
            f'input_param {{ shape {{ {dims} }} }} }}\n')


def run_kaffe(tmp_path, key, text, inputs, weights=None):
    """Build the net, optionally set weights, forward; save prototxt and
    caffemodel for OpenCV. Returns (net, prototxt path, caffemodel path)."""
    prototxt = tmp_path / f"{key}.prototxt"
    prototxt.write_text(f'name: "{key}"\n' + text)
    kaffe.set_random_seed(7)
    net = kaffe.Net(str(prototxt), kaffe.TEST)
    for (layer, index), value in (weights or {}).items():
        net.params[layer][index].data[...] = value
    for name, value in inputs.items():
        net.blobs[name].data[...] = value
    net.forward()
    caffemodel = tmp_path / f"{key}.caffemodel"
    net.save(str(caffemodel))
    return net, str(prototxt), str(caffemodel)


def run_opencv(prototxt, caffemodel, inputs, names):
    return opencv_net(prototxt, caffemodel, inputs).forward(names)


def data(shape, seed=11):
    return np.random.default_rng(seed).standard_normal(shape).astype(
        np.float32)


DIRECT = {
    "Reduction": ('reduction_param { operation: SUMSQ axis: 1 }', (2, 3, 4)),
    "ArgMax": ('argmax_param { top_k: 2 out_max_val: true }', (2, 3, 4)),
    "Im2col": ('convolution_param { kernel_size: 2 }', (2, 3, 4, 5)),
    "SPP": ('spp_param { pyramid_height: 2 }', (2, 3, 4, 5)),
    "Embed": ('embed_param { num_output: 3 input_dim: 5 '
              'weight_filler { type: "gaussian" } }', (2, 3)),
}


@pytest.mark.parametrize("layer_type", sorted(DIRECT))
def test_direct(tmp_path, layer_type):
    param, shape = DIRECT[layer_type]
    text = input_layer(shape) + (
        f'layer {{ name: "out" type: "{layer_type}" bottom: "data" '
        f'top: "out" {param} }}\n')
    x = data(shape)
    if layer_type == "Embed":
        x = np.random.default_rng(0).integers(0, 5, shape).astype(np.float32)
    net, prototxt, caffemodel = run_kaffe(tmp_path, layer_type, text,
                                          {"data": x})
    try:
        (expected,) = run_opencv(prototxt, caffemodel, {"data": x}, ["out"])
    except cv2.error as error:
        if "Can't create layer" in str(error):
            pytest.skip(f"OpenCV {cv2.__version__} has no {layer_type} layer")
        raise
    assert_close(net.blobs["out"].data, expected, "out")


def spp_as_pooling(height, pool, h_size, w_size):
    """SPP written out as Pooling → Flatten → Concat layers."""
    text = ""
    flat = []
    for level in range(height):
        bins = 2 ** level
        kh, kw = math.ceil(h_size / bins), math.ceil(w_size / bins)
        ph, pw = (kh * bins - h_size + 1) // 2, (kw * bins - w_size + 1) // 2
        text += (f'layer {{ name: "pool{level}" type: "Pooling" '
                 f'bottom: "data" top: "pool{level}" pooling_param {{ '
                 f'pool: {pool} kernel_h: {kh} kernel_w: {kw} stride_h: {kh} '
                 f'stride_w: {kw} pad_h: {ph} pad_w: {pw} }} }}\n'
                 f'layer {{ name: "flat{level}" type: "Flatten" '
                 f'bottom: "pool{level}" top: "flat{level}" }}\n')
        flat.append(f'bottom: "flat{level}"')
    return text + (f'layer {{ name: "cat" type: "Concat" {" ".join(flat)} '
                   f'top: "cat" }}\n')


@pytest.mark.parametrize("pool", ["MAX", "AVE"])
@pytest.mark.parametrize("shape, height", [((2, 3, 9, 8), 3),
                                           ((1, 4, 15, 21), 4)])
def test_spp_matches_opencv_pooling(tmp_path, pool, shape, height):
    x = data(shape)
    ours_text = input_layer(shape) + (
        f'layer {{ name: "spp" type: "SPP" bottom: "data" top: "spp" '
        f'spp_param {{ pyramid_height: {height} pool: {pool} }} }}\n')
    net, _, _ = run_kaffe(tmp_path, "spp", ours_text, {"data": x})
    theirs_text = input_layer(shape) + spp_as_pooling(height, pool,
                                                      *shape[2:])
    _, prototxt, caffemodel = run_kaffe(tmp_path, "spp_pooling", theirs_text,
                                        {"data": x})
    (expected,) = run_opencv(prototxt, caffemodel, {"data": x}, ["cat"])
    assert net.blobs["spp"].shape == tuple(expected.shape)
    assert_close(net.blobs["spp"].data, expected, "spp")


@pytest.mark.parametrize("geometry", [
    "kernel_size: 3",
    "kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 2",
    "kernel_size: 2 dilation: 2 pad: 1 stride: 2",
])
def test_im2col_matches_opencv_one_hot_convolution(tmp_path, geometry):
    shape = (2, 3, 8, 7)
    x = data(shape)
    ours_text = input_layer(shape) + (
        f'layer {{ name: "cols" type: "Im2col" bottom: "data" top: "cols" '
        f'convolution_param {{ {geometry} }} }}\n')
    net, _, _ = run_kaffe(tmp_path, "im2col", ours_text, {"data": x})
    rows = net.blobs["cols"].shape[1]
    # Filter r = c·Π kernel + offset is one-hot at (c, offset).
    one_hot = np.eye(rows, dtype=np.float32).reshape(
        (rows, shape[1]) + net.layer_dict["cols"].geometry.kernel_shape)
    conv_text = input_layer(shape) + (
        f'layer {{ name: "conv" type: "Convolution" bottom: "data" '
        f'top: "conv" convolution_param {{ num_output: {rows} '
        f'bias_term: false {geometry} }} }}\n')
    _, prototxt, caffemodel = run_kaffe(tmp_path, "one_hot", conv_text,
                                        {"data": x},
                                        weights={("conv", 0): one_hot})
    (expected,) = run_opencv(prototxt, caffemodel, {"data": x}, ["conv"])
    assert net.blobs["cols"].shape == tuple(expected.shape)
    assert_close(net.blobs["cols"].data, expected, "cols")
