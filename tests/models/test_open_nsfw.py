"""A real model: Yahoo's open_nsfw (ResNet-50 1by2 with BatchNorm, Scale and
Eltwise, 224×224), read from the shared model directory beside the
repository (never copied into it).

* kaffe's ``prob`` and intermediate blobs equal OpenCV's Caffe importer
  (``cv2.dnn.readNetFromCaffe``, fusion off) on the same float32 input;
* ``kaffe explain`` on it: parameters = the caffemodel's blob sizes, MACs =
  an independent count from the weight shapes, the key shapes, a readable
  table.
"""
import math
import re
from pathlib import Path

import numpy as np
import pytest

import kaffe
from kaffe.testing.parity import opencv_net
from kaffe.tools import cli

MODEL_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "models" / "open_nsfw"
PROTOTXT = MODEL_DIR / "deploy.prototxt"
WEIGHTS = MODEL_DIR / "resnet_50_1by2_nsfw.caffemodel"

pytestmark = pytest.mark.skipif(
    not (PROTOTXT.is_file() and WEIGHTS.is_file()),
    reason=f"open_nsfw model not found in {MODEL_DIR.resolve()} (it is not part of the "
           "repository: put deploy.prototxt and resnet_50_1by2_nsfw.caffemodel there)")

# The blobs compared with OpenCV, as (kaffe layer to stop after, OpenCV layer
# whose output that is). In-place layers (BatchNorm, Scale, ReLU) overwrite
# one blob in kaffe, so each is read right after its layer has run.
CHECKPOINTS = [
    "conv_1", "bn_1", "scale_1", "relu_1",           # the stem, step by step
    "pool1",
    "eltwise_stage1_block2", "relu_stage1_block2",   # a mid-network residual sum
    "eltwise_stage3_block2",
    "pool", "fc_nsfw", "prob",
]


def require_layers(*types):
    missing = [t for t in types if t not in kaffe.layer_type_list()]
    if missing:
        pytest.skip(f"layer types {missing} are not registered yet")


@pytest.fixture(scope="module")
def net():
    require_layers("BatchNorm", "Scale", "Eltwise")
    return kaffe.Net(str(PROTOTXT), kaffe.TEST, weights=str(WEIGHTS))


def synthetic_images(batch):
    """BGR images as open_nsfw's classify script feeds them (0–255 minus the
    ImageNet mean 104, 117, 123, channels first): smooth gradients, a bright
    disc and noise, a different one per item."""
    rng = np.random.default_rng(2024)
    yy, xx = np.mgrid[0:224, 0:224].astype(np.float32)
    images = []
    for item in range(batch):
        disc = ((yy - 90 - 30 * item) ** 2 + (xx - 120) ** 2 < 50 ** 2) * 120.0
        image = np.stack([xx, yy, (xx + yy) / 2]) * (0.5 + 0.3 * item) + disc
        image += rng.normal(0, 20, image.shape)
        images.append(np.clip(image, 0, 255))
    mean = np.array([104.0, 117.0, 123.0]).reshape(3, 1, 1)
    return (np.stack(images) - mean).astype(np.float32)


def kaffe_checkpoints(net, x):
    """{layer: copy of its top after it ran}, running the net piecewise."""
    net.blobs["data"].reshape(x.shape)
    net.reshape()
    net.blobs["data"].data[...] = x
    names = net._layer_names
    values, start = {}, names[0]
    for layer in CHECKPOINTS:
        out = net.forward(start=start, end=layer)
        (top,) = net.top_names[layer]
        values[layer] = out[top].copy()
        following = names.index(layer) + 1
        start = names[following] if following < len(names) else None
    return values


def test_prob_and_intermediate_blobs_match_opencv(net):
    pytest.importorskip("cv2", reason="opencv-python-headless (test extra) not installed")
    x = synthetic_images(2)
    ours = kaffe_checkpoints(net, x)
    reference = opencv_net(PROTOTXT, WEIGHTS, {"data": x})
    theirs = dict(zip(CHECKPOINTS, reference.forward(CHECKPOINTS)))
    for layer in CHECKPOINTS:
        a, b = ours[layer], theirs[layer].reshape(ours[layer].shape)
        scale = float(np.abs(b).max())
        assert scale > 0, layer
        error = float(np.abs(a - b).max()) / scale
        assert error <= 1e-4, f"{layer}: max |kaffe − OpenCV| = {error:.2e} of the blob's scale"
    np.testing.assert_allclose(ours["prob"], theirs["prob"].reshape(2, 2), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ours["prob"].sum(axis=1), 1.0, rtol=1e-6)
    # The two items are different images and must not be mixed up.
    assert not np.allclose(ours["fc_nsfw"][0], ours["fc_nsfw"][1])


