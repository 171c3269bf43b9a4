"""kaffe explain's report: shapes, params, MACs, formulas, receptive fields.

Expected numbers are worked out by hand in each test from Caffe's rules
(caffe-reference.md §1a), never copied from explain's own output.
"""
import json
import re

import pytest

import kaffe
from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.viz.explain import explain, explain_net


def has(*types):
    missing = [t for t in types if t not in kaffe.layer_type_list()]
    return pytest.mark.skipif(bool(missing), reason=f"layer type(s) {missing} "
                              "not registered yet")


def write(tmp_path, text, name="net.prototxt"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def row(report, name):
    return next(r for r in report.layers if r.name == name)


def input_layer(shape, name="data"):
    dims = " ".join(f"dim: {d}" for d in shape)
    return (f'layer {{ name: "{name}" type: "Input" top: "{name}" '
            f'input_param {{ shape {{ {dims} }} }} }}\n')


MLP = input_layer((64, 50, 4, 4)) + """
layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
  inner_product_param { num_output: 500 } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  inner_product_param { num_output: 10 bias_term: false } }
"""


# -- rows, params, MACs, totals --------------------------------------------------------
def test_inner_product_rows(tmp_path):
    report = explain(write(tmp_path, 'name: "mlp"\n' + MLP))
    assert report.name == "mlp" and report.phase == "TEST"
    assert [r.name for r in report.layers] == ["data", "ip1", "relu1", "ip2"]
    ip1 = row(report, "ip1")
    assert ip1.type == "InnerProduct"
    assert ip1.bottom == ["data"] and ip1.top == ["ip1"]
    assert ip1.top_shapes == [(64, 500)]
    assert ip1.param_shapes == [(500, 800), (500,)]
    assert ip1.params == 500 * 800 + 500
    assert ip1.macs == 64 * 800 * 500            # M·K·N
    assert ip1.formula == ("ip1: 500 outputs, each a weighted sum of all 800 "
                           "inputs (50×4×4 flattened) + bias → (64, 500)")
    ip2 = row(report, "ip2")
    assert ip2.formula == ("ip2: 10 outputs, each a weighted sum of all 500 "
                           "inputs → (64, 10)")
    assert ip2.params == 5000 and ip2.macs == 64 * 500 * 10
    relu = row(report, "relu1")
    assert relu.macs == 0 and relu.params == 0 and relu.formula == ""
    t = report.totals
    assert t.params == 400500 + 5000 == t.trainable_params
    assert t.param_bytes == 4 * t.params
    assert t.macs == 64 * 800 * 500 + 64 * 500 * 10
    # data + ip1 (relu1 in place: counted once) + ip2, float32.
    assert t.activation_bytes == 4 * (64 * 800 + 64 * 500 + 64 * 10)
    assert report.inputs == {"data": (64, 50, 4, 4)}


def test_shared_and_frozen_params_in_totals(tmp_path):
    net = input_layer((8, 6)) + """
    layer { name: "a" type: "InnerProduct" bottom: "data" top: "a"
      param { name: "w" } param { name: "b" }
      inner_product_param { num_output: 3 } }
    layer { name: "b" type: "InnerProduct" bottom: "data" top: "b"
      param { name: "w" } param { name: "b" }
      inner_product_param { num_output: 3 } }
    layer { name: "c" type: "InnerProduct" bottom: "data" top: "c"
      param { lr_mult: 0 } param { lr_mult: 0 }
      inner_product_param { num_output: 2 } }
    """
    report = explain(write(tmp_path, net))
    assert row(report, "a").shared_params == [None, None]
    assert row(report, "b").shared_params == ["a[0]", "a[1]"]
    assert row(report, "b").params == 21          # still shown per layer
    assert report.totals.params == 21 + 14        # ... but counted once
    assert report.totals.trainable_params == 21
    # Auto-inserted split tops share the data blob's memory: not counted.
    assert report.totals.activation_bytes == 4 * (8 * 6 + 8 * 3 * 2 + 8 * 2)


def test_explain_net_on_a_built_net(tmp_path):
    net = kaffe.Net(write(tmp_path, MLP), kaffe.TEST)
    report = explain_net(net)
    assert row(report, "ip1").top_shapes == [(64, 500)]
    assert report.totals.macs == 64 * 800 * 500 + 64 * 500 * 10


def test_weights_are_checked(tmp_path):
    path = write(tmp_path, MLP)
    net = kaffe.Net(path, kaffe.TEST)
    weights = str(tmp_path / "w.caffemodel")
    net.save(weights)
    assert explain(path, weights=weights).totals.params == 405500
    other = write(tmp_path, MLP.replace("num_output: 500", "num_output: 400"),
                  "other.prototxt")
    with pytest.raises(KaffeShapeError, match="ip1"):
        explain(other, weights=weights)


# -- data layers and --shape -----------------------------------------------------------
TRAIN_TEST = """name: "train_test"
layer { name: "mnist" type: "Data" top: "data" top: "label"
  include { phase: TRAIN }
  data_param { source: "no/such/train_lmdb" batch_size: 64 backend: LMDB } }
layer { name: "mnist" type: "Data" top: "data" top: "label"
  include { phase: TEST }
  data_param { source: "no/such/test_lmdb" batch_size: 100 backend: LMDB } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
  inner_product_param { num_output: 10 } }
layer { name: "accuracy" type: "Accuracy" bottom: "ip" bottom: "label"
  top: "accuracy" include { phase: TEST } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label"
  top: "loss" }
"""


def test_train_phase_data_layer_with_shape(tmp_path):
    path = write(tmp_path, TRAIN_TEST)
    report = explain(path, kaffe.TRAIN, shapes={"data": (64, 1, 28, 28)})
    assert report.phase == "TRAIN"
    assert [r.name for r in report.layers] == ["mnist", "ip", "loss"]
    data = row(report, "mnist")
    assert data.type == "Data"                    # as written in the file
    assert data.top_shapes == [(64, 1, 28, 28), (64,)]   # label: (batch,)
    assert "--shape" in data.formula and "not opened" in data.formula
    assert row(report, "ip").macs == 64 * 784 * 10
    assert row(report, "loss").top_shapes == [()]
    # The TEST phase has its own data layer (batch 100) and the accuracy.
    test = explain(path, "TEST", shapes={"data": (100, 1, 28, 28)})
    assert row(test, "mnist").top_shapes == [(100, 1, 28, 28), (100,)]
    assert "accuracy" in [r.name for r in test.layers]


def test_data_layer_without_shape_names_layer_line_blob_and_flag(tmp_path):
    path = write(tmp_path, TRAIN_TEST, "train_test.prototxt")
    with pytest.raises(KaffeConfigError) as info:
        explain(path, kaffe.TEST)
    message = str(info.value)
    assert "train_test.prototxt:5:" in message     # the TEST layer's line
    assert "layer 'mnist' (Data)" in message
    assert "top 'data' needs a shape" in message
    assert "--shape data=100,C,H,W" in message     # batch from data_param


def test_memory_data_shapes_come_from_its_params(tmp_path):
    net = """
    layer { name: "mem" type: "MemoryData" top: "data" top: "label"
      memory_data_param { batch_size: 5 channels: 2 height: 3 width: 4 } }
    layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
      inner_product_param { num_output: 7 } }
    layer { name: "silence" type: "Silence" bottom: "label" }
    """
    report = explain(write(tmp_path, net))
    assert row(report, "mem").top_shapes == [(5, 2, 3, 4), (5,)]
    assert row(report, "ip").macs == 5 * 24 * 7


def test_unregistered_data_layer_needs_shape_and_typos_stay_errors(tmp_path):
    net = """
    layer { name: "video" type: "VideoData" top: "frames" }
    layer { name: "ip" type: "InnerProduct" bottom: "frames" top: "ip"
      inner_product_param { num_output: 2 } }
    """
    path = write(tmp_path, net)
    with pytest.raises(KaffeConfigError, match=r"--shape frames="):
        explain(path)
    report = explain(path, shapes={"frames": (2, 3)})
    assert row(report, "ip").top_shapes == [(2, 2)]
    typo = write(tmp_path, net.replace("VideoData", "Inptu"), "typo.prototxt")
    with pytest.raises(KaffeConfigError, match="did you mean 'Input'"):
        explain(typo)


def test_shape_overrides_input_and_unknown_blob_is_refused(tmp_path):
    path = write(tmp_path, MLP)
    report = explain(path, shapes={"data": (2, 50, 4, 4)})
    assert row(report, "ip1").top_shapes == [(2, 500)]
    assert "--shape" in row(report, "data").formula
    with pytest.raises(KaffeConfigError, match="did you mean 'data'"):
        explain(path, shapes={"dta": (2, 50, 4, 4)})


def test_level_and_stages_select_layers(tmp_path):
    net = input_layer((2, 3)) + """
    layer { name: "deploy_only" type: "InnerProduct" bottom: "data" top: "d"
      include { stage: "deploy" } inner_product_param { num_output: 4 } }
    layer { name: "deep" type: "InnerProduct" bottom: "data" top: "e"
      include { min_level: 1 } inner_product_param { num_output: 4 } }
    """
    path = write(tmp_path, net)
    assert [r.name for r in explain(path).layers] == ["data"]
    names = [r.name for r in explain(path, stages=["deploy"], level=1).layers]
    assert names[-2:] == ["deploy_only", "deep"]


# -- JSON ------------------------------------------------------------------------------
def test_json_schema(tmp_path):
    report = explain(write(tmp_path, MLP))
    doc = json.loads(report.to_json())
    assert {"name", "layers", "totals"} <= set(doc)
    for layer in doc["layers"]:
        assert {"name", "type", "bottom", "top", "top_shapes", "param_shapes",
                "params", "macs", "formula"} <= set(layer)
        assert isinstance(layer["params"], int)
        assert isinstance(layer["macs"], int)
        assert isinstance(layer["formula"], str)
    ip1 = doc["layers"][1]
    assert ip1["top_shapes"] == [[64, 500]]
    assert ip1["param_shapes"] == [[500, 800], [500]]
    assert {"params", "trainable_params", "macs", "activation_bytes",
            "param_bytes"} <= set(doc["totals"])
    assert doc["receptive_field"]["ip1"]["whole_input"] is True
    assert doc["receptive_field"]["ip1"]["jump"] is None


# -- text ------------------------------------------------------------------------------
def test_text_table_is_aligned(tmp_path):
    text = explain(write(tmp_path, MLP)).to_text()
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("Layer "))
    column = header.index("Top shape")
    rows = [line for line in lines if re.match(r"(data|ip1|relu1|ip2) ", line)]
    assert len(rows) == 4
    for line in rows:
        assert line[column - 2:column] == "  " and line[column] == "("
    assert "    ip1: 500 outputs" in text           # formula under its row
    assert "Params: 405,500" in text
    assert "whole input" in text


