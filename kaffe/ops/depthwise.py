"""Depthwise convolution: ``group`` equal to the input channels and to the
outputs, one filter per channel (MobileNet's 3×3 layers), for any number
of spatial axes.

    y[n, c, o…] = b[c] + Σ_{i…} w[c, 0, i…] · x_pad[n, c, o·stride + i·dilation …]

The generic path (im2col + a batched GEMM per group) turns this into
C products of a 1 × Πk row by a Πk × positions matrix each, thousands of
tiny GEMMs. Here each kernel offset is instead one multiply-add over the
whole (N, C, *out) array, the offset's filter taps broadcast over the
positions: Πk passes of vectorised NumPy, no columns, no GEMM. The sums
run over the kernel offsets in row-major order (Caffe's im2col order), so
float64 results agree with the generic path to rounding.

Backward-data adds each offset's ``w · dy`` onto the padded input's
window; backward-weights takes, per offset, the sum over images and
positions of ``dy · window`` (one ``einsum`` per offset).

Workspace: the padded input (forward, backward-weights) or padded
gradient (backward-data), and one (N, C, *out) array.
"""
import itertools

from kaffe.core.backend import array_module
from kaffe.ops.im2col import per_axis, window_geometry

__all__ = ["depthwise_applies", "depthwise_forward",
           "depthwise_backward_data", "depthwise_backward_weights"]


def depthwise_applies(x_shape, w_shape, group):
    """Whether a convolution is depthwise: one input channel and one
    output per group."""
    return (group > 1 and x_shape[1] == group and w_shape[0] == group
            and w_shape[1] == 1)


def _geometry(x_shape, w_shape, stride, pad, dilation):
    n = len(w_shape) - 2
    kernel = tuple(w_shape[2:])
    stride = per_axis(stride, n, "stride")
    pad = per_axis(pad, n, "pad")
    dilation = per_axis(dilation, n, "dilation")
    spatial = tuple(x_shape[2:])
    out = window_geometry(spatial, kernel, stride, pad, dilation)
    padded = tuple(s + 2 * p for s, p in zip(spatial, pad))
    interior = (slice(None), slice(None)) + tuple(
        slice(p, p + s) for s, p in zip(spatial, pad))
    windows = []
    for offset in itertools.product(*map(range, kernel)):
        windows.append((offset, (slice(None), slice(None)) + tuple(
            slice(i * d, i * d + s * (o - 1) + 1, s)
            for i, o, s, d in zip(offset, out, stride, dilation))))
    return out, padded, interior, windows


def _padded(xp, x, padded_shape, interior):
    if tuple(x.shape[2:]) == padded_shape:
        return x
    image = xp.zeros(x.shape[:2] + padded_shape, dtype=x.dtype)
    image[interior] = x
    return image


def _taps(w, offset):
    """The filters' taps at one kernel offset, broadcastable over
    (N, C, *out)."""
    n = w.ndim - 2
    return w[(slice(None), 0) + offset].reshape((1, -1) + (1,) * n)


def depthwise_forward(x, w, b=None, stride=1, pad=0, dilation=1, out=None):
    """Depthwise convolution forward.

    Args:
        x: (N, C, *spatial) input.
        w: (C, 1, *kernel) filters.
        b: (C,) bias, or None.
        stride, pad, dilation: an int, or one per spatial axis.
        out: optional C-contiguous (N, C, *out) array to write into.

    Returns:
        The output, ``out`` if given.
    """
    xp = array_module(x, w)
    out_shape, padded_shape, interior, windows = _geometry(
        x.shape, w.shape, stride, pad, dilation)
    shape = tuple(x.shape[:2]) + out_shape
    dtype = xp.result_type(x, w)
    y = xp.empty(shape, dtype=dtype) if out is None else out
    image = _padded(xp, x, padded_shape, interior)
    scratch = xp.empty(shape, dtype=dtype)
    for index, (offset, window) in enumerate(windows):
        if index == 0:
            xp.multiply(image[window], _taps(w, offset), out=y)
        else:
            xp.multiply(image[window], _taps(w, offset), out=scratch)
            y += scratch
    if b is not None:
        y += b.reshape((1, -1) + (1,) * len(out_shape))
    return y


def depthwise_backward_data(dy, w, x_shape, stride=1, pad=0, dilation=1,
                            out=None):
    """Input gradient of a depthwise convolution.

    Args:
        dy: (N, C, *out) output gradient.
        w: (C, 1, *kernel) filters.
        x_shape: (N, C, *spatial) the input's shape.
        stride, pad, dilation: as for :func:`depthwise_forward`.
        out: optional C-contiguous array of shape ``x_shape``.

    Returns:
        dx, ``out`` if given.
    """
    xp = array_module(dy, w)
    x_shape = tuple(x_shape)
    out_shape, padded_shape, interior, windows = _geometry(
        x_shape, w.shape, stride, pad, dilation)
    dtype = xp.result_type(dy, w)
    if padded_shape == x_shape[2:] and out is not None:
        image = out
        image[...] = 0
    else:
        image = xp.zeros(x_shape[:2] + padded_shape, dtype=dtype)
    scratch = xp.empty(dy.shape, dtype=dtype)
    for offset, window in windows:
        xp.multiply(dy, _taps(w, offset), out=scratch)
        image[window] += scratch
    if image is out:
        return out
    if out is None:
        return xp.ascontiguousarray(image[interior])
    out[...] = image[interior]
    return out


def depthwise_backward_weights(dy, x, dw, stride=1, pad=0, dilation=1):
    """Accumulate the filter gradient of a depthwise convolution:
    ``dw[c, 0, i…] += Σ_{n, o…} dy[n, c, o…] · x_pad[n, c, o·s + i·d …]``.
    """
    xp = array_module(dy, x)
    out_shape, padded_shape, interior, windows = _geometry(
        x.shape, dw.shape, stride, pad, dilation)
    image = _padded(xp, x, padded_shape, interior)
    batch, channels = dy.shape[:2]
    dy_rows = xp.ascontiguousarray(dy).reshape(batch, channels, -1)
    scratch = xp.empty(dy.shape, dtype=dy.dtype)
    for offset, window in windows:
        scratch[...] = image[window]
        dw[(slice(None), 0) + offset] += xp.einsum(
            "ncp,ncp->c", dy_rows, scratch.reshape(batch, channels, -1))
