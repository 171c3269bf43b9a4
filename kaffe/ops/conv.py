"""Convolution: forward, backward-data, backward-weights and bias backward,
for any number of spatial axes.

Caffe's semantics (``src/caffe/layers/base_conv_layer.cpp``):

    y[n, m, o…] = b[m] + Σ_{c, i…} w[m, c, i…] ·
                         x_pad[n, g(m)·C/group + c, o·stride + i·dilation …]

with x_pad the input zero-padded by ``pad`` on both sides of each spatial
axis, and g(m) the group of output channel m (input and output channels are
split into ``group`` equal groups; a group's outputs see only its inputs).
out[a] = (in[a] + 2·pad[a] − (dilation[a]·(k[a] − 1) + 1)) // stride[a] + 1.

The functions compose: Deconvolution is this convolution with forward and
backward-data swapped, so its forward is :func:`conv_backward_data`, its
backward-data :func:`conv_forward`, and its weight gradient
:func:`conv_backward_weights` with the roles of ``dy`` and ``x`` exchanged.

How it is computed (each choice measured with benchmarks/conv.py, on 2
AVX-512 cores with OpenBLAS):

* The batch goes in chunks of B images, in a batch-last layout: a chunk is
  copied once, zero-padded, into an image buffer (C, *padded, B), so that
  the copies and adds below run over contiguous out[-1]·B elements. B is as
  many images as fit their columns in ``_CHUNK_COLUMN_ELEMENTS`` (LeNet
  conv2: B = 64; AlexNet conv2: B = 1, where the GEMMs read and write the
  caller's arrays directly and nothing is transposed); larger and smaller
  chunks were slower.
* Except for 1×1 kernels without padding (ResNet's bottleneck and
  projection convolutions) on maps of at least ``_ALONE_MIN_POSITIONS``
  outputs: there every image is its own chunk, B = 1, since a 1×1 kernel has
  nothing to unfold and the batch-last transposes in and out would be the
  whole cost. With stride 1 the GEMM reads the caller's input as it is;
  with a larger stride it reads one strided copy. (open_nsfw at batch 8,
  2 cores: ResNet's 1×1 layers 2–5× faster than batch-last chunks; 3×3
  kernels gain nothing from it below 28×28 maps and lose up to 2× on 7×7
  maps, so they keep the budget rule.)
* Forward: im2col of the chunk into a column buffer (C, *kernel, *out, B),
  per group a (C/group·Πk) × (Πout·B) matrix, and one GEMM per group
  (``matmul`` over the group axis). 1×1 kernels with stride 1 and no padding
  use the image as its own columns.
* Backward-weights: the chunk's columns again, then dwᵀ += columns · dyᵀ
  per group (10–40 % faster than dy · columnsᵀ here). The forward's columns
  are not kept for it: that needs N·C·Πk·Πout elements (112 MB for AlexNet
  conv2 at N = 16, gigabytes for large batches), and was measured slower
  overall — writing them there instead of into one reused, cache-resident
  chunk buffer cost the forward 8 ms, more than the 6 ms it saved here.
* Backward-data, two plans. "col2im": columns = wᵀ · dy (a GEMM per group),
  folded back with one strided add per kernel offset. "rows", used when the
  last axis has stride 1, a padded width at most ``_ROWS_MAX_WASTE`` ×
  out[-1], and M ≤ C·Πk[:-1]: dy is unfolded along the last spatial axis
  only, onto the padded width; one GEMM per group with reordered filters
  yields whole padded rows for every (c, leading kernel offset); only the
  leading kernel axes are folded, Πk[:-1] adds of whole rows instead of Πk
  adds of out[-1]-long runs. It spends padded width / out[-1] times the
  GEMM flops but moves less data (AlexNet conv2: 48 → 41 ms; 3×3 kernels on
  56×56 maps: 80 → 44 ms).

Workspace: the buffers of one chunk (its columns, its padded images and, for
B > 1, a batch-last output chunk), for the duration of one call.
"""
import math

from kaffe.core.backend import array_module
from kaffe.ops.im2col import (conv_output_size, fold_into, per_axis,
                              unfold_into, window_geometry)

__all__ = ["conv_output_size", "conv_forward", "conv_backward_data",
           "conv_backward_weights", "conv_bias_backward"]

# A chunk holds as many images as fit their columns in this many elements
# (8 MiB of float32), at least one.
_CHUNK_COLUMN_ELEMENTS = 1 << 21
# 1×1 kernels without padding take the images one at a time when a map has
# at least this many outputs (below it, e.g. 1×1 maps, one GEMM over the
# batch-last chunk is faster than many tiny ones).
_ALONE_MIN_POSITIONS = 16
# Largest (padded width) / out[-1] for which the "rows" plan is used.
_ROWS_MAX_WASTE = 1.5


