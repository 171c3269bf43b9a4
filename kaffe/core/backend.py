"""The array-module helpers, importable under their historical path.

They live in :mod:`kaffe.backend`, a leaf module (the only one that may
import CuPy); this module re-exports them so that
``from kaffe.core.backend import array_module`` keeps working.
"""
from ..backend import array_module, gpu_available, to_numpy

__all__ = ["array_module", "gpu_available", "to_numpy"]
