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

How it is computed (each choice measured with benchmarks/conv.py and
open_nsfw's layers on 2 AVX-512 cores with OpenBLAS; times below are
forward + backward-data + backward-weights in ms, float32):

* im2col + GEMM, the batch in chunks of B images: as many as fit their
  columns in ``_CHUNK_COLUMN_ELEMENTS`` (8 MiB of float32), at least one
  (LeNet: B = 64; AlexNet conv2: B = 1). A chunk is held in one of two
  layouts:

  - batch-first, (B, C, *spatial), the caller's own layout. Columns
    (B, C, *kernel, *out) take one strided copy per kernel offset for the
    whole chunk, and ONE batched ``matmul`` does every image and group,
    (group, M/g, K/g) @ (B, group, K/g, P) -> (B, group, M/g, P) with
    K = C·Πk and P = Πout, writing straight into the (N, M, *out) result:
    nothing is transposed. But each image is its own GEMM, P columns wide,
    and the copies run over rows of out[-1] elements.
  - batch-last, (C, *spatial, B). The chunk is transposed in (and the
    result back out, a cache-hostile copy), but the copies run over
    out[-1]·B elements and each group is ONE GEMM, P·B columns wide.

  The rule: **batch-first when an image has P >= 256 output positions, or
  P >= 16 with a 1×1 kernel** (nothing to unfold: batch-last would only add
  its two transposes); batch-last otherwise. A one-image chunk is the same
  array either way and is batch-first. Batch-first / batch-last, N = 8 for
  open_nsfw (ResNet-50 1by2):

      LeNet conv1   1→20, 24×24 out (P = 576), N = 64     2.7 / 13.5
      ResNet 3×3    32→32 on 56×56 (P = 3136)            17.3 / 22.7
      ResNet 3×3    64→64 on 28×28 (P = 784)             11.4 / 11.7
      ResNet 3×3    128→128 on 14×14 (P = 196)           11.5 /  9.3
      ResNet 3×3    256→256 on 7×7 (P = 49)              13.7 /  8.2
      LeNet conv2   20→50, 8×8 out (P = 64), N = 64      12.8 /  6.7
      ResNet 1×1    64→128 on 56×56 (P = 3136)            7.0 / 19.1
      ResNet 1×1    128→512 on 14×14 (P = 196)            3.2 /  5.1
      ResNet 1×1    on 7×7 outputs (P = 49), its 7 layers 30.3 / 30.0
      1×1 maps (P = 1: a fully connected layer as a convolution): batch-last,
      one GEMM over the batch instead of N matrix-vector products.

* Forward: the chunk's columns (1×1 kernels with stride 1 and no padding use
  the image itself), one ``matmul`` as above; the bias is added while the
  batch-last result is copied out.
