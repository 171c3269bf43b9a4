"""Power: y = (shift + scale · x)^power and its backward, step by step as
Caffe's PowerLayer computes them (same special cases, same operation order,
so float32 results round the same way).

The constants are scalars of the arrays' dtype; ``diff_scale`` is
power · scale rounded to that dtype.
"""
import numpy as np

from ..backend import array_module


def power_forward(x, out, power, scale, shift):
    """out = (shift + scale · x)^power.

    power = 0 or scale = 0 (diff_scale = 0) ignore x: out = 1 if power = 0
    (also where the base is 0 or negative), else shift^power. Otherwise a
    scale of 1, a shift of 0 and a power of 1 are skipped. A negative base
    with a non-integer power gives NaN, as std::pow does. ``out`` may be
    ``x``.
    """
    xp = array_module(x)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if power * scale == 0:  # Caffe's diff_scale
            out[...] = 1 if power == 0 else shift ** power
            return out
        if scale != 1:
            xp.multiply(x, scale, out=out)
        else:
            out[...] = x
        if shift != 0:
            out += shift
        if power != 1:
            xp.power(out, power, out=out)
    return out


def power_backward(x, y, dy, dx, power, scale, shift):
    """dx = dy · power · scale · (shift + scale · x)^(power − 1).

    Caffe's cases: diff_scale = 0 → dx = 0 (not even multiplied by dy);
    power = 1 → dx = dy · scale; power = 2 → dx = dy · (diff_scale · scale · x
    + diff_scale · shift); shift = 0 → dx = dy · power · y / x (NaN or inf at
    x = 0); else dx = dy · diff_scale · y / (shift + scale · x).

    Every case builds its factor in a temporary array, in Caffe's operation
    order, and then multiplies by ``dy``. ``dx`` may share memory with
    ``dy`` (an in-place layer): ``x`` must then be the input the forward
    saw, not the output ``y`` written over it.
    """
    xp = array_module(dx)
    diff_scale = power * scale
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if diff_scale == 0:
            dx[...] = diff_scale
            return dx
        factor = xp.empty_like(dx)
        if power == 1:
            factor[...] = diff_scale
        elif power == 2:
            xp.multiply(x, diff_scale * scale, out=factor)
            if shift != 0:
                factor += diff_scale * shift
        elif shift == 0:
            xp.divide(y, x, out=factor)
            factor *= power
        else:
            if scale != 1:
                xp.multiply(x, scale, out=factor)
            else:
                factor[...] = x
            factor += shift
            xp.divide(y, factor, out=factor)
            if diff_scale != 1:
                factor *= diff_scale
        xp.multiply(dy, factor, out=dx)
    return dx
