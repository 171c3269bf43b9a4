"""Forward parity with OpenCV's Caffe importer for the normalisation and
shape layers: BatchNorm, Scale, MVN, Reshape, Crop, Slice.

Each net is written here, given random weights by kaffe's fillers (BatchNorm's
statistics blobs are written by hand before saving), saved as prototxt +
caffemodel and read back by ``cv2.dnn.readNetFromCaffe``; every layer's output
must match kaffe's blob. Not compared: Bias and Tile (OpenCV's Caffe importer
has no such layers), Slice's deprecated slice_dim (OpenCV ignores it) and MVN
with a large eps (OpenCV adds eps to the variance, Caffe to the standard
deviation: tests/layers/normalization/test_mvn_layer.py checks Caffe's form).
"""
import numpy as np
import pytest

import kaffe
from kaffe.testing.parity import assert_close, opencv_net

cv2 = pytest.importorskip("cv2", reason="opencv-python-headless (test extra) not installed")


def inputs(**shapes):
    return "".join(
        f'layer {{ name: "{name}" type: "Input" top: "{name}" input_param '
        f'{{ shape {{ {" ".join(f"dim: {d}" for d in shape)} }} }} }}\n'
        for name, shape in shapes.items())


GAUSS = 'filler { type: "gaussian" std: 0.8 } bias_filler { type: "gaussian" std: 0.5 }'

NETS = {
    # BatchNorm with stored statistics (explicit global stats, and the TEST
    # default), Scale with a learned scale and bias, in place as in ResNets,
    # and the two-bottom Scale reading its factors from a blob.
    "batch_norm_scale": (inputs(data=(2, 4, 5, 3), gain=(2, 4)), f"""
layer {{ name: "bn" type: "BatchNorm" bottom: "data" top: "bn"
        batch_norm_param {{ use_global_stats: true }} }}
layer {{ name: "scale" type: "Scale" bottom: "bn" top: "scale"
        scale_param {{ bias_term: true {GAUSS} }} }}
layer {{ name: "bn2" type: "BatchNorm" bottom: "scale" top: "bn2"
        batch_norm_param {{ eps: 0.01 }} }}
layer {{ name: "scale2" type: "Scale" bottom: "bn2" top: "bn2"
        scale_param {{ bias_term: true {GAUSS} }} }}
layer {{ name: "scale_chw" type: "Scale" bottom: "data" top: "scale_chw"
        scale_param {{ num_axes: -1 {GAUSS} }} }}
layer {{ name: "gained" type: "Scale" bottom: "bn2" bottom: "gain" top: "gained"
        scale_param {{ axis: 0 }} }}
"""),
    "mvn": (inputs(data=(2, 3, 4, 5)), """
layer { name: "mvn" type: "MVN" bottom: "data" top: "mvn" }
layer { name: "mvn_across" type: "MVN" bottom: "data" top: "mvn_across"
        mvn_param { across_channels: true } }
layer { name: "mean_only" type: "MVN" bottom: "data" top: "mean_only"
        mvn_param { normalize_variance: false } }
"""),
    "shapes": (inputs(data=(2, 6, 5, 4), ref=(1, 2, 3, 2)), """
layer { name: "flat" type: "Reshape" bottom: "data" top: "flat"
        reshape_param { shape { dim: 0 dim: -1 dim: 4 } } }
layer { name: "split_axis" type: "Reshape" bottom: "data" top: "split_axis"
        reshape_param { shape { dim: 3 dim: 2 } axis: 1 num_axes: 1 } }
layer { name: "merge_tail" type: "Reshape" bottom: "data" top: "merge_tail"
        reshape_param { shape { dim: -1 dim: 0 } axis: 1 } }
layer { name: "crop_hw" type: "Crop" bottom: "data" bottom: "ref" top: "crop_hw"
        crop_param { offset: 1 offset: 2 } }
layer { name: "crop_chw" type: "Crop" bottom: "data" bottom: "ref" top: "crop_chw"
        crop_param { axis: 1 offset: 1 } }
layer { name: "crop_last" type: "Crop" bottom: "data" bottom: "ref" top: "crop_last"
        crop_param { axis: -1 offset: 1 } }
layer { name: "pieces" type: "Slice" bottom: "data" top: "p1" top: "p2" top: "p3"
        slice_param { axis: 1 slice_point: 1 slice_point: 4 } }
layer { name: "halves" type: "Slice" bottom: "data" top: "h1" top: "h2"
        slice_param { axis: -1 } }
layer { name: "swapped" type: "Concat" bottom: "h2" bottom: "h1" top: "swapped"
        concat_param { axis: 3 } }
"""),
}


def set_statistics(net):
    """Random running sums and a scale factor != 1 in every BatchNorm."""
    rng = np.random.default_rng(5)
    for layer in net.layers:
        if layer.type == "BatchNorm":
            mean_sum, var_sum, factor = layer.blobs
            factor.data[...] = 2.5
            mean_sum.data[...] = rng.standard_normal(mean_sum.shape) * 2.5
            var_sum.data[...] = rng.uniform(0.2, 2.0, var_sum.shape) * 2.5


def build(tmp_path, key):
    head, body = NETS[key]
    prototxt = tmp_path / f"{key}.prototxt"
    prototxt.write_text(f'name: "{key}"\n' + head + body)
    kaffe.set_random_seed(7)
    net = kaffe.Net(str(prototxt), kaffe.TEST)
    set_statistics(net)
    weights = tmp_path / f"{key}.caffemodel"
    net.save(str(weights))
    return net, str(prototxt), str(weights)


def final_writers(net):
    """{layer name: [(top index, top name)]} for the tops whose blob still
    holds that layer's output after the forward (the last in-place writer).
    Inputs and the net's automatic Split layers are left out."""
    last = {}
    for name in net._layer_names:
        for i, top in enumerate(net.top_names[name]):
            last[top] = (name, i)
    writers = {}
    for top, (name, i) in last.items():
        if name not in net.inputs and net.layer_dict[name].type != "Split":
            writers.setdefault(name, []).append((i, top))
    return writers


@pytest.mark.parametrize("key", sorted(NETS))
def test_forward_matches_opencv(tmp_path, key):
    net, prototxt, weights = build(tmp_path, key)
    reference = opencv_net(prototxt, weights)
    rng = np.random.default_rng(11)
    for name in net.inputs:
        x = rng.standard_normal(net.blobs[name].shape).astype(np.float32)
        net.blobs[name].data[...] = x
        reference.setInput(x, name)
    net.forward()
    writers = final_writers(net)
    layers = sorted(writers)
    outputs = reference.forwardAndRetrieve(layers)
    for layer, blobs in zip(layers, outputs):
        for i, top in writers[layer]:
            expected = blobs[i]
            ours = net.blobs[top].data
            assert ours.shape == tuple(expected.shape), (layer, top)
            assert_close(ours, expected, f"layer {layer}, top {top}")


def test_batch_norm_statistics_reach_the_caffemodel(tmp_path):
    """The hand-written statistics and the lr_mult 0 specs are saved."""
    net, _, weights = build(tmp_path, "batch_norm_scale")
    saved = kaffe.Net(str(tmp_path / "batch_norm_scale.prototxt"), kaffe.TEST,
                      weights=weights)
    for name in ("bn", "bn2"):
        assert saved.params[name][2].data[0] == 2.5
        np.testing.assert_array_equal(saved.params[name][1].data,
                                      net.params[name][1].data)
    layer = net.layer_dict["bn"].to_proto()
    assert [p.lr_mult for p in layer.param] == [0, 0, 0]
