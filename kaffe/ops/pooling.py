"""2-D max and average pooling, Caffe's semantics exactly
(``src/caffe/layers/pooling_layer.cpp``).

Window (ph, pw) of an H × W plane starts at hs = ph·stride_h − pad_h,
ws = pw·stride_w − pad_w and spans kernel_h × kernel_w cells; cells outside
the image (the padding, or the overhang that CEIL rounding allows) are never
read.

* MAX: start from −FLT_MAX and, scanning the window's rows then columns, take
  a cell only when it is strictly greater: padding is ignored and ties keep
  the FIRST maximum. The mask holds its flat index h·W + w in the channel's
  plane, or −1 if no cell exceeded −FLT_MAX.
* AVE: the sum of the window's in-image cells divided by
  pool_size = (min(hs + kernel_h, H + pad_h) − hs)
             · (min(ws + kernel_w, W + pad_w) − ws),
  computed before clipping the window to the image: the padding counts, the
  overhang past H + pad does not.
* Global pooling is kernel = (H, W), stride 1, pad 0.

Arrays are (N, C, H, W); kernel, stride and pad are an int or an (h, w)
pair. Work is vectorised over N, C and the outputs; the Python loop runs over
kernel offsets (and, for MAX, over chunks of planes that fit the cache) —
or, when windows are large and few (global pooling of a big plane, SPP's
coarse levels, a huge kernel_size from a file), over the windows, each one
reduced in Caffe's scan order, so the loop never runs kernel_h · kernel_w
times for a handful of outputs.
With NumPy, sums and gradient accumulations happen in Caffe's order, so the
results equal its CPU code's to the bit. Inference's mask-free MAX (for the
geometries of the classic nets) and global AVE pooling run the faster
kernels of :mod:`kaffe.ops.pool_forward`, with the same bits.
"""
import numbers

import numpy as np

from ..backend import array_module
from . import pool_forward
from .arrays import out_array
from .geometry import ROUND_MODES, pooled_size

# Caffe starts MAX outputs at -FLT_MAX (the float32 bound, for doubles too).
_MAX_INIT = -float(np.finfo(np.float32).max)

# Input bytes per chunk of planes in mask-free max pooling (see
# _max_pool_separable): well inside a 2 MB L2 cache with the row maxima.
_CHUNK_BYTES = 1 << 20


def pool_output_size(size, kernel, stride, pad, round_mode="CEIL"):
    """Pooled length along one axis, round_mode "CEIL" or "FLOOR".

    :func:`kaffe.ops.geometry.pooled_size` with the clip rule applied when
    this axis is padded (a 2-D layer padded on one axis only clips both:
    :meth:`kaffe.ops.geometry.PoolGeometry.output_spatial`).
    """
    if round_mode not in ROUND_MODES:
        raise ValueError(f"round_mode must be one of {ROUND_MODES}, "
                         f"received {round_mode!r}")
    return pooled_size(size, kernel, stride, pad, round_mode == "CEIL")


def _pair(value, name):
    if isinstance(value, numbers.Integral):
        return int(value), int(value)
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f"pooling {name} must be an int or an (h, w) pair, "
                         f"received {value}")
    return value


def _geometry(x_shape, kernel, stride, pad, out_hw):
    if len(x_shape) != 4:
        raise ValueError(f"pooling expects (N, C, H, W) arrays, received "
                         f"shape {tuple(x_shape)}")
    kernel = _pair(kernel, "kernel")
    stride = _pair(stride, "stride")
    pad = _pair(pad, "pad")
    out_hw = _pair(out_hw, "out_hw")
    if min(kernel) < 1 or min(stride) < 1 or min(out_hw) < 1 or min(pad) < 0:
        raise ValueError(f"pooling needs kernel {kernel}, stride {stride} "
                         f"and output {out_hw} >= 1, pad {pad} >= 0")
    return tuple(x_shape[2:]), kernel, stride, pad, out_hw