# -- vision layers -------------------------------------------------------------------------
@has("Convolution")
def test_grouped_conv_formula_and_macs(tmp_path):
    net = input_layer((2, 96, 13, 13)) + """
    layer { name: "conv2" type: "Convolution" bottom: "data" top: "conv2"
      convolution_param { num_output: 256 kernel_size: 5 pad: 2 group: 2 } }
    """
    conv = row(explain(write(tmp_path, net)), "conv2")
    assert conv.top_shapes == [(2, 256, 13, 13)]
    assert conv.param_shapes == [(256, 48, 5, 5), (256,)]
    assert conv.macs == 2 * 256 * 48 * 25 * 13 * 13     # N·M·(C/g)·Πk·ΠHo
    assert conv.formula.startswith(
        "conv2: 256 filters, each 48×5×5 (one 5×5 slice per input channel, "
        "summed) + bias → (2, 256, 13, 13); "
        "H_out = (13 + 2·2 − 1·(5−1) − 1)/1 + 1 = 13")
    assert "W_out" not in conv.formula                  # same as H
    assert ("group 2: filters 0–127 see input channels 0–47, "
            "filters 128–255 see 48–95") in conv.formula


@has("Convolution")
def test_dilated_strided_rectangular_conv_formula(tmp_path):
    net = input_layer((1, 3, 12, 11)) + """
    layer { name: "d" type: "Convolution" bottom: "data" top: "d"
      convolution_param { num_output: 4 kernel_size: 3 dilation: 2
                          stride: 2 bias_term: false } }
    """
    conv = row(explain(write(tmp_path, net)), "d")
    # (12 − 2·2 − 1)/2 + 1 = 3.5 → 4 ... floor: ⌊7/2⌋ + 1 = 4; W: ⌊6/2⌋ + 1 = 4
    assert conv.top_shapes == [(1, 4, 4, 4)]
    assert "each 3×3×3 (one 3×3 slice per input channel, summed) →" in \
        conv.formula
    assert "H_out = ⌊(12 + 2·0 − 2·(3−1) − 1)/2⌋ + 1 = 4" in conv.formula
    assert "W_out = (11 + 2·0 − 2·(3−1) − 1)/2 + 1 = 4" in conv.formula
    assert "spanning 5×5" in conv.formula


