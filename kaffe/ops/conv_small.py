"""Convolution forward on small inputs with its Python work done once.

:func:`kaffe.ops.conv.conv_forward` works out its plan (layout, chunks,
buffers, im2col windows) from a cache and then runs a dozen small steps per
call; on a 12×12 input (MTCNN's P-Net) that is 15 µs of Python around 3 µs
of arithmetic. A :class:`SmallConvForward` is made once for one input
shape, filter shape and geometry (the Convolution layer keeps one while its
input shape stays) and then does only the arithmetic: zero-pad (one copy
into a buffer whose border stays 0), im2col as one or two copies of
strided window views, the GEMM, the bias.

It computes exactly what conv_forward computes: it takes the same plan
(:func:`kaffe.ops.conv._plan`: the same batch-first or batch-last layout)
and calls ``matmul`` on arrays of the same shapes, so the results are equal
to the bit (the copies are exact). It applies only where that plan is one
chunk of im2col + GEMM with a single group and its columns take at most
``MAX_COLUMN_ELEMENTS``: no Winograd, no depthwise, nothing chunked. Its
GEMM's BLAS threads are set by :func:`kaffe.threads.blas_for`, as
conv_forward sets them for the same GEMM.
"""
import math

import numpy as np

from ..threads import blas_for
from .conv import _plan

__all__ = ["SmallConvForward", "MAX_COLUMN_ELEMENTS"]

# The columns (and the GEMM) of a small input: 256 K elements, 1 MiB of
# float32 at most.
MAX_COLUMN_ELEMENTS = 1 << 18


