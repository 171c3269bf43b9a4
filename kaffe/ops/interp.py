"""Bilinear resizing with corners aligned, as DeepLab's ``caffe_cpu_interp2``.

Output row r of a resize from h_in to h_out rows (h_out > 1) samples the
input at y = r · (h_in − 1)/(h_out − 1): the first and last rows of both
grids coincide ("align corners"). With y0 = ⌊y⌋, λ = y − y0 and y1 = y0 + 1
(y0 itself on the last row), the value is (1 − λ)·x[y0] + λ·x[y1], and the
same along the columns:

    out = (1 − λh)·((1 − λw)·x[y0, x0] + λw·x[y0, x1])
          + λh·((1 − λw)·x[y1, x0] + λw·x[y1, x1])

The ratio, the positions and λ are computed in float32 whatever the data
type, as the fork does (``const float rheight``); the blend is done in the
data type with the fork's association, so float32 results are the fork's
bit for bit. Equal input and output sizes copy. The input may be a crop of
a larger array (DeepLab's negative pad_beg/pad_end): ``origin`` is the
crop's top-left corner and ``size`` its extent.
"""
import numpy as np

from ..backend import array_module


def interp_taps(n_in, n_out):
    """(i0, i1, λ) for resizing ``n_in`` samples to ``n_out``: the two
    input indices each output index blends and the weight of the second,
    all computed in float32 as the fork does."""
    ratio = (np.float32(n_in - 1) / np.float32(n_out - 1) if n_out > 1
             else np.float32(0))
    pos = ratio * np.arange(n_out, dtype=np.float32)
    i0 = pos.astype(np.int64)
    i1 = i0 + (i0 < n_in - 1)
    return i0, i1, pos - i0.astype(np.float32)


def interp_forward(x, out_hw, origin=(0, 0), size=None):
    """Resize the (…, H, W) array ``x`` (or its crop at ``origin`` of
    extent ``size``) to (…, *out_hw)."""
    xp = array_module(x)
    size = tuple(x.shape[-2:]) if size is None else tuple(size)
    crop = x[..., origin[0]:origin[0] + size[0],
             origin[1]:origin[1] + size[1]]
    if size == tuple(out_hw):
        return crop.copy()
    h0, h1, lh = interp_taps(size[0], out_hw[0])
    w0, w1, lw = interp_taps(size[1], out_hw[1])
    one = x.dtype.type(1)
    lh = xp.asarray(lh.astype(x.dtype))[:, None]
    lw = xp.asarray(lw.astype(x.dtype))
    top, bottom = crop[..., h0, :], crop[..., h1, :]
    return ((one - lh) * ((one - lw) * top[..., w0] + lw * top[..., w1])
            + lh * ((one - lw) * bottom[..., w0] + lw * bottom[..., w1]))


def _weights(n_in, n_out, dtype):
    """The (n_out, n_in) matrix of the 1-D blend (the fork's adjoint adds
    both weights into one cell on the last row)."""
    i0, i1, lam = interp_taps(n_in, n_out)
    lam = lam.astype(dtype)
    matrix = np.zeros((n_out, n_in), dtype=dtype)
    rows = np.arange(n_out)
    np.add.at(matrix, (rows, i0), dtype.type(1) - lam)
    np.add.at(matrix, (rows, i1), lam)
    return matrix


def interp_backward(dy, in_hw, origin=(0, 0), size=None):
    """The adjoint of ``interp_forward``: dE/dx (…, *in_hw) for dE/dy; the
    cells outside the crop get 0."""
    xp = array_module(dy)
    size = tuple(in_hw) if size is None else tuple(size)
    dx = xp.zeros(dy.shape[:-2] + tuple(in_hw), dtype=dy.dtype)
    region = dx[..., origin[0]:origin[0] + size[0],
                origin[1]:origin[1] + size[1]]
    if size == tuple(dy.shape[-2:]):
        region[...] = dy
        return dx
    rows = xp.asarray(_weights(size[0], dy.shape[-2], dy.dtype))
    cols = xp.asarray(_weights(size[1], dy.shape[-1], dy.dtype))
    region[...] = rows.T @ dy @ cols
    return dx
