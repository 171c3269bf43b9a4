"""``mpiexec -n 2 kaffe train``: 2 workers × batch B give the weights of 1
worker with iter_size 2 over the same records (SGD and Adam, 20 steps; the
flat all-reduce of kaffe train, and the layer-wise one of a pycaffe script);
a snapshot resumes with another worker count; Ctrl-C stops every worker
together; a worker that fails or dies ends the job at once, with its
error."""
import time

import numpy as np
import pytest

from mpi_jobs import run_kaffe, write_lmdb

NET = """name: "tiny"
layer { name: "data" type: "Data" top: "data" top: "label"
  data_param { source: "db" backend: LMDB batch_size: 4 }
  transform_param { scale: 0.00390625 } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 3 kernel_size: 3
                      weight_filler { type: "xavier" } } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "ip" type: "InnerProduct" bottom: "conv" top: "ip"
  inner_product_param { num_output: 3 weight_filler { type: "xavier" }
                        bias_filler { type: "constant" value: 0.1 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label"
  top: "loss" }
{extra}
"""

SOLVER = """net: "net.prototxt"
type: "{type}"
base_lr: {lr}
momentum: 0.9
weight_decay: 0.001
lr_policy: "fixed"
display: 5
max_iter: {max_iter}
snapshot_prefix: "{prefix}"
random_seed: 7
iter_size: {iter_size}
layer_wise_reduce: {layer_wise}
"""


def setup_dir(tmp_path, extra=""):
    # 24 records: the 20 steps × 8 records wrap around the DB several times.
    write_lmdb(tmp_path / "db", 24)
    (tmp_path / "net.prototxt").write_text(NET.replace("{extra}", extra))


def solver(tmp_path, name, iter_size, kind="SGD", layer_wise=True,
           max_iter=20):
    path = tmp_path / f"{name}.prototxt"
    path.write_text(SOLVER.format(
        type=kind, lr=0.1 if kind == "SGD" else 0.01, max_iter=max_iter,
        prefix=name, iter_size=iter_size,
        layer_wise=str(layer_wise).lower()))
    return path.name


def weights(tmp_path, model):
    """Every parameter array of a .caffemodel, in order."""
    from kaffe.proto import caffe_pb2
    from kaffe.proto.io import read_binary
    net = read_binary(str(tmp_path / model), caffe_pb2.NetParameter)
    return [np.array(blob.data, np.float32) for layer in net.layer
            for blob in layer.blobs]


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_two_workers_equal_one_with_iter_size_2(tmp_path, mpiexec, kind):
    setup_dir(tmp_path)
    one = run_kaffe(["train", "--solver", solver(tmp_path, "one", 2, kind)],
                    tmp_path)
    assert one.returncode == 0, one.stderr
    two = run_kaffe(["train", "--solver", solver(tmp_path, "two", 1, kind)],
                    tmp_path, n=2, mpiexec=mpiexec)
    assert two.returncode == 0, two.stderr
    assert "Training with 2 workers" in two.stderr
    # Only worker 0 logs: one "Optimization Done." per tool, not two.
    assert two.stderr.count("Iteration 20, loss") == 1
    a = weights(tmp_path, "one_iter_20.caffemodel")
    b = weights(tmp_path, "two_iter_20.caffemodel")
    assert len(a) == len(b) == 4
    for x, y in zip(a, b):
        np.testing.assert_allclose(y, x, rtol=1e-5, atol=2e-6)
    # Only worker 0 wrote a snapshot (one set of files).
    assert sorted(p.name for p in tmp_path.glob("two_iter_*")) == [
        "two_iter_20.caffemodel", "two_iter_20.solverstate"]


