"""kaffe train / test / time / device_query, run as a user runs them."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kaffe.tools.cli import main

NET = """
name: "tiny"
layer { name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param {
    shape { dim: 8 dim: 6 } shape { dim: 8 }
    data_filler { type: "gaussian" std: 1 } data_filler { type: "constant" value: 1 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
  inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
layer { name: "accuracy" type: "Accuracy" bottom: "ip" bottom: "label" top: "accuracy"
  include { phase: TEST } }
"""

SOLVER = """
net: "{net}"
test_iter: 2
test_interval: 5
base_lr: 0.1
momentum: 0.9
lr_policy: "step"
gamma: 0.5
stepsize: 4
display: 2
max_iter: {max_iter}
snapshot: 5
snapshot_prefix: "{prefix}"
random_seed: 3
"""


def write_solver(tmp_path, max_iter=10):
    net = tmp_path / "net.prototxt"
    net.write_text(NET)
    solver = tmp_path / "solver.prototxt"
    solver.write_text(SOLVER.format(net=net, max_iter=max_iter,
                                    prefix=tmp_path / "tiny"))
    return solver


def test_train_logs_like_caffe_and_snapshots(tmp_path, capsys):
    solver = write_solver(tmp_path)
    assert main(["train", f"--solver={solver}", "--progress=never"]) == 0
    err = capsys.readouterr().err
    glog = re.compile(r"^I\d{4} \d\d:\d\d:\d\d\.\d{6} \d+ \S+:\d+\] ")
    # Every line that carries a message is glog-formatted (the solver's
    # parameters are printed over several lines after one glog line, as Caffe).
    for line in err.splitlines():
        if "Iteration" in line or "Snapshotting" in line or "Optimization" in line:
            assert glog.match(line), line
    assert "Solving tiny" in err and "Learning Rate Policy: step" in err
    assert re.search(r"Iteration 0 \([\d.]+ iter/s, [\d.]+s/2 iters\), loss = ", err)
    assert re.search(r"    Train net output #0: loss = [\d.e+-]+ \(\* 1 = [\d.e+-]+ loss\)", err)
    assert "Iteration 4, lr = 0.05" in err
    assert "Iteration 5, Testing net (#0)" in err
    assert re.search(r"    Test net output #0: accuracy = ", err)
    assert f"Snapshotting to binary proto file {tmp_path}/tiny_iter_5.caffemodel" in err
    assert err.count("Optimization Done.") == 2          # solver + tool, as Caffe
    for name in ("tiny_iter_5.caffemodel", "tiny_iter_5.solverstate",
                 "tiny_iter_10.caffemodel", "tiny_iter_10.solverstate"):
        assert (tmp_path / name).exists()


def test_resume_from_snapshot_and_test_and_time(tmp_path, capsys):
    solver = write_solver(tmp_path)
    main(["train", "-solver", str(solver), "--progress=never"])
    capsys.readouterr()
    state = tmp_path / "tiny_iter_5.solverstate"
    assert main(["train", f"--solver={solver}", f"--snapshot={state}",
                 "--progress=never"]) == 0
    err = capsys.readouterr().err
    assert f"Resuming from {state}" in err
    assert "Iteration 0," not in err and "Iteration 6" in err
    weights = tmp_path / "tiny_iter_10.caffemodel"
    assert main(["test", f"--model={tmp_path / 'net.prototxt'}",
                 f"--weights={weights}", "--iterations=3"]) == 0
    err = capsys.readouterr().err
    assert "Running for 3 iterations." in err
    assert re.search(r"Batch 2, accuracy = [\d.]+", err)
    assert re.search(r"\] Loss: [\d.e+-]+", err)
    assert re.search(r"\] loss = [\d.e+-]+ \(\* 1 = [\d.e+-]+ loss\)", err)
    assert main(["time", f"--model={tmp_path / 'net.prototxt'}",
                 "--iterations=2"]) == 0
    err = capsys.readouterr().err
    for text in ("*** Benchmark begins ***", "Iteration: 2 forward-backward time:",
                 "ip\tforward:", "ip\tbackward:", "Average Forward pass:",
                 "Average Backward pass:", "Average Forward-Backward:", "Total Time:"):
        assert text in err


def test_errors_exit_2_without_traceback(tmp_path, capsys):
    solver = write_solver(tmp_path)
    assert main(["train", f"--solver={solver}", "--snapshot=a", "--weights=b"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["train", f"--solver={solver}", "--gpu=0"]) == 2
    assert "GPU" in capsys.readouterr().err
    assert main(["test", "--weights=w"]) == 2
    assert "--model is required" in capsys.readouterr().err
    assert main(["train", f"--solver={tmp_path / 'missing.prototxt'}"]) == 2
    err = capsys.readouterr().err
    assert "missing.prototxt" in err and "Traceback" not in err


def test_device_query(capsys):
    assert main(["device_query"]) == 0
    err = capsys.readouterr().err
    assert "Device: CPU" in err and "NumPy" in err


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="needs POSIX signals")
def test_sighup_snapshots_and_sigint_stops(tmp_path):
    solver = write_solver(tmp_path, max_iter=10 ** 7)
    text = solver.read_text().replace("snapshot: 5", "snapshot: 0").replace(
        "test_interval: 5", "").replace("test_iter: 2", "")
    solver.write_text(text)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    process = subprocess.Popen(
        [sys.executable, "-m", "kaffe", "train", f"--solver={solver}",
         "--progress=never"], stderr=subprocess.PIPE, text=True, env=env)
    seen = []
    try:
        for line in process.stderr:
            seen.append(line)
            if "Iteration 20 " in line:
                process.send_signal(signal.SIGHUP)
            if "Snapshotting solver state" in line:
                process.send_signal(signal.SIGINT)
                break
        _, rest = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    log = "".join(seen) + rest
    assert process.returncode == 0, log[-2000:]
    assert "Optimization stopped early." in log
    assert list(tmp_path.glob("tiny_iter_*.solverstate"))
