"""Convolution backward: backward-data, backward-weights (accumulated),
both in one pass, and the bias gradient; the forward and the plans they
share are in :mod:`kaffe.ops.conv` (which also exports these functions).

Backward-data is col2im of wᵀ·dy ("col2im" plan) or, with stride 1 along
the last axis and little waste, dy unfolded along that axis only and whole
padded rows folded ("rows" plan); Winograd F(4,3) for 3×3 stride-1 float32
layers, kaffe.ops.depthwise's per-tap loops for small depthwise ones and
kaffe.ops.rowconv's row-unfolded path where its rule says. The filter
gradient is columns·dyᵀ or dy·columnsᵀ per group (``dw_transposed``),
from the forward's saved columns when a SavedColumns kept them. See
docs/conv-performance.md for the timings behind each choice.
"""
import math

from ..backend import array_module
from kaffe.ops.arrays import out_array
from kaffe.ops.conv import _plan
from kaffe.ops.depthwise import depthwise_backward
from kaffe.ops.im2col import fold_into
from kaffe.ops.rowconv import (add_weight_rows, rowconv_backward_data,
                               rowconv_backward_weights)
from kaffe.ops.winograd import winograd_backward_data
from kaffe.threads import blas_for, parallel_for

__all__ = ["conv_backward_data", "conv_backward_weights", "conv_backward",
           "conv_bias_backward"]

# Batch-first, the filter gradient's per-image products are made by one
# batched matmul when the chunk's take at most this many elements (1 MiB of
# float32), else image by image.
_DW_BATCHED_MAX_ELEMENTS = 1 << 18
# Depthwise convolutions (one channel per group) take kaffe.ops.depthwise's
# blocked forward always (kaffe.ops.conv) (MobileNet's 3×3 layers, one thread, CPU time:
# 1.8-9× faster than the batched GEMM below per layer, 2.1-2.6× over all
# of them at batch 8 and 1; docs/performance.md), and its per-tap loops
# for backward when dy has at most this many elements; else the batched
# GEMM is faster (CPU ms, backward depthwise / generic: MobileNet's
# 32-channel 112×112 layer 7.0 / 9.2, 384 channels on 14×14 at batch 8
# 10.9 / 17.6, but 192 channels on 28×28 at batch 8 22 / 13).
_DEPTHWISE_BACKWARD_MAX_ELEMENTS = 1 << 19


def conv_backward_data(dy, w, x_shape, stride=1, pad=0, dilation=1, group=1,
                       out=None, winograd=None):
    """Gradient of the convolution with respect to its input.

    Args:
        dy: (N, M, *out) gradient of the output.
        w: (M, C/group, *kernel) filters.
        x_shape: (N, C, *spatial) shape of the input.
        stride, pad, dilation, group: as for :func:`conv_forward`.
        out: optional C-contiguous array of shape ``x_shape`` and the
            result's dtype to write into (e.g. the bottom blob's diff). It
            must not overlap ``dy``.
        winograd: optional :class:`WinogradFilters` for the flipped
            filters' transform (another instance than the forward's).

    Returns:
        The gradient, ``out`` if given, else a new array of shape
        ``x_shape`` (the caller assigns or adds it).
    """
    xp = array_module(dy, w)
    plan = _plan(xp, xp.result_type(dy, w), tuple(x_shape), w.shape, stride,
                 pad, dilation, group)
    _check_dy(plan, dy, x_shape, "conv_backward_data")
    dx = _dx_array(plan, out, "conv_backward_data")
    _backward(plan, dy, w=w, dx=dx, winograd=winograd)
    return dx


def conv_backward_weights(dy, x, dw, stride=1, pad=0, dilation=1, group=1,
                          saved=None):
    """Accumulate the filter gradient: ``dw += ∂L/∂w``.

    Args:
        dy: (N, M, *out) gradient of the output.
        x: (N, C, *spatial) input of the forward pass.
        dw: (M, C/group, *kernel) filter gradient, updated in place (Caffe's
            parameter diffs accumulate).
        stride, pad, dilation, group: as for :func:`conv_forward`.
        saved: optional :class:`SavedColumns` the forward filled: its
            columns are used instead of unfolding ``x`` again if they were
            made with this geometry from an input bit-identical to ``x``.
    """
    xp = array_module(dy, x)
    plan = _plan(xp, xp.result_type(dy, x), x.shape, dw.shape, stride, pad,
                 dilation, group)
    _check_dy(plan, dy, x.shape, "conv_backward_weights")
    _backward(plan, dy, x=x, dw=dw, saved=saved)


