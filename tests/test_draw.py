"""kaffe.draw (pycaffe's caffe.draw, writing DOT text without pydot)."""
import os
import re
import stat
import sys
from pathlib import Path

import pytest
from google.protobuf import text_format

import kaffe as caffe
from kaffe import draw
from kaffe.core.errors import KaffeConfigError, KaffeError
from kaffe.proto import caffe_pb2

REPO = Path(__file__).resolve().parents[1]

NET = """
name: "TinyNet"
layer { name: "data" type: "Data" top: "data" top: "label"
  include { phase: TRAIN } data_param { source: "train_lmdb" batch_size: 64 } }
layer { name: "data" type: "Data" top: "data" top: "label"
  include { phase: TEST } data_param { source: "test_lmdb" batch_size: 100 } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { lr_mult: 1 } param { lr_mult: 2 }
  convolution_param { num_output: 20 kernel_size: 5 stride: 1 pad: 2 } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "relu1" type: "ReLU" bottom: "pool1" top: "pool1" }
layer { name: "ip1" type: "InnerProduct" bottom: "pool1" top: "ip1"
  param { lr_mult: 0 } param { lr_mult: 0 }
  inner_product_param { num_output: 10 } }
layer { name: "accuracy" type: "Accuracy" bottom: "ip1" bottom: "label"
  top: "accuracy" include { phase: TEST } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip1" bottom: "label"
  top: "loss" exclude { phase: TEST } }
"""


def net_param(text=NET):
    return text_format.Parse(text, caffe_pb2.NetParameter())


def node_line(dot, node_id):
    lines = [l for l in dot.splitlines() if l.strip().startswith(f'"{node_id}" [')]
    assert len(lines) == 1, (node_id, dot)
    return lines[0]


def edges(dot):
    return re.findall(r'^\s*"([^"]+)" -> "([^"]+)"(?: \[label="([^"]*)"\])?;',
                      dot, flags=re.M)


def test_layers_blobs_and_edges():
    dot = draw.get_dot_graph(net_param(), "LR")
    assert dot.startswith('digraph "TinyNet" {\n  rankdir=LR;\n')
    assert dot.rstrip().endswith("}")
    conv = node_line(dot, "conv1_Convolution")
    assert 'shape="record"' in conv and 'fillcolor="#FF5050"' in conv
    assert r'label="conv1\n(Convolution)\nkernel size: 5\nstride: 1\npad: 2"' in conv
    pool = node_line(dot, "pool1_Pooling")
    assert 'fillcolor="#FF9900"' in pool and r"(Pooling AVE)" in pool
    assert 'fillcolor="#CC33FF"' in node_line(dot, "ip1_InnerProduct")
    assert 'fillcolor="#6495ED"' in node_line(dot, "loss_SoftmaxWithLoss")
    relu = node_line(dot, "relu1_ReLU")                 # in place: green
    assert 'fillcolor="#90EE90"' in relu
    blob = node_line(dot, "pool1_blob")
    assert 'shape="octagon"' in blob and 'fillcolor="#E0E0E0"' in blob
    assert 'label="pool1"' in blob
    found = edges(dot)
    assert ("data_blob", "conv1_Convolution", "") in found
    assert ("conv1_Convolution", "conv1_blob", "20") in found   # num_output
    assert ("data_Data", "data_blob", "Batch 64") in found
    assert ("data_Data", "data_blob", "Batch 100") in found
    assert ("relu1_ReLU", "pool1_blob", "") in found
    assert ("pool1_blob", "relu1_ReLU", "") in found


def test_label_edges_off():
    found = edges(draw.get_dot_graph(net_param(), "LR", label_edges=False))
    assert all(label == "" for _, _, label in found)


def test_rankdir_changes_separator():
    dot = draw.get_dot_graph(net_param(), "TB")
    assert "rankdir=TB;" in dot
    assert 'label="conv1 (Convolution) kernel size: 5 stride: 1 pad: 2"' in dot
    with pytest.raises(KaffeConfigError, match="rankdir"):
        draw.get_dot_graph(net_param(), "XY")


@pytest.mark.parametrize("phase, present, absent", [
    (caffe.TRAIN, ["loss_SoftmaxWithLoss"], ["accuracy_Accuracy"]),
    (caffe.TEST, ["accuracy_Accuracy"], ["loss_SoftmaxWithLoss"]),
    (None, ["loss_SoftmaxWithLoss", "accuracy_Accuracy"], []),
    ("ALL", ["loss_SoftmaxWithLoss", "accuracy_Accuracy"], [])])
def test_phase_filter(phase, present, absent):
    dot = draw.get_dot_graph(net_param(), "LR", phase=phase)
    for node in present:
        assert f'"{node}" [' in dot
    for node in absent:
        assert node not in dot
    if phase == caffe.TRAIN:
        assert "Batch 100" not in dot and "Batch 64" in dot


