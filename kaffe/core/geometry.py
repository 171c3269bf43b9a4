"""The window geometry layers publish, importable from kaffe.core too.

It is defined in :mod:`kaffe.ops.geometry` (pure, so that the ops can use
it without importing kaffe.core); see there.
"""
from ..ops.geometry import (ConvGeometry, PoolGeometry, conv_output_size,
                            deconv_output_size, pooled_size)

__all__ = ["ConvGeometry", "PoolGeometry", "pooled_size", "conv_output_size",
           "deconv_output_size"]