class SmallConvForward:
    """``y = conv(x, w) + b`` for one (x shape, w shape, geometry), as
    :func:`~kaffe.ops.conv.conv_forward` computes it.

    Make it with :meth:`build` (None where it does not apply), then call
    ``forward(x, w, b, y)`` with C-contiguous NumPy arrays: x (N, C,
    *spatial) of ``x_shape``, w (M, C, *kernel), b (M,) or None, y (N, M,
    *out), which must not overlap x.
    """

    @classmethod
    def build(cls, x_shape, w_shape, dtype, stride, pad, dilation, group):
        """A SmallConvForward for these arguments, or None when
        conv_forward would not take one im2col + GEMM chunk on a small
        input (float32 and float64 NumPy arrays only)."""
        dtype = np.dtype(dtype)
        if group != 1 or dtype not in (np.float32, np.float64):
            return None
        plan = _plan(np, dtype, tuple(x_shape), tuple(w_shape), stride, pad,
                     dilation, group)
        columns = math.prod(plan.columns_shape(plan.batch))
        flops = (2 * plan.num_output * plan.col_rows * plan.batch
                 * math.prod(plan.out_shape))
        if (plan.chunk < plan.batch or columns > MAX_COLUMN_ELEMENTS
                or plan.winograd(False)):
            return None
        return cls(plan, flops)

    def __init__(self, plan, flops):
        self.x_shape = (plan.batch, plan.channels) + plan.spatial
        self.flops = flops
        self.batch_first = batch_first = plan.batch_first
        n = len(plan.spatial)
        batch = plan.batch
        m, k = plan.num_output, plan.col_rows
        # Batch-last, the input's batch axis moves to the end (and back for
        # the output).
        self.to_last = tuple(range(1, n + 2)) + (0,)
        self.to_first = (n + 1,) + tuple(range(n + 1))
        # The (padded) image the windows are read from, or None when that
        # is the input itself (batch-first, no padding).
        self.image = None
        if any(plan.pad) or not batch_first:
            self.image = np.zeros(
                plan.shape(batch, plan.channels, plan.padded_shape),
                dtype=plan.dtype)
            self.interior = plan.at(slice(None), *plan.interior)
        image_shape = plan.shape(batch, plan.channels, plan.padded_shape)
        lead = plan.lead
        self.columns = None
        if not plan.pointwise:
            self.columns = np.empty(plan.columns_shape(batch),
                                    dtype=plan.dtype)
            # The windows of every kernel offset as one strided view of
            # the image: [lead…, i…, o…, trail…] → image[lead…, o·stride
            # + i·dilation …, trail…].
            strides = _contiguous_strides(image_shape, plan.dtype.itemsize)
            spatial = strides[lead:lead + n]
            self.window_shape = self.columns.shape
            self.window_strides = (
                strides[:lead]
                + tuple(s * d for s, d in zip(spatial, plan.dilation))
                + tuple(s * t for s, t in zip(spatial, plan.stride))
                + strides[lead + n:])
            self.rows = None
            if (batch_first and n == 2 and plan.stride[0] == 1
                    and plan.out_shape[0] > 1):
                self._unfold_rows_first(plan, strides)
        # The GEMM's operands as conv_forward shapes them.
        self.w_matrices = (1, m, k)
        if batch_first:
            self.column_matrices = (batch, 1, k, -1)
            self.out_matrices = (batch, 1, m, -1)
            self.result = None
        else:
            self.column_matrices = (1, k, -1)
            self.out_matrices = (1, m, -1)
            self.result = np.empty((m,) + plan.out_shape + (batch,),
                                   dtype=plan.dtype)
        self.bias_shape = (-1,) + (1,) * n
        # Batch-first, the bias is added over (N, M, positions), or (M,
        # positions) for one image: half the broadcasting of (-1, 1, 1).
        self.out_positions = ((m, -1) if batch == 1 else (batch, m, -1))
        # The filters and bias as last reshaped, and the arrays they came
        # from (parameter views live as long as their blobs).
        self._w = self._b = None

    def _unfold_rows_first(self, plan, strides):
        """Batch-first 2-D im2col in two copies whose runs are long: first
        each row's windows along the width, rows[n, c, j, h, q] =
        image[n, c, h, q·stride_w + j·dilation_w]; then every (c, i, j)
        takes out_h consecutive rows of that, contiguous out_h·out_w
        cells: columns[n, c, i, j, p, q] = rows[n, c, j, p + i·dilation_h,
        q]. (LeNet's conv2: runs of 64 cells instead of 8, 18 → 9 µs.)"""
        (k_h, k_w), (out_h, out_w) = plan.kernel, plan.out_shape
        s_h, s_w = strides[2:4]
        self.rows = np.empty((plan.batch, plan.channels, k_w,
                              plan.padded_shape[0], out_w), plan.dtype)
        self.rows_window_shape = self.rows.shape
        self.rows_window_strides = (strides[0], strides[1],
                                    s_w * plan.dilation[1], s_h,
                                    s_w * plan.stride[1])
        r = self.rows.strides
        self.rows_windows = np.ndarray(
            self.columns.shape, plan.dtype, self.rows, 0,
            (r[0], r[1], r[3] * plan.dilation[0], r[2], r[3], r[4]))

    def _parameters(self, w, b):
        if w is not self._w or b is not self._b:
            self._w, self._b = w, b
            self._w_matrices = w.reshape(self.w_matrices)
            self._b_column = (None if b is None else b.reshape(
                (-1, 1) if self.batch_first else self.bias_shape))
        return self._w_matrices, self._b_column

    def forward(self, x, w, b, y):
        """y = the convolution of x by w, plus b (if not None)."""
        blas_for(self.flops)
        w_matrices, bias = self._parameters(w, b)
        image = self.image
        if image is None:
            image = x
        elif self.batch_first:
            image[self.interior] = x
        else:
            image[self.interior] = x.transpose(self.to_last)
        columns = self.columns
        if columns is None:
            columns = image
        elif self.rows is not None:
            self.rows[...] = np.ndarray(self.rows_window_shape, image.dtype,
                                        image, 0, self.rows_window_strides)
            columns[...] = self.rows_windows
        else:
            columns[...] = np.ndarray(self.window_shape, image.dtype,
                                      image, 0, self.window_strides)
        if self.batch_first:
            np.matmul(w_matrices, columns.reshape(self.column_matrices),
                      out=y.reshape(self.out_matrices))
            if bias is not None:
                out = y.reshape(self.out_positions)
                out += bias
            return y
        result = self.result
        np.matmul(w_matrices, columns.reshape(self.column_matrices),
                  out=result.reshape(self.out_matrices))
        if bias is None:
            y[...] = result.transpose(self.to_first)
        else:
            np.add(result.transpose(self.to_first), bias, out=y)
        return y


def _contiguous_strides(shape, itemsize):
    strides = []
    step = itemsize
    for d in reversed(shape):
        strides.append(step)
        step *= d
    return tuple(reversed(strides))
