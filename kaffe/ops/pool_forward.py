"""Inference kernels for max pooling: the window maxima without the argmax
mask, over a range of planes.

:func:`kaffe.ops.pooling.max_pool_forward` sends its mask-free work here
when the geometry is one of these two, the shapes of the classic nets:

* **"same" stride-1 pooling** (out = in along both axes: stride 1,
  2·pad = kernel − 1, e.g. the 3×3 pad-1 pools of GoogLeNet's inception
  branches). A plane's rows lie end to end in memory, so the shifted copies
  of a whole block of planes are slices of one flat array: each kernel
  offset is one contiguous ``fmax`` over the block (along the width, shifts
  of one cell; along the height, of one row). Near a border a shift reads
  the next row's (or plane's) cells; the few border columns and rows are
  then recomputed from their in-image cells only.
* **overlapping strided windows** (kernel wider than the stride, e.g. 3×3
  stride 2): along the height first, where every read is a whole
  contiguous row, then along the width on the row maxima as one flat,
  contiguous sliding maximum, from which every stride-th entry is picked
  (windows that reach into the padding or past the edge are taken column
  by column from their in-image cells).

Both work a block of planes at a time, sized to stay in the cache, and give
Caffe's maxima exactly: max is associative, ``fmax`` lets NaN lose as
Caffe's strict ``>`` does, and a window with no cell above −FLT_MAX (all
NaN or −inf) holds −FLT_MAX, Caffe's starting value. As in
:func:`~kaffe.ops.pooling.max_pool_forward`, which zero a window holding
both +0 and −0 returns is unspecified.

Each kernel takes (P, H, W) planes and writes (P, H_out, W_out) maxima, so
ranges of planes can run on different threads (:func:`max_planes_range`).
"""
import numpy as np

from ..backend import array_module

# Caffe starts MAX outputs at -FLT_MAX (the float32 bound, for doubles too).
MAX_INIT = -float(np.finfo(np.float32).max)

# Input bytes per block of planes: the block and its row maxima stay in a
# 2 MB L2 cache. In GoogLeNet's forward, batch 1 and 8, 128 K and 256 K
# blocks were 5–30 % slower, 1 MB ones 0–15 % slower.
BLOCK_BYTES = 1 << 19


def fits(in_hw, kernel, stride, pad, out_hw):
    """Whether one of this module's kernels takes this geometry (else the
    general separable loop in kaffe.ops.pooling does)."""
    return _is_same(in_hw, kernel, stride, pad, out_hw) or (
        kernel[1] > stride[1] and stride[1] > 1)


def _is_same(in_hw, kernel, stride, pad, out_hw):
    return (tuple(stride) == (1, 1) and tuple(out_hw) == tuple(in_hw)
            and all(2 * p == k - 1 for k, p in zip(kernel, pad)))


