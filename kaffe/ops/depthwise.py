"""Depthwise 2-D convolution computed directly: one k×k filter per channel.

A depthwise convolution (group = channels = filters) does k·k multiply-adds
per output value; im2col + GEMM would unfold the input k·k times to do the
same work in C tiny matrix products. Here each kernel tap is one whole-array
multiply-add of a shifted view of the zero-padded input. With
``fork_order`` the taps are taken in the order (kh, then kw) of the forks'
CPU loops, each product rounded, so every output value is summed as theirs
(ConvolutionDepthwise's ``conv_dw_layer.cpp``): the result is bit-identical
to that loop (up to the sign of a zero), bias added last. Without it small
maps take an einsum, which may fuse a multiply with its add where NumPy is
built for CPUs with FMA (as Caffe's GEMM does for Convolution).

How the forward is made fast (:func:`depthwise_forward`; the timings are in
docs/performance.md):

* Blocks. The (N·C) channel images are taken a block at a time, as many as
  keep the block's padded input, sum and product within about a megabyte,
  so that the k·k passes over them run in the core's L2 cache instead of
  main memory. Blocks are independent: ``parallel`` can run them on
  threads (Convolution does not ask it to: handed to kaffe's tasks they
  measured slower, as the elementwise layers did; docs/performance.md).
* Flat rows. A block's padded images are laid out one per row, and each
  output row keeps the padded width: output (y, x) sits at y·W_p + x, so
  the input tap (i, j) reads is at the same place shifted by i·W_p + j, and
  every tap is one contiguous slice of the row (a few wasted columns per
  image row, dropped when the result is stored). With several channels per
  row-block NumPy still sees two axes: its ufuncs then copy rows shorter
  than its buffer size through that buffer, which costs 3-4× more than the
  arithmetic; the kernel sets a small buffer size while it runs
  (:mod:`kaffe.ops.ufunc_buffer`; speed only, the same arithmetic).
* Phases. With stride s, the padded image is split into s×s phase images
  (every s-th row and column from each offset), written straight from the
  input in the same pass that pads it; tap (i, j) then reads phase
  (d·i mod s, d·j mod s) shifted by (d·i div s, d·j div s): a stride-1
  problem again, with no strided reads.
* Positions-major for small maps. When an output map has few positions
  (MobileNet's 14×14 and 7×7), rows would be too short for NumPy's loops
  to pay: the block is transposed to (positions, channels), every output
  position's k×k window becomes one strided view (no copy) and one einsum
  sums the windows against the filters, its inner loop along the
  channels (2-3.5× faster than the taps one by one there).

Shapes: x (N, C, H, W); w (C, 1, kh, kw) or (C, kh, kw); b (C,) or None;
stride, pad, dilation are (h, w) pairs.
"""
import collections
import threading

import numpy as np

from ..backend import array_module
from ..memory import check_bytes
from .ufunc_buffer import SMALL_BUFSIZE

# A block keeps its padded input, sum and product within about this many
# elements (1 MiB of float32: L2-resident on current cores).
BLOCK_ELEMENTS = 1 << 18
# Output maps with fewer positions than this are computed positions-major.
POSITIONS_MAJOR_MAX_POSITIONS = 256
# A forward with fewer outputs than this is not split further for threads
# (``min_blocks``): handing blocks to other threads costs more.
PARALLEL_MIN_OUTPUTS = 1 << 16
# Plans are cached per distinct call geometry, this many.
_PLAN_CACHE_SIZE = 64


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


