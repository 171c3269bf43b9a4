"""The logistic sigmoid as Caffe computes it."""
from ..backend import array_module


def sigmoid(x, out=None):
    """σ(x) = 1 / (1 + e⁻ˣ), computed as 0.5·tanh(0.5·x) + 0.5.

    The tanh form never overflows, and it is the formula Caffe's Sigmoid
    layer uses, so float32 results round as Caffe's do. ``out`` may be ``x``.
    """
    xp = array_module(x)
    out = xp.multiply(x, 0.5, out=out)
    xp.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out
