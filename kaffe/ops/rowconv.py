"""Row-unfolded convolution: 2-D convolutions whose kernel slides with
stride 1 down the rows, computed from the input unfolded along the width
only — forward, backward-data and backward-weights.

im2col copies every input cell C·kh·kw times (once per kernel offset) and
then multiplies once, K = C/group·kh·kw deep. Here the input of a chunk of
``nb`` images is unfolded along the width only, into

    U[c, j, hp, n, o] = x_pad[n, c, hp, o·stride_w + j·dilation_w]

(hp over the padded height, n the image in the chunk, o the output
column), kw copies instead of kh·kw. In U's row-major (c, j) × (hp, n, o)
matrix the columns an output row h reads at kernel row i start at
(h + i·dilation_h)·nb·Wo: for each i the matrix that im2col would have
built is a plain window of U's columns, a view with a leading dimension
BLAS takes as it is. So

    y[:, h, n, o] = Σ_i  W_i · U[:, (h + i·d_h)·nb·Wo + …]

with W_i = w[:, :, i, :] as an (M/group) × (C/group·kw) matrix per group:
kh GEMMs, each as wide as im2col's one GEMM and kw·C/group deep, made by
one batched ``matmul`` over a strided view of U, and summed. They are
computed transposed, U_iᵀ · W_iᵀ, positions by M/group (OpenBLAS is
faster with the small dimension last), and the sum, laid out
(Ho, nb, Wo, M), is transposed into the caller's (N, M, Ho, Wo) while the
bias is added.

* Backward-data is the same computation applied to dy, padded by
  dilation·(k − 1) − pad, with the filters flipped along both kernel axes
  and input and output channels exchanged (stride 1 along both axes).
* Backward-weights: with dy of a chunk laid out (Ho, nb, Wo, M),
  dW_iᵀ = U_i · dyᵀ for each kernel row i, one batched ``matmul``; the
  chunks' products are summed and added to ``dw`` (Caffe's parameter
  diffs accumulate).

The arithmetic is Caffe's (``base_conv_layer.cpp``: each output the sum
over c, i, j of w · x); only the order of the float additions differs, as
it does between any two GEMM libraries. Any dtype.

Which convolutions take it (:func:`rowconv_applies`) and the chunk size
were measured on kaffe's training benchmark (CIFAR-10 quick, LeNet,
AlexNet: see docs/performance.md). The functions work over a range of
images ``[n0, n1)`` of the batch, chunk by chunk, so that ranges can run
on separate threads, each with its own :class:`RowConvWorkspace`.
"""
import threading

import numpy as np

from ..backend import array_module
from .arrays import out_array

__all__ = ["rowconv_applies", "rowconv_forward", "rowconv_backward_data",
           "rowconv_backward_weights", "add_weight_rows", "flipped_filters",
           "RowGeometry", "RowConvWorkspace"]

# A chunk holds as many images as fit their unfolded input U in this many
# elements (1 MiB of float32: it and the chunk's output stay in a 2 MB L2
# cache; 512 K elements: CIFAR-10 quick's training step 125 → 132 ms),
# at least one.
_CHUNK_ELEMENTS = 1 << 18
# Windows shallower than this many rows (C/group·kw) are left to im2col:
# the GEMMs are then too shallow, and the positions-by-outputs products
# cost more to lay out than the GEMMs save (CIFAR-10's conv1, 3·5 rows:
# forward 10.2 ms by im2col, 12.2 here; its filter gradient, stacking the
# kh windows into one deep matrix, 9.2 either way in the training step).
_MIN_WINDOW_DEPTH = 64
# Forward and backward-data only with at most this many outputs per group.
_MAX_OUTPUTS = 64


