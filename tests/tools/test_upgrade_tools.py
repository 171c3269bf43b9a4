"""kaffe upgrade_net_proto_text / upgrade_net_proto_binary, as Caffe's tools."""
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from google.protobuf import text_format

import kaffe
from kaffe.proto import caffe_pb2
from kaffe.proto.upgrade import net_needs_upgrade
from kaffe.tools import cli

ROOT = pathlib.Path(__file__).resolve().parents[2]

V1_NET = """
name: "v1net"
input: "data"
input_dim: 2 input_dim: 3 input_dim: 5 input_dim: 5
layers { name: "conv" type: CONVOLUTION bottom: "data" top: "conv"
         blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0
         convolution_param { num_output: 4 kernel_size: 3 } }
layers { name: "relu" type: RELU bottom: "conv" top: "conv" }
layers { name: "ip" type: INNER_PRODUCT bottom: "conv" top: "ip"
         inner_product_param { num_output: 2 } }
layers { name: "prob" type: SOFTMAX bottom: "ip" top: "prob" }
"""

CURRENT = """
name: "current"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 1 dim: 2 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param { num_output: 3 } }
"""

# A V0 layer with a field its type cannot hold: Caffe drops it, logs it, and
# the tool exits 1 (after writing the file).
V0_LOSSY = """
name: "v0"
input: "x" input_dim: 1 input_dim: 2 input_dim: 1 input_dim: 1
layers { layer { name: "r" type: "relu" num_output: 3 } bottom: "x" top: "x" }
"""


def run(argv, capsys):
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def read_text(path):
    return text_format.Parse(pathlib.Path(path).read_text(), caffe_pb2.NetParameter())


def test_commands_are_registered():
    assert cli.COMMANDS["upgrade_net_proto_text"] == "upgrade_net_proto_text"
    assert cli.COMMANDS["upgrade_net_proto_binary"] == "upgrade_net_proto_binary"


def test_text_v1_with_input_fields(tmp_path, capsys):
    src = write(tmp_path, "old.prototxt", V1_NET)
    out_path = str(tmp_path / "new.prototxt")
    status, out, err = run(["upgrade_net_proto_text", src, out_path], capsys)
    assert status == 0
    assert out == ""
    assert ("Attempting to upgrade input file specified using deprecated "
            f"V1LayerParameter: {src}") in err
    assert "Successfully upgraded file specified using deprecated V1LayerParameter" in err
    assert "Attempting to upgrade input file specified using deprecated input fields" in err
    assert f"Wrote upgraded NetParameter text proto to {out_path}" in err
    assert err.splitlines()[0][0] == "I" and "] " in err.splitlines()[0]   # glog lines
    upgraded = read_text(out_path)
    assert not net_needs_upgrade(upgraded)
    assert [(l.name, l.type) for l in upgraded.layer] == [
        ("input", "Input"), ("conv", "Convolution"), ("relu", "ReLU"),
        ("ip", "InnerProduct"), ("prob", "Softmax")]
    assert list(upgraded.layer[0].input_param.shape[0].dim) == [2, 3, 5, 5]
    conv = upgraded.layer[1]
    assert [(p.lr_mult, p.decay_mult) for p in conv.param] == [(1, 1), (2, 0)]
    # The result builds the same net as the original.
    assert kaffe.Net(out_path, kaffe.TEST).blobs["prob"].shape == (2, 2)


def test_text_already_current_is_written_unchanged(tmp_path, capsys):
    src = write(tmp_path, "cur.prototxt", CURRENT)
    out_path = str(tmp_path / "out.prototxt")
    status, _, err = run(["upgrade_net_proto_text", src, out_path], capsys)
    assert status == 0
    assert f"File already in latest proto format: {src}" in err
    assert err.count("\nE") + err.startswith("E") == 1       # logged as an error, as Caffe
    assert read_text(out_path) == read_text(src)


def test_text_lossy_v0_exits_1_after_writing(tmp_path, capsys):
    src = write(tmp_path, "v0.prototxt", V0_LOSSY)
    out_path = tmp_path / "out.prototxt"
    status, _, err = run(["upgrade_net_proto_text", src, str(out_path)], capsys)
    assert status == 1
    assert "Unknown parameter num_output for layer type relu" in err
    assert "Encountered error(s) while upgrading prototxt; see details above." in err
    assert [l.type for l in read_text(out_path).layer] == ["Input", "ReLU"]