def _ceil_div(a, b):
    return -(-a // b)


class _ForwardPlan:
    """The geometry of one depthwise forward: layout, phases, tap offsets,
    blocks of ``block`` rows (channel images) each.

    Rows-major, each phase image is hq × wq, one row of hq·wq per channel
    image. Output position (y, x) of the flat sum is y·wq + x; tap t adds
    phase ``tap_phase[t]`` shifted by ``tap_offset[t]``; the sum covers
    the first ``span`` flat positions ((ho − 1)·wq + wo).
    Positions-major, the block is the padded image, hp × wp rows of the
    block's channels (``padded_hw``, the input at ``interior``).
    ``sizes``: the scratch elements of (phases or padded image, sum,
    product).
    """

    def __init__(self, x_shape, kernel, stride, pad, dilation, min_blocks,
                 fork_order):
        n, c, h, w = x_shape
        kh, kw = kernel
        self.rows = n * c
        self.kernel, self.stride, self.dilation = kernel, stride, dilation
        self.out_hw = ho, wo = (
            output_size(h, kh, stride[0], pad[0], dilation[0]),
            output_size(w, kw, stride[1], pad[1], dilation[1]))
        phases = {}
        taps = []
        for i in range(kh):
            q_i, r_i = divmod(dilation[0] * i, stride[0])
            for j in range(kw):
                q_j, r_j = divmod(dilation[1] * j, stride[1])
                phase = phases.setdefault((r_i, r_j), len(phases))
                taps.append((phase, q_i, q_j))
        self.hq = hq = ho + max(t[1] for t in taps)
        self.wq = wq = wo + max(t[2] for t in taps)
        self.phases = len(phases)
        self.tap_phase = [t[0] for t in taps]
        self.tap_offset = [t[1] * wq + t[2] for t in taps]
        self.span = (ho - 1) * wq + wo
        # Where each phase image takes the input from: its rows a0:a1 and
        # columns b0:b1 are x[s·a + r − p] (the rest stays zero: padding).
        self.writes = []
        for (r_i, r_j), phase in phases.items():
            a0 = max(0, _ceil_div(pad[0] - r_i, stride[0]))
            a1 = min(hq, _ceil_div(h + pad[0] - r_i, stride[0]))
            b0 = max(0, _ceil_div(pad[1] - r_j, stride[1]))
            b1 = min(wq, _ceil_div(w + pad[1] - r_j, stride[1]))
            if a1 <= a0 or b1 <= b0:
                continue
            y0 = stride[0] * a0 + r_i - pad[0]
            x0 = stride[1] * b0 + r_j - pad[1]
            self.writes.append((
                phase, slice(a0, a1), slice(b0, b1),
                slice(y0, y0 + stride[0] * (a1 - a0 - 1) + 1, stride[0]),
                slice(x0, x0 + stride[1] * (b1 - b0 - 1) + 1, stride[1])))
        self.positions_major = (not fork_order and ho * wo
                                < POSITIONS_MAJOR_MAX_POSITIONS)
        # Stride 1 without padding: the input rows are the phase image.
        self.direct = (self.phases == 1 and (hq, wq) == (h, w)
                       and stride == (1, 1) and pad == (0, 0)
                       and not self.positions_major)
        # Positions-major: the padded image, (h + 2p) × (w + 2p) rows.
        self.padded_hw = hp, wp = h + 2 * pad[0], w + 2 * pad[1]
        self.interior = (slice(pad[0], pad[0] + h), slice(pad[1], pad[1] + w))
        if self.positions_major:
            per_row = hp * wp + ho * wo
        else:
            per_row = self.phases * hq * wq + ho * wq + self.span
        block = max(1, min(self.rows, BLOCK_ELEMENTS // per_row))
        if self.rows * ho * wo < PARALLEL_MIN_OUTPUTS:
            min_blocks = 1
        blocks = max(_ceil_div(self.rows, block),
                     min(min_blocks, self.rows))
        self.block = _ceil_div(self.rows, blocks)
        self.blocks = _ceil_div(self.rows, self.block)
        if self.positions_major:
            self.sizes = (self.block * hp * wp, self.block * ho * wo, 0)
        else:
            self.sizes = (0 if self.direct
                          else self.phases * self.block * hq * wq,
                          self.block * ho * wq, self.block * self.span)


_plans = collections.OrderedDict()
_plans_lock = threading.Lock()
_scratch = threading.local()


def _forward_plan(x_shape, kernel, stride, pad, dilation, min_blocks,
                  fork_order):
    key = (tuple(x_shape), tuple(kernel), tuple(stride), tuple(pad),
           tuple(dilation), min_blocks, fork_order, BLOCK_ELEMENTS,
           POSITIONS_MAJOR_MAX_POSITIONS, PARALLEL_MIN_OUTPUTS)
    with _plans_lock:
        plan = _plans.get(key)
        if plan is None:
            plan = _plans[key] = _ForwardPlan(x_shape, kernel, stride, pad,
                                              dilation, min_blocks,
                                              fork_order)
            if len(_plans) > _PLAN_CACHE_SIZE:
                _plans.popitem(last=False)
        else:
            _plans.move_to_end(key)
    return plan


def _buffers(xp, dtype, plan, call):
    """This thread's scratch (phases, sum, product) for ``plan``, the
    phases zeroed once per call (their padding is never written)."""
    arena = getattr(_scratch, "arena", None)
    total = sum(plan.sizes)
    if (arena is None or arena.dtype != dtype or arena.size < total
            or array_module(arena) is not xp):
        _scratch.arena = None
        check_bytes(total * np.dtype(dtype).itemsize,
                    "the depthwise convolution's scratch buffer")
        arena = _scratch.arena = xp.empty(total, dtype=dtype)
        _scratch.call = None
    phases_size, sum_size, _ = plan.sizes
    phases = arena[:phases_size]
    if _scratch.call is not call:
        phases[...] = 0
        _scratch.call = call
    total_sum = arena[phases_size:phases_size + sum_size]
    product = arena[phases_size + sum_size:total]
    return phases, total_sum, product


def depthwise_forward(x, w, b, stride, pad, dilation, out=None,
                      parallel=None, min_blocks=1, fork_order=False):
    """y[n, c] = Σ_(i, j) w[c, i, j] · x_padded[n, c, s·y + d·i, s·x + d·j]
    (+ b[c]), the taps summed in (i, j) order, then the bias added.

    ``parallel(fn, count)`` (e.g. :func:`kaffe.threads.parallel_for`) runs
    the blocks, at least ``min_blocks`` of them; serial when None.
    ``out`` (optional) is a C-contiguous (N, C, H_out, W_out) array of x's
    dtype that does not overlap ``x``. ``fork_order``: every product
    rounded on its own before it is added, as the fork's loop does (no
    einsum, whose multiply-adds may be fused).
    """
    xp = array_module(x)
    taps = _taps(w)
    n, c, h, wd = x.shape
    plan = _forward_plan(x.shape, taps.shape[1:], tuple(stride), tuple(pad),
                         tuple(dilation), max(1, int(min_blocks)),
                         bool(fork_order))
    ho, wo = plan.out_hw
    if out is None:
        out = xp.empty((n, c, ho, wo), dtype=x.dtype)
    if out.size == 0:
        return out
    x = xp.ascontiguousarray(x)
    count = taps.shape[1] * taps.shape[2]
    # Each tap's weight for every (image, channel) row, contiguous per tap.
    weights = xp.ascontiguousarray(
        taps.reshape(c, count).astype(x.dtype, copy=False).T)
    if n > 1:
        weights = xp.tile(weights, (1, n))
    bias = None
    if b is not None:
        bias = b.reshape(c).astype(x.dtype, copy=False)
        if n > 1:
            bias = xp.tile(bias, n)
    x_rows = x.reshape(plan.rows, h, wd)
    out_rows = out.reshape(plan.rows, ho, wo)
    call = object()
    block = (_positions_major_block if plan.positions_major
             else _rows_major_block)

    def run(index):
        r0 = index * plan.block
        r1 = min(plan.rows, r0 + plan.block)
        old = np.setbufsize(SMALL_BUFSIZE)
        try:
            block(xp, plan, _buffers(xp, x.dtype, plan, call), x_rows,
                  weights, bias, out_rows, r0, r1)
        finally:
            np.setbufsize(old)

    if parallel is None or plan.blocks == 1:
        for index in range(plan.blocks):
            run(index)
    else:
        parallel(run, plan.blocks)
    return out


def _rows_major_block(xp, plan, buffers, x_rows, weights, bias, out_rows,
                      r0, r1):
    """Rows r0:r1 with one channel image per row of the flat buffers."""
    m = r1 - r0
    hq, wq = plan.hq, plan.wq
    ho, wo = plan.out_hw
    span = plan.span
    phases, total, product = buffers
    if plan.direct:
        phases = x_rows[r0:r1].reshape(1, m, hq * wq)
    else:
        # Always laid out for a whole block, so that the padding zeroed
        # once per call stays where every block expects it.
        images = phases.reshape(plan.phases, plan.block, hq, wq)[:, :m]
        phases = phases.reshape(plan.phases, plan.block, hq * wq)[:, :m]
        for phase, rows, cols, src_rows, src_cols in plan.writes:
            images[phase, :, rows, cols] = x_rows[r0:r1, src_rows, src_cols]
    total = total[:m * ho * wq].reshape(m, ho * wq)
    acc = total[:, :span]
    product = product[:m * span].reshape(m, span)
    for t, (phase, offset) in enumerate(zip(plan.tap_phase,
                                            plan.tap_offset)):
        window = phases[phase, :, offset:offset + span]
        weight = weights[t, r0:r1, None]
        if t == 0:
            xp.multiply(window, weight, out=acc)
        else:
            xp.multiply(window, weight, out=product)
            xp.add(acc, product, out=acc)
    result = total.reshape(m, ho, wq)[:, :, :wo]
    if bias is None:
        out_rows[r0:r1] = result
    else:
        xp.add(result, bias[r0:r1, None, None], out=out_rows[r0:r1])


def _positions_major_block(xp, plan, buffers, x_rows, weights, bias,
                           out_rows, r0, r1):
    """Rows r0:r1 transposed: one padded-image position per row, the
    block's channels along it; every output position's k×k window is one
    strided view, summed against the filters by one einsum."""
    m = r1 - r0
    hp, wp = plan.padded_hw
    ho, wo = plan.out_hw
    kh, kw = plan.kernel
    padded, total, _ = buffers
    image = padded.reshape(hp, wp, plan.block)[:, :, :m]
    image[plan.interior] = x_rows[r0:r1].transpose(1, 2, 0)
    row, col, item = image.strides
    windows = xp.lib.stride_tricks.as_strided(
        image, shape=(ho, wo, kh, kw, m),
        strides=(plan.stride[0] * row, plan.stride[1] * col,
                 plan.dilation[0] * row, plan.dilation[1] * col, item))
    acc = total[:ho * wo * m].reshape(ho, wo, m)
    xp.einsum("yxijc,ijc->yxc", windows,
              weights.reshape(kh, kw, -1)[:, :, r0:r1], out=acc)
    result = acc.transpose(2, 0, 1)
    if bias is None:
        out_rows[r0:r1] = result
    else:
        xp.add(result, bias[r0:r1, None, None], out=out_rows[r0:r1])


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