def rowconv_applies(x_shape, w_shape, stride, pad, dilation, group,
                    kind="forward", columns_kept=False):
    """Whether a convolution takes this module's path for ``kind``:
    "forward", "backward_data" or "backward_weights". ``columns_kept``:
    whether im2col's columns of the batch would be kept between forward
    and backward (:class:`kaffe.ops.conv.SavedColumns`); forward and
    backward-weights then stay with im2col, whose kept columns make the
    filter gradient cheaper (LeNet's conv2: 2.4 ms with them, 2.8 here).

    All need 2-D, stride 1 along the height, a kernel of at least 2 × 2
    and windows at least ``_MIN_WINDOW_DEPTH`` rows deep (C/group·kw; for
    backward-data M/group·kw). Forward and backward-data also need at most
    ``_MAX_OUTPUTS`` outputs per group: with more, im2col's single deep
    GEMM is as fast (AlexNet's conv2, 128 per group: forward 118 ms either
    way, backward-data 123 by im2col, 131 here). Backward-data also needs
    stride 1 along the width and pad ≥ dilation·(k − 1) / 2 on both axes:
    dy is then padded by no more than x was (LeNet's unpadded conv2 would
    pad its 8 × 8 dy to 16 × 16: 6.0 ms here, 3.0 by im2col).
    """
    if len(x_shape) != 4 or len(w_shape) != 4 or (
            columns_kept and kind != "backward_data"):
        return False
    kernel = tuple(w_shape[2:])
    if stride[0] != 1 or min(kernel) < 2:
        return False
    m_g = w_shape[0] // group
    depth = (m_g if kind == "backward_data" else w_shape[1]) * kernel[1]
    if depth < _MIN_WINDOW_DEPTH:
        return False
    if kind == "backward_weights":
        return True
    if m_g > _MAX_OUTPUTS:
        return False
    if kind == "backward_data":
        return stride[1] == 1 and all(
            d * (k - 1) - p <= p for p, d, k in zip(pad, dilation, kernel))
    return True