* Backward-weights: the chunk's columns again, then per group and image
  (batch-first) or chunk (batch-last) dw += dy · columnsᵀ, summed into one
  (group, M/g, K/g) array, or dwᵀ += columns · dyᵀ when a group has at most
  ``_DW_TRANSPOSED_MAX_OUTPUTS`` (64) outputs: OpenBLAS is 20–35 % faster
  with the small dimension last (LeNet conv2, ResNet's 32- and 64-channel
  layers); with more outputs the transposed add at the end would cost more
  than that (ResNet's 256→256 3×3 on 7×7 maps, batch 1: 3.1 → 0.6 ms). The
  forward's columns are not kept for this pass: that needs N·C·Πk·Πout
  elements (112 MB for AlexNet conv2 at N = 16), and was measured slower
  overall — writing them there instead of into one reused, cache-resident
  chunk buffer cost the forward 8 ms, more than the 6 ms it saved here.
* Backward-data, two plans, in either layout. "col2im": columns = wᵀ · dy
  (the batched ``matmul``), folded back with one strided add per kernel
  offset. "rows": dy is unfolded along the last spatial axis only, onto the
  padded width; one GEMM per group (and image, batch-first) with reordered
  filters yields whole padded rows for every (c, leading kernel offset);
  only the leading kernel axes are folded, Πk[:-1] adds of whole rows
  instead of Πk adds of out[-1]-long runs. It spends padded width / out[-1]
  times the GEMM flops and reorders the filters, but moves less data. Used
  when the last axis has stride 1, padded width ≤ ``_ROWS_MAX_WASTE`` (1.5)
  × out[-1], M ≤ C·Πk[:-1] (dy unfolded is not more data than col2im's
  columns), and the batch has at least 8 output positions per filter,
  N·Πout ≥ 8·M (the filter reorder is small next to the GEMMs). Backward-data
  ms, rows / col2im: ResNet's 3×3 layers (pad 1) at batch 8 on 56×56 maps
  4.3 / 9.0, on 14×14 3.1 / 3.2, on 7×7 (N·Πout = 392 < 8·256) 3.6 / 2.5;
  at batch 1 on 14×14 (196 < 8·128) 0.69 / 0.56; LeNet conv2 2.3 / 2.6;
  AlexNet conv2 42 / 46.

Workspace, for the duration of one call: the buffers of one chunk — its
columns (at most 8 MiB of float32 unless one image needs more), its padded
image and, batch-last, its transposed input and output (or dy and dx);
"rows" adds dy unfolded, M·k[-1] × (padded positions) per image. The filter
gradient takes two (M × C/group·Πk) arrays.
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
        self.dw_transposed = (self.num_output // group
                              <= _DW_TRANSPOSED_MAX_OUTPUTS)
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

    def columns(self, x_chunk):
        """im2col of ``x_chunk`` (b, C, *spatial) as a layout array of
        C × (*kernel, *out) per image."""
        image = self.padded_image(x_chunk)
        if self.pointwise:
            return image
        cols = self.buffer("columns", self.shape(
            x_chunk.shape[0], self.channels, self.kernel + self.out_shape))
        unfold_into(cols, image, self.lead, self.kernel, self.stride,
                    self.dilation)
        return cols

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
    w_mat = w.reshape(group, m_g, plan.col_rows)
    shape = (plan.batch, plan.num_output) + plan.out_shape
    if out is None:
        y = xp.empty(shape, dtype=plan.dtype)
    else:
        _check_out(out, shape, plan.dtype)
        y = out
    for n0, n1 in plan.chunks():
        cols = plan.columns(x[n0:n1])
        result = plan.target(y[n0:n1], "outputs")
        xp.matmul(w_mat, plan.matrices(cols, plan.col_rows),
                  out=plan.matrices(result, m_g))
        plan.copy_out(result, y[n0:n1], bias=b)
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


def _fold_and_store(plan, cols, dx_chunk, kernel, stride, dilation):
    """Sum ``cols`` (a layout array of C × (*kernel, *positions)) onto a
    zeroed padded image, and store its interior into ``dx_chunk``."""
    image = plan.target(dx_chunk, "image", plan.padded_shape)
    image[...] = 0
    fold_into(image, cols, plan.lead, kernel, stride, dilation)
    plan.copy_out(image, dx_chunk, plan.interior)


def _backward_data_col2im(plan, dy, w, dx):
    """dx = col2im(wᵀ · dy), chunk by chunk."""
    xp = plan.xp
    m_g = plan.num_output // plan.group
    w_mat_t = w.reshape(plan.group, m_g, plan.col_rows).transpose(0, 2, 1)
    for n0, n1 in plan.chunks():
        dy_mat = plan.matrices(plan.copy_in(dy[n0:n1], "outputs"), m_g)
        if plan.pointwise:
            result = plan.target(dx[n0:n1], "image")
            xp.matmul(w_mat_t, dy_mat,
                      out=plan.matrices(result, plan.col_rows))
            plan.copy_out(result, dx[n0:n1])
            continue
        cols = plan.buffer("columns", plan.shape(
            n1 - n0, plan.channels, plan.kernel + plan.out_shape))
        xp.matmul(w_mat_t, dy_mat, out=plan.matrices(cols, plan.col_rows))
        _fold_and_store(plan, cols, dx[n0:n1], plan.kernel, plan.stride,
                        plan.dilation)


def _backward_data_rows(plan, dy, w, dx):
    """dx by unfolding dy along the last spatial axis only, then folding
    whole padded rows over the other axes.

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
            "dy_unfolded",
            plan.shape(b, plan.num_output, (k_last,) + lead_out + (width,)),
            zeros=True)
        dy_chunk = plan.copy_in(dy[n0:n1], "outputs")
        for j in range(k_last):
            start = j * d_last
            unfolded[plan.at(slice(None), j, Ellipsis,
                             slice(start, start + out_last))] = dy_chunk
        rows = plan.buffer("rows", plan.shape(
            b, plan.channels, k_lead + (1,) + lead_out + (width,)))
        xp.matmul(w_rows, plan.matrices(unfolded, m_g * k_last),
                  out=plan.matrices(rows, rows_per_group))
        _fold_and_store(plan, rows, dx[n0:n1], k_lead + (1,),
                        plan.stride[:-1] + (1,), plan.dilation[:-1] + (1,))


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
    m_g = plan.num_output // group
    total = partial = None
    for n0, n1 in plan.chunks():
        cols = plan.matrices(plan.columns(x[n0:n1]), plan.col_rows)
        dy_mat = plan.matrices(plan.copy_in(dy[n0:n1], "outputs"), m_g)
        # Batch-first: one GEMM per image; batch-last: one for the chunk.
        pairs = zip(cols, dy_mat) if plan.batch_first else [(cols, dy_mat)]
        for c, d in pairs:
            # Per group: dwᵀ = columns · dyᵀ, or dw = dy · columnsᵀ.
            left, right = (c, d) if plan.dw_transposed else (d, c)
            if total is None:
                total = xp.matmul(left, right.swapaxes(-1, -2))
            else:
                partial = xp.matmul(left, right.swapaxes(-1, -2),
                                    out=partial)
                total += partial
    if plan.dw_transposed:
        total = total.transpose(0, 2, 1)
    dw += total.reshape(dw.shape)


def conv_bias_backward(dy, db):
    """Accumulate the bias gradient: ``db[m] += Σ_{n, o…} dy[n, m, o…]``.

    Args:
        dy: (N, M, *out) gradient of the output.
        db: (M,) bias gradient, updated in place.
    """
    db += dy.reshape(dy.shape[0], dy.shape[1], -1).sum(axis=2).sum(axis=0)
