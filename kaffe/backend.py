"""Array backend selection: the only module that may import CuPy.

Layers and ops never consult a global mode. They ask which array module owns
their inputs (``xp = array_module(x)``) and use it, so the same code runs on
NumPy arrays on the host and on CuPy arrays on a GPU. CuPy is never imported
here unless an array of its kind is already in hand (so it is already loaded).
"""
import sys

import numpy as np


def _is_cupy(a):
    return type(a).__module__.split(".", 1)[0] == "cupy"


def array_module(*arrays):
    """Return the array module (numpy or cupy) that owns ``arrays``."""
    for a in arrays:
        # (NumPy's own arrays first: a type check is 10× cheaper than
        # reading the module name, and layers ask on every call.)
        if type(a) is not np.ndarray and _is_cupy(a):
            return sys.modules["cupy"]
    return np


def gpu_available():
    """True when CuPy is importable and sees at least one device."""
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # CuPy missing, or no driver/device on this machine
        return False


def to_numpy(a):
    """Return ``a`` as a NumPy array (copying from the device if needed)."""
    if _is_cupy(a):
        return a.get()
    return np.asarray(a)