@has("Pooling")
def test_ceil_pooling_with_clip_rule(tmp_path):
    net = input_layer((1, 2, 6, 7)) + """
    layer { name: "pool" type: "Pooling" bottom: "data" top: "pool"
      pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 2 } }
    """
    pool = row(explain(write(tmp_path, net)), "pool")
    # H: ⌈(6+4−3)/2⌉+1 = 5, and (5−1)·2 = 8 ≥ 6+2 → clipped to 4.
    # W: ⌈(7+4−3)/2⌉+1 = 5, (5−1)·2 = 8 < 7+2 → stays 5.
    assert pool.top_shapes == [(1, 2, 4, 5)]
    assert "H_out = ⌈(6 + 2·2 − 3)/2⌉ + 1 = 5 − 1 (clip rule" in pool.formula
    assert pool.formula.endswith("W_out = ⌈(7 + 2·2 − 3)/2⌉ + 1 = 5")
    assert pool.macs == 0


@has("Pooling")
def test_ceil_versus_floor_note(tmp_path):
    net = input_layer((1, 1, 7, 7)) + """
    layer { name: "pool" type: "Pooling" bottom: "data" top: "pool"
      pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
    """
    pool = row(explain(write(tmp_path, net)), "pool")
    assert pool.top_shapes == [(1, 1, 4, 4)]           # ⌈5/2⌉ + 1
    assert "average of each 2×2 window" in pool.formula
    assert "H_out = ⌈(7 + 2·0 − 2)/2⌉ + 1 = 4" in pool.formula
    assert "(round_mode FLOOR would give H_out = 3)" in pool.formula