class _Plan:
    """One call's geometry, its chunking of the batch, its chunk buffers."""

    def __init__(self, xp, dtype, x_shape, w_shape, stride, pad, dilation,
                 group):
        n = len(w_shape) - 2
        if n < 1 or len(x_shape) != n + 2:
            raise ValueError(
                f"convolution: input {tuple(x_shape)} and weights "
                f"{tuple(w_shape)} must be (N, C, *spatial) and "
                f"(M, C/group, *kernel) with the same number (>= 1) of "
                f"spatial axes")
        if group < 1 or x_shape[1] % group or w_shape[0] % group:
            raise ValueError(
                f"convolution: group {group} must divide both the "
                f"{x_shape[1]} input channels and the {w_shape[0]} outputs")
        if w_shape[1] * group != x_shape[1]:
            raise ValueError(
                f"convolution: weights {tuple(w_shape)} with group {group} "
                f"expect {w_shape[1] * group} input channels, the input "
                f"{tuple(x_shape)} has {x_shape[1]}")
        self.xp = xp
        self.dtype = dtype
        self.batch, self.channels = x_shape[:2]
        self.num_output = w_shape[0]
        self.group = group
        self.spatial = tuple(x_shape[2:])
        self.kernel = tuple(w_shape[2:])
        self.stride = per_axis(stride, n, "stride")
        self.pad = per_axis(pad, n, "pad")
        self.dilation = per_axis(dilation, n, "dilation")
        self.out_shape = window_geometry(self.spatial, self.kernel,
                                         self.stride, self.pad, self.dilation)
        self.padded_shape = tuple(s + 2 * p
                                  for s, p in zip(self.spatial, self.pad))
        self.interior = (slice(None),) + tuple(
            slice(p, p + s) for s, p in zip(self.spatial, self.pad))
        self.pointwise = (all(k == 1 for k in self.kernel)
                          and all(s == 1 for s in self.stride)
                          and not any(self.pad))
        self.col_rows = w_shape[1] * math.prod(self.kernel)
        image_columns = self.col_rows * group * math.prod(self.out_shape)
        self.chunk = max(1, min(self.batch,
                                _CHUNK_COLUMN_ELEMENTS // image_columns))
        if (all(k == 1 for k in self.kernel) and not any(self.pad)
                and math.prod(self.out_shape) >= _ALONE_MIN_POSITIONS):
            self.chunk = 1
        self._buffers = {}

    def chunks(self):
        """(start, stop) of each chunk of the batch."""
        return [(n0, min(n0 + self.chunk, self.batch))
                for n0 in range(0, self.batch, self.chunk)]

    def buffer(self, name, shape, zeros=False):
        """A scratch array, made on first use, shared by this call's chunks."""
        key = (name, shape)
        if key not in self._buffers:
            make = self.xp.zeros if zeros else self.xp.empty
            self._buffers[key] = make(shape, dtype=self.dtype)
        return self._buffers[key]

    def image_buffer(self, b):
        """Zero-padded batch-last image (C, *padded, b); borders stay 0."""
        return self.buffer("image", (self.channels,) + self.padded_shape
                           + (b,), zeros=True)

    def group_matrices(self, a, rows):
        """A contiguous array viewed as (group, rows, rest) matrices."""
        return a.reshape(self.group, rows, -1)

    def columns(self, x_chunk):
        """im2col of ``x_chunk`` (B, C, *spatial): (group, C/group·Πk, Πout·B)
        matrices."""
        b = x_chunk.shape[0]
        if b == 1 and not any(self.pad):
            image = x_chunk[0][..., None]
        else:
            image = self.image_buffer(b)
            image[self.interior] = self.xp.moveaxis(x_chunk, 0, -1)
        if self.pointwise:
            return self.group_matrices(image, self.col_rows)
        cols = self.buffer("columns", (self.channels,) + self.kernel
                           + self.out_shape + (b,))
        unfold_into(cols, image, 1, self.kernel, self.stride, self.dilation)
        return self.group_matrices(cols, self.col_rows)

    def outputs_batch_last(self, y_chunk):
        """``y_chunk`` (B, M, *out) as (group, M/group, Πout·B) matrices (a
        view of it when B = 1)."""
        rows = self.num_output // self.group
        if y_chunk.shape[0] == 1:
            y_chunk = self.xp.ascontiguousarray(y_chunk)
            return self.group_matrices(y_chunk, rows)
        out = self.buffer("outputs", (self.num_output,) + self.out_shape
                          + (y_chunk.shape[0],))
        out[...] = self.xp.moveaxis(y_chunk, 0, -1)
        return self.group_matrices(out, rows)

    def store_image(self, image, dx_chunk):
        """Copy a padded batch-last image's interior into ``dx_chunk``."""
        dx_chunk[...] = self.xp.moveaxis(image[self.interior], -1, 0)

    def rows_plan_fits(self):
        """Whether backward-data should use the "rows" plan: stride 1 along
        the last axis, few wasted GEMM columns (padded width / out[-1]), and
        dy unfolded into M·k[-1] rows is not more data than col2im's C·Πk."""
        if self.stride[-1] != 1 or self.pointwise:
            return False
        return (self.padded_shape[-1] <= _ROWS_MAX_WASTE * self.out_shape[-1]
                and self.num_output
                <= self.channels * math.prod(self.kernel[:-1]))


def conv_forward(x, w, b=None, stride=1, pad=0, dilation=1, group=1,
                 out=None):
    """Convolution forward.

    Args:
        x: (N, C, *spatial) input; any number of spatial axes.
        w: (M, C/group, *kernel) filters.
        b: (M,) bias, or None.
        stride, pad, dilation: an int for every spatial axis, or one per axis.
        group: number of channel groups; divides C and M.
        out: optional C-contiguous (N, M, *out) array of the result's dtype
            to write into (e.g. the top blob's data), saving a copy. It
            must not overlap ``x``.

    Returns:
        The (N, M, *out) result, ``out`` if given, else a new array;
        out[a] = conv_output_size(spatial[a], kernel[a], stride[a], pad[a],
        dilation[a]).
    """
    xp = array_module(x, w)
    plan = _Plan(xp, xp.result_type(x, w), x.shape, w.shape, stride, pad,
                 dilation, group)
    m_g = plan.num_output // group
    w_mat = plan.group_matrices(w, m_g)
    shape = (plan.batch, plan.num_output) + plan.out_shape
    if out is None:
        y = xp.empty(shape, dtype=plan.dtype)
    else:
        _check_out(out, shape, plan.dtype)
        y = out
    for n0, n1 in plan.chunks():
        cols = plan.columns(x[n0:n1])
        if n1 - n0 == 1:
            xp.matmul(w_mat, cols, out=plan.group_matrices(y[n0], m_g))
        else:
            out = plan.buffer("outputs", (plan.num_output,) + plan.out_shape
                              + (n1 - n0,))
            xp.matmul(w_mat, cols, out=plan.group_matrices(out, m_g))
            y[n0:n1] = xp.moveaxis(out, -1, 0)
    if b is not None:
        y += b.reshape((-1,) + (1,) * len(plan.out_shape))
    return y


def _check_out(out, shape, dtype):
    if (tuple(out.shape) != shape or out.dtype != dtype
            or not out.flags.c_contiguous):
        raise ValueError(
            f"conv_forward: out must be a C-contiguous {dtype} array of "
            f"shape {shape}, received {out.dtype} {tuple(out.shape)}"
            + ("" if out.flags.c_contiguous else " (not contiguous)"))


def conv_backward_data(dy, w, x_shape, stride=1, pad=0, dilation=1, group=1):
    """Gradient of the convolution with respect to its input.

    Args:
        dy: (N, M, *out) gradient of the output.
        w: (M, C/group, *kernel) filters.
        x_shape: (N, C, *spatial) shape of the input.
        stride, pad, dilation, group: as for :func:`conv_forward`.

    Returns:
        A new array of shape ``x_shape`` (the caller assigns or adds it).
    """
    xp = array_module(dy, w)
    plan = _Plan(xp, xp.result_type(dy, w), tuple(x_shape), w.shape, stride,
                 pad, dilation, group)
    _check_dy(plan, dy, x_shape, "conv_backward_data")
    dx = xp.empty(tuple(x_shape), dtype=plan.dtype)
    if plan.rows_plan_fits():
        _backward_data_rows(plan, dy, w, dx)
    else:
        _backward_data_col2im(plan, dy, w, dx)
    return dx


def _check_dy(plan, dy, x_shape, caller):
    expected = (plan.batch, plan.num_output) + plan.out_shape
    if tuple(dy.shape) != expected:
        raise ValueError(
            f"{caller}: dy has shape {tuple(dy.shape)}, the convolution of "
            f"an input {tuple(x_shape)} gives {expected}")


def _backward_data_col2im(plan, dy, w, dx):
    """dx = col2im(wᵀ · dy), chunk by chunk."""
    xp = plan.xp
    w_mat_t = plan.group_matrices(w, plan.num_output // plan.group)
    w_mat_t = w_mat_t.transpose(0, 2, 1)
    for n0, n1 in plan.chunks():
        b = n1 - n0
        dy_mat = plan.outputs_batch_last(dy[n0:n1])
        if plan.pointwise and b == 1:
            xp.matmul(w_mat_t, dy_mat,
                      out=plan.group_matrices(dx[n0], plan.col_rows))
            continue
        cols = plan.buffer("columns", (plan.channels,) + plan.kernel
                           + plan.out_shape + (b,))
        xp.matmul(w_mat_t, dy_mat,
                  out=plan.group_matrices(cols, plan.col_rows))
        if plan.pointwise:
            image = cols.reshape((plan.channels,) + plan.spatial + (b,))
        else:
            image = plan.image_buffer(b)
            image[...] = 0
            fold_into(image, cols, 1, plan.kernel, plan.stride,
                      plan.dilation)
        plan.store_image(image, dx[n0:n1])


def _backward_data_rows(plan, dy, w, dx):
    """dx by unfolding dy along the last spatial axis only, then folding
    whole padded rows over the other axes.

    With k, d the last axis' kernel and dilation (its stride is 1), P its
    padded width, and o_l, i_l the output position and kernel offset along
    the other axes, per group:

        E[(m, j), (o_l, o + j·d, b)] = dy[b, m, o_l, o]      (0 elsewhere)
        R[(c, i_l), (o_l, p, b)] = Σ_{m, j} w[m, c, i_l, j] · E[(m, j), …]
        dx_pad[b, c, o_l·stride + i_l·dilation, p] = Σ_{i_l} R[(c, i_l), …]
    """
    xp = plan.xp
    k_last, d_last = plan.kernel[-1], plan.dilation[-1]
    width, out_last = plan.padded_shape[-1], plan.out_shape[-1]
    m_g = plan.num_output // plan.group
    c_g = plan.channels // plan.group
    k_lead = plan.kernel[:-1]
    rows_per_group = c_g * math.prod(k_lead)
    # w_rows[g, (c, i_l), (m, j)] = w[g·M/group + m, c, i_l, j]
    w_rows = w.reshape(plan.group, m_g, c_g, math.prod(k_lead), k_last)
    w_rows = xp.ascontiguousarray(w_rows.transpose(0, 2, 3, 1, 4))
    w_rows = w_rows.reshape(plan.group, rows_per_group, m_g * k_last)
    lead_out = plan.out_shape[:-1]
    for n0, n1 in plan.chunks():
        b = n1 - n0
        unfolded = plan.buffer(
            "dy_unfolded", (plan.num_output, k_last) + lead_out + (width, b),
            zeros=True)
        dy_chunk = xp.moveaxis(dy[n0:n1], 0, -1)
        for j in range(k_last):
            start = j * d_last
            unfolded[:, j, ..., start:start + out_last, :] = dy_chunk
        rows = plan.buffer("rows", (plan.channels,) + k_lead + (1,)
                           + lead_out + (width, b))
        xp.matmul(w_rows, plan.group_matrices(unfolded, m_g * k_last),
                  out=plan.group_matrices(rows, rows_per_group))
        image = plan.image_buffer(b)
        image[...] = 0
        fold_into(image, rows, 1, k_lead + (1,), plan.stride[:-1] + (1,),
                  plan.dilation[:-1] + (1,))
        plan.store_image(image, dx[n0:n1])


def conv_backward_weights(dy, x, dw, stride=1, pad=0, dilation=1, group=1):
    """Accumulate the filter gradient: ``dw += ∂L/∂w``.

    Args:
        dy: (N, M, *out) gradient of the output.
        x: (N, C, *spatial) input of the forward pass.
        dw: (M, C/group, *kernel) filter gradient, updated in place (Caffe's
            parameter diffs accumulate).
        stride, pad, dilation, group: as for :func:`conv_forward`.
    """
    xp = array_module(dy, x)
    plan = _Plan(xp, xp.result_type(dy, x), x.shape, dw.shape, stride, pad,
                 dilation, group)
    _check_dy(plan, dy, x.shape, "conv_backward_weights")
    # dwᵀ per group: (group, C/group·Πk, M/group).
    shape = (group, plan.col_rows, plan.num_output // group)
    total = xp.zeros(shape, dtype=plan.dtype)
    partial = xp.empty(shape, dtype=plan.dtype)
    for n0, n1 in plan.chunks():
        cols = plan.columns(x[n0:n1])
        dy_mat = plan.outputs_batch_last(dy[n0:n1])
        xp.matmul(cols, dy_mat.transpose(0, 2, 1), out=partial)
        total += partial
    dw += total.transpose(0, 2, 1).reshape(dw.shape)


def conv_bias_backward(dy, db):
    """Accumulate the bias gradient: ``db[m] += Σ_{n, o…} dy[n, m, o…]``.

    Args:
        dy: (N, M, *out) gradient of the output.
        db: (M,) bias gradient, updated in place.
    """
    db += dy.reshape(dy.shape[0], dy.shape[1], -1).sum(axis=2).sum(axis=0)
