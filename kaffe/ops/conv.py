"""Convolution: forward, backward-data, backward-weights and bias backward,
for any number of spatial axes (the backward half in
:mod:`kaffe.ops.conv_backward`, exported here too).

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

How it is computed — im2col + GEMM over chunks of the batch, in a
batch-first or batch-last layout chosen per call, the forward's columns
kept for backward-weights when they are small, and two backward-data plans
("col2im" and "rows"); Winograd, depthwise and row-unfolded
(:mod:`kaffe.ops.rowconv`) paths where their rules say — and the timings
behind each choice are written up in docs/conv-performance.md.

Workspace, for the duration of one call: the buffers of one chunk — its
columns (at most 8 MiB of float32 unless one image needs more), its padded
image and, batch-last, its transposed input and output (or dy and dx);
"rows" adds dy unfolded, M·k[-1] × (padded positions) per image. The filter
gradient takes two (M × C/group·Πk) arrays, or batch-first one per image
of a chunk when they take at most 1 MiB. Between a forward and its
backward, a SavedColumns holds at most its budget.
"""
import collections
import math
import numbers
import threading

import numpy as np

from ..backend import array_module
from ..memory import check_bytes
from kaffe.ops.arrays import out_array
from kaffe.ops.depthwise import depthwise_forward
from kaffe.ops.ufunc_buffer import rows_unbuffered
from kaffe.ops.im2col import (conv_output_size, per_axis, unfold_into,
                              window_geometry)
from kaffe.ops.rowconv import rowconv_applies, rowconv_forward
from kaffe.ops.winograd import (WinogradFilters, winograd_applies,
                                winograd_forward)
from kaffe.threads import blas_for, parallel_for

__all__ = ["conv_output_size", "conv_forward", "conv_backward_data",
           "conv_backward_weights", "conv_backward", "conv_bias_backward",
           "SavedColumns", "KEEP_COLUMNS_MAX_BYTES", "WinogradFilters"]

# A chunk holds as many images as fit their columns in this many elements
# (8 MiB of float32), at least one.
_CHUNK_COLUMN_ELEMENTS = 1 << 21
# Batch-first (one GEMM per image), a chunk's columns take at most this many
# elements, at least one image: they are then still in the L2 cache for the
# GEMMs (CIFAR-10's conv1 in its training step: forward 14.4 → 9.3 ms).
_CHUNK_COLUMN_ELEMENTS_BF = 1 << 18
# Batch-first when an image has at least this many output positions (or, for
# 1×1 kernels, at least _BATCH_FIRST_MIN_POSITIONS_1X1).
_BATCH_FIRST_MIN_POSITIONS = 256
_BATCH_FIRST_MIN_POSITIONS_1X1 = 16
# The filter gradient is computed transposed, columns · dyᵀ, when a group
# has at most this many outputs.
_DW_TRANSPOSED_MAX_OUTPUTS = 64
# The "rows" plan needs (padded width) / out[-1] at most this, and at least
# this many output positions in the batch per filter (N·Πout / M).
_ROWS_MAX_WASTE = 1.5
_ROWS_MIN_POSITIONS_PER_FILTER = 8
# Plans (geometry, layout, chunking) are cached per thread for this many
# distinct calls, with their scratch buffers up to _KEEP_BUFFER_BYTES each:
# a small net's layers then allocate nothing and recompute nothing per call
# (MTCNN P-Net's forward: 0.29 → 0.275 ms of CPU time), while a large
# net's 8 MiB column buffers are freed after each call as before.
_PLAN_CACHE_SIZE = 64
_KEEP_BUFFER_BYTES = 1 << 20
# Bands of a workspace-bound forward span at least this many output
# positions (narrower GEMMs cost more than the memory saved).
_BAND_MIN_POSITIONS = 64
# SavedColumns keeps a forward's columns (and its input) only up to this
# many bytes.
KEEP_COLUMNS_MAX_BYTES = 16 << 20


_plans = threading.local()


def _key_part(value):
    if isinstance(value, numbers.Integral):
        return int(value)
    return tuple(int(v) for v in value)