def conv_backward(dy, x, w, dw=None, need_dx=True, stride=1, pad=0,
                  dilation=1, group=1, saved=None, out=None, winograd=None):
    """:func:`conv_backward_weights` and :func:`conv_backward_data` in one
    pass over the batch: batch-last, dy is transposed once for both.

    Args:
        dy, x, w: the output's gradient, the forward's input and filters.
        dw: the filter gradient to accumulate into, or None to skip it.
        need_dx: whether to compute the input's gradient.
        stride, pad, dilation, group, saved: as for the two functions.
        out, winograd: as for :func:`conv_backward_data`.

    Returns:
        The input's gradient (``out`` if given), or None if not need_dx.
    """
    xp = array_module(dy, x, w)
    plan = _plan(xp, xp.result_type(dy, x, w), x.shape, w.shape, stride,
                 pad, dilation, group)
    _check_dy(plan, dy, x.shape, "conv_backward")
    if dw is not None and tuple(dw.shape) != tuple(w.shape):
        raise ValueError(f"conv_backward: dw has shape {tuple(dw.shape)}, "
                         f"the filters {tuple(w.shape)}")
    dx = _dx_array(plan, out, "conv_backward") if need_dx else None
    _backward(plan, dy, w=w, x=x, dw=dw, dx=dx, saved=saved,
              winograd=winograd)
    return dx


def _check_dy(plan, dy, x_shape, caller):
    expected = (plan.batch, plan.num_output) + plan.out_shape
    if tuple(dy.shape) != expected:
        raise ValueError(
            f"{caller}: dy has shape {tuple(dy.shape)}, the convolution of "
            f"an input {tuple(x_shape)} gives {expected}")


def _dx_array(plan, out, caller):
    return out_array(plan.xp, out, (plan.batch, plan.channels)
                     + plan.spatial, plan.dtype, caller)


def _backward(plan, dy, w=None, x=None, dw=None, dx=None, saved=None,
              winograd=None):
    """dw += the filter gradient (from ``x``, or the columns ``saved``
    holds for it) if dw is given; dx = the input's gradient (from ``w``) if
    dx is given; chunk by chunk, each chunk of dy laid out once
    (depthwise and Winograd backward-data on their own paths)."""
    if plan.depthwise and dy.size <= _DEPTHWISE_BACKWARD_MAX_ELEMENTS:
        if x is None:   # backward-data alone: only x's shape is read
            x = plan.xp.broadcast_to(plan.xp.zeros((), dtype=plan.dtype),
                                     dx.shape)
        grad_x, grad_w = depthwise_backward(   # (w's shape, if no w: dw's)
            dy, x, dw if w is None else w, plan.stride, plan.pad, plan.dilation,
            need_dx=dx is not None, need_dw=dw is not None)
        if dx is not None:
            dx[...] = grad_x
        if dw is not None:
            dw += grad_w
        return
    if dx is not None and plan.winograd(True):
        winograd_backward_data(dy, w, dx.shape, plan.pad, out=dx,
                               filters=winograd, parallel=parallel_for,
                               blas=blas_for)
        dx = None
        if dw is None:
            return
    plan.set_blas_threads()
    if dx is not None and plan.rowconv("backward_data"):
        rowconv_backward_data(dy, w, dx.shape, plan.pad, plan.dilation,
                              plan.group, out=dx)
        dx = None
    if dw is not None and plan.rowconv("backward_weights"):
        add_weight_rows(dw, rowconv_backward_weights(
            dy, x, dw.shape, plan.stride, plan.pad, plan.dilation,
            plan.group))
        dw = None
    if dx is None and dw is None:
        return
    if dx is not None:
        if plan.rows_plan_fits():
            data_chunk, filters = _data_rows_chunk, _rows_filters(plan, w)
        else:
            m_g = plan.num_output // plan.group
            data_chunk = _data_col2im_chunk
            filters = w.reshape(plan.group, m_g,
                                plan.col_rows).transpose(0, 2, 1)
    kept = None
    if dw is not None and saved is not None:
        kept = saved.lookup(plan, x)
    total = None
    for index, (n0, n1) in enumerate(plan.chunks()):
        dy_chunk = plan.copy_in(dy[n0:n1], "outputs")
        if dw is not None:
            cols = (kept[index] if kept is not None
                    else plan.columns(x[n0:n1]))
            total = _add_filter_gradient(plan, cols, dy_chunk, total)
        if dx is not None:
            data_chunk(plan, dy_chunk, filters, dx[n0:n1])
    if dw is not None:
        if plan.dw_transposed:
            total = total.transpose(0, 2, 1)
        dw += total.reshape(dw.shape)
    plan.release()


