"""kaffe: Caffe, rebuilt in Python — and made understandable.

``import kaffe as caffe`` gives pycaffe's surface: Net, TRAIN/TEST, Layer,
layer_type_list, set_random_seed, set_mode_cpu, ...
"""
from .core.backend import gpu_available
from .core.blob import Blob
from .core.errors import (KaffeConfigError, KaffeError, KaffeFormatError,
                          KaffeShapeError)
from .core.layer import Layer
from .core.net import TEST, TRAIN, Net
from .core.random import set_random_seed
from .core.registry import layer_type_list
from .solvers import (AdaDeltaSolver, AdaGradSolver, AdamSolver,
                      NesterovSolver, RMSPropSolver, SGDSolver, get_solver)

__version__ = "0.1.0"


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


__all__ = [
    "AdaDeltaSolver", "AdaGradSolver", "AdamSolver", "NesterovSolver",
    "RMSPropSolver", "SGDSolver", "get_solver", "Blob", "KaffeConfigError", "KaffeError", "KaffeFormatError",
    "KaffeShapeError", "Layer", "Net", "TEST", "TRAIN", "gpu_available",
    "layer_type_list", "set_device", "set_mode_cpu", "set_mode_gpu",
    "set_random_seed", "__version__",
]
