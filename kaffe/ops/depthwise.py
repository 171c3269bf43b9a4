"""Depthwise 2-D convolution computed directly: one k×k filter per channel.

A depthwise convolution (group = channels = filters) does k·k multiply-adds
per output value; im2col + GEMM would unfold the input k·k times to do the
same work in C tiny matrix products. Here each kernel tap is one whole-array
multiply-add of a strided view of the zero-padded input, in the tap order
(kh, then kw) the forks' CPU loops use, so every output value is summed in
the same order as theirs (ConvolutionDepthwise's ``conv_dw_layer.cpp``):
the result is bit-identical to that loop, bias added last.

Shapes: x (N, C, H, W); w (C, 1, kh, kw) or (C, kh, kw); b (C,) or None;
stride, pad, dilation are (h, w) pairs.
"""
from ..backend import array_module


def output_size(size, k, s, p, d):
    """(size + 2p − (d(k − 1) + 1)) // s + 1."""
    return (size + 2 * p - (d * (k - 1) + 1)) // s + 1


def _taps(w):
    return w.reshape(w.shape[0], w.shape[-2], w.shape[-1])


def _window(padded, i, j, out_hw, stride, dilation):
    """The strided view of ``padded`` that tap (i, j) reads for every
    output position: (N, C, H_out, W_out)."""
    top, left = i * dilation[0], j * dilation[1]
    return padded[:, :, top:top + stride[0] * (out_hw[0] - 1) + 1:stride[0],
                  left:left + stride[1] * (out_hw[1] - 1) + 1:stride[1]]


def _padded(x, pad):
    xp = array_module(x)
    if pad == (0, 0):
        return x
    n, c, h, w = x.shape
    out = xp.zeros((n, c, h + 2 * pad[0], w + 2 * pad[1]), dtype=x.dtype)
    out[:, :, pad[0]:pad[0] + h, pad[1]:pad[1] + w] = x
    return out


def depthwise_forward(x, w, b, stride, pad, dilation, out=None):
    """y[n, c] = Σ_(i, j) w[c, i, j] · x_padded[n, c, s·y + d·i, s·x + d·j]
    (+ b[c])."""
    xp = array_module(x)
    taps = _taps(w)
    kh, kw = taps.shape[1:]
    out_hw = (output_size(x.shape[2], kh, stride[0], pad[0], dilation[0]),
              output_size(x.shape[3], kw, stride[1], pad[1], dilation[1]))
    if out is None:
        out = xp.empty(x.shape[:2] + out_hw, dtype=x.dtype)
    out[...] = 0
    padded = _padded(x, pad)
    # One scratch array for every tap's product (a fresh temporary per
    # tap costs MobileNet's large maps a page-faulting allocation each).
    product = xp.empty(out.shape, dtype=out.dtype)
    for i in range(kh):
        for j in range(kw):
            xp.multiply(taps[:, i, j][None, :, None, None],
                        _window(padded, i, j, out_hw, stride, dilation),
                        out=product)
            out += product
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


def depthwise_backward(dy, x, w, stride, pad, dilation, need_dx=True,
                       need_dw=True):
    """(dx or None, dw or None) for dE/dy ``dy``; dw has w's shape (the
    caller accumulates it into the parameter diff)."""
    xp = array_module(dy)
    taps = _taps(w)
    kh, kw = taps.shape[1:]
    out_hw = dy.shape[2:]
    padded = _padded(x, pad)
    dx_padded = xp.zeros(padded.shape, dtype=dy.dtype) if need_dx else None
    dw = xp.zeros(taps.shape, dtype=dy.dtype) if need_dw else None
    product = xp.empty(dy.shape, dtype=dy.dtype) if need_dx else None
    for i in range(kh):
        for j in range(kw):
            if need_dw:
                window = _window(padded, i, j, out_hw, stride, dilation)
                dw[:, i, j] = xp.einsum("nchw,nchw->c", window, dy)
            if need_dx:
                xp.multiply(taps[:, i, j][None, :, None, None], dy,
                            out=product)
                _window(dx_padded, i, j, out_hw, stride, dilation)[...] += (
                    product)
    dx = None
    if need_dx:
        h, wd = x.shape[2:]
        dx = dx_padded[:, :, pad[0]:pad[0] + h, pad[1]:pad[1] + wd]
    return dx, None if dw is None else dw.reshape(w.shape)


def depthwise_bias_backward(dy):
    """dE/db: dy summed over examples and positions, per channel."""
    return dy.sum(axis=(0, 2, 3))
