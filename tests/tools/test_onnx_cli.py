"""``kaffe export`` and ``kaffe import``: the command-line faces of
kaffe.onnx, their --check and their exit statuses."""
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import kaffe  # noqa: E402
from kaffe.tools import cli  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
LENET_TRAIN_TEST = str(REPO / "examples" / "mnist" / "lenet_train_test.prototxt")
NETS = REPO / "tests" / "onnx" / "nets"


def run(argv, capsys):
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def squeezenet(tmp_path):
    """SqueezeNet's fire modules with random weights saved beside them."""
    prototxt = NETS / "squeezenet_fire.prototxt"
    kaffe.set_random_seed(3)
    net = kaffe.Net(str(prototxt), kaffe.TEST)
    for blobs in net.params.values():
        for blob in blobs:
            blob.data[...] = np.random.default_rng(0).standard_normal(
                blob.data.shape) * 0.2
    weights = tmp_path / "squeeze.caffemodel"
    net.save(str(weights))
    return str(prototxt), str(weights)


def test_export_with_check(tmp_path, capsys, squeezenet):
    out_path = tmp_path / "squeeze.onnx"
    status, out, err = run(["export", *squeezenet, "-o", str(out_path),
                            "--check"], capsys)
    assert status == 0, err
    assert out_path.is_file()
    assert "wrote" in out and "OK:" in out
    assert "fire2/concat" in out and "prob" in out
    assert "note: layer 'drop9' (Dropout)" in out


def test_export_check_with_an_image(tmp_path, capsys, squeezenet):
    from PIL import Image
    image = tmp_path / "im.png"
    Image.fromarray(np.random.default_rng(0).integers(
        0, 255, (20, 30, 3), dtype=np.uint8)).save(image)
    status, out, err = run(["export", *squeezenet, "-o",
                            str(tmp_path / "m.onnx"), "--check", "--image",
                            str(image)], capsys)
    assert status == 0, err
    assert "OK:" in out


def test_export_check_fails_above_tolerance(tmp_path, capsys, squeezenet,
                                            monkeypatch):
    from kaffe.onnx import check
    real = check.run_onnxruntime

    def off_by_a_bit(model, feeds, names):
        return {k: v * 1.01 for k, v in real(model, feeds, names).items()}
    monkeypatch.setattr(check, "run_onnxruntime", off_by_a_bit)
    status, out, err = run(["export", *squeezenet, "-o",
                            str(tmp_path / "m.onnx"), "--check"], capsys)
    assert status == 1
    assert "FAILED" in out and "FAIL" in out


def test_export_train_net_with_shape(tmp_path, capsys):
    from kaffe.onnx import deploy_net
    net, _ = deploy_net(LENET_TRAIN_TEST, shapes={"data": (1, 1, 28, 28)})
    weights = tmp_path / "lenet.caffemodel"
    net.save(str(weights))
    status, out, err = run(["export", LENET_TRAIN_TEST, str(weights), "-o",
                            str(tmp_path / "lenet.onnx"), "--shape",
                            "data=4,1,28,28", "--dynamic-batch", "--check"],
                           capsys)
    assert status == 0, err
    assert "left out" in out and "label dropped" in out
    assert "OK:" in out


def test_export_refuses_an_inexpressible_layer(tmp_path, capsys):
    prototxt = tmp_path / "im2col.prototxt"
    prototxt.write_text(
        'layer { name: "data" type: "Input" top: "data" input_param { shape '
        '{ dim: 1 dim: 2 dim: 8 dim: 8 } } }\n'
        'layer { name: "columns" type: "Im2col" bottom: "data" top: "cols" '
        'convolution_param { kernel_size: 3 } }\n')
    net = kaffe.Net(str(prototxt), kaffe.TEST)
    weights = tmp_path / "spp.caffemodel"
    net.save(str(weights))
    status, out, err = run(["export", str(prototxt), str(weights), "-o",
                            str(tmp_path / "spp.onnx")], capsys)
    assert status == 2
    assert err.startswith("kaffe: error: layer 'columns' (Im2col): cannot be "
                          "exported to ONNX")
    assert "Traceback" not in err
    assert not (tmp_path / "spp.onnx").exists()


def test_export_needs_a_shape_for_data_layers(tmp_path, capsys):
    status, out, err = run(["export", LENET_TRAIN_TEST, "missing.caffemodel",
                            "-o", str(tmp_path / "x.onnx")], capsys)
    assert status == 2
    assert "kaffe: error:" in err and "--shape" in err


def test_import_round_trip_with_check(tmp_path, capsys, squeezenet):
    model = tmp_path / "squeeze.onnx"
    assert run(["export", *squeezenet, "-o", str(model), "--dynamic-batch"],
               capsys)[0] == 0
    prototxt, weights = tmp_path / "back.prototxt", tmp_path / "back.caffemodel"
    status, out, err = run(["import", str(model), "-o", str(prototxt),
                            str(weights), "--check"], capsys)
    assert status == 0, err
    assert "symbolic batch 'N' set to 1" in out
    assert "OK:" in out
    net = kaffe.Net(str(prototxt), kaffe.TEST, weights=str(weights))
    assert "prob" in net.outputs


def test_import_names_the_node_it_cannot_express(tmp_path, capsys):
    import onnx
    h = onnx.helper
    graph = h.make_graph(
        [h.make_node("Erf", ["x"], ["y"], name="the_erf")], "g",
        [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3])],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    path = tmp_path / "erf.onnx"
    onnx.save(model, str(path))
    status, out, err = run(["import", str(path), "-o",
                            str(tmp_path / "a.prototxt"),
                            str(tmp_path / "a.caffemodel")], capsys)
    assert status == 2
    assert "layer 'the_erf' (ONNX Erf)" in err
    assert not (tmp_path / "a.prototxt").exists()


def test_import_of_a_file_that_is_not_onnx(tmp_path, capsys):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"\x00\x01 not a model")
    status, out, err = run(["import", str(path), "-o",
                            str(tmp_path / "a.prototxt"),
                            str(tmp_path / "a.caffemodel")], capsys)
    assert status == 2
    assert "kaffe: error:" in err