def test_rules_without_a_phase_do_not_decide_the_phase():
    text = NET + """
layer { name: "deploy_only" type: "Softmax" bottom: "ip1" top: "prob"
  include { stage: "deploy" } }
layer { name: "not_deploy" type: "Softmax" bottom: "ip1" top: "prob2"
  exclude { stage: "deploy" } }"""
    dot = draw.get_dot_graph(net_param(text), "LR", phase=caffe.TEST)
    assert "deploy_only_Softmax" in dot and "not_deploy_Softmax" in dot


def test_include_and_exclude_together_is_an_error():
    text = """layer { name: "x" type: "ReLU" bottom: "a" top: "a"
      include { phase: TRAIN } exclude { phase: TEST } }"""
    with pytest.raises(KaffeConfigError, match="both include and exclude"):
        draw.get_dot_graph(net_param(text), "LR", phase=caffe.TRAIN)


def test_display_lrm():
    dot = draw.get_dot_graph(net_param(), "LR", display_lrm=True)
    assert r"\nlr mult: 1.0, 2.0" in node_line(dot, "conv1_Convolution")
    # all-zero multipliers are not shown, as pycaffe
    assert "lr mult" not in node_line(dot, "ip1_InnerProduct")
    assert "lr mult" not in draw.get_dot_graph(net_param(), "LR")
    layer = net_param().layer[2]
    assert draw.get_layer_lr_mult(layer) == (1.0, 2.0)
    del layer.param[:]
    assert draw.get_layer_lr_mult(layer) == (1.0, 1.0)


def test_blob_shapes_on_top_edges():
    shapes = {"conv1": (64, 20, 28, 28), "loss": (), "pool1": "custom"}
    found = edges(draw.get_dot_graph(net_param(), "LR", blob_shapes=shapes))
    assert ("conv1_Convolution", "conv1_blob", "64x20x28x28") in found
    assert ("loss_SoftmaxWithLoss", "loss_blob", "scalar") in found
    assert ("pool1_Pooling", "pool1_blob", "custom") in found
    assert ("ip1_InnerProduct", "ip1_blob", "10") in found  # no shape: pycaffe's


def test_blob_shapes_of_builds_the_net(tmp_path):
    path = REPO / "examples" / "mnist" / "lenet.prototxt"
    shapes, notes = draw.blob_shapes_of(str(path), caffe.TEST)
    assert notes == []
    assert shapes["conv1"] == (64, 20, 24, 24)
    assert shapes["ip2"] == (64, 10)


def test_blob_shapes_of_both_phases_and_data_layers():
    shapes, notes = draw.blob_shapes_of(
        net_param(), None, {"data": (8, 1, 28, 28)})
    assert notes == []
    assert shapes["conv1"] == (8, 20, 28, 28)
    assert shapes["label"] == (8,)
    assert shapes["accuracy"] == () and shapes["loss"] == ()


def test_blob_shapes_of_reports_what_it_cannot_build():
    shapes, notes = draw.blob_shapes_of(net_param(), caffe.TRAIN)
    assert shapes == {}
    assert len(notes) == 1 and "needs a shape" in notes[0]
    assert notes[0].startswith("TRAIN: ")


def test_blob_shapes_of_differing_phases():
    text = """
    layer { name: "a" type: "Input" top: "x" include { phase: TRAIN }
            input_param { shape { dim: 4 dim: 3 } } }
    layer { name: "b" type: "Input" top: "x" include { phase: TEST }
            input_param { shape { dim: 1 dim: 3 } } }
    layer { name: "r" type: "ReLU" bottom: "x" top: "y" }"""
    shapes, _ = draw.blob_shapes_of(net_param(text))
    assert shapes["y"] == "4x3 (TRAIN), 1x3 (TEST)"


def test_blob_shapes_of_does_not_import_python_layers(tmp_path):
    text = """
    layer { name: "in" type: "Input" top: "x"
            input_param { shape { dim: 1 dim: 3 } } }
    layer { name: "py" type: "Python" bottom: "x" top: "y"
            python_param { module: "kaffe_draw_must_not_import" layer: "L" } }"""
    shapes, notes = draw.blob_shapes_of(net_param(text), caffe.TEST)
    assert shapes == {}
    assert "kaffe_draw_must_not_import" in notes[0]


def test_escaping():
    text = r"""layer { name: "a\"b{c}|d" type: "ReLU" bottom: "in\\x" top: "out" }"""
    dot = draw.get_dot_graph(net_param(text), "LR")
    assert r'"a\"b{c}|d_ReLU" [' in dot
    assert r'label="a\"b\{c\}\|d\n(ReLU)"' in dot
    assert r'"in\\x_blob" [' in dot
    assert r'label="in\\x"' in dot