@has("Pooling")
def test_global_pooling(tmp_path):
    net = input_layer((3, 8, 5, 6)) + """
    layer { name: "gap" type: "Pooling" bottom: "data" top: "gap"
      pooling_param { pool: AVE global_pooling: true } }
    """
    report = explain(write(tmp_path, net))
    gap = row(report, "gap")
    assert gap.top_shapes == [(3, 8, 1, 1)]
    assert "global AVE pooling" in gap.formula and "5×6" in gap.formula
    rf = report.receptive_field["gap"]
    assert rf.whole_input and rf.jump is None and rf.size == (5, 6)


@has("LRN")
def test_lrn_formulas(tmp_path):
    net = input_layer((1, 8, 5, 5)) + """
    layer { name: "across" type: "LRN" bottom: "data" top: "across"
      lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 } }
    layer { name: "within" type: "LRN" bottom: "data" top: "within"
      lrn_param { local_size: 3 alpha: 0.001 beta: 0.5 k: 2
                  norm_region: WITHIN_CHANNEL } }
    """
    report = explain(write(tmp_path, net))
    across = row(report, "across").formula
    assert across.startswith("across: y = x·(1 + 0.0001/5·Σx²)^−0.75, Σ over "
                             "the 5 channels c−2…c+2")
    within = row(report, "within").formula
    # Caffe's WITHIN_CHANNEL averages over n² cells and ignores k.
    assert within.startswith("within: y = x·(1 + 0.001/9·Σx²)^−0.5, Σ over "
                             "the 3×3 window")
    assert "k = 2 is ignored" in within
    assert report.receptive_field["across"].size == (1, 1)
    assert report.receptive_field["within"].size == (3, 3)