def _plan(xp, dtype, x_shape, w_shape, stride, pad, dilation, group):
    """The :class:`_Plan` of these arguments, from this thread's cache."""
    # The tunables are part of the key, so that a change to them (a test's
    # monkeypatch) is never served a plan made under the old values.
    key = (xp.__name__, dtype, tuple(x_shape), tuple(w_shape), stride,
           pad, dilation, group, _CHUNK_COLUMN_ELEMENTS,
           _CHUNK_COLUMN_ELEMENTS_BF,
           _BATCH_FIRST_MIN_POSITIONS, _BATCH_FIRST_MIN_POSITIONS_1X1,
           _DW_TRANSPOSED_MAX_OUTPUTS, depthwise_applies, winograd_applies,
           rowconv_applies,
           _Plan.__init__)
    cache = getattr(_plans, "cache", None)
    if cache is None:
        cache = _plans.cache = collections.OrderedDict()
    try:
        plan = cache.get(key)
    except TypeError:   # a list among the arguments: make it hashable
        key = key[:4] + (_key_part(stride), _key_part(pad),
                         _key_part(dilation), int(group)) + key[8:]
        plan = cache.get(key)
    if plan is not None:
        cache.move_to_end(key)
        return plan
    plan = _Plan(xp, dtype, x_shape, w_shape, stride, pad, dilation, group)
    cache[key] = plan
    if len(cache) > _PLAN_CACHE_SIZE:
        cache.popitem(last=False)
    return plan


def depthwise_applies(x_shape, w_shape, group):
    """Whether a convolution is 2-D depthwise (one input channel and one
    output per group), for :mod:`kaffe.ops.depthwise`."""
    return (group > 1 and len(x_shape) == 4 and x_shape[1] == group
            and w_shape[0] == group and w_shape[1] == 1)