def _add_filter_gradient(plan, cols, dy_chunk, total):
    """``total`` (None at first) plus one chunk's filter gradient, per
    group: dwᵀ = columns · dyᵀ, or dw = dy · columnsᵀ (as dw_transposed
    says). Batch-first one GEMM per image, their products added one after
    the other: by one batched matmul when the chunk's products are small
    (LeNet conv1: 64 images' 20 × 25 products, 1.2 → 0.5 ms), else image by
    image into one reused array (ResNet's 512→1024 1×1: 2 MB each);
    batch-last one GEMM for the chunk."""
    xp = plan.xp
    cols = plan.matrices(cols, plan.col_rows)
    dy_mat = plan.matrices(dy_chunk, plan.num_output // plan.group)
    left, right = (cols, dy_mat) if plan.dw_transposed else (dy_mat, cols)
    right = right.swapaxes(-1, -2)
    if not plan.batch_first:
        if total is None:
            return xp.matmul(left, right)
        total += xp.matmul(left, right)
        return total
    if len(left) * plan.num_output * plan.col_rows <= \
            _DW_BATCHED_MAX_ELEMENTS:
        products = xp.matmul(left, right)
        if total is not None:
            products[0] += total
        return products[0] if len(products) == 1 else products.sum(axis=0)
    partial = None
    for image_left, image_right in zip(left, right):
        if total is None:
            total = xp.matmul(image_left, image_right)
        else:
            partial = xp.matmul(image_left, image_right, out=partial)
            total += partial
    return total


def _fold_and_store(plan, cols, dx_chunk, kernel, stride, dilation):
    """Sum ``cols`` (a layout array of C × (*kernel, *positions)) onto a
    zeroed padded image, and store its interior into ``dx_chunk``."""
    image = plan.target(dx_chunk, "folded", plan.padded_shape)
    image[...] = 0
    fold_into(image, cols, plan.lead, kernel, stride, dilation)
    plan.copy_out(image, dx_chunk, plan.interior)


def _data_col2im_chunk(plan, dy_chunk, w_mat_t, dx_chunk):
    """One chunk's dx = col2im(wᵀ · dy), ``w_mat_t`` the per-group
    transposed filter matrices."""
    xp = plan.xp
    dy_mat = plan.matrices(dy_chunk, plan.num_output // plan.group)
    if plan.pointwise:
        result = plan.target(dx_chunk, "folded")
        xp.matmul(w_mat_t, dy_mat, out=plan.matrices(result, plan.col_rows))
        plan.copy_out(result, dx_chunk)
        return
    cols = plan.buffer("columns", plan.columns_shape(dx_chunk.shape[0]))
    xp.matmul(w_mat_t, dy_mat, out=plan.matrices(cols, plan.col_rows))
    _fold_and_store(plan, cols, dx_chunk, plan.kernel, plan.stride,
                    plan.dilation)


def _rows_filters(plan, w):
    """The filters reordered for the "rows" plan: w_rows[g, (c, i_l),
    (m, j)] = w[g·M/group + m, c, i_l, j]."""
    m_g = plan.num_output // plan.group
    c_g = plan.channels // plan.group
    k_lead = math.prod(plan.kernel[:-1])
    w_rows = w.reshape(plan.group, m_g, c_g, k_lead, plan.kernel[-1])
    w_rows = plan.xp.ascontiguousarray(w_rows.transpose(0, 2, 3, 1, 4))
    return w_rows.reshape(plan.group, c_g * k_lead, m_g * plan.kernel[-1])


def _data_rows_chunk(plan, dy_chunk, w_rows, dx_chunk):
    """One chunk's dx by unfolding dy along the last spatial axis only,
    then folding whole padded rows over the other axes.

    With k, d the last axis' kernel and dilation (its stride is 1), P its
    padded width, and o_l, i_l the output position and kernel offset along
    the other axes, per image and group:

        E[(m, j), (o_l, o + j·d)] = dy[m, o_l, o]      (0 elsewhere)
        R[(c, i_l), (o_l, p)] = Σ_{m, j} w[m, c, i_l, j] · E[(m, j), …]
        dx_pad[c, o_l·stride + i_l·dilation, p] = Σ_{i_l} R[(c, i_l), …]
    """
    xp = plan.xp
    k_last, d_last = plan.kernel[-1], plan.dilation[-1]
    width, out_last = plan.padded_shape[-1], plan.out_shape[-1]
    k_lead = plan.kernel[:-1]
    lead_out = plan.out_shape[:-1]
    b = dx_chunk.shape[0]
    spans = [slice(j * d_last, j * d_last + out_last) for j in range(k_last)]

    def zero_around_copies(unfolded):
        # E's zeros, once a call: the cells left and right of dy's copies.
        for j, span in enumerate(spans):
            for zeros in (slice(0, span.start), slice(span.stop, width)):
                if zeros.start < zeros.stop:
                    unfolded[plan.at(slice(None), j, Ellipsis, zeros)] = 0

    unfolded = plan.buffer(
        "dy_unfolded",
        plan.shape(b, plan.num_output, (k_last,) + lead_out + (width,)),
        prepare=zero_around_copies)
    for j, span in enumerate(spans):
        unfolded[plan.at(slice(None), j, Ellipsis, span)] = dy_chunk
    rows = plan.buffer("rows", plan.shape(
        b, plan.channels, k_lead + (1,) + lead_out + (width,)))
    xp.matmul(w_rows, plan.matrices(unfolded, plan.num_output
                                    // plan.group * k_last),
              out=plan.matrices(rows, w_rows.shape[1]))
    _fold_and_store(plan, rows, dx_chunk, k_lead + (1,),
                    plan.stride[:-1] + (1,), plan.dilation[:-1] + (1,))


def conv_bias_backward(dy, db):
    """Accumulate the bias gradient: ``db[m] += Σ_{n, o…} dy[n, m, o…]``.

    Args:
        dy: (N, M, *out) gradient of the output.
        db: (M,) bias gradient, updated in place.
    """
    db += dy.reshape(dy.shape[0], dy.shape[1], -1).sum(axis=2).sum(axis=0)
