"""Fixtures for the solver tests: a tiny deterministic net and solver files.

The net is two InnerProduct layers and a EuclideanLoss, fed by a test-only
data layer whose n-th forward pass always produces the same batch (a fixed
function of n), so that a second copy of the net can replay exactly the
batches a solver saw (the gradient oracle of the reference updates).
"""
import logging

import numpy as np
import pytest

import kaffe
from kaffe.core import registry
from kaffe.core.layer import Layer


class SequenceBatches(Layer):
    """Tops shaped by dummy_data_param.shape; forward n fills top k with
    uniform(-1, 1) numbers drawn from a generator seeded by (n, k)."""

    type = "SolverTestBatches"
    exact_num_bottom_blobs = 0
    min_top_blobs = 1

    def setup(self, bottom, top):
        self.count = 0
        for blob, shape in zip(top, self.layer_param.dummy_data_param.shape):
            blob.reshape(tuple(shape.dim))

    def reshape(self, bottom, top):
        pass

    def forward(self, bottom, top):
        for k, blob in enumerate(top):
            rng = np.random.default_rng([self.count, k])
            blob.data[...] = rng.uniform(-1, 1, blob.shape)
        self.count += 1

    def backward(self, top, propagate_down, bottom):
        pass


# ip1's bias is frozen (lr_mult 0) and undecayed; ip2 has its own mults.
NET = """name: "tiny"
layer { name: "data" type: "SolverTestBatches" top: "data" top: "target"
        dummy_data_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 2 } } }
layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
        param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 0 decay_mult: 0 }
        inner_product_param { num_output: 3
          weight_filler { type: "gaussian" std: 0.7 }
          bias_filler { type: "gaussian" std: 0.3 } } }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
        param { lr_mult: 0.5 decay_mult: 2 } param { lr_mult: 2 decay_mult: 0 }
        inner_product_param { num_output: 2
          weight_filler { type: "gaussian" std: 0.7 }
          bias_filler { type: "constant" value: 0.25 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "ip2" bottom: "target"
        top: "loss" }
"""


@pytest.fixture
def batches_layer(monkeypatch):
    """Register SolverTestBatches for this test only."""
    registry.layer_type_list()   # load the built-in layers first
    monkeypatch.setitem(registry._REGISTRY, SequenceBatches.type,
                        SequenceBatches)


@pytest.fixture
def workdir(tmp_path, monkeypatch, batches_layer):
    """A temporary current directory holding net.prototxt (the tiny net)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.prototxt").write_text(NET)
    return tmp_path


@pytest.fixture
def write_solver(workdir):
    """write_solver(text, name="solver.prototxt") -> path of the new file."""
    def write(text, name="solver.prototxt"):
        path = workdir / name
        path.write_text(text)
        return str(path.name)
    return write


@pytest.fixture
def kaffe_log(caplog):
    """The kaffe logger's INFO messages, captured."""
    caplog.set_level(logging.INFO, logger="kaffe")
    logger = logging.getLogger("kaffe")
    saved = logger.propagate
    logger.propagate = True
    yield caplog
    logger.propagate = saved


@pytest.fixture
def oracle_net(workdir):
    """oracle_net(phase=TRAIN) -> a fresh instance of the tiny net, whose
    data layer replays the batches a solver's net saw, from the first."""
    def make(phase=kaffe.TRAIN):
        return kaffe.Net("net.prototxt", phase)
    return make
