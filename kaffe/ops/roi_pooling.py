"""Pooling over regions of interest: Fast R-CNN's ROIPooling (max) and
R-FCN's position-sensitive PSROIPooling (average).

Written from rbgirshick/caffe-fast-rcnn (roi_pooling_layer.cpp/.cu) and
daijifeng001/caffe-rfcn (psroi_pooling_layer.cu). Each region is a row
(batch index, x1, y1, x2, y2) in image pixels; ``spatial_scale`` maps pixels
to feature-map cells. The bin edges are computed in the arrays' own
precision, as the forks compute them in their ``Dtype``.
"""
import numpy as np


def round_half_away(x):
    """C's round(): halves go away from zero (NumPy rounds them to even)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _roi_bins(start, length, pooled, dtype):
    """(starts, ends) of ``pooled`` bins splitting [start, start + length)
    as the forks do: floor(i · bin) and ceil((i + 1) · bin), bin =
    length / pooled, both computed in ``dtype``."""
    bin_size = dtype.type(length) / dtype.type(pooled)
    i = np.arange(pooled, dtype=dtype)
    return (np.floor(i * bin_size).astype(np.int64) + start,
            np.ceil((i + 1) * bin_size).astype(np.int64) + start)


def _window_index(starts, ends, pad):
    """(K, longest) indices of K windows [start, end), each padded with the
    index ``pad`` (a sentinel row or column) to the longest length."""
    longest = int((ends - starts).max())
    index = starts[:, None] + np.arange(longest)[None, :]
    return np.where(index < ends[:, None], index, pad)


def roi_pool_forward(x, rois, pooled_h, pooled_w, spatial_scale):
    """Max over each bin of each region: (top, argmax).

    Args:
        x: (N, C, H, W) features.
        rois: (R, 5) regions.
    Returns:
        top (R, C, pooled_h, pooled_w) — 0 for an empty bin — and argmax,
        the flat h · W + w index in the region's image and channel of each
        maximum (the first in row-major order, as the fork's scan with a
        strict > finds it), -1 for an empty bin.
    """
    n, c, h, w = x.shape
    dtype = x.dtype
    scale = dtype.type(spatial_scale)
    top = np.zeros((rois.shape[0], c, pooled_h, pooled_w), dtype=dtype)
    argmax = np.full(top.shape, -1, dtype=np.int64)
    for r, roi in enumerate(rois.astype(dtype, copy=False)):
        b = int(roi[0])
        x1, y1, x2, y2 = (int(round_half_away(v * scale)) for v in roi[1:5])
        hs, he = _roi_bins(y1, max(y2 - y1 + 1, 1), pooled_h, dtype)
        ws, we = _roi_bins(x1, max(x2 - x1 + 1, 1), pooled_w, dtype)
        hs, he = np.clip(hs, 0, h), np.clip(he, 0, h)
        ws, we = np.clip(ws, 0, w), np.clip(we, 0, w)
        rows = np.flatnonzero(he > hs)
        cols = np.flatnonzero(we > ws)
        if not rows.size or not cols.size:
            continue
        r0, r1 = hs[rows].min(), he[rows].max()
        c0, c1 = ws[cols].min(), we[cols].max()
        region = x[b, :, r0:r1, c0:c1]
        # Separable: the max over each bin's columns, row by row (first
        # column on ties), then over its rows (first row on ties): the
        # row-major first maximum. Bins are gathered into equal-length
        # windows padded with a -inf row/column.
        col_index = _window_index(ws[cols] - c0, we[cols] - c0, c1 - c0)
        padded = np.concatenate(
            [region, np.full(region.shape[:2] + (1,), -np.inf, dtype)], 2)
        windows = padded[:, :, col_index]            # (C, rows, J, bw)
        col_best = windows.argmax(axis=3)            # (C, rows, J)
        col_max = np.take_along_axis(windows, col_best[..., None],
                                     axis=3)[..., 0]
        row_index = _window_index(hs[rows] - r0, he[rows] - r0, r1 - r0)
        col_max = np.concatenate(
            [col_max, np.full((c, 1, len(cols)), -np.inf, dtype)], 1)
        windows = col_max[:, row_index]              # (C, I, bh, J)
        row_best = windows.argmax(axis=2)            # (C, I, J)
        best = np.take_along_axis(windows, row_best[:, :, None],
                                  axis=2)[:, :, 0]
        row = row_index[np.arange(len(rows))[None, :, None], row_best]
        col = np.take_along_axis(
            np.concatenate([col_best, np.zeros((c, 1, len(cols)), int)], 1),
            row, axis=1)
        top[r][:, rows[:, None], cols[None, :]] = best
        argmax[r][:, rows[:, None], cols[None, :]] = (
            (row + r0) * w + col + ws[cols][None, None, :])
    return top, argmax


def roi_pool_backward(dy, argmax, rois, x_shape):
    """Each bin's diff goes to the input element that was its maximum."""
    n, c, h, w = x_shape
    dx = np.zeros((n, c, h * w), dtype=dy.dtype)
    batch = rois[:, 0].astype(np.int64)
    for r in range(dy.shape[0]):
        flat_arg = argmax[r].reshape(c, -1)
        flat_dy = dy[r].reshape(c, -1)
        valid = flat_arg >= 0
        rows = np.broadcast_to(np.arange(c)[:, None], flat_arg.shape)
        np.add.at(dx[batch[r]], (rows[valid], flat_arg[valid]),
                  flat_dy[valid])
    return dx.reshape(x_shape)


