"""The kaffe command line: subcommand table, exit codes, errors, glog lines."""
import json
import logging
import pathlib
import re
import subprocess
import sys

import pytest

from kaffe.tools import cli
from kaffe.tools.logging_setup import (GlogFormatter, glog_to_stderr,
                                       setup_logging)

ROOT = pathlib.Path(__file__).parents[2]

NET = """name: "tiny"
layer { name: "data" type: "Input" top: "data"
  input_param { shape { dim: 4 dim: 3 dim: 2 dim: 2 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
  inner_product_param { num_output: 5 } }
layer { name: "relu" type: "ReLU" bottom: "ip" top: "ip" }
"""

TRAIN_NET = """name: "train"
layer { name: "mnist" type: "Data" top: "data" top: "label"
  data_param { source: "missing_lmdb" batch_size: 8 backend: LMDB } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
  inner_product_param { num_output: 10 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label"
  top: "loss" }
"""


def write(tmp_path, text, name="net.prototxt"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def run(argv, capsys):
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def test_every_command_module_has_the_interface():
    for name, module_name in cli.COMMANDS.items():
        module = cli._command_module(module_name)
        assert callable(module.add_arguments) and callable(module.run)
        assert module.HELP


def test_explain_prints_the_table(tmp_path, capsys):
    status, out, err = run(["explain", write(tmp_path, NET)], capsys)
    assert status == 0
    assert "Net 'tiny' (TEST)" in out
    assert re.search(r"^ip +InnerProduct +data → ip +\(4, 5\)", out, re.M)
    assert "ip: 5 outputs, each a weighted sum of all 12 inputs (3×2×2 " \
           "flattened) + bias → (4, 5)" in out
    assert err == ""                    # the net's INFO log stays quiet


def test_explain_verbose_logs_glog_lines(tmp_path, capsys):
    status, _, err = run(["explain", "-v", write(tmp_path, NET)], capsys)
    assert status == 0
    assert re.search(r"^I\d{4} \d\d:\d\d:\d\d\.\d{6} \d+ net\.py:\d+\] "
                     r"Creating Layer ip$", err, re.M)


def test_explain_json(tmp_path, capsys):
    status, out, _ = run(["explain", write(tmp_path, NET), "--json"], capsys)
    assert status == 0
    doc = json.loads(out)
    assert doc["name"] == "tiny"
    ip = doc["layers"][1]
    assert ip["top_shapes"] == [[4, 5]] and ip["macs"] == 4 * 12 * 5
    assert doc["totals"]["params"] == 65


def test_train_phase_with_shape_flag(tmp_path, capsys):
    path = write(tmp_path, TRAIN_NET)
    status, out, _ = run(["explain", path, "--phase", "TRAIN", "--json",
                          "--shape", "data=8,1,28,28"], capsys)
    assert status == 0
    layers = {l["name"]: l for l in json.loads(out)["layers"]}
    assert layers["mnist"]["top_shapes"] == [[8, 1, 28, 28], [8]]
    assert layers["loss"]["top_shapes"] == [[]]


def test_stage_flag(tmp_path, capsys):
    net = NET + """layer { name: "extra" type: "InnerProduct" bottom: "ip"
      top: "extra" include { stage: "a" } include { stage: "b" }
      inner_product_param { num_output: 2 } }"""
    path = write(tmp_path, net)
    _, out, _ = run(["explain", path, "--json", "--stage", "b"], capsys)
    assert json.loads(out)["layers"][-1]["name"] == "extra"
    _, out, _ = run(["explain", path, "--json"], capsys)
    assert json.loads(out)["layers"][-1]["name"] == "relu"


def test_missing_shape_is_a_clean_error(tmp_path, capsys):
    path = write(tmp_path, TRAIN_NET, "train.prototxt")
    status, out, err = run(["explain", path, "--phase=train"], capsys)
    assert status == 2 and out == ""
    assert err.startswith("kaffe: error: ")
    assert "train.prototxt:2: layer 'mnist' (Data): top 'data' needs a " \
           "shape" in err
    assert "--shape data=8,C,H,W" in err
    assert "Traceback" not in err


def test_syntax_error_names_file_line_column(tmp_path, capsys):
    path = write(tmp_path, NET.replace('type: "ReLU"', 'tpye: "ReLU"'),
                 "bad.prototxt")
    status, _, err = run(["explain", path], capsys)
    assert status == 2
    assert re.match(r"kaffe: error: .*bad\.prototxt:6:\d+: ", err)
    assert "did you mean type?" in err
    assert "Traceback" not in err


def test_unknown_layer_type_suggests_a_match(tmp_path, capsys):
    path = write(tmp_path, NET.replace('"ReLU"', '"Relu"'), "typo.prototxt")
    status, _, err = run(["explain", path], capsys)
    assert status == 2
    assert "typo.prototxt:6: layer 'relu' (Relu)" in err
    assert "did you mean 'ReLU'?" in err
    assert "Traceback" not in err


def test_missing_file(tmp_path, capsys):
    status, _, err = run(["explain", str(tmp_path / "nope.prototxt")], capsys)
    assert status == 2
    assert err.startswith("kaffe: error: ") and "nope.prototxt" in err


@pytest.mark.parametrize("argv", [
    [],                                                 # no command
    ["explain"],                                        # no net
    ["explain", "x.prototxt", "--shape", "data"],       # no '='
    ["explain", "x.prototxt", "--shape", "data=1,a"],   # not integers
    ["explain", "x.prototxt", "--shape", "data=0,1"],   # not positive
    ["explain", "x.prototxt", "--phase", "VAL"],
])
def test_usage_errors_exit_2(argv, capsys):
    status, _, err = run(argv, capsys)
    assert status == 2
    assert "usage:" in err and "Traceback" not in err


def test_help_exits_0(capsys):
    status, out, _ = run(["explain", "--help"], capsys)
    assert status == 0 and "--shape BLOB=N,C,H,W" in out


def test_python_m_kaffe_explain_json(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "kaffe", "explain", "--json",
         write(tmp_path, NET)], cwd=ROOT, capture_output=True, text=True,
        timeout=120)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [l["name"] for l in doc["layers"]] == ["data", "ip", "relu"]


def test_glog_formatter():
    record = logging.LogRecord("kaffe", logging.WARNING, "/x/net.py", 123,
                               "hello %s", ("there",), None)
    record.created = 1764104598.381027
    line = GlogFormatter().format(record)
    assert re.fullmatch(r"W\d{4} \d\d:\d\d:\d\d\.\d{6} \d+ net\.py:123\] "
                        r"hello there", line)
    letters = {logging.INFO: "I", logging.ERROR: "E", logging.CRITICAL: "F"}
    for level, letter in letters.items():
        record.levelno = level
        assert GlogFormatter().format(record)[0] == letter


def test_logging_setup_is_idempotent_and_restored(capsys):
    logger = logging.getLogger("kaffe")
    before = list(logger.handlers), logger.level, logger.propagate
    with glog_to_stderr(logging.INFO):
        setup_logging(logging.INFO)
        logger.info("once")
        assert capsys.readouterr().err.count("] once") == 1
    assert (list(logger.handlers), logger.level, logger.propagate) == before


def test_main_leaves_the_logger_as_it_was(tmp_path, capsys):
    logger = logging.getLogger("kaffe")
    before = list(logger.handlers), logger.level, logger.propagate
    run(["explain", "-v", write(tmp_path, NET)], capsys)
    assert (list(logger.handlers), logger.level, logger.propagate) == before
