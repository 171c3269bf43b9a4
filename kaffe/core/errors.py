"""The error family, importable under its historical path.

The classes live in :mod:`kaffe.errors`, a leaf module that every part of
kaffe (``proto/`` and ``ops/`` included) may import; this module re-exports
them so that ``from kaffe.core.errors import KaffeConfigError`` keeps working.
"""
from ..errors import (KaffeConfigError, KaffeError, KaffeFormatError,
                      KaffeShapeError)

__all__ = ["KaffeError", "KaffeConfigError", "KaffeShapeError",
           "KaffeFormatError"]