def test_snapshot_resumes_with_another_worker_count(tmp_path, mpiexec):
    setup_dir(tmp_path)
    first = run_kaffe(["train", "--solver",
                       solver(tmp_path, "a", 1, max_iter=6)], tmp_path,
                      n=2, mpiexec=mpiexec)
    assert first.returncode == 0, first.stderr
    state = tmp_path / "a_iter_6.solverstate"
    resumed = run_kaffe(["train", "--solver",
                         solver(tmp_path, "b", 2, max_iter=10),
                         "--snapshot", state.name], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "Iteration 0," not in resumed.stderr           # went on from 6
    assert (tmp_path / "b_iter_10.caffemodel").exists()
    back = run_kaffe(["train", "--solver",
                      solver(tmp_path, "c", 1, max_iter=12),
                      "--snapshot", "b_iter_10.solverstate"], tmp_path,
                     n=2, mpiexec=mpiexec)
    assert back.returncode == 0, back.stderr
    assert (tmp_path / "c_iter_12.caffemodel").exists()
    assert "Iteration 0," not in back.stderr


FAILING = """
layer {{ name: "fail" type: "Python" bottom: "loss" top: "same"
  python_param {{ module: "failing_layer" layer: "FailOnWorker1"
                  param_str: "{how}" }} }}
"""

FAILING_MODULE = '''
import os
import signal
import kaffe as caffe


class FailOnWorker1(caffe.Layer):
    def setup(self, bottom, top):
        self.calls = 0

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        self.calls += 1
        if caffe.solver_rank() == 1 and self.calls == 3:
            if self.param_str == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if self.param_str == "hang":
                import time
                time.sleep(60)
            raise RuntimeError("worker 1 broke on purpose")
        top[0].data[...] = bottom[0].data

    def backward(self, top, propagate_down, bottom):
        pass
'''


@pytest.mark.parametrize("how", ["raise", "kill", "hang"])
def test_a_failing_worker_ends_the_job(tmp_path, mpiexec, how, monkeypatch):
    setup_dir(tmp_path, FAILING.format(how=how))
    (tmp_path / "failing_layer.py").write_text(FAILING_MODULE)
    monkeypatch.setenv("KAFFE_TEST_PYTHONPATH", str(tmp_path))
    if how == "hang":
        # A stuck worker: the other gives up after KAFFE_MPI_TIMEOUT.
        monkeypatch.setenv("KAFFE_MPI_TIMEOUT", "3")
    start = time.monotonic()
    result = run_kaffe(["train", "--solver",
                        solver(tmp_path, "f", 1, max_iter=1000)], tmp_path,
                       n=2, mpiexec=mpiexec, timeout=60)
    took = time.monotonic() - start
    assert result.returncode != 0
    assert took < 30
    if how == "raise":
        assert "worker 1 broke on purpose" in result.stderr
    if how == "hang":
        assert "did not complete within 3 s" in result.stderr
    assert not (tmp_path / "f_iter_1000.caffemodel").exists()


SCRIPT = '''
import os
import sys

import kaffe as caffe

# python/train.py's pattern, one process per worker, started by mpiexec.
rank, size = int(os.environ["PMI_RANK"]), int(os.environ["PMI_SIZE"])
if sys.argv[1] == "counts":
    caffe.set_solver_count(size)
    caffe.set_solver_rank(rank)
    caffe.set_multiprocess(True)
solver = caffe.get_solver("two.prototxt")
nccl = caffe.NCCL(solver, caffe.NCCL.new_uid())
nccl.bcast()
solver.add_callback(nccl)
if solver.param.layer_wise_reduce:
    solver.net.after_backward(nccl)
solver.step(solver.param.max_iter)
if rank == 0:
    solver.net.save("script.caffemodel")
'''


def test_pycaffe_train_py_pattern(tmp_path, mpiexec):
    import subprocess
    import sys

    from mpi_jobs import environment
    setup_dir(tmp_path)
    one = run_kaffe(["train", "--solver", solver(tmp_path, "one", 2)],
                    tmp_path)
    assert one.returncode == 0, one.stderr
    solver(tmp_path, "two", 1)
    (tmp_path / "script.py").write_text(SCRIPT)
    command = [mpiexec, "-n", "2", sys.executable, "script.py"]
    run = subprocess.run(command + ["counts"], cwd=tmp_path,
                         env=environment(), capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    for x, y in zip(weights(tmp_path, "one_iter_20.caffemodel"),
                    weights(tmp_path, "script.caffemodel")):
        np.testing.assert_allclose(y, x, rtol=1e-5, atol=2e-6)
    # Without set_solver_count the nets read unsharded data: refused, and
    # the error ends both workers.
    bad = subprocess.run(command + ["no-counts"], cwd=tmp_path,
                         env=environment(), capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode != 0
    assert "solver_count / solver_rank do not match the MPI job" in \
        bad.stderr


def test_signals_act_on_every_worker(tmp_path, mpiexec):
    import os
    import signal
    if not os.path.isdir("/proc"):
        pytest.skip("finds the worker processes through /proc (Linux)")
    import subprocess
    import sys

    from mpi_jobs import environment
    setup_dir(tmp_path)
    name = solver(tmp_path, "s", 1, max_iter=1000000)
    process = subprocess.Popen(
        [mpiexec, "-n", "2", sys.executable, "-m", "kaffe", "train",
         "--solver", name], cwd=tmp_path, env=environment(),
        stderr=subprocess.PIPE, text=True)
    lines = []
    import threading
    watchdog = threading.Timer(60, process.kill)      # never hang the suite
    watchdog.start()
    try:
        for line in process.stderr:
            lines.append(line)
            if "Iteration 10 (" in line:
                # SIGHUP to one worker: worker 0 snapshots, all go on.
                os.kill(worker_pids(tmp_path / name)[-1], signal.SIGHUP)
            if "Snapshotting solver state" in line:
                process.send_signal(signal.SIGINT)   # mpiexec passes it on
                break
        lines.extend(process.stderr)
        assert process.wait(timeout=30) == 0, "".join(lines)
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    log = "".join(lines)
    assert "Optimization stopped early." in log
    snapshots = list(tmp_path.glob("s_iter_*.caffemodel"))
    assert len(snapshots) == 2          # worker 0's: at SIGHUP and at stop


def worker_pids(solver_path):
    """The pids of the kaffe processes training with ``solver_path``."""
    import os
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if b"kaffe" in args and solver_path.name.encode() in args and \
                not any(b"mpiexec" in a for a in args):
            pids.append(int(entry))
    assert len(pids) == 2, pids
    return sorted(pids)