def test_a_whole_forward_equals_the_piecewise_one(net):
    x = synthetic_images(1)
    pieces = kaffe_checkpoints(net, x)
    net.blobs["data"].data[...] = x
    np.testing.assert_array_equal(net.forward()["prob"], pieces["prob"])


def expected_macs(weights):
    """Σ over convolutions of weight count × output positions, + the
    classifier: from the caffemodel's weight shapes and ResNet's map sizes
    (the stem conv gives 112×112, then stage s has 56 / 2^s; a stage's first
    block subsamples in its shortcut and in branch2a)."""
    total = 0
    for layer in weights.layer:
        if layer.type == "Convolution":
            count = math.prod(layer.blobs[0].shape.dim) or math.prod(
                (layer.blobs[0].num, layer.blobs[0].channels, layer.blobs[0].height,
                 layer.blobs[0].width))
            if layer.name == "conv_1":
                side = 112
            else:
                stage = int(re.search(r"stage(\d)", layer.name).group(1))
                side = 56 >> stage
            total += count * side * side
        elif layer.type == "InnerProduct":
            total += len(layer.blobs[0].data)
    return total


def test_explain_counts_and_shapes(net):
    from kaffe.proto.io import load_weights
    from kaffe.viz.explain import explain_net
    weights = load_weights(str(WEIGHTS))
    net.blobs["data"].reshape((1, 3, 224, 224))
    net.reshape()
    report = explain_net(net)
    stored = sum(len(b.data) + len(b.double_data) for layer in weights.layer for b in layer.blobs)
    assert report.totals.params == stored == 5_944_567
    assert report.totals.macs == expected_macs(weights)
    rows = {row.name: row for row in report.layers}
    expected_shapes = {
        "conv_1": (1, 64, 112, 112), "pool1": (1, 64, 56, 56),
        "eltwise_stage0_block2": (1, 128, 56, 56), "eltwise_stage1_block0": (1, 256, 28, 28),
        "eltwise_stage2_block5": (1, 512, 14, 14), "eltwise_stage3_block2": (1, 1024, 7, 7),
        "pool": (1, 1024, 1, 1), "fc_nsfw": (1, 2), "prob": (1, 2)}
    for name, shape in expected_shapes.items():
        assert rows[name].top_shapes == [shape], name
    assert rows["bn_1"].param_shapes == [(64,), (64,), (1,)]
    assert rows["scale_1"].param_shapes == [(64,), (64,)]
    # conv_1: 7×7 stride 2; pool1: + (3 − 1)·2 = 11, jump 4; in-place layers
    # keep the field; the end sees the whole image.
    assert rows["conv_1"].receptive_field[0].size == (7, 7)
    assert rows["relu_1"].receptive_field[0].size == (7, 7)
    assert rows["pool1"].receptive_field[0].size == (11, 11)
    assert rows["pool1"].receptive_field[0].jump == (4, 4)
    assert rows["eltwise_stage3_block2"].receptive_field[0].jump == (32, 32)
    assert rows["fc_nsfw"].receptive_field[0].whole_input
    assert report.notes == []


def test_kaffe_explain_command_is_readable(net, capsys):
    status = cli.main(["explain", str(PROTOTXT), "--weights", str(WEIGHTS)])
    out, err = capsys.readouterr()
    assert status == 0, err
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("Layer "))
    columns = {name: header.index(name) for name in ("Type", "Top shape", "Params", "RF")}
    rows = [line for line in lines if re.match(r"(conv|bn|scale|relu|eltwise|pool|fc|prob)\w* +\S",
                                               line)]
    assert len(rows) > 200
    for line in rows:
        # Every layer's type and top shape start in their columns.
        assert line[columns["Type"] - 2:columns["Type"]] == "  ", line
        if line[columns["Top shape"]:].startswith("("):
            assert line[columns["Top shape"] - 2:columns["Top shape"]] == "  ", line
    assert max(len(line) for line in lines) <= 200
    assert re.search(r"^conv_1 +Convolution +data → conv_1 +\(1, 64, 112, 112\) +"
                     r"\(64, 3, 7, 7\) \(64\) +9,472 +118,013,952 +7×7 +2$", out, re.M)
    assert re.search(r"^relu_1 +ReLU +conv_1 \(in place\) +\(1, 64, 112, 112\)", out, re.M)
    assert "Params: 5,944,567 (5.94 M)" in out
    assert "MACs (multiply-accumulates) per forward pass: 1,068,550,144 (1.07 G)" in out
