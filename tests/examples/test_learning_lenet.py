"""examples/pycaffe/learning_lenet.py: Caffe's learning-LeNet notebook as a
script, run on a subset of the real MNIST for a few iterations."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format

from kaffe.proto import caffe_pb2

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "pycaffe" / "learning_lenet.py"
MNIST = REPO / ".." / "shared" / "data" / "mnist"

pytest.importorskip("lmdb", reason="the example needs kaffe[data] (lmdb)")
pytestmark = pytest.mark.skipif(
    not (MNIST / "train-images-idx3-ubyte.gz").exists(),
    reason="the real MNIST is not at ../shared/data/mnist (a fresh clone)")

SUBSET, NITER, TEST_INTERVAL = 512, 30, 10


def load_example():
    spec = importlib.util.spec_from_file_location("learning_lenet", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example():
    return load_example()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("learning_lenet")


@pytest.fixture(scope="module")
def result(example, workdir):
    return example.main(["--mnist", str(MNIST), "--workdir", str(workdir),
                         "--subset", str(SUBSET), "--niter", str(NITER),
                         "--test-interval", str(TEST_INTERVAL)])


def test_loss_decreases(result):
    loss = result["train_loss"]
    assert loss.shape == (NITER,) and np.isfinite(loss).all()
    # Starts near ln(10) (chance); the last iterations are clearly lower.
    assert 2.0 < loss[0] < 2.6
    assert loss[-5:].mean() < 0.7 * loss[:5].mean()


def test_accuracy_is_recorded_and_rises(result):
    acc = result["test_acc"]
    assert result["tested_at"] == list(range(0, NITER, TEST_INTERVAL))
    assert acc.shape == (NITER // TEST_INTERVAL,)
    assert ((acc >= 0) & (acc <= 1)).all()
    assert acc[-1] > 0.5 and acc[-1] > acc[0]


def test_prototxts_parse_back(result, workdir):
    for key, batch in (("train_proto", 64), ("test_proto", 100)):
        net = text_format.Parse(Path(result[key]).read_text(),
                                caffe_pb2.NetParameter())
        assert [l.type for l in net.layer] == [
            "Data", "Convolution", "Pooling", "Convolution", "Pooling",
            "InnerProduct", "ReLU", "InnerProduct", "SoftmaxWithLoss"]
        data = net.layer[0]
        assert data.data_param.batch_size == batch
        assert data.data_param.backend == caffe_pb2.DataParameter.LMDB
        assert os.path.isdir(data.data_param.source)
        assert data.transform_param.scale == pytest.approx(1 / 255)
        assert net.layer[6].bottom == net.layer[6].top == ["fc1"]
    solver = text_format.Parse(Path(result["solver_proto"]).read_text(),
                               caffe_pb2.SolverParameter())
    assert (solver.type, solver.lr_policy, solver.base_lr) == ("SGD", "inv",
                                                               pytest.approx(0.01))
    assert solver.train_net == result["train_proto"]
    assert list(solver.test_net) == [result["test_proto"]]
    assert list(solver.test_iter) == [SUBSET // 100]


def test_subset_lmdbs(example, result, workdir):
    from kaffe.data.db import open_db
    for split in ("train", "test"):
        db = workdir / f"mnist_{split}_{SUBSET}_lmdb"
        assert example._count_records(str(db)) == SUBSET
        with open_db(db, "lmdb", "read") as reader:
            cursor = reader.cursor()
            key, datum = cursor.key(), caffe_pb2.Datum.FromString(
                cursor.value())
            cursor.close()
        assert key == b"00000000"
        assert (datum.channels, datum.height, datum.width) == (1, 28, 28)
        assert datum.label == {"train": 5, "test": 7}[split]


def test_plot(result):
    pytest.importorskip("matplotlib")
    png = Path(result["png"])
    assert png.exists()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_reuses_the_lmdbs_and_repeats_exactly(example, result, workdir,
                                                    capsys, monkeypatch):
    # random_seed in the solver: the same losses again; no matplotlib: a
    # message instead of the plot.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    again = example.main(["--mnist", str(MNIST), "--workdir", str(workdir),
                          "--subset", str(SUBSET), "--niter", "5",
                          "--test-interval", str(TEST_INTERVAL)])
    out = capsys.readouterr().out
    assert "Using " in out and "Wrote " + str(workdir / "mnist") not in out
    assert "matplotlib is not installed: skipping the plot" in out
    assert again["png"] is None
    np.testing.assert_array_equal(again["train_loss"],
                                  result["train_loss"][:5])


def test_command_line(tmp_path):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    run = subprocess.run([sys.executable, str(EXAMPLE), "--niter", "0"],
                         capture_output=True, text=True, env=env,
                         cwd=tmp_path)
    assert run.returncode == 2 and "--niter must be >= 1" in run.stderr
    run = subprocess.run([sys.executable, str(EXAMPLE), "--workdir",
                          str(tmp_path / "w"), "--mnist", str(tmp_path)],
                         capture_output=True, text=True, env=env,
                         cwd=tmp_path)
    assert run.returncode == 1
    assert "train-images-idx3-ubyte[.gz] is not in" in run.stderr