class _Plan:
    """One call's geometry, its layout and chunking of the batch, its chunk
    buffers."""

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
        self.interior = tuple(slice(p, p + s)
                              for s, p in zip(self.spatial, self.pad))
        self.pointwise = (all(k == 1 for k in self.kernel)
                          and all(s == 1 for s in self.stride)
                          and not any(self.pad))
        self.col_rows = w_shape[1] * math.prod(self.kernel)
        positions = math.prod(self.out_shape)
        self.chunk = max(1, min(self.batch, _CHUNK_COLUMN_ELEMENTS
                                // (self.col_rows * group * positions)))
        min_positions = (_BATCH_FIRST_MIN_POSITIONS_1X1
                         if math.prod(self.kernel) == 1
                         else _BATCH_FIRST_MIN_POSITIONS)
        # A one-image chunk is the same array in both layouts; batch-first
        # reads and writes it in place.
        self.batch_first = positions >= min_positions or self.chunk == 1
        if self.batch_first and not self.pointwise:
            # Batch-first GEMMs are per image anyway: chunks small enough
            # for their columns to stay in the cache (see the constant).
            self.chunk = max(1, min(self.chunk, _CHUNK_COLUMN_ELEMENTS_BF
                                    // (self.col_rows * group * positions)))
        self.dw_transposed = (self.num_output // group
                              <= _DW_TRANSPOSED_MAX_OUTPUTS)
        self.depthwise = depthwise_applies(x_shape, w_shape, group)
        self._x_shape, self._w_shape = tuple(x_shape), tuple(w_shape)
        self._winograd = {}
        self._buffers = {}

    def winograd(self, backward):
        """Whether the forward (or backward-data) takes Winograd F(4,3)."""
        if backward not in self._winograd:
            self._winograd[backward] = winograd_applies(
                self._x_shape, self._w_shape, self.stride, self.pad,
                self.dilation, self.group, self.dtype, backward=backward)
        return self._winograd[backward]

    def saved_bytes(self):
        """Bytes of the batch's columns and input, as SavedColumns keeps."""
        return (self.batch * self.channels * math.prod(self.kernel)
                * math.prod(self.out_shape) + self.batch * self.channels
                * math.prod(self.spatial)) * np.dtype(self.dtype).itemsize

    def rowconv(self, kind):
        """Whether ``kind`` takes :mod:`kaffe.ops.rowconv` (decided by
        whether the columns fit the default budget, never by whether some
        caller kept them)."""
        key = ("rowconv", kind, KEEP_COLUMNS_MAX_BYTES)
        if key not in self._winograd:
            self._winograd[key] = rowconv_applies(
                self._x_shape, self._w_shape, self.stride, self.pad,
                self.dilation, self.group, kind,
                self.saved_bytes() <= KEEP_COLUMNS_MAX_BYTES)
        return self._winograd[key]

    def set_blas_threads(self):
        """Let kaffe.threads set BLAS's thread count for one chunk's GEMM
        (2 · M · C/group·Πk · chunk positions flops)."""
        blas_for(2 * self.num_output * self.col_rows * self.chunk
                 * math.prod(self.out_shape))

    def release(self):
        """Free the large scratch buffers at the end of a call (the small
        ones stay for the next call with this plan)."""
        for key in [k for k, v in self._buffers.items()
                    if v.nbytes > _KEEP_BUFFER_BYTES]:
            del self._buffers[key]

    def chunks(self):
        """(start, stop) of each chunk of the batch."""
        return [(n0, min(n0 + self.chunk, self.batch))
                for n0 in range(0, self.batch, self.chunk)]

    def buffer(self, name, shape, zeros=False, prepare=None):
        """A scratch array, made on first use, shared by this call's chunks
        (``prepare(array)`` then runs once, e.g. to zero what the chunks
        never write)."""
        key = (name, shape)
        if key not in self._buffers:
            make = self.xp.zeros if zeros else self.xp.empty
            check_bytes(math.prod(shape) * np.dtype(self.dtype).itemsize,
                        f"a convolution scratch buffer of shape {shape}")
            self._buffers[key] = make(shape, dtype=self.dtype)
            if prepare is not None:
                prepare(self._buffers[key])
        return self._buffers[key]

    # Layout arrays hold b images of some channels × spatial shape: as
    # (b, channels, *spatial) batch-first (the caller's layout), as
    # (channels, *spatial, b) batch-last.

    @property
    def lead(self):
        """Number of axes before the spatial ones in a layout array."""
        return 2 if self.batch_first else 1

    def shape(self, b, channels, spatial):
        """Shape of a layout array."""
        if self.batch_first:
            return (b, channels) + tuple(spatial)
        return (channels,) + tuple(spatial) + (b,)

    def at(self, *index):
        """Index a layout array by channel and spatial axes (all images)."""
        if self.batch_first:
            return (slice(None),) + index
        return index + (slice(None),)

    def view(self, a):
        """A caller's (b, channels, *spatial) chunk viewed in this layout."""
        return a if self.batch_first else self.xp.moveaxis(a, 0, -1)

    def matrices(self, a, rows):
        """A contiguous layout array as per-group matrices: (b, group, rows,
        rest) batch-first, (group, rows, rest) batch-last."""
        if self.batch_first:
            return a.reshape(a.shape[0], self.group, rows, -1)
        return a.reshape(self.group, rows, -1)

    def copy_in(self, a, name):
        """A caller's chunk as a layout array: itself when batch-first,
        else a contiguous batch-last copy."""
        if self.batch_first:
            return a
        copy = self.buffer(name, self.shape(a.shape[0], a.shape[1],
                                            a.shape[2:]))
        copy[...] = self.view(a)
        return copy

    def target(self, dest, name, spatial=None):
        """Where to compute a layout array bound for the caller's chunk
        ``dest`` (of ``spatial`` shape, default dest's): ``dest`` itself when
        batch-first and the shapes agree, else a buffer."""
        spatial = dest.shape[2:] if spatial is None else tuple(spatial)
        if self.batch_first and spatial == dest.shape[2:]:
            return dest
        return self.buffer(name, self.shape(dest.shape[0], dest.shape[1],
                                            spatial))

    def copy_out(self, result, dest, window=(), bias=None):
        """dest = result[window] (+ bias per channel), ``result`` a layout
        array from :meth:`target`."""
        if bias is not None:
            bias = bias.reshape((-1,) + (1,) * (dest.ndim - 2))
        if result is dest:
            if bias is not None:
                # per-channel rows: NumPy's buffered path costs more than
                # the addition (256 × 56²: 177 → 104 µs; same sums)
                with rows_unbuffered(math.prod(dest.shape[2:])):
                    dest += bias
            return
        source = result[self.at(slice(None), *window)]
        if not self.batch_first:
            source = self.xp.moveaxis(source, -1, 0)
        if bias is None:
            dest[...] = source
        else:
            self.xp.add(source, bias, out=dest)

    def padded_image(self, x_chunk):
        """The chunk as a layout array, zero-padded (borders stay 0)."""
        if not any(self.pad):
            return self.copy_in(x_chunk, "image")
        image = self.buffer("image", self.shape(x_chunk.shape[0],
                                                self.channels,
                                                self.padded_shape),
                            zeros=True)
        image[self.at(slice(None), *self.interior)] = self.view(x_chunk)
        return image

    def bands(self, limit):
        """(r0, r1) bands of output rows (first spatial axis) whose columns
        take about ``limit`` elements (at least ``_BAND_MIN_POSITIONS``
        output positions) for a forward whose one-image chunks have more
        columns than that; None when not banded."""
        if (self.chunk != 1 or not self.batch_first or self.pointwise
                or len(self.out_shape) < 1):
            return None
        rest = math.prod(self.out_shape[1:])
        per_row = self.col_rows * self.group * rest
        if per_row * self.out_shape[0] <= limit:
            return None
        rows = max(limit // per_row, -(-_BAND_MIN_POSITIONS // rest), 1)
        if rows >= self.out_shape[0]:
            return None
        return [(r0, min(r0 + rows, self.out_shape[0]))
                for r0 in range(0, self.out_shape[0], rows)]

    def columns_shape(self, b):
        """Shape of the columns of ``b`` images (a layout array)."""
        return self.shape(b, self.channels, self.kernel + self.out_shape)

    def columns(self, x_chunk, dest=None):
        """im2col of ``x_chunk`` (b, C, *spatial) as a layout array of
        C × (*kernel, *out) per image, in ``dest`` if given (else the
        chunk buffer)."""
        image = self.padded_image(x_chunk)
        if self.pointwise:
            return image
        cols = dest if dest is not None else self.buffer(
            "columns", self.columns_shape(x_chunk.shape[0]))
        unfold_into(cols, image, self.lead, self.kernel, self.stride,
                    self.dilation)
        return cols

    def key(self):
        """What makes two calls' columns interchangeable."""
        return (self.dtype, self.batch, self.channels, self.spatial,
                self.num_output, self.kernel, self.stride, self.pad,
                self.dilation, self.group, self.batch_first, self.chunk)

    def rows_plan_fits(self):
        """Whether backward-data should use the "rows" plan: stride 1 along
        the last axis, few wasted GEMM columns (padded width / out[-1]), dy
        unfolded into M·k[-1] rows not more data than col2im's C·Πk, and
        filters few enough to be reordered at little cost."""
        if self.stride[-1] != 1 or self.pointwise:
            return False
        positions = self.batch * math.prod(self.out_shape)
        return (self.padded_shape[-1] <= _ROWS_MAX_WASTE * self.out_shape[-1]
                and self.num_output
                <= self.channels * math.prod(self.kernel[:-1])
                and positions
                >= _ROWS_MIN_POSITIONS_PER_FILTER * self.num_output)


class SavedColumns:
    """A forward's im2col columns kept for the filter gradient, within a
    memory budget: the caller (the Convolution layer, while training) owns
    one per input and passes it to :func:`conv_forward` (``save=``), then
    to :func:`conv_backward` or :func:`conv_backward_weights` (``saved=``),
    which then skip unfolding the input again.

    Kept only when the whole batch's columns and the input take at most
    ``max_bytes`` (default ``KEEP_COLUMNS_MAX_BYTES``, 16 MiB: see the
    module's notes for the measurements) and the kernel is not a
    pointwise one (whose columns are the input itself). The arrays are
    reused from one forward to the next. With them goes a copy of the
    input, so that columns are never used for an input that changed since
    (a pycaffe script writing into a blob between forward and backward):
    the gradient is then computed from the input as it is, as Caffe does.

    Attributes:
        max_bytes: the budget.
        nbytes: what is held now (columns and input copy), 0 when empty.
    """

    def __init__(self, max_bytes=None):
        self.max_bytes = (KEEP_COLUMNS_MAX_BYTES if max_bytes is None
                          else max_bytes)
        self.clear()

    def clear(self):
        """Forget the columns and free their memory."""
        self._key = None
        self._input = None
        self._columns = None

    @property
    def nbytes(self):
        if self._columns is None:
            return 0
        return self._input.nbytes + sum(c.nbytes for c in self._columns)

    def keep(self, plan, x):
        """The arrays for the forward's columns, one per chunk, or None
        (and empty) when they do not fit the budget."""
        if plan.pointwise or plan.saved_bytes() > self.max_bytes:
            self.clear()
            return None
        key = plan.key()
        if self._key != key:
            self.clear()
            self._columns = [plan.xp.empty(plan.columns_shape(n1 - n0),
                                           dtype=plan.dtype)
                             for n0, n1 in plan.chunks()]
            self._input = plan.xp.empty(x.shape, dtype=plan.dtype)
            self._key = key
        self._input[...] = x
        return self._columns

    def lookup(self, plan, x):
        """The kept columns if they are those of ``x`` under ``plan``."""
        if (self._key != plan.key() or x.dtype != self._input.dtype
                or not _same_bits(plan.xp, self._input, x)):
            return None
        return self._columns


def _same_bits(xp, a, b):
    """Whether two arrays of one float dtype hold the same bits."""
    if a.shape != b.shape:
        return False
    unsigned = xp.dtype(f"u{a.dtype.itemsize}")
    a = xp.ascontiguousarray(a)
    b = xp.ascontiguousarray(b)
    return bool(xp.array_equal(a.view(unsigned), b.view(unsigned)))


def conv_forward(x, w, b=None, stride=1, pad=0, dilation=1, group=1,
                 out=None, save=None, winograd=None, workspace=None):
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
        save: optional :class:`SavedColumns` to keep this call's columns
            (and a copy of ``x``) in, for :func:`conv_backward_weights`,
            when they fit its budget; it is emptied otherwise.
        winograd: optional :class:`WinogradFilters` keeping the filters'
            Winograd transform between calls (used when the layer takes
            that path).
        workspace: optional bound, in elements, on the im2col columns of
            one image: beyond it the image is computed by bands of output
            rows whose columns take about that much (lean inference; the
            same products, a little slower with narrower GEMMs).

    Float32 3×3 stride-1 convolutions with enough channels take Winograd
    F(4,3) (:mod:`kaffe.ops.winograd`, no columns kept), 2-D depthwise ones
    (one channel per group) :mod:`kaffe.ops.depthwise` (no columns kept;
    also for backward where that pays); the rest im2col + GEMM.

    Returns:
        The (N, M, *out) result, ``out`` if given, else a new array;
        out[a] = conv_output_size(spatial[a], kernel[a], stride[a], pad[a],
        dilation[a]).
    """
    xp = array_module(x, w)
    plan = _plan(xp, xp.result_type(x, w), x.shape, w.shape, stride, pad,
                 dilation, group)
    m_g = plan.num_output // group
    w_mat = w.reshape(group, m_g, plan.col_rows)
    shape = (plan.batch, plan.num_output) + plan.out_shape
    y = out_array(xp, out, shape, plan.dtype, "conv_forward")
    if plan.winograd(False):
        if save is not None:
            save.clear()
        return winograd_forward(x, w, b, plan.pad, out=y, filters=winograd,
                                parallel=parallel_for, blas=blas_for,
                                workspace=workspace)
    if plan.depthwise and x.dtype == w.dtype == plan.dtype:
        if save is not None:
            save.clear()
        # (One thread: its blocks handed to kaffe's tasks measured slower,
        # as for the elementwise layers; docs/performance.md.)
        return depthwise_forward(x, w, b, plan.stride, plan.pad,
                                 plan.dilation, out=y)
    plan.set_blas_threads()
    if plan.rowconv("forward"):
        if save is not None:
            save.clear()
        return rowconv_forward(x, w, b, plan.stride, plan.pad, plan.dilation,
                               group, out=y)
    kept = save.keep(plan, x) if save is not None else None
    bands = (plan.bands(workspace) if kept is None and workspace is not None
             else None)
    for index, (n0, n1) in enumerate(plan.chunks()):
        if bands:
            _forward_bands(plan, x[n0:n1], w_mat, y[n0:n1], b, bands)
            continue
        cols = plan.columns(x[n0:n1],
                            None if kept is None else kept[index])
        result = plan.target(y[n0:n1], "outputs")
        xp.matmul(w_mat, plan.matrices(cols, plan.col_rows),
                  out=plan.matrices(result, m_g))
        plan.copy_out(result, y[n0:n1], bias=b)
    plan.release()
    return y


def _forward_bands(plan, x_chunk, w_mat, y_chunk, bias, bands):
    """One image's forward by bands of output rows (first spatial axis):
    each band unfolded, then multiplied straight into its columns of the
    output; the same products as one GEMM."""
    xp = plan.xp
    image = plan.padded_image(x_chunk)
    m_g = plan.num_output // plan.group
    rest = math.prod(plan.out_shape[1:])
    y_mat = y_chunk.reshape(plan.group, m_g, -1)
    k0, s0, d0 = plan.kernel[0], plan.stride[0], plan.dilation[0]
    for r0, r1 in bands:
        cols = plan.buffer("band columns", (1, plan.channels) + plan.kernel
                           + (r1 - r0,) + plan.out_shape[1:])
        rows = image[:, :, r0 * s0:(r1 - 1) * s0 + (k0 - 1) * d0 + 1]
        unfold_into(cols, rows, 2, plan.kernel, plan.stride, plan.dilation)
        dest = y_mat[:, :, r0 * rest:r1 * rest]
        xp.matmul(w_mat, cols.reshape(plan.group, plan.col_rows, -1),
                  out=dest)
        if bias is not None:
            dest += bias.reshape(plan.group, m_g, 1)


# The backward half lives in its own module; kaffe.ops.conv exports it too.
from kaffe.ops.conv_backward import (  # noqa: E402  (needs _plan above)
    conv_backward, conv_backward_data, conv_backward_weights,
    conv_bias_backward)