@has("Deconvolution")
def test_deconvolution(tmp_path):
    net = input_layer((1, 4, 5, 5)) + """
    layer { name: "up" type: "Deconvolution" bottom: "data" top: "up"
      convolution_param { num_output: 6 kernel_size: 4 stride: 2 pad: 1 } }
    """
    report = explain(write(tmp_path, net))
    up = row(report, "up")
    assert up.top_shapes == [(1, 6, 10, 10)]          # 2·4 + 3 + 1 − 2
    assert up.param_shapes[0] == (4, 6, 4, 4)
    assert up.macs == 1 * 4 * 6 * 16 * 5 * 5           # N·C·(M/g)·Πk·ΠH_in
    assert "H_out = 2·(5 − 1) + 1·(4−1) + 1 − 2·1 = 10" in up.formula
    rf = report.receptive_field["up"]
    assert rf.size == (2, 2)                           # ⌊3/2⌋ + 1 inputs
    assert str(rf.jump[0]) == "1/2"


@has("Convolution", "Pooling")
def test_receptive_fields_of_a_conv_pool_stack(tmp_path):
    net = input_layer((1, 1, 32, 32)) + """
    layer { name: "c1" type: "Convolution" bottom: "data" top: "c1"
      convolution_param { num_output: 2 kernel_size: 3 pad: 1 } }
    layer { name: "p1" type: "Pooling" bottom: "c1" top: "p1"
      pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
    layer { name: "c2" type: "Convolution" bottom: "p1" top: "c2"
      convolution_param { num_output: 2 kernel_h: 5 kernel_w: 3 stride: 2 } }
    layer { name: "c3" type: "Convolution" bottom: "c2" top: "c3"
      convolution_param { num_output: 2 kernel_size: 3 dilation: 2 } }
    layer { name: "relu" type: "ReLU" bottom: "c3" top: "c3" }
    layer { name: "flat" type: "Flatten" bottom: "c3" top: "flat" }
    layer { name: "ip" type: "InnerProduct" bottom: "flat" top: "ip"
      inner_product_param { num_output: 3 } }
    """
    rf = explain(write(tmp_path, net)).receptive_field
    # size += (d·(k−1))·jump, jump *= stride, per axis (H, W):
    assert (rf["data"].size, rf["data"].jump) == ((1, 1), (1, 1))
    assert (rf["c1"].size, rf["c1"].jump) == ((3, 3), (1, 1))
    assert (rf["p1"].size, rf["p1"].jump) == ((4, 4), (2, 2))
    assert (rf["c2"].size, rf["c2"].jump) == ((12, 8), (4, 4))   # 4+4·2, 4+2·2
    assert (rf["c3"].size, rf["c3"].jump) == ((28, 24), (4, 4))  # +2·2·4
    assert not rf["c3"].whole_input                  # 28 < 32
    assert rf["flat"].size == (28, 24) and rf["flat"].jump is None
    assert rf["ip"].whole_input and rf["ip"].size == (32, 32)