def max_pool_planes(x, y, kernel, stride, pad, block_bytes=BLOCK_BYTES):
    """Window maxima of the (P, H, W) planes ``x`` into (P, H_out, W_out)
    ``y``, both C-contiguous and of one float dtype, block by block.

    The geometry must pass :func:`fits`; returns ``y``.
    """
    planes, height, width = x.shape
    step = max(1, block_bytes // max(1, height * width * x.itemsize))
    work = _scratch(x, y, kernel, stride, pad, min(step, planes))
    for first in range(0, planes, step):
        max_planes_range(x, y, first, min(planes, first + step), kernel,
                         stride, pad, work)
    return y


def _scratch(x, y, kernel, stride, pad, planes):
    """Scratch for ``planes`` planes: (row maxima, sliding maxima)."""
    xp = array_module(x)
    height, width = x.shape[1:]
    if _is_same((height, width), kernel, stride, pad, y.shape[1:]):
        return (xp.empty((planes, height, width), dtype=x.dtype), None)
    rows = xp.empty((planes, y.shape[1], width), dtype=x.dtype)
    return (rows, xp.empty(rows.size, dtype=x.dtype))


def max_planes_range(x, y, first, stop, kernel, stride, pad, work=None):
    """Window maxima of planes [first, stop) of ``x`` (P, H, W) into the
    same planes of ``y`` (P, H_out, W_out).

    ``work``: scratch from a block of at least stop − first planes (made
    when absent); each thread needs its own.
    """
    if work is None:
        work = _scratch(x, y, kernel, stride, pad, stop - first)
    x = x[first:stop]
    y = y[first:stop]
    count = stop - first
    if _is_same(x.shape[1:], kernel, stride, pad, y.shape[1:]):
        _same_max(x, y, kernel, pad, work[0][:count])
    else:
        rows = work[0][:count]
        _strided_max(x, y, kernel, stride, pad, rows, work[1][:rows.size])


def _shifted_max(xp, src, dst, shifts):
    """dst[m] = max over s in ``shifts`` of src[m + s], on flat arrays,
    for every m where all the shifts stay inside; entries near the two ends
    where some shift falls outside are left for the caller to fix."""
    size = src.size
    first, second = shifts[0], shifts[1]
    lo = max(0, -first, -second)
    hi = size - max(0, first, second)
    xp.fmax(src[lo + first:hi + first], src[lo + second:hi + second],
            out=dst[lo:hi])
    for shift in shifts[2:]:
        lo, hi = max(0, -shift), size - max(0, shift)
        xp.fmax(dst[lo:hi], src[lo + shift:hi + shift], out=dst[lo:hi])


def _border_max(xp, src, dst, index, cells):
    """dst[index] = max of src[c] over the ``cells`` (a range of indices
    along the same axis), with ``index`` a tuple building either view."""
    def part(i):
        return src[index(i)]
    out = dst[index(None)]
    if len(cells) == 1:
        xp.copyto(out, part(cells[0]))
        return
    xp.fmax(part(cells[0]), part(cells[1]), out=out)
    for c in cells[2:]:
        xp.fmax(out, part(c), out=out)


def _same_max(x, y, kernel, pad, rows):
    """"Same" stride-1 max pooling of the planes x into y: flat shifted
    maxima along the width into ``rows``, then along the height into y,
    border columns and rows redone from their in-image cells."""
    xp = array_module(x)
    height, width = x.shape[1:]
    (kh, kw), (ph, pw) = kernel, pad
    if kw > 1:
        _shifted_max(xp, x.reshape(-1), rows.reshape(-1),
                     [j - pw for j in range(kw)])
        for w in _borders(width, kw, pw):
            cells = range(max(0, w - pw), min(width, w - pw + kw))
            _border_max(xp, x, rows,
                        lambda c, w=w: (Ellipsis, w if c is None else c),
                        cells)
    else:
        rows = x
    if kh > 1:
        _shifted_max(xp, rows.reshape(-1), y.reshape(-1),
                     [(i - ph) * width for i in range(kh)])
        for h in _borders(height, kh, ph):
            cells = range(max(0, h - ph), min(height, h - ph + kh))
            _border_max(xp, rows, y,
                        lambda c, h=h: (slice(None), h if c is None else c),
                        cells)
    else:
        xp.copyto(y, rows)
    _clamp(xp, y)


def _borders(size, kernel, pad):
    """The output positions of a "same" axis whose window reaches past
    either end (all of them when the axis is shorter than the kernel)."""
    low = range(min(pad, size))
    high = range(max(pad, size - (kernel - 1 - pad)), size)
    return list(low) + list(high)


def _clamp(xp, y):
    """Windows whose every cell is NaN or −inf hold −FLT_MAX, as Caffe's:
    one reduction to see whether any is there, a pass only if so."""
    flat = y.reshape(-1)
    floor = y.dtype.type(MAX_INIT)
    if flat.size and not bool(flat.min() >= floor):  # NaN fails too
        xp.fmax(flat, floor, out=flat)


def _strided_max(x, y, kernel, stride, pad, rows, slide):
    """Max pooling with windows wider than the stride: along the height on
    whole rows into ``rows`` (P, H_out, W), then along the width."""
    xp = array_module(x)
    height, width = x.shape[1:]
    out_h, out_w = y.shape[1:]
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    # Starting from −FLT_MAX, fmax leaves no NaN and nothing below it: the
    # width pass can use maximum, and the result needs no clamp.
    rows[...] = MAX_INIT
    for i in range(kh):
        first = max(0, -(-(ph - i) // sh))
        stop = min(out_h, (height - 1 + ph - i) // sh + 1)
        if first < stop:
            start = first * sh - ph + i
            part = rows[:, first:stop]
            xp.fmax(part, x[:, start:start + (stop - first - 1) * sh + 1:sh],
                    out=part)
    # Windows inside the row: [lo, hi] (window j covers cells j·sw − pw …).
    lo = -(-pw // sw)
    hi = min(out_w - 1, (width - kw + pw) // sw)
    if hi >= lo:
        flat = rows.reshape(-1)
        length = flat.size - (kw - 1)
        xp.maximum(flat[:length], flat[1:length + 1], out=slide[:length])
        for j in range(2, kw):
            xp.maximum(slide[:length], flat[j:j + length],
                       out=slide[:length])
        start = lo * sw - pw
        picked = slide.reshape(rows.shape)[
            ..., start:start + (hi - lo) * sw + 1:sw]
        xp.copyto(y[..., lo:hi + 1], picked)
    edges = list(range(min(lo, out_w))) + list(range(max(hi + 1, lo), out_w))
    for j in edges:
        w0 = j * sw - pw
        cells = range(max(0, w0), min(width, w0 + kw))
        if len(cells) == 0:  # a window past the edge: Caffe's −FLT_MAX
            y[..., j] = MAX_INIT
            continue
        _border_max(xp, rows, y,
                    lambda c, j=j: (Ellipsis, j if c is None else c), cells)


def ave_pool_global(x, y, block_bytes=BLOCK_BYTES // 2):
    """Global average pooling (kernel = the plane, stride 1, pad 0) of the
    (P, H, W) planes ``x`` into the P values ``y``: each plane's sum in
    Caffe's order (+0, then the cells row by row), over H·W.

    A plane's cells are added one after another, which on its own is a
    chain of dependent additions; a block of planes is transposed so that
    the additions of the block's planes run side by side instead: NumPy
    reduces the leading axis of a (cells, planes) array row after row as
    long as there are two planes or more (one alone would be summed
    pairwise, in another order), so a lone plane gets a zero partner.
    """
    xp = array_module(x)
    planes = x.shape[0]
    cells = x[0].size if planes else 0
    flat = x.reshape(planes, cells)
    step = max(2, block_bytes // max(1, cells * x.itemsize))
    width = max(2, min(step, planes))
    work = xp.empty((cells, width), dtype=x.dtype)
    sums = xp.empty(width, dtype=x.dtype)
    for first in range(0, planes, step):
        count = min(planes, first + step) - first
        if count == 1:
            work[:, 1] = 0
        block = work[:, :max(2, count)]
        xp.copyto(block[:, :count], flat[first:first + count].T)
        xp.add.reduce(block, axis=0, out=sums[:block.shape[1]], initial=0)
        y[first:first + count] = sums[:count]
    y /= x.dtype.type(cells)
    return y
