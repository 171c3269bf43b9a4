"""pycaffe's own tests (python/caffe/test/*.py) that the other kaffe tests do
not already cover, ported afresh.

Most of that suite lives elsewhere: test_net.py in tests/core/
test_pycaffe_net.py, test_net_spec.py in tests/test_net_spec.py, the two
Python-layer files in tests/layers/common/test_python_layer.py, test_io.py in
tests/io/test_io_module.py, test_layer_type_list.py in
tests/test_pycaffe_surface.py, test_coord_map.py in tests/test_coord_map.py.
What is left is test_solver.py (a solver over test_net.py's simple net, with
``net:`` serving as train and test net), the legacy constructor's deprecation
warning of test_net.py, and one behaviour pycaffe's notebooks rely on: a net
that is gone lets go of its LMDB (the notebook's ``solver = None`` before a
second solver on the same data).
"""
import gc
import logging
import os
import time

import numpy as np
import pytest

import kaffe as caffe
from kaffe.testing.nets import simple_net_file

NUM_OUTPUT = 13


@pytest.fixture
def solver(tmp_path, monkeypatch):
    """test_solver.py's setUp: SGD with an inv policy on the simple net,
    ``snapshot_prefix: "model"`` relative to the current directory."""
    monkeypatch.chdir(tmp_path)
    caffe.set_random_seed(1)
    net_f = simple_net_file(tmp_path, NUM_OUTPUT)
    solver_f = tmp_path / "solver.prototxt"
    solver_f.write_text("net: '" + net_f + """'
        test_iter: 10 test_interval: 10 base_lr: 0.01 momentum: 0.9
        weight_decay: 0.0005 lr_policy: 'inv' gamma: 0.0001 power: 0.75
        display: 100 max_iter: 100 snapshot_after_train: false
        snapshot_prefix: "model" """)
    solver = caffe.SGDSolver(str(solver_f))
    # also make sure get_solver runs
    assert type(caffe.get_solver(str(solver_f))) is caffe.SGDSolver
    caffe.set_mode_cpu()
    # fill in valid labels (the constant-filled DummyData top keeps them)
    rng = np.random.default_rng(0)
    for net in [solver.net] + list(solver.test_nets):
        net.blobs["label"].data[...] = rng.integers(
            NUM_OUTPUT, size=net.blobs["label"].data.shape)
    os.remove(solver_f)
    os.remove(net_f)
    return solver


def test_solve(solver):
    assert solver.iter == 0
    solver.solve()
    assert solver.iter == 100


def test_solve_keeps_the_labels_set_from_python(solver):
    labels = solver.net.blobs["label"].data.copy()
    solver.step(3)
    np.testing.assert_array_equal(solver.net.blobs["label"].data, labels)


def test_apply_update(solver):
    net = solver.net
    data = net.layers[1].blobs[0].data[...]
    # Reset the weights of that layer to 0
    data[...] = 0
    net.layers[1].blobs[0].diff[...] = 1
    # Apply the update, the initial learning rate should be 0.01
    solver.apply_update()
    # The new weights are -0.01 (momentum history and weight decay of a
    # zero weight add nothing), seen through the view taken before.
    np.testing.assert_allclose(data, -0.01, rtol=0, atol=1e-7)
    assert solver.iter == 1


def test_net_memory(solver):
    """The nets outlive the solver."""
    nets = [solver.net] + list(solver.test_nets)
    assert len(nets) == 2
    del solver
    gc.collect()
    total = 0
    for net in nets:
        for ps in net.params.values():
            for p in ps:
                total += p.data.sum() + p.diff.sum()
        for bl in net.blobs.values():
            total += bl.data.sum() + bl.diff.sum()
    assert np.isfinite(total)


def test_snapshot(solver, tmp_path):
    solver.snapshot()
    # the files are named by the prefix, relative to the current directory
    for fn in ["model_iter_0.caffemodel", "model_iter_0.solverstate"]:
        assert os.path.isfile(tmp_path / fn)


@pytest.fixture
def kaffe_warnings(caplog):
    caplog.set_level(logging.WARNING, logger="kaffe")
    logger = logging.getLogger("kaffe")
    saved = logger.propagate
    logger.propagate = True
    yield caplog
    logger.propagate = saved


def test_legacy_constructor_warns(tmp_path, kaffe_warnings):
    """test_net.py's test_save_and_read: the legacy constructor 'should print
    deprecation warning' (glog WARNING lines from _caffe.cpp)."""
    net_file = simple_net_file(tmp_path, NUM_OUTPUT)
    weights = str(tmp_path / "w.caffemodel")
    caffe.Net(net_file, caffe.TRAIN).save(weights)
    kaffe_warnings.clear()
    caffe.Net(net_file, caffe.TRAIN, weights=weights)
    assert "DEPRECATION" not in kaffe_warnings.text
    caffe.Net(net_file, weights, caffe.TRAIN)
    assert "DEPRECATION WARNING - deprecated use of Python interface" in \
        kaffe_warnings.text
    assert "weights=" in kaffe_warnings.text


def test_a_freed_net_lets_go_of_its_lmdb(tmp_path):
    """The notebook's ``solver = None`` (release the LMDB) must work: once the
    nets reading an LMDB are gone, the ``lmdb`` package can open it again in
    this process (py-lmdb refuses an environment already open here)."""
    lmdb = pytest.importorskip("lmdb")
    from kaffe import layers as L, params as P
    db = str(tmp_path / "digits_lmdb")
    with lmdb.open(db, map_size=1 << 22) as env:
        with env.begin(write=True) as txn:
            for i in range(4):
                datum = caffe.io.array_to_datum(
                    np.full((1, 2, 2), i, np.uint8), i)
                txn.put(b"%08d" % i, datum.SerializeToString())
    n = caffe.NetSpec()
    n.data, n.label = L.Data(batch_size=2, backend=P.Data.LMDB, source=db,
                             ntop=2)
    proto = tmp_path / "net.prototxt"
    proto.write_text(str(n.to_proto()))
    net = caffe.Net(str(proto), caffe.TEST)
    np.testing.assert_array_equal(net.forward()["label"], [0, 1])
    net = None
    # The layer's prefetch thread may be loading a batch at this moment; it
    # lets go of the layer (and so of the LMDB) as soon as that batch is done.
    for _ in range(100):
        gc.collect()
        try:
            env = lmdb.open(db, readonly=True)   # refused while kaffe holds it
            break
        except lmdb.Error:
            time.sleep(0.02)
    else:
        pytest.fail("the LMDB is still open 2 s after its net was freed")
    with env:
        assert env.stat()["entries"] == 4