def psroi_bins(rois, spatial_scale, group_size, height, width, dtype):
    """R-FCN's bins of every region: (hstart, hend, wstart, wend), each
    (R, group_size), clipped to the feature map."""
    scale = dtype.type(spatial_scale)
    rounded = round_half_away(rois[:, 1:5].astype(dtype))
    start_w = rounded[:, 0].astype(dtype) * scale
    start_h = rounded[:, 1].astype(dtype) * scale
    end_w = (rounded[:, 2] + dtype.type(1.0)).astype(dtype) * scale
    end_h = (rounded[:, 3] + dtype.type(1.0)).astype(dtype) * scale
    roi_w = np.maximum(end_w - start_w, dtype.type(0.1))
    roi_h = np.maximum(end_h - start_h, dtype.type(0.1))
    bin_h = (roi_h / dtype.type(group_size))[:, None]
    bin_w = (roi_w / dtype.type(group_size))[:, None]
    i = np.arange(group_size, dtype=dtype)[None, :]
    hs = np.floor(i * bin_h + start_h[:, None]).astype(np.int64)
    he = np.ceil((i + 1) * bin_h + start_h[:, None]).astype(np.int64)
    ws = np.floor(i * bin_w + start_w[:, None]).astype(np.int64)
    we = np.ceil((i + 1) * bin_w + start_w[:, None]).astype(np.int64)
    return (np.clip(hs, 0, height), np.clip(he, 0, height),
            np.clip(ws, 0, width), np.clip(we, 0, width))


def _psroi_index(rois, x_shape, spatial_scale, output_dim, group_size,
                 dtype):
    """Per (region, output channel, gh, gw): the image, the input channel,
    the bin's corners (broadcast to that shape) and its area."""
    n, c, h, w = x_shape
    g = group_size
    hs, he, ws, we = psroi_bins(rois, spatial_scale, g, h, w, dtype)
    shape = (len(rois), output_dim, g, g)
    image = np.broadcast_to(rois[:, 0].astype(np.int64)[:, None, None, None],
                            shape)
    channel = np.broadcast_to(
        ((np.arange(output_dim)[:, None, None] * g
          + np.arange(g)[None, :, None]) * g
         + np.arange(g)[None, None, :])[None], shape)
    hs, he = (np.broadcast_to(a[:, None, :, None], shape) for a in (hs, he))
    ws, we = (np.broadcast_to(a[:, None, None, :], shape) for a in (ws, we))
    area = np.maximum(he - hs, 0) * np.maximum(we - ws, 0)
    return image, channel, hs, he, ws, we, area


def psroi_pool_forward(x, rois, spatial_scale, output_dim, group_size):
    """Average of bin (gh, gw) of each region, read from channel
    (ctop · group_size + gh) · group_size + gw: (R, output_dim, G, G).

    Bin sums come from summed-area tables (in float64), not the fork's
    element-by-element float sum: the same value up to rounding."""
    n, c, h, w = x.shape
    dtype = x.dtype
    image, channel, hs, he, ws, we, area = _psroi_index(
        rois, x.shape, spatial_scale, output_dim, group_size, dtype)
    table = np.zeros((n, c, h + 1, w + 1), dtype=np.float64)
    np.cumsum(np.cumsum(x, axis=2, dtype=np.float64), axis=3,
              out=table[:, :, 1:, 1:])
    total = (table[image, channel, he, we] - table[image, channel, hs, we]
             - table[image, channel, he, ws] + table[image, channel, hs, ws])
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(area > 0, total / np.maximum(area, 1), 0.0)
    return out.astype(dtype)


def psroi_pool_backward(dy, rois, x_shape, spatial_scale, group_size):
    """Each bin's diff, divided by the bin's area, to every input element of
    the bin (added through a 2-D difference table, then integrated)."""
    n, c, h, w = x_shape
    dtype = dy.dtype
    image, channel, hs, he, ws, we, area = _psroi_index(
        rois, x_shape, spatial_scale, dy.shape[1], group_size, dtype)
    share = np.where(area > 0, dy / np.maximum(area, 1), 0.0)
    corners = np.zeros((n, c, h + 1, w + 1), dtype=np.float64)
    for rows, cols, sign in ((hs, ws, 1), (hs, we, -1), (he, ws, -1),
                             (he, we, 1)):
        np.add.at(corners, (image, channel, rows, cols), sign * share)
    dx = np.cumsum(np.cumsum(corners, axis=2), axis=3)[:, :, :h, :w]
    return dx.astype(dtype)