class RowGeometry:
    """One convolution's geometry for this module: shapes, chunking, and
    the column windows of the unfold."""

    def __init__(self, x_shape, w_shape, stride, pad, dilation, group):
        self.batch, self.channels, self.height, self.width = x_shape
        self.num_output, self.channels_g, self.kh, self.kw = w_shape
        self.group = group
        self.stride_w = stride[1]
        self.pad = tuple(pad)
        self.dilation = tuple(dilation)
        self.padded_h = self.height + 2 * pad[0]
        self.out_h = self.padded_h - dilation[0] * (self.kh - 1)
        self.out_w = (self.width + 2 * pad[1]
                      - dilation[1] * (self.kw - 1) - 1) // stride[1] + 1
        per_image = self.channels * self.kw * self.padded_h * self.out_w
        self.chunk = max(1, min(self.batch, _CHUNK_ELEMENTS // per_image))
        # For each j: (output columns, input columns) that lie in the image.
        self.spans = []
        for j in range(self.kw):
            offset = j * dilation[1] - pad[1]
            lo = max(0, -(-(-offset) // self.stride_w))
            hi = min(self.out_w,
                     (self.width - 1 - offset) // self.stride_w + 1)
            if lo < hi:
                start = lo * self.stride_w + offset
                self.spans.append((j, slice(lo, hi), slice(
                    start, start + (hi - lo - 1) * self.stride_w + 1,
                    self.stride_w)))

    def chunks(self, n0, n1):
        """(start, stop) of each chunk of images n0 … n1 − 1."""
        return [(a, min(a + self.chunk, n1))
                for a in range(n0, n1, self.chunk)]


class RowConvWorkspace:
    """Scratch arrays for one thread's calls, kept between calls up to
    ``_KEEP_BYTES`` in all (a net's layers then allocate nothing per step);
    the unfold buffers keep their zero borders, written once."""

    _KEEP_BYTES = 32 << 20

    def __init__(self):
        self._arrays = {}
        self._bytes = 0

    def get(self, xp, name, shape, dtype, zeros=False):
        """The array kept under (name, shape, dtype), made (zeroed if
        ``zeros``) on first use. Arrays made with ``zeros`` must be keyed by
        everything that decides which of their cells stay zero."""
        key = (xp.__name__, name, tuple(shape), np.dtype(dtype).str)
        array = self._arrays.get(key)
        if array is None:
            make = xp.zeros if zeros else xp.empty
            array = make(shape, dtype=dtype)
            if self._bytes + array.nbytes > self._KEEP_BYTES:
                self._arrays.clear()
                self._bytes = 0
            if array.nbytes <= self._KEEP_BYTES:
                self._arrays[key] = array
                self._bytes += array.nbytes
        return array


_local = threading.local()


def _workspace(workspace):
    if workspace is not None:
        return workspace
    if not hasattr(_local, "workspace"):
        _local.workspace = RowConvWorkspace()
    return _local.workspace


def _unfold(xp, geo, x, n0, n1, workspace):
    """U of images n0 … n1 − 1 as a (C·kw, padded_h·nb·Wo) matrix."""
    nb = n1 - n0
    # Keyed by what decides its zero cells (the padding rows and the
    # columns outside each span), which no call ever writes.
    u = workspace.get(xp, ("unfolded", geo.height, geo.width, geo.pad,
                           geo.stride_w, geo.dilation[1]),
                      (geo.channels, geo.kw, geo.padded_h, nb, geo.out_w),
                      x.dtype, zeros=True)
    rows = slice(geo.pad[0], geo.pad[0] + geo.height)
    source = x[n0:n1].transpose(1, 2, 0, 3)      # (C, H, nb, W)
    for j, out_cols, in_cols in geo.spans:
        u[:, j, rows, :, out_cols] = source[..., in_cols]
    return u.reshape(geo.channels * geo.kw, -1)


def _row_windows(xp, geo, u, nb):
    """The kh × group matrices (C/group·kw, Ho·nb·Wo) each kernel row's
    GEMM reads: a strided view of U."""
    item = u.itemsize
    width = nb * geo.out_w
    ld = u.strides[0]
    k_g = geo.channels_g * geo.kw
    shape = (geo.kh, geo.group, k_g, geo.out_h * width)
    strides = (geo.dilation[0] * width * item, k_g * ld, ld, item)
    return xp.lib.stride_tricks.as_strided(u, shape, strides)


def _filter_rows(xp, w, group):
    """w (M, C/group, kh, kw) as (kh, group, C/group·kw, M/group)."""
    m, c_g, kh, kw = w.shape
    cols = w.reshape(group, m // group, c_g, kh, kw).transpose(3, 0, 2, 4, 1)
    return xp.ascontiguousarray(cols).reshape(kh, group, c_g * kw,
                                              m // group)


def _forward_range(xp, geo, x, w_cols, b, y, n0, n1, workspace):
    m_g = geo.num_output // geo.group
    for a, z in geo.chunks(n0, n1):
        nb = z - a
        u = _unfold(xp, geo, x, a, z, workspace)
        windows = _row_windows(xp, geo, u, nb)
        windows = windows.swapaxes(-1, -2)
        # (positions, M/group) products: OpenBLAS is faster with the small
        # dimension last (CIFAR-10's conv2: 12.2 → 10.7 ms).
        products = workspace.get(
            xp, "products",
            (geo.kh, geo.group, geo.out_h * nb * geo.out_w, m_g), y.dtype)
        xp.matmul(windows, w_cols, out=products)
        total = products[0]
        for i in range(1, geo.kh):
            total += products[i]
        _write_out(xp, geo, total, b, y, a, z)


def _write_out(xp, geo, total, b, y, a, z):
    """y[a:z] = total (group, Ho·nb·Wo, M/group) (+ b), transposed."""
    nb = z - a
    m_g = geo.num_output // geo.group
    result = total.reshape(geo.group, geo.out_h, nb, geo.out_w, m_g)
    result = result.transpose(2, 0, 4, 1, 3)
    dest = y[a:z].reshape(nb, geo.group, m_g, geo.out_h, geo.out_w)
    if b is None:
        dest[...] = result
    else:
        xp.add(result, b.reshape(geo.group, m_g, 1, 1), out=dest)


def rowconv_forward(x, w, b=None, stride=(1, 1), pad=(0, 0),
                    dilation=(1, 1), group=1, out=None, n0=0, n1=None,
                    workspace=None):
    """Convolution forward of images ``n0 … n1 − 1`` (all by default).

    Args:
        x: (N, C, H, W) input.
        w: (M, C/group, kh, kw) filters.
        b: (M,) bias or None.
        stride, pad, dilation: (h, w) pairs; stride[0] must be 1.
        group: number of channel groups.
        out: (N, M, Ho, Wo) array to write into (images n0 … n1 − 1),
            else a new one is made (all of it returned, only the range
            written).
        workspace: a :class:`RowConvWorkspace` (default: this thread's).

    Returns:
        ``out`` (or the new array).
    """
    xp = array_module(x, w)
    geo = RowGeometry(x.shape, w.shape, stride, pad, dilation, group)
    out = out_array(xp, out, (geo.batch, geo.num_output, geo.out_h,
                              geo.out_w), xp.result_type(x, w),
                    "rowconv_forward")
    n1 = geo.batch if n1 is None else n1
    _forward_range(xp, geo, x, _filter_rows(xp, w, group), b, out, n0, n1,
                   _workspace(workspace))
    return out


def flipped_filters(w, group):
    """The filters of backward-data as a convolution of dy: (C, M/group,
    kh, kw), w_f[g·C/g + c, m] = w[g·M/g + m, c] flipped on both axes."""
    xp = array_module(w)
    m, c_g, kh, kw = w.shape
    m_g = m // group
    flipped = w[:, :, ::-1, ::-1].reshape(group, m_g, c_g, kh, kw)
    return xp.ascontiguousarray(flipped.transpose(0, 2, 1, 3, 4)).reshape(
        group * c_g, m_g, kh, kw)


def rowconv_backward_data(dy, w, x_shape, pad=(0, 0), dilation=(1, 1),
                          group=1, out=None, n0=0, n1=None, workspace=None,
                          flipped=None):
    """dx of a stride-1 convolution, images ``n0 … n1 − 1``: the forward
    of dy padded by dilation·(k − 1) − pad with :func:`flipped_filters`
    (``flipped``, if the caller made them once for several ranges)."""
    xp = array_module(dy, w)
    if flipped is None:
        flipped = flipped_filters(w, group)
    pad_dy = tuple(d * (k - 1) - p for p, d, k in
                   zip(pad, dilation, w.shape[2:]))
    geo = RowGeometry(dy.shape, flipped.shape, (1, 1), pad_dy, dilation,
                      group)
    out = out_array(xp, out, (geo.batch, geo.num_output, geo.out_h,
                              geo.out_w), xp.result_type(dy, w),
                    "rowconv_backward_data")
    if tuple(out.shape) != tuple(x_shape):
        raise ValueError(f"rowconv_backward_data: dy {tuple(dy.shape)} "
                         f"with these filters gives {tuple(out.shape)}, "
                         f"not x's shape {tuple(x_shape)}")
    n1 = geo.batch if n1 is None else n1
    _forward_range(xp, geo, dy, _filter_rows(xp, flipped, group), None, out,
                   n0, n1, _workspace(workspace))
    return out


def rowconv_backward_weights(dy, x, w_shape, stride=(1, 1), pad=(0, 0),
                             dilation=(1, 1), group=1, n0=0, n1=None,
                             workspace=None):
    """The filter gradient from images ``n0 … n1 − 1``, laid out
    (kh, group, C/group·kw, M/group): add it to dw with
    :func:`add_weight_rows` (partial sums of several ranges are added
    together first)."""
    xp = array_module(dy, x)
    geo = RowGeometry(x.shape, w_shape, stride, pad, dilation, group)
    n1 = geo.batch if n1 is None else n1
    workspace = _workspace(workspace)
    m_g = geo.num_output // group
    total = None
    for a, z in geo.chunks(n0, n1):
        nb = z - a
        u = _unfold(xp, geo, x, a, z, workspace)
        windows = _row_windows(xp, geo, u, nb)
        # dy as (Ho·nb·Wo, M): OpenBLAS runs U_i · dyᵀ with the small
        # M/group dimension last ~1.5× faster than dy · U_iᵀ.
        dy_t = workspace.get(xp, "dy", (geo.out_h, nb, geo.out_w,
                                        geo.num_output), dy.dtype)
        dy_t[...] = dy[a:z].transpose(2, 0, 3, 1)
        dy_mat = dy_t.reshape(-1, group, m_g).transpose(1, 0, 2)
        products = xp.matmul(windows, dy_mat)
        if total is None:
            total = products
        else:
            total += products
    if total is None:   # an empty range
        total = xp.zeros((geo.kh, group, geo.channels_g * geo.kw, m_g),
                         dtype=xp.result_type(dy, x))
    return total


def add_weight_rows(dw, rows):
    """dw (M, C/group, kh, kw) += the (kh, group, C/group·kw, M/group)
    gradient of :func:`rowconv_backward_weights`."""
    m, c_g, kh, kw = dw.shape
    group = rows.shape[1]
    rows = rows.reshape(kh, group, c_g, kw, m // group)
    dw += rows.transpose(1, 4, 2, 0, 3).reshape(dw.shape)