def test_binary_v1_keeps_the_blobs(tmp_path, capsys):
    param = text_format.Parse(V1_NET, caffe_pb2.NetParameter())
    rng = np.random.default_rng(0)
    shapes = {"conv": [(4, 3, 3, 3), (4,)], "ip": [(2, 36), (2,)]}
    values = {}
    for layer in param.layers:
        for shape in shapes.get(layer.name, []):
            blob = layer.blobs.add()
            if len(shape) == 4:
                blob.num, blob.channels, blob.height, blob.width = shape
            else:
                blob.shape.dim.extend(shape)
            data = rng.standard_normal(shape).astype(np.float32)
            blob.data.extend(data.ravel().tolist())
            values.setdefault(layer.name, []).append(data)
    src = tmp_path / "old.caffemodel"
    src.write_bytes(param.SerializeToString())
    out_path = tmp_path / "new.caffemodel"
    status, _, err = run(["upgrade_net_proto_binary", str(src), str(out_path)], capsys)
    assert status == 0
    assert f"Wrote upgraded NetParameter binary proto to {out_path}" in err
    upgraded = caffe_pb2.NetParameter.FromString(out_path.read_bytes())
    assert not net_needs_upgrade(upgraded) and not len(upgraded.layers)
    conv = [l for l in upgraded.layer if l.name == "conv"][0]
    assert conv.type == "Convolution" and (conv.blobs[0].num, conv.blobs[0].width) == (4, 3)
    # Weights unchanged: a net loads them from the upgraded file.
    net = kaffe.Net(write(tmp_path, "v1.prototxt", V1_NET), kaffe.TEST,
                    weights=str(out_path))
    for name, arrays in values.items():
        for blob, expected in zip(net.params[name], arrays):
            np.testing.assert_array_equal(blob.data, expected)


@pytest.mark.parametrize("tool", ["upgrade_net_proto_text", "upgrade_net_proto_binary"])
def test_unreadable_input_exits_2_and_writes_nothing(tmp_path, capsys, tool):
    out_path = tmp_path / "out"
    status, _, err = run([tool, str(tmp_path / "absent"), str(out_path)], capsys)
    assert status == 2
    kind = "text" if tool.endswith("text") else "binary"
    assert f"Failed to parse input {kind} file as NetParameter" in err
    assert "kaffe: error:" in err and "not found" in err
    assert "Traceback" not in err
    assert not out_path.exists()


def test_text_syntax_error_and_refused_upgrade_exit_2(tmp_path, capsys):
    bad = write(tmp_path, "bad.prototxt", 'name: "x"\nlayers { nme: "a" }\n')
    status, _, err = run(["upgrade_net_proto_text", bad, str(tmp_path / "o")], capsys)
    assert status == 2 and f"{bad}:2:" in err and "Traceback" not in err
    both = write(tmp_path, "both.prototxt",
                 'layer { name: "a" type: "ReLU" }\nlayers { name: "b" type: RELU }\n')
    status, _, err = run(["upgrade_net_proto_text", both, str(tmp_path / "o")], capsys)
    assert status == 2 and "both 'layer' and 'layers'" in err
    assert not (tmp_path / "o").exists()


def test_binary_tool_on_a_text_file_exits_2(tmp_path, capsys):
    src = write(tmp_path, "net.prototxt", CURRENT)
    status, _, err = run(["upgrade_net_proto_binary", src, str(tmp_path / "o")], capsys)
    assert status == 2 and "kaffe: error:" in err


def test_usage_error_exits_2(capsys):
    status, _, err = run(["upgrade_net_proto_text", "only_one"], capsys)
    assert status == 2 and "usage:" in err


def test_python_m_kaffe(tmp_path):
    src = write(tmp_path, "old.prototxt", V1_NET)
    out_path = tmp_path / "new.prototxt"
    result = subprocess.run(
        [sys.executable, "-m", "kaffe", "upgrade_net_proto_text", src, str(out_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "upgrade_net_proto_text.py:" in result.stderr
    assert "Wrote upgraded NetParameter text proto" in result.stderr
    assert read_text(out_path).layer[1].type == "Convolution"
