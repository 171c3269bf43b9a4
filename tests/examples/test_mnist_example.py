"""The MNIST recipe, as a Caffe user runs it, shortened to a few iterations.

The full recipe (examples/mnist/train_lenet.sh: 10000 iterations) is not a
unit test; this runs the same steps — convert the IDX files with the CLI,
then `kaffe train` on the example's own prototxts — for 30 iterations.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MNIST = REPO / ".." / "shared" / "data" / "mnist"

pytest.importorskip("lmdb", reason="the example needs kaffe[data] (lmdb)")
pytestmark = pytest.mark.skipif(
    not (MNIST / "t10k-images-idx3-ubyte.gz").exists(),
    reason="the real MNIST is not at ../shared/data/mnist (a fresh clone)")


def kaffe(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "kaffe", *args], cwd=cwd,
                          capture_output=True, text=True, check=True, env=env)


def test_lenet_recipe_trains_from_the_cli(tmp_path):
    # The example's files, in a scratch copy of the layout it expects.
    example = tmp_path / "examples" / "mnist"
    example.mkdir(parents=True)
    shutil.copy(REPO / "examples/mnist/lenet_train_test.prototxt", example)
    solver = (REPO / "examples/mnist/lenet_solver.prototxt").read_text()
    solver = re.sub(r"max_iter: \d+", "max_iter: 30", solver)
    solver = re.sub(r"test_iter: \d+", "test_iter: 2", solver)
    solver = re.sub(r"test_interval: \d+", "test_interval: 30", solver)
    solver = re.sub(r"display: \d+", "display: 10", solver)
    (example / "lenet_solver.prototxt").write_text(solver)
    # Only the test set, for speed: the train net reads it too.
    kaffe("convert_mnist_data", str(MNIST / "t10k-images-idx3-ubyte.gz"),
          str(MNIST / "t10k-labels-idx1-ubyte.gz"),
          "examples/mnist/mnist_test_lmdb", "--backend=lmdb", cwd=tmp_path)
    (example / "mnist_train_lmdb").symlink_to(example / "mnist_test_lmdb")
    run = kaffe("train", "--solver=examples/mnist/lenet_solver.prototxt",
                cwd=tmp_path)
    log = run.stderr
    losses = [float(v) for v in re.findall(r"Iteration \d+ \(.*\), loss = ([\d.e+-]+)", log)]
    assert len(losses) == 3 and losses[-1] < losses[0]
    accuracy = re.findall(r"Test net output #0: accuracy = ([\d.]+)", log)
    assert accuracy and float(accuracy[-1]) > 0.5
    assert (example / "lenet_iter_30.caffemodel").exists()
    assert "Optimization Done." in log
