"""kaffe: Caffe, rebuilt in Python — and made understandable.

``import kaffe as caffe`` gives pycaffe's surface, so old scripts run
unchanged: Net, Layer, the solver classes and get_solver, TRAIN/TEST, NetSpec
with ``layers``/``params``/``to_proto``, Timer, the set_mode_*/set_device/
set_random_seed/init_log/log functions, the multi-process counters,
layer_type_list, ``caffe.proto.caffe_pb2``, io, Classifier and Detector.

``kaffe.layers`` — one name, two things. The *package* kaffe.layers holds the
built-in layer implementations; the *attribute* ``kaffe.layers`` is pycaffe's
NetSpec factory, so that ``from caffe import layers as L`` keeps meaning what
it means in pycaffe. The package is imported first (which registers every
layer type; the registry imports it by module name), then the attribute is
rebound to the factory. The implementation modules stay importable, and the
factory hands out the family subpackages by their (lowercase) names, so that
import statements that walk attributes keep working::

    from kaffe import layers as L                          # NetSpec: L.ReLU(x)
    from kaffe.layers.vision.convolution import ConvolutionLayer   # the class
    import kaffe.layers.vision.convolution as conv         # the module
    kaffe.layers.vision.convolution.ConvolutionLayer       # also the class
"""
import logging
import time

from . import layers as _layer_implementations  # noqa: F401 (registers the types)
from .backend import gpu_available
from .core.blob import Blob
from .errors import (KaffeConfigError, KaffeError, KaffeFormatError,
                     KaffeShapeError)
from .core.layer import Layer
from .memory import KaffeMemoryError, set_max_bytes
from .core.net import TEST, TRAIN, Net
from .core.random import set_random_seed
from .parallel.context import (set_multiprocess, set_solver_count,
                               set_solver_rank, solver_count, solver_rank)
from .parallel.nccl import NCCL
from .core.registry import layer_type_list, register_layer
from .proto import caffe_pb2 as _caffe_pb2  # noqa: F401 caffe.proto.caffe_pb2
from .solvers import (AdaDeltaSolver, AdaGradSolver, AdamSolver,
                      NesterovSolver, RMSPropSolver, SGDSolver, get_solver)
# Bound after the implementation package on purpose: see the module docstring.
from .net_spec import NetSpec, layers, params, to_proto
# pycaffe's caffe.io, Classifier and Detector.
from . import io
from .classifier import Classifier
from .detector import Detector
from .fold import fold_batchnorm

__version__ = "0.1.0"

_log = logging.getLogger("kaffe")


def set_mode_cpu():
    """Run on the CPU (the only backend so far)."""


def set_mode_gpu():
    """Run on a GPU: refused until kaffe has a GPU backend."""
    raise KaffeError(
        "GPU mode is not available: kaffe runs on the CPU with NumPy",
        fix="call kaffe.set_mode_cpu() (or nothing: CPU is the default)")


def set_device(device_id):
    """Select a GPU device: only device 0 of the CPU backend exists."""
    if device_id != 0:
        raise KaffeError("there is no such device", field="device_id",
                         received=device_id, expected="0 (the CPU)")


# -- logging ------------------------------------------------------------------
_GLOG_LEVELS = (logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)


def init_log(level=0, stderr=True):
    """Print kaffe's log to stderr in glog's format (pycaffe's init_log).

    Args:
        level: glog's minloglevel: 0 INFO, 1 WARNING, 2 ERROR, 3 FATAL.
        stderr: accepted for pycaffe's signature; kaffe logs to stderr only.
    """
    from .tools.logging_setup import setup_logging
    if not 0 <= level < len(_GLOG_LEVELS):
        raise KaffeError("is not a glog level", field="level", received=level,
                         expected="0 (INFO), 1 (WARNING), 2 (ERROR) or 3 "
                                  "(FATAL)")
    setup_logging(_GLOG_LEVELS[level])


def log(message):
    """Write ``message`` to kaffe's log at INFO level (pycaffe's log)."""
    _log.info("%s", message)


# -- multi-process training (Caffe's counters; kaffe.parallel runs them) ------
def has_nccl():
    """Whether multi-worker training is available: kaffe's NCCL is MPI, so
    this says whether mpi4py can be imported (pip install "kaffe[mpi]")."""
    import importlib.util
    return importlib.util.find_spec("mpi4py") is not None


# -- timing -----------------------------------------------------------------
class Timer:
    """Caffe's wall-clock Timer: start(), stop(), ms, seconds.

    As Caffe's CPU timer, reading ``ms`` (or ``seconds``) while running stops
    it first; before the first start it reads 0.
    """

    def __init__(self):
        self._start = None
        self._stop = None
        self._running = False

    def start(self):
        if not self._running:
            self._start = time.perf_counter()
            self._running = True

    def stop(self):
        if self._running:
            self._stop = time.perf_counter()
            self._running = False

    @property
    def ms(self):
        """Milliseconds between the last start() and stop()."""
        if self._start is None:
            return 0.0
        self.stop()
        return (self._stop - self._start) * 1000.0

    @property
    def seconds(self):
        return self.ms / 1000.0


__all__ = [
    "AdaDeltaSolver", "AdaGradSolver", "AdamSolver", "Blob", "Classifier",
    "Detector", "KaffeConfigError",
    "KaffeError", "KaffeFormatError", "KaffeMemoryError", "KaffeShapeError",
    "Layer", "NCCL",
    "Net", "NesterovSolver", "NetSpec", "RMSPropSolver", "SGDSolver", "TEST",
    "TRAIN", "Timer", "__version__", "get_solver", "gpu_available",
    "has_nccl", "init_log", "io", "layer_type_list", "layers", "log", "params",
    "set_device", "set_max_bytes", "set_mode_cpu", "set_mode_gpu", "set_multiprocess",
    "set_random_seed", "set_solver_count", "set_solver_rank", "solver_count",
    "solver_rank", "to_proto",
]
