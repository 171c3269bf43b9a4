"""Snapshots: file names and contents, and resuming bit for bit.

Resuming from a snapshot must give exactly the weights and history of an
uninterrupted run, for every update rule, from binary and HDF5 snapshots.
As in Caffe's TestSnapshot, the resumed net's data layer is first advanced
past the batches the first run consumed.
"""
import os

import numpy as np
import pytest

from kaffe import solvers
from kaffe.core.errors import KaffeConfigError, KaffeFormatError
from kaffe.proto import caffe_pb2
from kaffe.proto.io import read_binary

TYPES = {
    "SGD": "momentum: 0.9",
    "Nesterov": "momentum: 0.9",
    "AdaGrad": "",
    "RMSProp": "rms_decay: 0.9",
    "AdaDelta": "momentum: 0.95 delta: 1e-6",
    "Adam": "momentum: 0.9",
}


def solver_text(type_name, extra=""):
    # multistep makes current_step part of the state to restore.
    return (f'net: "net.prototxt" type: "{type_name}" {TYPES[type_name]} '
            'base_lr: 0.05 lr_policy: "multistep" gamma: 0.5 stepvalue: 2 '
            'stepvalue: 5 weight_decay: 0.001 iter_size: 2 random_seed: 7 '
            f'snapshot_prefix: "snap/run" {extra}')


def resume_matches_uninterrupted(write_solver, type_name, fmt):
    os.makedirs("snap", exist_ok=True)
    text = solver_text(type_name, f"snapshot_format: {fmt}")
    straight = solvers.get_solver(write_solver(text))
    straight.step(6)

    first = solvers.get_solver(write_solver(text))
    first.step(3)
    model, state = first.snapshot()
    ext = ".h5" if fmt == "HDF5" else ""
    assert model == f"snap/run_iter_3.caffemodel{ext}"
    assert state == f"snap/run_iter_3.solverstate{ext}"

    resumed = solvers.get_solver(write_solver(text))
    resumed.restore(state)
    assert resumed.iter == 3
    assert resumed.current_step == first.current_step == 1
    resumed.net.layer_dict["data"].count = 3 * 2    # batches already seen
    resumed.step(3)
    for a, b in zip(straight.net.learnable_params,
                    resumed.net.learnable_params):
        assert a.data.tobytes() == b.data.tobytes()
    for a, b in zip(straight.history, resumed.history):
        assert a.data.tobytes() == b.data.tobytes()
    assert resumed.current_step == straight.current_step == 2


@pytest.mark.parametrize("type_name", list(TYPES))
def test_resume_binary_is_bit_exact(write_solver, type_name):
    resume_matches_uninterrupted(write_solver, type_name, "BINARYPROTO")


@pytest.mark.parametrize("type_name", list(TYPES))
def test_resume_hdf5_is_bit_exact(write_solver, type_name):
    pytest.importorskip("h5py")
    resume_matches_uninterrupted(write_solver, type_name, "HDF5")


def test_solverstate_contents(write_solver):
    os.makedirs("snap", exist_ok=True)
    solver = solvers.get_solver(write_solver(solver_text("Adam")))
    solver.step(3)
    solver.snapshot()
    state = read_binary("snap/run_iter_3.solverstate", caffe_pb2.SolverState)
    assert state.iter == 3
    assert state.current_step == 1
    assert state.learned_net == "snap/run_iter_3.caffemodel"
    params = solver.net.learnable_params
    assert len(state.history) == 2 * len(params)     # m's then v's
    for k, proto in enumerate(state.history):
        assert tuple(proto.shape.dim) == params[k % len(params)].shape
        np.testing.assert_array_equal(
            np.array(proto.data, np.float32).reshape(proto.shape.dim),
            solver.history[k].data)
        assert len(proto.diff) == 0
    model = read_binary("snap/run_iter_3.caffemodel", caffe_pb2.NetParameter)
    assert [l.name for l in model.layer] == ["data", "ip1", "ip2", "loss"]
    assert len(model.layer[1].blobs[0].diff) == 0


def test_snapshot_diff_writes_diffs(write_solver):
    os.makedirs("snap", exist_ok=True)
    solver = solvers.get_solver(write_solver(solver_text(
        "SGD", "snapshot_diff: true")))
    solver.step(1)
    solver.snapshot()
    model = read_binary("snap/run_iter_1.caffemodel", caffe_pb2.NetParameter)
    blob = model.layer[1].blobs[0]
    assert len(blob.diff) == len(blob.data) == 9