@has("Convolution")
def test_concat_eltwise_flatten(tmp_path):
    net = input_layer((2, 3, 9, 9)) + """
    layer { name: "a" type: "Convolution" bottom: "data" top: "a"
      convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
    layer { name: "b" type: "Convolution" bottom: "data" top: "b"
      convolution_param { num_output: 6 kernel_size: 5 pad: 2 } }
    layer { name: "cat" type: "Concat" bottom: "a" bottom: "b" top: "cat" }
    layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "a"
      top: "sum" eltwise_param { coeff: 1 coeff: -0.5 } }
    layer { name: "flat" type: "Flatten" bottom: "cat" top: "flat" }
    """
    report = explain(write(tmp_path, net))
    assert row(report, "cat").formula == \
        "cat: channels 4 + 6 = 10 → (2, 10, 9, 9)"
    assert row(report, "sum").formula.startswith(
        "sum: y = 1·a − 0.5·b element by element, with a = a_a_0_split_1, "
        "b = a_a_0_split_2")
    assert row(report, "flat").formula.startswith(
        "flat: (2, 10, 9, 9) → (2, 810)")
    rf = report.receptive_field
    assert rf["cat"].size == (5, 5)                 # the larger of 3 and 5
    assert rf["sum"].size == (3, 3)


@has("Convolution")
def test_lenet_example(tmp_path):
    if "Pooling" not in kaffe.layer_type_list():
        pytest.skip("Pooling not registered yet")
    import pathlib
    path = pathlib.Path(__file__).parents[2] / "examples/mnist/lenet.prototxt"
    report = explain(str(path))
    assert row(report, "prob").top_shapes == [(64, 10)]
    assert report.totals.params == 431080
    assert row(report, "conv2").formula.startswith(
        "conv2: 50 filters, each 20×5×5 (one 5×5 slice per input channel, "
        "summed) + bias → (64, 50, 8, 8); "
        "H_out = (12 + 2·0 − 1·(5−1) − 1)/1 + 1 = 8")
    assert report.receptive_field["pool2"].size == (16, 16)
    assert report.receptive_field["pool2"].jump == (4, 4)


# -- receptive-field rules of the other layer types --------------------------------------
@has("Convolution", "BatchNorm", "Scale", "Bias", "MVN", "PReLU", "Crop", "Slice",
     "Reshape", "Tile")
def test_receptive_fields_through_elementwise_and_layout_layers(tmp_path):
    net = input_layer((2, 4, 12, 12)) + input_layer((2, 4, 8, 8), "ref") + """
    layer { name: "c" type: "Convolution" bottom: "data" top: "c"
      convolution_param { num_output: 4 kernel_size: 3 stride: 2 pad: 1 } }
    layer { name: "bn" type: "BatchNorm" bottom: "c" top: "c" }
    layer { name: "sc" type: "Scale" bottom: "c" top: "c" scale_param { bias_term: true } }
    layer { name: "bias" type: "Bias" bottom: "c" top: "b" }
    layer { name: "mvn" type: "MVN" bottom: "b" top: "m" }
    layer { name: "prelu" type: "PReLU" bottom: "m" top: "m" }
    layer { name: "crop" type: "Crop" bottom: "data" bottom: "ref" top: "crop"
      crop_param { offset: 2 } }
    layer { name: "slice" type: "Slice" bottom: "m" top: "s1" top: "s2"
      slice_param { slice_point: 1 } }
    layer { name: "same" type: "Reshape" bottom: "s2" top: "same"
      reshape_param { shape { dim: 0 dim: -1 dim: 6 dim: 6 } } }
    layer { name: "rows" type: "Reshape" bottom: "s1" top: "rows"
      reshape_param { shape { dim: 0 dim: 0 dim: 36 } } }
    layer { name: "tile_c" type: "Tile" bottom: "m" top: "tile_c"
      tile_param { axis: 1 tiles: 2 } }
    layer { name: "tile_w" type: "Tile" bottom: "m" top: "tile_w"
      tile_param { axis: 3 tiles: 2 } }
    """
    report = explain(write(tmp_path, net))
    rf = report.receptive_field
    assert report.notes == []
    conv = ((3, 3), (2, 2))
    for blob in ("c", "b", "m", "s1", "s2", "same", "tile_c"):     # element-wise
        assert (rf[blob].size, rf[blob].jump) == conv, blob
    assert (rf["crop"].size, rf["crop"].jump) == ((1, 1), (1, 1))   # data's, not ref's
    for blob in ("rows", "tile_w"):                                # layout lost
        assert rf[blob].size == (3, 3) and rf[blob].jump is None, blob
    assert row(report, "sc").macs == 0 and row(report, "bn").macs == 0


