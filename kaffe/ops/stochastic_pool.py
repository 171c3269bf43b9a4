"""Stochastic pooling (Zeiler & Fergus), as Caffe's GPU kernels define it.

Windows start at ph·stride and are clipped to the image (no padding). In
training a window picks one of its elements at random with probability
proportional to its value (the first element whose running sum reaches
u·Σ, u ~ U[0, 1)); the output is that element and the gradient flows only to
it. At test time the output is the value-weighted average Σx² / Σx (Σx starts
at FLT_MIN). Inputs are expected to be non-negative (e.g. after a ReLU).
"""
import numpy as np

from ..backend import array_module

FLT_MIN = float(np.finfo(np.float32).tiny)


def _window_indices(xp, in_hw, kernel, stride, out_hw):
    """Flat in-plane index of every window element, and which are inside."""
    (h, w), (kh, kw), (sh, sw), (oh, ow) = in_hw, kernel, stride, out_hw
    rows = (xp.arange(oh) * sh)[:, None] + xp.arange(kh)[None, :]   # (oh, kh)
    cols = (xp.arange(ow) * sw)[:, None] + xp.arange(kw)[None, :]   # (ow, kw)
    inside = (rows[:, None, :, None] < h) & (cols[None, :, None, :] < w)
    flat = (xp.minimum(rows, h - 1)[:, None, :, None] * w
            + xp.minimum(cols, w - 1)[None, :, None, :])
    return flat.reshape(oh, ow, kh * kw), inside.reshape(oh, ow, kh * kw)


def _windows(x, kernel, stride, out_hw):
    xp = array_module(x)
    n, c, h, w = x.shape
    flat, inside = _window_indices(xp, (h, w), kernel, stride, out_hw)
    values = x.reshape(n, c, h * w)[:, :, flat] * inside
    return values, flat, inside


def stochastic_pool_train(x, kernel, stride, out_hw, uniform):
    """Sample one element per window.

    Args:
        x: (N, C, H, W) non-negative input.
        kernel, stride: (h, w) pairs.
        out_hw: the pooled (height, width).
        uniform: (N, C, *out_hw) draws from U[0, 1).

    Returns:
        (y, chosen): the sampled values and the flat in-plane index (h·W + w)
        of each sample, both (N, C, *out_hw).
    """
    xp = array_module(x)
    values, flat, _ = _windows(x, kernel, stride, out_hw)
    running = xp.cumsum(values, axis=-1)
    threshold = uniform * running[..., -1]
    pick = xp.argmax(running >= threshold[..., None], axis=-1)
    y = xp.take_along_axis(values, pick[..., None], axis=-1)[..., 0]
    oh, ow = out_hw
    chosen = flat[xp.arange(oh)[:, None], xp.arange(ow)[None, :], pick]
    return y, chosen


def stochastic_pool_train_backward(dy, chosen, x_shape):
    """Route each window's gradient to its sampled element (summing overlaps)."""
    xp = array_module(dy)
    n, c, h, w = x_shape
    planes = xp.arange(n * c).reshape(n, c, 1, 1) * (h * w)
    dx = xp.bincount((planes + chosen).ravel(), weights=dy.ravel(),
                     minlength=n * c * h * w)
    return dx.reshape(x_shape).astype(dy.dtype, copy=False)


def stochastic_pool_test(x, kernel, stride, out_hw):
    """y = Σx² / (FLT_MIN + Σx) over each window."""
    values, _, _ = _windows(x, kernel, stride, out_hw)
    total = FLT_MIN + values.sum(axis=-1)
    return (values * values).sum(axis=-1) / total


def stochastic_pool_test_backward(dy, x, kernel, stride, out_hw):
    """Exact gradient of the test-time output: (2x·S − Q) / S² per element."""
    xp = array_module(dy)
    n, c, h, w = x.shape
    values, flat, inside = _windows(x, kernel, stride, out_hw)
    total = FLT_MIN + values.sum(axis=-1, keepdims=True)
    squares = (values * values).sum(axis=-1, keepdims=True)
    local = (2 * values * total - squares) / (total * total) * inside
    contributions = dy[..., None] * local
    planes = xp.arange(n * c).reshape(n, c, 1, 1, 1) * (h * w)
    dx = xp.bincount((planes + flat).ravel(), weights=contributions.ravel(),
                     minlength=n * c * h * w)
    return dx.reshape(x.shape).astype(dy.dtype, copy=False)