def test_hdf5_layout(write_solver):
    h5py = pytest.importorskip("h5py")
    os.makedirs("snap", exist_ok=True)
    solver = solvers.get_solver(write_solver(solver_text(
        "AdaDelta", "snapshot_format: HDF5")))
    solver.step(2)
    solver.snapshot()
    with h5py.File("snap/run_iter_2.solverstate.h5", "r") as f:
        assert f["iter"].dtype == np.int32 and f["iter"].shape == (1,)
        assert int(f["iter"][0]) == 2
        assert int(f["current_step"][0]) == 0    # stepvalue 2 not yet met
        learned = f["learned_net"]
        assert learned.shape == ()
        assert learned.id.get_type().get_strpad() == h5py.h5t.STR_NULLTERM
        assert learned[()] == b"snap/run_iter_2.caffemodel.h5"
        history = f["history"]
        assert sorted(history, key=int) == [str(i) for i in range(8)]
        for i, blob in enumerate(solver.history):
            assert history[str(i)].dtype == np.float32
            np.testing.assert_array_equal(history[str(i)][()], blob.data)
    with h5py.File("snap/run_iter_2.caffemodel.h5", "r") as f:
        np.testing.assert_array_equal(f["data/ip1/0"][()],
                                      solver.net.params["ip1"][0].data)


def test_periodic_snapshots_and_after_train(write_solver, kaffe_log):
    solver = solvers.get_solver(write_solver(
        'net: "net.prototxt" base_lr: 0.01 lr_policy: "fixed" max_iter: 5 '
        'snapshot: 2'))
    solver.solve()
    names = sorted(p for p in os.listdir() if p.startswith("solver_iter_"))
    # prefix from the solver file's name; 2 and 4 periodic, 5 after training
    assert names == [f"solver_iter_{i}.{ext}" for i in (2, 4, 5)
                     for ext in ("caffemodel", "solverstate")]
    messages = [r.getMessage() for r in kaffe_log.records]
    assert "Snapshotting to binary proto file solver_iter_2.caffemodel" in \
        messages
    assert ("Snapshotting solver state to binary proto file "
            "solver_iter_5.solverstate") in messages


def test_no_duplicate_final_snapshot_and_opt_out(write_solver):
    solver = solvers.get_solver(write_solver(
        'net: "net.prototxt" base_lr: 0.01 lr_policy: "fixed" max_iter: 4 '
        'snapshot: 2 snapshot_prefix: "a"'))
    solver.solve()
    assert sorted(p for p in os.listdir() if p.startswith("a_iter")) == [
        "a_iter_2.caffemodel", "a_iter_2.solverstate",
        "a_iter_4.caffemodel", "a_iter_4.solverstate"]
    solver = solvers.get_solver(write_solver(
        'net: "net.prototxt" base_lr: 0.01 lr_policy: "fixed" max_iter: 3 '
        'snapshot_prefix: "b" snapshot_after_train: false'))
    solver.solve()
    assert not [p for p in os.listdir() if p.startswith("b_iter")]


def test_snapshot_prefix_directory_gets_solver_stem(write_solver, workdir):
    os.makedirs("models")
    solver = solvers.get_solver(write_solver(
        'net: "net.prototxt" base_lr: 0.01 lr_policy: "fixed" '
        'snapshot_prefix: "models"', "lenet_solver.prototxt"))
    assert solver.param.snapshot_prefix == os.path.join("models",
                                                        "lenet_solver")


def test_solve_resumes(write_solver, kaffe_log):
    text = ('net: "net.prototxt" base_lr: 0.01 lr_policy: "fixed" '
            'momentum: 0.9 max_iter: 4 random_seed: 2')
    straight = solvers.get_solver(write_solver(text))
    straight.solve()
    first = solvers.get_solver(write_solver(text))
    first.step(2)
    first.snapshot()
    resumed = solvers.get_solver(write_solver(text))
    resumed.net.layer_dict["data"].count = 2
    resumed.solve("solver_iter_2.solverstate")
    assert resumed.iter == 4
    assert ("Restoring previous solver status from solver_iter_2.solverstate"
            in [r.getMessage() for r in kaffe_log.records])
    for a, b in zip(straight.net.learnable_params,
                    resumed.net.learnable_params):
        np.testing.assert_array_equal(a.data, b.data)


def test_restore_with_another_rule_is_refused(write_solver):
    sgd = solvers.get_solver(write_solver(solver_text("SGD")))
    os.makedirs("snap")
    _, state = sgd.snapshot()
    adam = solvers.get_solver(write_solver(solver_text("Adam")))
    with pytest.raises(KaffeFormatError, match="history blobs") as e:
        adam.restore(state)
    assert "run_iter_0.solverstate" in str(e.value)
    assert adam.iter == 0


def test_restore_finds_moved_snapshot(write_solver, workdir):
    os.makedirs("snap")
    solver = solvers.get_solver(write_solver(solver_text("SGD")))
    solver.step(1)
    solver.snapshot()
    os.rename("snap", "moved")
    other = solvers.get_solver(write_solver(solver_text("SGD")))
    other.restore("moved/run_iter_1.solverstate")
    np.testing.assert_array_equal(other.net.params["ip1"][0].data,
                                  solver.net.params["ip1"][0].data)


def test_snapshot_needs_a_writable_prefix(workdir):
    param = caffe_pb2.SolverParameter(net="net.prototxt", base_lr=0.1,
                                      lr_policy="fixed", snapshot=10)
    with pytest.raises(KaffeConfigError, match="snapshot_prefix is not"):
        solvers.SGDSolver(param)
    param.snapshot_prefix = "no/such/dir/x"
    with pytest.raises(KaffeConfigError, match="cannot be written"):
        solvers.SGDSolver(param)