@has("Convolution", "Reduction", "ArgMax", "SPP", "Im2col", "Embed")
def test_receptive_fields_of_reductions_windows_and_lookups(tmp_path):
    net = input_layer((2, 3, 10, 10)) + input_layer((2, 5), "words") + """
    layer { name: "i2c" type: "Im2col" bottom: "data" top: "cols"
      convolution_param { kernel_size: 3 stride: 2 } }
    layer { name: "amax_c" type: "ArgMax" bottom: "cols" top: "amax_c"
      argmax_param { axis: 1 } }
    layer { name: "amax_h" type: "ArgMax" bottom: "cols" top: "amax_h"
      argmax_param { axis: 2 } }
    layer { name: "amax" type: "ArgMax" bottom: "cols" top: "amax" }
    layer { name: "sum_w" type: "Reduction" bottom: "cols" top: "sum_w"
      reduction_param { axis: 3 } }
    layer { name: "sum" type: "Reduction" bottom: "cols" top: "sum"
      reduction_param { axis: 1 } }
    layer { name: "spp" type: "SPP" bottom: "data" top: "spp"
      spp_param { pyramid_height: 2 } }
    layer { name: "embed" type: "Embed" bottom: "words" top: "embed"
      embed_param { num_output: 4 input_dim: 7 } }
    """
    report = explain(write(tmp_path, net))
    rf = report.receptive_field
    assert (rf["cols"].size, rf["cols"].jump) == ((3, 3), (2, 2))   # a conv window
    assert (rf["amax_c"].size, rf["amax_c"].jump) == ((3, 3), (2, 2))
    assert rf["amax_h"].size == (10, 3) and rf["amax_h"].jump is None
    assert rf["sum_w"].size == (3, 10) and rf["sum_w"].jump is None
    for blob in ("amax", "sum", "spp"):
        assert rf[blob].whole_input and rf[blob].size == (10, 10), blob
    assert "embed" not in rf                 # no spatial input behind it
    assert row(report, "embed").macs == 0    # a table lookup
    assert report.notes == []


def test_text_table_wraps_long_names_and_keeps_columns(tmp_path):
    long = "a_really_long_convolution_layer_name_from_a_generator"
    net = input_layer((1, 3, 8, 8), "image_input_with_a_long_name") + f"""
    layer {{ name: "{long}" type: "InnerProduct" bottom: "image_input_with_a_long_name"
      top: "features_with_a_long_name" inner_product_param {{ num_output: 2 }} }}
    layer {{ name: "relu" type: "ReLU" bottom: "features_with_a_long_name"
      top: "features_with_a_long_name" }}
    layer {{ name: "sum" type: "Eltwise" bottom: "features_with_a_long_name"
      bottom: "features_with_a_long_name" top: "doubled" }}
    """
    text = explain(write(tmp_path, net)).to_text()
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("Layer "))
    type_column, shape_column = header.index("Type"), header.index("Top shape")
    # The long name has its own line; the row goes on, aligned, below it.
    at = lines.index(long)
    assert lines[at + 1][type_column:].startswith("InnerProduct")
    assert lines[at + 1][:type_column].strip() == ""
    # In place is said once, not "x → x (in place)".
    assert re.search(r"^relu +ReLU +features_with_a_long_name \(in place\) +\(1, 2\)",
                     text, re.M)
    # Bottoms that do not fit one line go one per line, then "→ top"; the
    # numbers stay on the layer's first line.
    sum_line = next(i for i, line in enumerate(lines) if line.startswith("sum "))
    assert lines[sum_line][shape_column:].startswith("(1, 2)")
    following = [line[type_column + 14:].strip() for line in lines[sum_line + 1:sum_line + 3]]
    assert following[-1] == "→ doubled"
