"""``kaffe draw``: Caffe's draw_net.py as a kaffe subcommand."""
import os
import re
import shutil
import stat
import sys
from pathlib import Path

import pytest

from kaffe.tools import cli

REPO = Path(__file__).resolve().parents[2]
LENET = str(REPO / "examples" / "mnist" / "lenet.prototxt")
LENET_TRAIN_TEST = str(REPO / "examples" / "mnist" / "lenet_train_test.prototxt")


def run(argv, capsys):
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def no_graphviz(monkeypatch, tmp_path):
    empty = tmp_path / "empty_bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


@pytest.fixture
def fake_graphviz(monkeypatch, tmp_path):
    """A `dot` on the PATH that writes its arguments and input back."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "dot"
    script.write_text(f"#!{sys.executable}\n"
                      "import sys\n"
                      "sys.stdout.write('FAKE ' + ' '.join(sys.argv[1:]) + '\\n')\n"
                      "sys.stdout.write(sys.stdin.read())\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(bin_dir))


def test_draw_is_a_command():
    assert cli.COMMANDS["draw"] == "draw"


def test_dot_output_with_shapes(tmp_path, capsys):
    out_path = tmp_path / "lenet.dot"
    status, out, err = run(["draw", LENET, str(out_path)], capsys)
    assert status == 0, err
    assert "lenet.dot" in out
    dot = out_path.read_text()
    assert dot.startswith('digraph "LeNet" {\n  rankdir=LR;')
    assert '"conv1_Convolution" -> "conv1_blob" [label="64x20x24x24"];' in dot
    assert '"prob_Softmax" -> "prob_blob" [label="64x10"];' in dot
    assert "Creating Layer" not in err        # the build is quiet


def test_rankdir_phase_and_lrm(tmp_path, capsys):
    out_path = tmp_path / "net.dot"
    status, _, err = run(["draw", LENET_TRAIN_TEST, str(out_path),
                          "--rankdir", "TB", "--phase", "TEST",
                          "--display_lrm", "--shape", "data=100,1,28,28"],
                         capsys)
    assert status == 0, err
    dot = out_path.read_text()
    assert "rankdir=TB;" in dot
    assert "accuracy_Accuracy" in dot
    assert "lr mult: 1.0, 2.0" in dot
    assert '"conv1_Convolution" -> "conv1_blob" [label="100x20x24x24"];' in dot
    assert "Batch 64" not in dot


def test_data_layers_without_shape_draw_without_shapes(tmp_path, capsys):
    out_path = tmp_path / "net.dot"
    status, _, err = run(["draw", LENET_TRAIN_TEST, str(out_path),
                          "--phase", "TRAIN"], capsys)
    assert status == 0
    assert "no blob shapes for TRAIN" in err and "--shape data=64" in err
    dot = out_path.read_text()
    assert '"mnist_Data" -> "data_blob" [label="Batch 64"];' in dot
    assert "accuracy" not in dot


def test_no_shapes_flag(tmp_path, capsys):
    out_path = tmp_path / "net.gv"
    status, _, err = run(["draw", LENET, str(out_path), "--no_shapes"], capsys)
    assert status == 0 and err == ""
    assert '"conv1_Convolution" -> "conv1_blob" [label="20"];' in \
        out_path.read_text()


def test_picture_without_graphviz_writes_dot_and_says_how(
        tmp_path, capsys, no_graphviz):
    out_path = tmp_path / "lenet.png"
    status, _, err = run(["draw", LENET, str(out_path)], capsys)
    assert status == 0
    assert not out_path.exists()
    dot_path = tmp_path / "lenet.dot"
    assert dot_path.read_text().startswith('digraph "LeNet"')
    assert "Graphviz" in err and "apt install graphviz" in err
    assert f"dot -Tpng {dot_path} -o {out_path}" in err


@pytest.mark.skipif(os.name != "posix", reason="uses a script as dot")
def test_picture_with_graphviz(tmp_path, capsys, fake_graphviz):
    out_path = tmp_path / "lenet.svg"
    status, out, err = run(["draw", LENET, str(out_path)], capsys)
    assert status == 0, err
    data = out_path.read_text()
    assert data.startswith("FAKE -Tsvg\ndigraph \"LeNet\"")
    assert "lenet.svg" in out


def test_errors_exit_2(tmp_path, capsys):
    status, _, err = run(["draw", LENET, str(tmp_path / "noext")], capsys)
    assert status == 2 and "extension" in err and "Traceback" not in err
    status, _, err = run(["draw", str(tmp_path / "missing.prototxt"),
                          str(tmp_path / "x.dot")], capsys)
    assert status == 2 and "missing.prototxt" in err
    status, _, err = run(["draw", LENET, str(tmp_path / "x.dot"),
                          "--shape", "nope=1,2"], capsys)
    assert status == 2 and "--shape" in err
    status, _, err = run(["draw", LENET, str(tmp_path / "x.dot"),
                          "--rankdir", "XY"], capsys)
    assert status == 2 and "usage:" in err


def test_python_layers_are_not_imported(tmp_path, capsys):
    marker = tmp_path / "imported"
    module = tmp_path / "kaffe_draw_cli_marker.py"
    module.write_text(f"open({str(marker)!r}, 'w').close()\n")
    net = tmp_path / "py.prototxt"
    net.write_text("""
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 3 } } }
layer { name: "py" type: "Python" bottom: "x" top: "y"
  python_param { module: "kaffe_draw_cli_marker" layer: "L" } }""")
    sys.path.insert(0, str(tmp_path))
    try:
        status, _, err = run(["draw", str(net), str(tmp_path / "py.dot")],
                             capsys)
    finally:
        sys.path.remove(str(tmp_path))
    assert status == 0
    assert not marker.exists()
    assert "kaffe_draw_cli_marker" in err
    assert re.search(r'"py_Python" -> "y_blob";', (tmp_path / "py.dot").read_text())


def test_help(capsys):
    status, out, _ = run(["draw", "--help"], capsys)
    assert status == 0
    assert "--rankdir" in out and "--display_lrm" in out and "Graphviz" in out


def test_display_lrm_is_spelled_both_ways(tmp_path, capsys):
    texts = []
    for flag in ("--display_lrm", "--display-lrm"):
        out_path = tmp_path / f"net{flag}.dot"
        status, _, err = run(["draw", LENET, str(out_path), flag], capsys)
        assert status == 0, err
        texts.append(out_path.read_text())
    assert texts[0] == texts[1]
    assert "lr mult: 1.0, 2.0" in texts[0]
    status, _, err = run(["draw", LENET, str(tmp_path / "n.gv"),
                          "--no-shapes"], capsys)
    assert status == 0 and err == ""
    assert '[label="20"]' in (tmp_path / "n.gv").read_text()


@pytest.mark.parametrize("rankdir", ["LR", "TB", "BT"])
@pytest.mark.parametrize("phase, has_accuracy, has_loss", [
    ("TRAIN", False, True), ("TEST", True, True), ("ALL", True, True)])
def test_rankdir_and_phase_choices(tmp_path, capsys, rankdir, phase,
                                   has_accuracy, has_loss):
    out_path = tmp_path / "net.dot"
    status, _, err = run(["draw", LENET_TRAIN_TEST, str(out_path),
                          "--rankdir", rankdir, "--phase", phase,
                          "--no_shapes"], capsys)
    assert status == 0, err
    dot = out_path.read_text()
    assert f"rankdir={rankdir};" in dot
    assert ("accuracy_Accuracy" in dot) == has_accuracy
    assert ("loss_SoftmaxWithLoss" in dot) == has_loss


PICTURE_MAGIC = {"svg": b"<?xml", "png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-"}


@pytest.mark.skipif(shutil.which("dot") is None,
                    reason="Graphviz's dot is not installed (apt-get install "
                           "graphviz)")
@pytest.mark.parametrize("fmt", sorted(PICTURE_MAGIC))
def test_real_graphviz_draws_pictures(tmp_path, capsys, fmt):
    out_path = tmp_path / f"lenet.{fmt}"
    status, out, err = run(["draw", LENET_TRAIN_TEST, str(out_path),
                            "--display-lrm", "--rankdir", "TB",
                            "--phase", "TEST", "--shape", "data=100,1,28,28"],
                           capsys)
    assert status == 0, err
    data = out_path.read_bytes()
    assert data.startswith(PICTURE_MAGIC[fmt])
    assert not (tmp_path / "lenet.dot").exists()
    if fmt == "svg":
        text = data.decode()
        assert "<svg" in text and "conv1 (Convolution)" in text
        assert "lr mult: 1.0, 2.0" in text and "100x20x24x24" in text
    assert f"lenet.{fmt}" in out
