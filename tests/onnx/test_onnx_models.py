"""Whole Caffe nets through ONNX: real architectures (written in
tests/onnx/nets with reduced widths, random weights) export and match
onnxruntime on every blob; Caffe → ONNX → Caffe gives the original outputs;
``fold`` keeps the outputs; a train/val net exports as its deploy form; the
real open_nsfw model scores the same in onnxruntime as in kaffe."""
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import kaffe  # noqa: E402
from kaffe.onnx import deploy_net, export, load, save  # noqa: E402
from onnx_nets import NETS, export_and_check, randomise  # noqa: E402

ARCHITECTURES = sorted(p.stem for p in NETS.glob("*.prototxt"))
ROUND_TRIP = ARCHITECTURES

ROOT = Path(__file__).resolve().parents[2]


def build(name, seed=0):
    return randomise(kaffe.Net(str(NETS / f"{name}.prototxt"), kaffe.TEST),
                     seed)


def test_the_architectures_are_there():
    assert {"alexnet", "googlenet_inception", "squeezenet_fire", "mobilenet",
            "resnet_bottleneck", "densenet_block", "fcn_crop",
            "senet_block"} <= set(ARCHITECTURES)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_architecture_exports_and_matches_onnxruntime(tmp_path, name):
    net = build(name)
    result, report = export_and_check(net, tmp_path)
    assert all(r.max_rel <= 1e-4 for r in report.rows)
    assert {r.blob for r in report.rows if r.output} == set(net.outputs)
    assert len(report.rows) > len(net.outputs)      # intermediates too


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_caffe_onnx_caffe_round_trip(tmp_path, name):
    net = build(name)
    exported = export(net, None)
    imported = load(exported.model)
    prototxt, weights = tmp_path / "back.prototxt", tmp_path / "back.caffemodel"
    save(imported, str(prototxt), str(weights))
    back = kaffe.Net(str(prototxt), kaffe.TEST, weights=str(weights))
    x = {b: np.random.default_rng(3).standard_normal(
        net.blobs[b].data.shape).astype(np.float32) for b in net.inputs}
    original = {k: v.copy() for k, v in net.forward(**x).items()}
    again = back.forward(**x)
    for blob in net.outputs:
        value = imported.onnx_outputs[exported.values[blob]]
        scale = max(1.0, float(np.abs(original[blob]).max()))
        np.testing.assert_allclose(again[value], original[blob], rtol=1e-4,
                                   atol=1e-5 * scale, err_msg=blob)


@pytest.mark.parametrize("name", ["resnet_bottleneck", "mobilenet"])
def test_fold_merges_batchnorm_and_scale(tmp_path, name):
    net = build(name)
    plain = export(net, None)
    result, report = export_and_check(net, tmp_path, fold=True)
    ops = [n.op_type for n in result.model.graph.node]
    assert "BatchNormalization" not in ops
    assert len(ops) < len(plain.model.graph.node)
    assert any("folded" in note for note in result.notes)


def test_train_net_exports_as_deploy(tmp_path):
    prototxt = ROOT / "examples" / "mnist" / "lenet_train_test.prototxt"
    net, notes = deploy_net(str(prototxt), shapes={"data": (2, 1, 28, 28)})
    randomise(net)
    assert "loss" not in net.blobs and "accuracy" not in net.blobs
    assert "label" not in net.blobs
    assert any("'loss' (SoftmaxWithLoss) left out" in n for n in notes)
    assert any("'accuracy' (Accuracy) left out" in n for n in notes)
    result, _ = export_and_check(net, tmp_path)
    assert [i.name for i in result.model.graph.input] == ["data"]
    assert [o.name for o in result.model.graph.output] == ["ip2"]


# -- the real open_nsfw model --------------------------------------------------------------
NSFW = ROOT / ".." / "shared" / "models" / "open_nsfw"


@pytest.mark.skipif(not (NSFW / "resnet_50_1by2_nsfw.caffemodel").is_file(),
                    reason=f"open_nsfw not found in {NSFW.resolve()} (it is "
                           "not part of the repository)")
def test_open_nsfw_scores_the_same_in_onnxruntime(tmp_path):
    from kaffe.onnx import check_export
    net = kaffe.Net(str(NSFW / "deploy.prototxt"), kaffe.TEST,
                    weights=str(NSFW / "resnet_50_1by2_nsfw.caffemodel"))
    result = export(net, str(tmp_path / "nsfw.onnx"))
    rng = np.random.default_rng(0)
    x = (rng.uniform(0, 255, (1, 3, 224, 224)) -
         np.array([104, 117, 123]).reshape(1, 3, 1, 1)).astype(np.float32)
    report = check_export(net, result, {"data": x})
    assert report.ok, report.to_text()
    prob = next(r for r in report.rows if r.blob == "prob")
    assert prob.max_abs < 1e-5


FOLDABLE = """
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 4 dim: 5 dim: 5 } } }
layer { name: "up" type: "Deconvolution" bottom: "data" top: "up"
  convolution_param { num_output: 6 group: 2 kernel_size: 3 stride: 2 } }
layer { name: "up_bn" type: "BatchNorm" bottom: "up" top: "up" }
layer { name: "up_scale" type: "Scale" bottom: "up" top: "up" scale_param { bias_term: true } }
layer { name: "fc" type: "InnerProduct" bottom: "up" top: "fc" inner_product_param { num_output: 7 } }
layer { name: "fc_scale" type: "Scale" bottom: "fc" top: "fc" }
layer { name: "fc_t" type: "InnerProduct" bottom: "fc" top: "fc_t"
  inner_product_param { num_output: 3 transpose: true bias_term: false } }
layer { name: "fc_t_bias" type: "Bias" bottom: "fc_t" top: "fc_t" }
"""


def test_fold_into_deconvolution_and_inner_products(tmp_path):
    from onnx_nets import net_from_text
    net = net_from_text(tmp_path, FOLDABLE)
    result, _ = export_and_check(net, tmp_path, fold=True)
    ops = [n.op_type for n in result.model.graph.node]
    assert ops == ["ConvTranspose", "Flatten", "Gemm", "Gemm"]
    assert len(result.notes) == 5