def test_old_formats_are_upgraded():
    v1 = """name: "v1"
    input: "data" input_dim: 1 input_dim: 1 input_dim: 4 input_dim: 4
    layers { name: "conv" type: CONVOLUTION bottom: "data" top: "conv"
             convolution_param { num_output: 2 kernel_size: 3 } }"""
    dot = draw.get_dot_graph(net_param(v1), "LR")
    assert '"conv_Convolution" [' in dot
    assert '"input_Input" [' in dot               # Caffe's UpgradeNetInput


def test_draw_net_dot_formats_need_no_graphviz(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))          # no dot anywhere
    for ext in ("dot", "gv", "raw"):
        data = draw.draw_net(net_param(), "LR", ext=ext)
        assert isinstance(data, bytes)
        assert data.decode().startswith('digraph "TinyNet"')
    out = tmp_path / "net.dot"
    draw.draw_net_to_file(net_param(), str(out), phase=caffe.TRAIN)
    assert out.read_text() == draw.get_dot_graph(net_param(), "LR",
                                                 phase=caffe.TRAIN)


def test_pictures_without_graphviz_are_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KaffeError, match="apt install graphviz"):
        draw.draw_net(net_param(), "LR", ext="png")
    with pytest.raises(KaffeError, match="Graphviz"):
        draw.draw_net_to_file(net_param(), str(tmp_path / "n.svg"))
    assert not (tmp_path / "n.svg").exists()


def fake_dot(directory, exit_status=0):
    """A `dot` that answers with its arguments and the DOT text it read."""
    script = directory / "dot"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"if {exit_status}:\n"
        "    sys.stderr.write('Format: bad')\n"
        f"    sys.exit({exit_status})\n"
        "sys.stdout.write('rendered ' + ' '.join(sys.argv[1:]) + '\\n')\n"
        "sys.stdout.write(sys.stdin.read())\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


@pytest.mark.skipif(os.name != "posix", reason="uses a shell script as dot")
def test_pictures_are_rendered_by_dot(monkeypatch, tmp_path):
    fake_dot(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    data = draw.draw_net(net_param(), "TB", ext="svg")
    assert data.startswith(b"rendered -Tsvg\ndigraph")
    out = tmp_path / "net.png"
    draw.draw_net_to_file(net_param(), str(out))
    assert out.read_bytes().startswith(b"rendered -Tpng\n")


@pytest.mark.skipif(os.name != "posix", reason="uses a shell script as dot")
def test_dot_failures_are_reported(monkeypatch, tmp_path):
    fake_dot(tmp_path, exit_status=1)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(KaffeError, match="Format: bad"):
        draw.draw_net(net_param(), "LR", ext="nope")


def test_output_format_needs_an_extension():
    assert draw.output_format("a/b/net.SVG") == "svg"
    with pytest.raises(KaffeConfigError, match="extension"):
        draw.output_format("net")
    with pytest.raises(KaffeConfigError):
        draw.output_format(".hidden")


def test_pydot_graph_needs_pydot():
    try:
        import pydot  # noqa: F401
    except ImportError:
        with pytest.raises(KaffeError, match="pip install pydot"):
            draw.get_pydot_graph(net_param(), "LR")
    else:
        graph = draw.get_pydot_graph(net_param(), "LR")
        assert graph.get_name().strip('"') == "TinyNet"


def test_every_example_prototxt_draws():
    """pycaffe's test_draw: draw every net prototxt of the source tree."""
    paths = [p for p in REPO.glob("examples/**/*.prototxt")
             if "solver" not in p.name]
    assert paths
    for path in paths:
        param = text_format.Parse(path.read_text(), caffe_pb2.NetParameter())
        dot = draw.draw_net(param, "LR", ext="dot").decode()
        assert dot.count("{") >= 1 and dot.rstrip().endswith("}")
        for line in dot.splitlines()[2:-1]:
            assert line.endswith(";")
            assert len(re.findall(r'(?<!\\)"', line)) % 2 == 0, line


@pytest.mark.skipif(not draw.graphviz_available(),
                    reason="Graphviz's dot is not installed")
def test_real_graphviz_accepts_the_dot_text():
    tricky = NET + r"""
layer { name: "a\"b{c}|d<e>" type: "ReLU" bottom: "in\\x" top: "out" }"""
    for rankdir in ("LR", "TB"):
        svg = draw.draw_net(net_param(tricky), rankdir, ext="svg",
                            display_lrm=True,
                            blob_shapes={"conv1": (64, 20, 28, 28)}).decode()
        assert svg.lstrip().startswith("<?xml")
        assert "conv1" in svg and "64x20x28x28" in svg
        assert "(Pooling AVE)" in svg