def _axis_ranges(size, out, stride, pad, offset):
    """Along one axis, for one kernel offset: (output slice, input slice) of
    the windows whose cell at that offset lies in [0, size), or None."""
    first = max(0, -(-(pad - offset) // stride))
    stop = min(out, (size - 1 + pad - offset) // stride + 1)
    if first >= stop:
        return None
    start = first * stride - pad + offset
    last = start + (stop - first - 1) * stride
    return slice(first, stop), slice(start, last + 1, stride)


def _offsets(in_hw, out_hw, kernel, stride, pad, reverse=False):
    """Yield (output index, input index, (i, j)) per kernel offset (i, j).

    The indices select, over (N, C, …), the windows that have an in-image
    cell at offset (i, j), and those cells. Offsets come in row-major order,
    or its reverse; offsets without in-image cells are skipped.
    """
    order_h = range(kernel[0])
    order_w = range(kernel[1])
    if reverse:
        order_h, order_w = order_h[::-1], order_w[::-1]
    for i in order_h:
        rows = _axis_ranges(in_hw[0], out_hw[0], stride[0], pad[0], i)
        if rows is None:
            continue
        for j in order_w:
            cols = _axis_ranges(in_hw[1], out_hw[1], stride[1], pad[1], j)
            if cols is None:
                continue
            yield ((Ellipsis, rows[0], cols[0]),
                   (Ellipsis, rows[1], cols[1]), (i, j))


# Loop over the windows instead of the kernel offsets when there are this
# many times more offsets than windows.
_WINDOW_LOOP_RATIO = 8


def _few_windows(kernel, out_hw):
    return kernel[0] * kernel[1] > _WINDOW_LOOP_RATIO * out_hw[0] * out_hw[1]


def _windows(in_hw, out_hw, kernel, stride, pad):
    """Yield (ph, pw, rows, cols, pool_size): each window's in-image slices
    and its AVE divisor (Caffe's loop bounds)."""
    for ph in range(out_hw[0]):
        h0 = ph * stride[0] - pad[0]
        h1 = min(h0 + kernel[0], in_hw[0] + pad[0])
        for pw in range(out_hw[1]):
            w0 = pw * stride[1] - pad[1]
            w1 = min(w0 + kernel[1], in_hw[1] + pad[1])
            size = (h1 - h0) * (w1 - w0)
            yield (ph, pw, slice(max(h0, 0), min(h1, in_hw[0])),
                   slice(max(w0, 0), min(w1, in_hw[1])), size)


def _max_pool_windows(xp, x, y, in_hw, out_hw, kernel, stride, pad, mask):
    """Max pooling window by window: the first cell strictly above
    −FLT_MAX and every cell before it in scan order (NaN never wins)."""
    planes = x.shape[0] * x.shape[1]
    flat_y = y.reshape(planes, -1)
    flat_mask = (xp.full((planes, out_hw[0] * out_hw[1]), -1, dtype=xp.int32)
                 if mask else None)
    for ph, pw, rows, cols, _ in _windows(in_hw, out_hw, kernel, stride,
                                          pad):
        k = ph * out_hw[1] + pw
        cells = x[:, :, rows, cols].reshape(planes, -1)
        if cells.shape[1] == 0:
            continue
        cells = xp.where(xp.isnan(cells), -xp.inf, cells)
        best = xp.argmax(cells, axis=1)          # first of equal maxima
        value = xp.take_along_axis(cells, best[:, None], axis=1)[:, 0]
        won = value > y.dtype.type(_MAX_INIT)
        flat_y[:, k] = xp.where(won, value, flat_y[:, k])
        if mask:
            width = cols.stop - cols.start
            index = ((rows.start + best // width) * in_hw[1]
                     + cols.start + best % width)
            flat_mask[:, k] = xp.where(won, index, -1)
    return None if not mask else flat_mask.reshape(y.shape)


def max_pool_forward(x, kernel, stride, pad, out_hw, mask=True, out=None):
    """Max pooling.

    Args:
        x: (N, C, H, W) input.
        kernel, stride, pad: an int or an (h, w) pair.
        out_hw: (H_out, W_out) output size, from :func:`pool_output_size`
            (where the round mode is chosen).
        mask: whether to find where each maximum is. Inference needs only
            the maxima, and tracking them costs 2–3× the pooling itself.
        out: optional C-contiguous (N, C, H_out, W_out) array of x's dtype
            to write the maxima into (e.g. the top blob's data), saving a
            copy. It must not overlap ``x``.

    Returns:
        (y, mask), both (N, C, H_out, W_out): the window maxima (``out``
        if given), and the int32 flat index h·W + w of each maximum in its
        channel's plane (−1 for a window without a cell above −FLT_MAX; y
        is −FLT_MAX there); mask is None when not asked for. The maxima are
        exact, but where a window's maximum is a zero present with both
        signs, which zero y holds is unspecified (the mask points at the
        first, as Caffe's).
    """
    xp = array_module(x)
    in_hw, kernel, stride, pad, out_hw = _geometry(x.shape, kernel, stride,
                                                   pad, out_hw)
    y = out_array(xp, out, x.shape[:2] + out_hw, x.dtype, "max_pool_forward")
    if not mask and not _few_windows(kernel, out_hw) and pool_forward.fits(
            in_hw, kernel, stride, pad, out_hw):
        pool_forward.max_pool_planes(x.reshape((-1,) + in_hw),
                                     y.reshape((-1,) + out_hw), kernel,
                                     stride, pad)
        return y, None
    y[...] = _MAX_INIT
    if not x.size:  # an empty batch
        return y, xp.zeros(y.shape, dtype=xp.int32) if mask else None
    if _few_windows(kernel, out_hw):
        return y, _max_pool_windows(xp, x, y, in_hw, out_hw, kernel, stride,
                                    pad, mask)
    if not mask:
        _max_pool_separable(xp, x, y, in_hw, kernel, stride, pad, out_hw)
        return y, None
    # winner = 1 + i·W + j for the running maximum's offset (i, j) from its
    # window's corner, 0 for none yet. The codes grow along the scan, so
    # "take this offset where its cell is strictly greater" is
    # max(winner, greater·code): branch-free, where a masked copy is 10–40×
    # slower on random data. Within one window the in-image cells lie in at
    # most W columns, so the codes keep the scan order even when the kernel
    # is wider than the image.
    width = in_hw[1]
    largest_code = (kernel[0] - 1) * width + kernel[1]
    code_type = (xp.int8 if largest_code < 2 ** 7 else
                 xp.int16 if largest_code < 2 ** 15 else xp.int32)
    winner = xp.zeros(y.shape, dtype=code_type)
    offsets = list(_offsets(in_hw, out_hw, kernel, stride, pad))
    codes = [code_type(1 + i * width + j) for _, _, (i, j) in offsets]
    # The planes go by chunks of about _CHUNK_BYTES: each offset's strided
    # read then finds the chunk in the cache (LeNet's pool1: −20 %).
    for x_chunk, y_chunk, winner_chunk in _plane_chunks(
            x.reshape((-1,) + tuple(in_hw)),
            y.reshape((-1,) + tuple(out_hw)),
            winner.reshape((-1,) + tuple(out_hw))):
        for (out_index, in_index, _), code in zip(offsets, codes):
            y_part = y_chunk[out_index]
            # One strided read into contiguous memory: the two passes over
            # the cells then run several times faster than on the view.
            cells = xp.ascontiguousarray(x_chunk[in_index])
            greater = cells > y_part
            xp.fmax(y_part, cells, out=y_part)  # NaN cells lose, as in Caffe
            winner_part = winner_chunk[out_index]
            xp.maximum(winner_part, greater * code, out=winner_part)
    return y, _winner_to_mask(xp, winner, width, stride, pad)


def _max_pool_separable(xp, x, y, in_hw, kernel, stride, pad, out_hw):
    """Window maxima into ``y`` (filled with −FLT_MAX) without the mask:
    along the width, then the height.

    Every window's in-image cells form a rectangle, so the maximum of the
    row maxima is the maximum of the window (NaN cells lose under fmax),
    with a third of the strided reads of the offset scan for a 3×3 kernel.
    The planes go by chunks of about _CHUNK_BYTES, so that a chunk's row
    maxima are still in the cache for the second pass (ResNet's pool1:
    −20 %).
    """
    planes_x = x.reshape((-1,) + tuple(in_hw))
    rows = xp.empty((min(_planes_per_chunk(planes_x), len(planes_x)),
                     in_hw[0], out_hw[1]), dtype=x.dtype)
    for x_chunk, y_chunk in _plane_chunks(
            planes_x, y.reshape((-1,) + tuple(out_hw))):
        row_max = rows[:len(x_chunk)]
        row_max[...] = _MAX_INIT
        for j in range(kernel[1]):
            cols = _axis_ranges(in_hw[1], out_hw[1], stride[1], pad[1], j)
            if cols is not None:
                part = row_max[..., cols[0]]
                xp.fmax(part, x_chunk[..., cols[1]], out=part)
        for i in range(kernel[0]):
            in_rows = _axis_ranges(in_hw[0], out_hw[0], stride[0], pad[0],
                                   i)
            if in_rows is not None:
                part = y_chunk[..., in_rows[0], :]
                xp.fmax(part, row_max[..., in_rows[1], :], out=part)


def _planes_per_chunk(planes):
    """How many of the (P, H, W) ``planes`` make about _CHUNK_BYTES."""
    return max(1, _CHUNK_BYTES // max(1, planes[:1].nbytes))


def _plane_chunks(*arrays):
    """The same chunk of planes (first axis) of each array, chunk by chunk,
    a chunk about _CHUNK_BYTES of the first array."""
    step = _planes_per_chunk(arrays[0])
    for first in range(0, len(arrays[0]), step):
        yield tuple(a[first:first + step] for a in arrays)


def _winner_to_mask(xp, winner, width, stride, pad):
    """The flat index h·W + w of each window's winning cell (−1 for none):
    the corner's index plus the winner code, minus 1."""
    # The corners' products stay in int32 unless a huge stride or pad
    # (2^32 − 1 from a file) would overflow it; the mask itself always fits.
    span = max(winner.shape[2] * stride[0] + pad[0],
               winner.shape[3] * stride[1] + pad[1]) * (width + 1)
    index = xp.int32 if span < 2 ** 31 else xp.int64
    corner_h = xp.arange(winner.shape[2], dtype=index) * stride[0] - pad[0]
    corner_w = xp.arange(winner.shape[3], dtype=index) * stride[1] - pad[1]
    mask = winner + (corner_h[:, None] * width + corner_w[None, :] - 1)
    mask[winner == 0] = -1
    return mask.astype(xp.int32, copy=False)


def max_pool_backward(dy, mask, x_shape, out=None):
    """Gradient of max pooling: each output's gradient goes to its argmax.

    Args:
        dy: (N, C, H_out, W_out) gradient of the output.
        mask: the mask :func:`max_pool_forward` returned (−1 routes nothing).
        x_shape: (N, C, H, W) input shape.
        out: optional C-contiguous array of shape ``x_shape`` and dy's dtype
            to write into (e.g. the bottom blob's diff), saving a copy.

    Returns:
        The (N, C, H, W) gradient, ``out`` if given, else a new array; a
        cell that is the maximum of several windows gets the sum of their
        gradients, added in output order as Caffe does.
    """
    xp = array_module(dy)
    if mask.shape != dy.shape:
        raise ValueError(f"max_pool_backward: mask shape {tuple(mask.shape)} "
                         f"differs from dy shape {tuple(dy.shape)}")
    x_shape = tuple(x_shape)
    dx = out_array(xp, out, x_shape, dy.dtype, "max_pool_backward")
    planes = x_shape[0] * x_shape[1]
    flat_dx = dx.reshape(planes, -1)
    flat_mask = mask.reshape(planes, -1)
    flat_dy = dy.reshape(planes, -1)
    masked = bool(flat_mask.size) and int(flat_mask.min()) < 0
    # By chunks of planes of about _CHUNK_BYTES, each zeroed just before
    # its gradients are added, so that it is still in the cache for them
    # (CIFAR-10 quick's pool1 in its training step: 6.5 → 5.4 ms).
    plane_start = (xp.arange(min(_planes_per_chunk(flat_dx), planes),
                             dtype=xp.int64)[:, None] * flat_dx.shape[1])
    for chunk_dx, chunk_mask, values in _plane_chunks(flat_dx, flat_mask,
                                                      flat_dy):
        chunk_dx[...] = 0
        # A window without a maximum (mask −1) adds +0 to the cell before
        # its plane (index −1, the chunk's last one, for its first plane):
        # no effect, as a sum that starts at +0 is never −0.
        targets = chunk_mask + plane_start[:len(chunk_mask)]
        if masked:  # rare: only then mask
            values = xp.where(chunk_mask >= 0, values, 0)
        # ufunc.at adds repeated targets one by one, in output order, as
        # Caffe.
        xp.add.at(chunk_dx.reshape(-1), targets.reshape(-1),
                  values.reshape(-1))
    return dx


def ave_pool_forward(x, kernel, stride, pad, out_hw, out=None):
    """Average pooling with Caffe's divisor (see the module docstring).

    Args:
        x: (N, C, H, W) input.
        kernel, stride, pad: an int or an (h, w) pair.
        out_hw: (H_out, W_out) output size, from :func:`pool_output_size`.
        out: optional C-contiguous (N, C, H_out, W_out) array of x's dtype
            to write into (e.g. the top blob's data); must not overlap x.

    Returns:
        The (N, C, H_out, W_out) averages: ``out`` if given, else new.
    """
    xp = array_module(x)
    in_hw, kernel, stride, pad, out_hw = _geometry(x.shape, kernel, stride,
                                                   pad, out_hw)
    y = out_array(xp, out, x.shape[:2] + out_hw, x.dtype, "ave_pool_forward")
    if (xp is np and kernel == in_hw and out_hw == (1, 1)
            and pad == (0, 0)):  # global pooling
        pool_forward.ave_pool_global(x.reshape((-1,) + in_hw),
                                     y.reshape(-1))
        return y
    y[...] = 0
    if _few_windows(kernel, out_hw):
        planes = x.shape[0] * x.shape[1]
        for ph, pw, rows, cols, size in _windows(in_hw, out_hw, kernel,
                                                 stride, pad):
            cells = x[:, :, rows, cols].reshape(planes, -1)
            if cells.shape[1]:
                # cumsum adds in scan order, one cell at a time, as Caffe.
                y[:, :, ph, pw] = xp.cumsum(cells, axis=1)[:, -1].reshape(
                    x.shape[:2])
            y[:, :, ph, pw] /= x.dtype.type(size)
        return y
    offsets = list(_offsets(in_hw, out_hw, kernel, stride, pad))
    sizes = _pool_sizes(xp, in_hw, kernel, stride, pad, out_hw, x.dtype)
    # By chunks of planes of about _CHUNK_BYTES: the kh·kw strided reads
    # then find the chunk in the cache (CIFAR-10 quick's pool2 and pool3,
    # from a flushed cache, forward: 2.7 → 2.5 and 1.9 → 1.9 ms; backward
    # 3.3 → 3.1 and 2.3 → 2.2).
    for x_chunk, y_chunk in _plane_chunks(
            x.reshape((-1,) + tuple(in_hw)),
            y.reshape((-1,) + tuple(out_hw))):
        for out_index, in_index, _ in offsets:
            y_chunk[out_index] += x_chunk[in_index]
        y_chunk /= sizes
    return y


def ave_pool_backward(dy, x_shape, kernel, stride, pad, out=None):
    """Gradient of average pooling: each output's gradient / pool_size goes
    to each of its window's in-image cells.

    Args:
        dy: (N, C, H_out, W_out) gradient of the output.
        x_shape: (N, C, H, W) input shape.
        kernel, stride, pad: as for :func:`ave_pool_forward`.
        out: optional C-contiguous array of shape ``x_shape`` and dy's dtype
            to write into (e.g. the bottom blob's diff); must not overlap dy.

    Returns:
        The (N, C, H, W) gradient: ``out`` if given, else a new array.
    """
    xp = array_module(dy)
    in_hw, kernel, stride, pad, out_hw = _geometry(x_shape, kernel, stride,
                                                   pad, dy.shape[2:])
    sizes = _pool_sizes(xp, in_hw, kernel, stride, pad, out_hw, dy.dtype)
    dx = out_array(xp, out, tuple(x_shape), dy.dtype, "ave_pool_backward")
    if not _few_windows(kernel, out_hw):
        # By chunks of planes of about _CHUNK_BYTES, each zeroed just before
        # its kh·kw strided adds, which then find it in the cache. Reversed
        # offsets add each cell's shares in output order, as Caffe.
        offsets = list(_offsets(in_hw, out_hw, kernel, stride, pad,
                                reverse=True))
        for dx_chunk, dy_chunk in _plane_chunks(
                dx.reshape((-1,) + tuple(in_hw)),
                dy.reshape((-1,) + tuple(out_hw))):
            share = dy_chunk / sizes
            dx_chunk[...] = 0
            for out_index, in_index, _ in offsets:
                dx_chunk[in_index] += share[out_index]
        return dx
    share = dy / sizes
    dx[...] = 0
    # Windows in output order: each cell gets its shares in that order.
    for ph, pw, rows, cols, _ in _windows(in_hw, out_hw, kernel, stride, pad):
        dx[:, :, rows, cols] += share[:, :, ph, pw][:, :, None, None]
    return dx


def _pool_sizes(xp, in_hw, kernel, stride, pad, out_hw, dtype):
    """Caffe's AVE divisor of every window: (H_out, W_out)."""
    counts = []
    for size, k, s, p, out in zip(in_hw, kernel, stride, pad, out_hw):
        start = xp.arange(out) * s - p
        counts.append(xp.minimum(start + k, size + p) - start)
    return (counts[0][:, None] * counts[1][None, :]).astype(dtype)
