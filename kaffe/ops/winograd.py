"""Winograd convolution F(4×4, 3×3) for 3×3, stride-1, undilated 2-D
convolutions with one group: forward, and backward-data (the same
transform applied to dy with the filters flipped and transposed).

Lavin & Gray's minimal filtering ("Fast Algorithms for Convolutional
Neural Networks", 2015), with interpolation points 0, ±1, ±2 and ∞. Each
4×4 block of outputs is read from a 6×6 tile of the padded input d:

    Y = Aᵀ [ Σ_c (G g_{m,c} Gᵀ) ⊙ (Bᵀ d_c B) ] A

so a layer costs 36 GEMMs (M × C) @ (C × tiles) instead of one
(M × 9C) @ (9C × positions): 36/16 = 2.25 multiplies per output and input
channel instead of 9, 4× fewer, plus the input and output transforms (two
small GEMMs each, over every tile), which pay once there are enough
channels. On more than one core, BLAS's own threads split GEMMs large
enough for them (``blas``); below that, the chunks of tiles (or, with one
chunk, the 36 independent GEMMs) are :mod:`kaffe.threads` tasks, BLAS kept
on one thread meanwhile.

Numerics. The transforms mix values up to 8× larger than the inputs, so
float32 rounding grows: against the direct sum in float64, the error of
F(4,3) in float32 is a few 1e-6 of the output's scale (the unit tests bound
it at 2e-5 · max|y| for random data; the direct im2col GEMM is at about
1e-7), within the parity tolerances against OpenCV and Caffe (rtol 1e-4,
atol 1e-5 · scale), also through ResNet-50's 16 stacked 3×3 layers. It is
therefore used for float32 only; float64 (gradient checks) always takes the
direct path. :func:`winograd_applies` is the shape rule, measured with
benchmarks/zoo.py and benchmarks/conv.py (see docs/performance.md).

Workspace: the batch is processed in chunks of images (or, for one large
image, of tile rows) so that the transformed input or output of a chunk,
36 × max(C, M) × tiles, stays near ``_CHUNK_ELEMENTS``, each chunk padded
on its own (no padded copy of the whole input); the transformed filters
(36 × M × C) are kept by a :class:`WinogradFilters` the layer owns,
recomputed only when the weights' bits change.
"""
import math
import threading

import numpy as np

from ..backend import array_module

__all__ = ["winograd_applies", "winograd_forward", "winograd_backward_data",
           "WinogradFilters", "TILE", "filter_transform"]

# Outputs per tile side (F(4,3)), and the input tile side.
TILE = 4
_ALPHA = TILE + 2

_BT = np.array([[4, 0, -5, 0, 1, 0],
                [0, -4, -4, 1, 1, 0],
                [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0],
                [0, 2, -1, -2, 1, 0],
                [0, 4, 0, -5, 0, 1]], dtype=np.float64)
_G = np.array([[1 / 4, 0, 0],
               [-1 / 6, -1 / 6, -1 / 6],
               [-1 / 6, 1 / 6, -1 / 6],
               [1 / 24, 1 / 12, 1 / 6],
               [1 / 24, -1 / 12, 1 / 6],
               [0, 0, 1]], dtype=np.float64)
_AT = np.array([[1, 1, 1, 1, 1, 0],
                [0, 1, -1, 2, -2, 0],
                [0, 1, 1, 4, 4, 0],
                [0, 1, -1, 8, -8, 1]], dtype=np.float64)

# A chunk's transformed input or output (36 × channels × tiles, the larger
# of the two) takes about this many elements (1 MiB of float32: the chunk's
# working set stays in a core's L2 cache), but holds at least
# _CHUNK_MIN_TILES tiles (narrower GEMMs lose more than the cache gains).
# CPU ms, batch 1, one thread, before (4 MiB of input only, ≥ 128 tiles) →
# after: 64→192 on 56² 7.3 → 4.3, 64→64 on 224² 35 → 29, 128→128 on 28²
# and 512→512 on 28² unchanged (1.2, 17.7); batch 8 128→128 on 28² 10.0 →
# 9.1.
_CHUNK_ELEMENTS = 1 << 18
_CHUNK_MIN_TILES = 64
# A chunk's scratch arrays (d, e, v, m, z, y: the last two smaller), for a
# workspace bound.
_SCRATCH_ARRAYS = 6
# Chunks whose output block has at least this many elements are stored by
# 16 strided copies, smaller ones by one transposed copy (fewer calls).
_STRIDED_STORE_MIN = 1 << 17
# The shape rule: both channel counts at least this, and at most this
# fraction of the tiles' outputs wasted past the output's edges.
_MIN_CHANNELS = 32
_MAX_WASTE = 1.2
# Up to _MAX_WASTE_WIDE with at least these tiles and channels.
_MAX_WASTE_WIDE = 1.35
_WIDE_MIN_TILES = 128
_WIDE_MIN_CHANNELS = 128
# ...and at least this many tiles in the batch (below, the transforms'
# fixed cost per call outweighs what the GEMMs save).
_MIN_TILES = 4


