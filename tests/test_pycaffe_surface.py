"""``import kaffe as caffe``: the names pycaffe's __init__ exports, and the
small utilities behind them (python/caffe/__init__.py, _caffe.cpp)."""
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

import kaffe as caffe
from kaffe.core.errors import KaffeError

REPO = Path(__file__).resolve().parents[1]

# Every name python/caffe/__init__.py makes public.
PYCAFFE_NAMES = [
    "Net", "SGDSolver", "NesterovSolver", "AdaGradSolver", "RMSPropSolver",
    "AdaDeltaSolver", "AdamSolver", "NCCL", "Timer", "init_log", "log",
    "set_mode_cpu", "set_mode_gpu", "set_device", "Layer", "get_solver",
    "layer_type_list", "set_random_seed", "solver_count", "set_solver_count",
    "solver_rank", "set_solver_rank", "set_multiprocess", "has_nccl",
    "__version__", "TRAIN", "TEST", "Classifier", "Detector", "io", "layers",
    "params", "NetSpec", "to_proto",
]


@pytest.mark.parametrize("name", PYCAFFE_NAMES)
def test_pycaffe_name_exists(name):
    assert hasattr(caffe, name)
    if name != "__version__":
        assert name in caffe.__all__


def test_phases_and_proto():
    from kaffe.proto import caffe_pb2
    assert caffe.proto.caffe_pb2 is caffe_pb2
    assert caffe.TRAIN == caffe_pb2.TRAIN == 0
    assert caffe.TEST == caffe_pb2.TEST == 1
    assert isinstance(caffe.__version__, str)


def test_layers_attribute_is_the_netspec_factory():
    from kaffe.net_spec import Layers, Parameters
    assert isinstance(caffe.layers, Layers)
    assert isinstance(caffe.params, Parameters)
    from kaffe import layers as L
    assert L.Convolution(L.Input(shape=dict(dim=[1, 1, 3, 3])),
                         kernel_size=1).fn.type_name == "Convolution"


def test_layer_implementation_modules_still_import():
    import kaffe.layers.vision.convolution  # noqa: F401
    from kaffe.layers.vision.convolution import ConvolutionLayer
    assert ConvolutionLayer.type == "Convolution"
    assert caffe.layers.vision.convolution.ConvolutionLayer is ConvolutionLayer
    import kaffe.layers.common.inner_product as ip
    assert ip.InnerProductLayer.type == "InnerProduct"
    module = sys.modules["kaffe.layers"]
    assert module.__name__ == "kaffe.layers" and module is not caffe.layers


@pytest.mark.parametrize("code", [
    "import kaffe.layers.vision.convolution as m, kaffe; "
    "assert m.ConvolutionLayer.type == 'Convolution'; "
    "from kaffe.net_spec import Layers; assert isinstance(kaffe.layers, Layers)",
    "import kaffe; import kaffe.layers.common.inner_product as m; "
    "from kaffe.net_spec import Layers; assert isinstance(kaffe.layers, Layers)",
    "from kaffe.layers.common.python_layer import BlobVec; import kaffe; "
    "from kaffe.net_spec import Layers; assert isinstance(kaffe.layers, Layers); "
    "assert 'Python' in kaffe.layer_type_list()",
])
def test_import_orders_in_a_fresh_interpreter(code):
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_layer_type_list():
    types = caffe.layer_type_list()
    for name in ("Data", "Convolution", "InnerProduct", "Python", "Input",
                 "DummyData", "MemoryData", "HDF5Data", "ImageData",
                 "WindowData"):
        assert name in types
    assert types == sorted(types)


def test_layer_is_the_base_of_every_layer():
    from kaffe.core.layer import Layer
    assert caffe.Layer is Layer


def test_modes_and_devices():
    caffe.set_mode_cpu()
    caffe.set_device(0)
    with pytest.raises(KaffeError, match="GPU"):
        caffe.set_mode_gpu()
    with pytest.raises(KaffeError):
        caffe.set_device(1)


def test_solver_counters():
    assert caffe.solver_count() == 1 and caffe.solver_rank() == 0
    try:
        caffe.set_solver_count(2)
        caffe.set_solver_rank(1)
        caffe.set_multiprocess(True)
        assert caffe.solver_count() == 2 and caffe.solver_rank() == 1
    finally:
        caffe.set_solver_count(1)
        caffe.set_solver_rank(0)
        caffe.set_multiprocess(False)


def test_nccl_is_mpi():
    # kaffe's NCCL sums over MPI (tests/parallel runs it under mpiexec).
    import importlib.util
    assert caffe.has_nccl() is (importlib.util.find_spec("mpi4py")
                                is not None)
    uid = caffe.NCCL.new_uid()
    assert isinstance(uid, bytes) and uid != caffe.NCCL.new_uid()


def test_timer():
    timer = caffe.Timer()
    assert timer.ms == 0
    timer.start()
    time.sleep(0.01)
    timer.stop()
    elapsed = timer.ms
    assert 5 <= elapsed < 5000
    assert timer.seconds == pytest.approx(elapsed / 1000)
    time.sleep(0.005)
    assert timer.ms == elapsed             # stopped: the reading stays
    timer.start()
    time.sleep(0.002)
    assert timer.ms < elapsed + 5000       # reading a running timer stops it


def test_init_log_and_log(capsys):
    logger = logging.getLogger("kaffe")
    saved = list(logger.handlers), logger.level, logger.propagate
    try:
        caffe.init_log()
        caffe.log("hello from pycaffe")
        err = capsys.readouterr().err
        assert err.startswith("I") and "] hello from pycaffe" in err
        caffe.init_log(1)
        caffe.log("hidden")
        assert "hidden" not in capsys.readouterr().err
        caffe.init_log(0, True)
        with pytest.raises(KaffeError):
            caffe.init_log(7)
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]


def test_get_solver_and_classes_are_kaffes():
    from kaffe import solvers
    assert caffe.SGDSolver is solvers.SGDSolver
    assert caffe.get_solver is solvers.get_solver
    for name in ("NesterovSolver", "AdaGradSolver", "RMSPropSolver",
                 "AdaDeltaSolver", "AdamSolver"):
        assert issubclass(getattr(caffe, name), caffe.SGDSolver) or \
            getattr(caffe, name) is getattr(solvers, name)


def test_to_proto_and_netspec_round_trip(tmp_path):
    from kaffe import layers as L
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[2, 3]))
    n.out = L.ReLU(n.data)
    proto = n.to_proto()
    assert caffe.to_proto(n.out) == caffe.to_proto(n.out)
    path = tmp_path / "net.prototxt"
    path.write_text(str(proto))
    net = caffe.Net(str(path), caffe.TEST)
    assert net.inputs == ["data"] and net.outputs == ["out"]
