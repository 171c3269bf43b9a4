"""Mean/variance normalisation shared by BatchNorm and MVN.

Both layers compute y = (x − mean) / denom over groups of elements and share
one backward. The statistics are reduced over ``axes`` of an array whose
remaining axes index the groups (BatchNorm: (N, C, S) over axes (0, 2); MVN:
(groups, D) over axis 1). Results keep the reduced axes (size 1) so that they
broadcast back onto ``x``.
"""
from ..backend import array_module


def centered_moments(x, axes, out=None):
    """(x − mean, mean, var): the mean and the *biased* variance over ``axes``.

    The variance is computed as Caffe does, E((x − E x)²), not E x² − (E x)².
    ``out`` (optional, x's shape; may be ``x`` itself) receives x − mean,
    which saves allocating it: BatchNorm passes its top.
    """
    xp = array_module(x)
    mean = x.mean(axis=axes, keepdims=True)
    centered = xp.subtract(x, mean, out=out)
    var = (centered * centered).mean(axis=axes, keepdims=True)
    return centered, mean, var


def normalize_backward(dy, y, denom, axes, out=None):
    """dx = (dy − mean(dy) − mean(dy·y)·y) / denom, means over ``axes``.

    The exact gradient of y = (x − mean) / sqrt(var + eps) with batch
    statistics (BatchNorm); for MVN's y = (x − mean) / (sqrt(var) + eps) it
    is the formula Caffe uses, exact only as eps → 0.

    Both means are taken before anything is written, so ``out`` may be
    ``dy`` itself (an in-place layer's bottom diff is its top diff).
    """
    xp = array_module(dy)
    mean_dy = dy.mean(axis=axes, keepdims=True)
    mean_dy_y = (dy * y).mean(axis=axes, keepdims=True)
    grad = xp.subtract(dy, mean_dy, out=out)
    grad -= mean_dy_y * y
    grad /= denom
    return grad