def _as_pair(value, name):
    if isinstance(value, int):
        return (value, value)
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        return value * 2
    if len(value) != 2:
        raise ValueError(f"winograd: {name} needs 1 or 2 values, "
                         f"received {value}")
    return value


def winograd_applies(x_shape, w_shape, stride, pad, dilation, group, dtype,
                     backward=False):
    """Whether F(4,3) should compute this convolution (forward, or its
    backward-data with ``backward``): float32, 2-D, 3×3 filters, stride 1,
    dilation 1, one group, at least ``_MIN_CHANNELS`` input and output
    channels, enough tiles, and tiles that cover the output with little
    waste. Backward-data also needs pad ≤ 2 (it is a forward with pad
    2 − pad)."""
    if np.dtype(dtype) != np.float32 or len(x_shape) != 4:
        return False
    if tuple(w_shape[2:]) != (3, 3) or group != 1:
        return False
    stride, pad, dilation = (_as_pair(v, n) for v, n in
                             ((stride, "stride"), (pad, "pad"),
                              (dilation, "dilation")))
    if stride != (1, 1) or dilation != (1, 1):
        return False
    if backward and max(pad) > 2:
        return False
    channels, outputs = x_shape[1], w_shape[0]
    if min(channels, outputs) < _MIN_CHANNELS:
        return False
    out_h = x_shape[2] + 2 * pad[0] - 2
    out_w = x_shape[3] + 2 * pad[1] - 2
    if out_h < 1 or out_w < 1:
        return False
    tiles_h, tiles_w = -(-out_h // TILE), -(-out_w // TILE)
    tiles = x_shape[0] * tiles_h * tiles_w
    waste = tiles_h * tiles_w * TILE * TILE / (out_h * out_w)
    if waste <= _MAX_WASTE:
        return tiles >= _MIN_TILES
    # More waste (14×14 maps: 1.31) pays with many channels and tiles.
    return (waste <= _MAX_WASTE_WIDE and tiles >= _WIDE_MIN_TILES
            and min(channels, outputs) >= _WIDE_MIN_CHANNELS)


def filter_transform(w, dtype=None):
    """U[a, b, m, c] = (G w[m, c] Gᵀ)[a, b] for (M, C, 3, 3) filters,
    computed in float64 and returned as (36, M, C) of ``dtype`` (default
    w's)."""
    xp = array_module(w)
    dtype = w.dtype if dtype is None else dtype
    w64 = w.astype(xp.float64, copy=False)
    g = xp.asarray(_G)
    # (a, k) (m, c, k, l) (b, l) -> (a, b, m, c)
    left = xp.tensordot(g, w64, axes=([1], [2]))            # a, m, c, l
    u = xp.tensordot(left, g, axes=([3], [1]))              # a, m, c, b
    u = u.transpose(0, 3, 1, 2)
    return xp.ascontiguousarray(
        u.reshape(_ALPHA * _ALPHA, w.shape[0], w.shape[1]), dtype=dtype)


class WinogradFilters:
    """The transformed filters of one layer, kept between calls and made
    again only when the filters' bits change (training updates them every
    step; inference never does). One instance per direction: forward and
    backward-data transform different (flipped, transposed) filters."""

    def __init__(self):
        self._weights = None
        self._transformed = None

    def get(self, w, flip=False):
        """The (36, M, C) transform of ``w`` — of its flipped transpose
        w[:, :, ::-1, ::-1].swapaxes(0, 1) when ``flip`` (backward-data)."""
        xp = array_module(w)
        if (self._weights is None or self._weights.shape != w.shape
                or self._weights.dtype != w.dtype
                or not xp.array_equal(self._weights, w)):
            source = w[:, :, ::-1, ::-1].swapaxes(0, 1) if flip else w
            self._transformed = filter_transform(source, w.dtype)
            self._weights = xp.array(w, copy=True)
        return self._transformed


def _chunks(batch, tiles_h, tiles_w, channels, workspace=None):
    """(n0, n1, r0, r1): images n0:n1, tile rows r0:r1, each chunk about
    ``_CHUNK_ELEMENTS`` of 36 × ``channels`` × tiles (channels: the larger
    of the input's and the output's) but at least ``_CHUNK_MIN_TILES``
    tiles. With a ``workspace`` bound (elements), the chunk's six scratch
    arrays together take about that much, down to one tile row."""
    if workspace is None:
        tiles = max(_CHUNK_MIN_TILES, _CHUNK_ELEMENTS // (_ALPHA * _ALPHA
                                                         * channels))
    else:
        tiles = workspace // (_SCRATCH_ARRAYS * _ALPHA * _ALPHA * channels)
    rows = max(1, tiles // tiles_w)
    if rows >= tiles_h:
        images = max(1, rows // tiles_h)
        return [(n0, min(n0 + images, batch), 0, tiles_h)
                for n0 in range(0, batch, images)]
    return [(n, n + 1, r0, min(r0 + rows, tiles_h))
            for n in range(batch) for r0 in range(0, tiles_h, rows)]


def _scratch(xp, dtype, sizes):
    """One flat buffer per name, of the largest size a chunk needs; a
    chunk takes ``buffers[name][:size].reshape(shape)``."""
    return {name: xp.empty(size, dtype=dtype) for name, size in sizes.items()}


def _run(x, u, bias, pad, out, parallel, blas=None, workspace=None):
    """y = the F(4,3) convolution of x (N, C, H, W) with transformed
    filters u (36, M, C), zero padding ``pad``, written into ``out``.

    ``blas(flops)``, if given, sets BLAS's threads for GEMMs of that size
    and returns their count: above one, BLAS does the threading. Else, with
    several chunks and a ``parallel`` runner, the chunks are its tasks (each
    thread with its own scratch buffers, one hand-out for the whole layer);
    with one chunk, its 36 GEMMs are."""
    xp = array_module(x)
    dtype = x.dtype
    batch, channels, height, width = x.shape
    outputs = u.shape[1]
    out_h, out_w = out.shape[2:]
    tiles_h, tiles_w = -(-out_h // TILE), -(-out_w // TILE)
    if bias is not None:
        bias = bias.reshape(1, -1, 1, 1)
    chunks = _chunks(batch, tiles_h, tiles_w, max(channels, outputs),
                     workspace)
    most = max((n1 - n0) * (r1 - r0) * tiles_w for n0, n1, r0, r1 in chunks)
    alpha2 = _ALPHA * _ALPHA
    # Buffers reused by every chunk: fresh large arrays would be zeroed
    # by the kernel page by page on each chunk.
    sizes = {"d": alpha2 * channels * most, "e": alpha2 * channels * most,
             "v": alpha2 * channels * most, "m": alpha2 * outputs * most,
             "z": TILE * _ALPHA * outputs * most,
             "y": TILE * TILE * outputs * most,
             "p": channels * (tiles_w * TILE + 2)
             * max((n1 - n0) * ((r1 - r0) * TILE + 2)
                   for n0, n1, r0, r1 in chunks)}
    step = _Chunk(xp, x, pad, u, bias, out, tiles_w)
    if workspace is not None:
        parallel = _serial      # one set of scratch arrays, not one a thread
    if blas is not None and blas(2 * outputs * channels * most) > 1:
        # GEMMs large enough for BLAS's own threads: they split each one
        # (and the transforms); a second layer of threads would only
        # compete with them (512→512 on 28², batch 1, 2 threads: 1.5× one
        # thread this way, 1.0× with chunks or GEMMs as tasks).
        parallel = _serial
    if len(chunks) > 1 and parallel is not _serial:
        local = threading.local()

        def task(i):
            buffers = getattr(local, "buffers", None)
            if buffers is None:
                buffers = local.buffers = _scratch(xp, dtype, sizes)
            step(chunks[i], buffers, _serial)

        parallel(task, len(chunks))
    else:
        buffers = _scratch(xp, dtype, sizes)
        for chunk in chunks:
            step(chunk, buffers, parallel)
    return out


class _Chunk:
    """One chunk of tiles (images n0:n1, tile rows r0:r1) through the
    input transform, the 36 GEMMs (run by ``parallel``), the output
    transform and the store into ``out``."""

    def __init__(self, xp, x, pad, u, bias, out, tiles_w):
        self.xp, self.x, self.pad, self.u, self.bias = xp, x, pad, u, bias
        self.out, self.tiles_w = out, tiles_w
        self.bt = xp.asarray(_BT, dtype=x.dtype)
        self.at = xp.asarray(_AT, dtype=x.dtype)

    def padded(self, buffer, n0, n1, r0, r1):
        """The input rows tile rows r0:r1 of images n0:n1 read, zero-padded
        (``pad`` before, zeros past the input's right and bottom edges up
        to whole tiles), in ``buffer``: per chunk, never the whole padded
        input at once."""
        x = self.x
        height, width = x.shape[2:]
        ph, pw = self.pad
        rows = (r1 - r0) * TILE + 2
        band = buffer[:(n1 - n0) * x.shape[1] * rows
                      * (self.tiles_w * TILE + 2)].reshape(
            n1 - n0, x.shape[1], rows, self.tiles_w * TILE + 2)
        band[...] = 0
        # padded row p is input row p - ph; this band starts at 4·r0.
        first = max(0, r0 * TILE - ph)
        last = min(height, r0 * TILE + rows - ph)
        if first < last:
            cols = min(width, band.shape[3] - pw)
            band[:, :, first + ph - r0 * TILE:last + ph - r0 * TILE,
                 pw:pw + cols] = x[n0:n1, :, first:last, :cols]
        return band

    def __call__(self, chunk, buffers, parallel):
        xp, u, tiles_w = self.xp, self.u, self.tiles_w
        n0, n1, r0, r1 = chunk
        channels, outputs = u.shape[2], u.shape[1]
        b, rows = n1 - n0, r1 - r0
        tiles = b * rows * tiles_w

        def take(name, shape):
            return buffers[name][:math.prod(shape)].reshape(shape)

        # d[k, l, c, n, r, t] = padded[n, c, 4r + k, 4t + l]: one copy from
        # a strided view of the padded input (64→192 on 56²: 0.30 → 0.2 ms).
        d = take("d", (_ALPHA, _ALPHA, channels, b, rows, tiles_w))
        source = self.padded(buffers["p"], n0, n1, r0, r1)
        s_n, s_c, s_h, s_w = source.strides
        d[...] = xp.lib.stride_tricks.as_strided(
            source, shape=d.shape,
            strides=(s_h, s_w, s_c, s_n, TILE * s_h, TILE * s_w))
        # V = Bᵀ d B over (k, l): two GEMMs with a 6-wide inner dimension.
        e = take("e", (_ALPHA, _ALPHA * channels * tiles))
        xp.matmul(self.bt, d.reshape(_ALPHA, -1), out=e)
        v = take("v", (_ALPHA, _ALPHA, channels * tiles))
        xp.matmul(self.bt, e.reshape(_ALPHA, _ALPHA, -1), out=v)
        v = v.reshape(_ALPHA * _ALPHA, channels, tiles)
        # The 36 independent (M × C) @ (C × tiles) products.
        m = take("m", (_ALPHA * _ALPHA, outputs, tiles))
        parallel(lambda i: xp.matmul(u[i], v[i], out=m[i]), _ALPHA * _ALPHA)
        # Y = Aᵀ M A over (a, b).
        z = take("z", (TILE, _ALPHA * outputs * tiles))
        xp.matmul(self.at, m.reshape(_ALPHA, -1), out=z)
        y = take("y", (TILE, TILE, outputs * tiles))
        xp.matmul(self.at, z.reshape(TILE, _ALPHA, -1), out=y)
        self.store(y.reshape(TILE, TILE, outputs, b, rows, tiles_w), n0, n1,
                   r0)

    def store(self, y, n0, n1, r0):
        """out[n, m, 4r + a, 4t + c] = y[a, c, m, n, r, t] (+ bias)."""
        xp, bias = self.xp, self.bias
        _, _, outputs, b, rows, tiles_w = y.shape
        out_h, out_w = self.out.shape[2:]
        top = r0 * TILE
        dest = self.out[n0:n1, :, top:top + min(rows * TILE, out_h - top)]
        if y.size < _STRIDED_STORE_MIN:
            y = y.transpose(3, 2, 4, 0, 5, 1).reshape(
                b, outputs, rows * TILE, tiles_w * TILE)
            y = y[:, :, :dest.shape[2], :out_w]
            if bias is None:
                dest[...] = y
            else:
                xp.add(y, bias, out=dest)
            return
        # Large blocks: one strided copy per (a, c), cropped at the edges
        # (64→192 on 56²: 0.75 → 0.45 ms for the store).
        for a in range(TILE):
            for c in range(TILE):
                target = dest[:, :, a::TILE, c::TILE]
                source = y[a, c, :, :, :target.shape[2],
                           :target.shape[3]].transpose(1, 0, 2, 3)
                if bias is None:
                    target[...] = source
                else:
                    xp.add(source, bias, out=target)


def _serial(fn, count):
    for i in range(count):
        fn(i)


def winograd_forward(x, w, b=None, pad=1, out=None, filters=None,
                     parallel=None, blas=None, workspace=None):
    """3×3 stride-1 convolution by F(4,3).

    Args:
        x: (N, C, H, W) input.
        w: (M, C, 3, 3) filters.
        b: (M,) bias or None.
        pad: an int, or (pad_h, pad_w).
        out: optional C-contiguous (N, M, H + 2·pad_h − 2, W + 2·pad_w − 2)
            array of x's dtype to write into.
        filters: optional :class:`WinogradFilters` caching w's transform.
        parallel: optional ``parallel(fn, count)`` running fn(0..count-1)
            (e.g. :func:`kaffe.threads.parallel_for`); serial by default.
        blas: optional ``blas(flops)`` setting BLAS's thread count for GEMMs
            of that many flops and returning it (e.g.
            :func:`kaffe.threads.blas_for`): above one, BLAS's threads are
            used instead of ``parallel``.
        workspace: optional bound, in elements, on the scratch arrays of
            one chunk together (lean inference): smaller chunks, down to
            one tile row, on one thread.

    Returns:
        The output, ``out`` if given.
    """
    xp = array_module(x, w)
    pad = _as_pair(pad, "pad")
    if w.shape[2:] != (3, 3) or w.shape[1] != x.shape[1] or x.ndim != 4:
        raise ValueError(f"winograd_forward: input {tuple(x.shape)} and "
                         f"filters {tuple(w.shape)} must be (N, C, H, W) "
                         f"and (M, C, 3, 3)")
    shape = (x.shape[0], w.shape[0], x.shape[2] + 2 * pad[0] - 2,
             x.shape[3] + 2 * pad[1] - 2)
    if min(shape[2:]) < 1:
        raise ValueError(f"winograd_forward: a 3×3 kernel does not fit the "
                         f"input {tuple(x.shape)} padded by {pad}")
    if out is None:
        out = xp.empty(shape, dtype=x.dtype)
    u = (filters.get(w) if filters is not None
         else filter_transform(w, x.dtype))
    return _run(x, u, b, pad, out, parallel or _serial, blas, workspace)


def winograd_backward_data(dy, w, x_shape, pad=1, out=None, filters=None,
                           parallel=None, blas=None):
    """Input gradient of a 3×3 stride-1 convolution with padding ``pad``
    (each ≤ 2), by F(4,3): the forward of dy with the filters flipped and
    transposed, padding 2 − pad.

    Args:
        dy: (N, M, OH, OW) output gradient.
        w: (M, C, 3, 3) filters of the forward.
        x_shape: (N, C, H, W), the input's shape.
        pad, out, filters, parallel, blas: as for :func:`winograd_forward`
            (``filters`` caches the flipped transform: use one instance per
            direction).

    Returns:
        dx, ``out`` if given.
    """
    xp = array_module(dy, w)
    pad = _as_pair(pad, "pad")
    if max(pad) > 2 or min(pad) < 0:
        raise ValueError(f"winograd_backward_data: pad {pad} must be in "
                         f"0..2")
    x_shape = tuple(x_shape)
    expected = (x_shape[0], w.shape[0], x_shape[2] + 2 * pad[0] - 2,
                x_shape[3] + 2 * pad[1] - 2)
    if tuple(dy.shape) != expected or w.shape[1] != x_shape[1]:
        raise ValueError(f"winograd_backward_data: dy {tuple(dy.shape)} "
                         f"and filters {tuple(w.shape)} do not fit an input "
                         f"{x_shape} (expected dy {expected})")
    if out is None:
        out = xp.empty(x_shape, dtype=dy.dtype)
    u = (filters.get(w, flip=True) if filters is not None
         else filter_transform(w[:, :, ::-1, ::-1].swapaxes(0, 1),
                               dy.dtype))
    return _run(dy, u, None, (2 - pad[0], 2 - pad[1]), out,
                parallel or _serial, blas)
