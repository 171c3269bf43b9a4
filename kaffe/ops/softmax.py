"""Softmax along one axis, as Caffe computes it (max-subtracted)."""
import numpy as np

from ..backend import array_module


def softmax(x, axis, out=None):
    """exp(x − max) / Σ exp(x − max) along ``axis``; other axes independent."""
    xp = array_module(x)
    out = xp.empty_like(x) if out is None else out
    # With NumPy the reductions are called directly, without ndarray.max
    # and .sum's Python wrappers (a third of a small softmax's time).
    numpy = xp is np
    xp.subtract(x, np.maximum.reduce(x, axis=axis, keepdims=True) if numpy
                else x.max(axis=axis, keepdims=True), out=out)
    xp.exp(out, out=out)
    out /= (np.add.reduce(out, axis=axis, keepdims=True) if numpy
            else out.sum(axis=axis, keepdims=True))
    return out


def softmax_backward(y, dy, axis, out=None):
    """dx = (dy − Σ dy·y along axis) · y, for y = softmax(x)."""
    xp = array_module(y)
    out = xp.empty_like(y) if out is None else out
    dot = (dy * y).sum(axis=axis, keepdims=True)
    xp.subtract(dy, dot, out=out)
    out *= y
    return out
