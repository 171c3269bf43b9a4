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


def roi_pool_forward(x, rois, pooled_h, pooled_w, spatial_scale):
    """Max over each bin of each region: (top, argmax).

    Args:
        x: (N, C, H, W) features.
        rois: (R, 5) regions.
    Returns:
        top (R, C, pooled_h, pooled_w) — 0 for an empty bin — and argmax,
        the flat h · W + w index in the region's image and channel of each
        maximum (the first in row-major order), -1 for an empty bin.
    """
    n, c, h, w = x.shape
    dtype = x.dtype
    scale = dtype.type(spatial_scale)
    top = np.zeros((rois.shape[0], c, pooled_h, pooled_w), dtype=dtype)
    argmax = np.full(top.shape, -1, dtype=np.int64)
    for r, roi in enumerate(rois.astype(dtype, copy=False)):
        b = int(roi[0])
        x1, y1, x2, y2 = (int(round_half_away(v * scale)) for v in roi[1:5])
        roi_h = max(y2 - y1 + 1, 1)
        roi_w = max(x2 - x1 + 1, 1)
        hs, he = _roi_bins(y1, roi_h, pooled_h, dtype)
        ws, we = _roi_bins(x1, roi_w, pooled_w, dtype)
        hs, he = np.clip(hs, 0, h), np.clip(he, 0, h)
        ws, we = np.clip(ws, 0, w), np.clip(we, 0, w)
        image = x[b]
        for ph in range(pooled_h):
            for pw in range(pooled_w):
                if he[ph] <= hs[ph] or we[pw] <= ws[pw]:
                    continue
                window = image[:, hs[ph]:he[ph], ws[pw]:we[pw]]
                flat = window.reshape(c, -1)
                best = flat.argmax(axis=1)
                top[r, :, ph, pw] = flat[np.arange(c), best]
                bw = we[pw] - ws[pw]
                argmax[r, :, ph, pw] = ((hs[ph] + best // bw) * w
                                        + ws[pw] + best % bw)
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


def psroi_bins(roi, spatial_scale, group_size, height, width, dtype):
    """R-FCN's bins of one region: (hstart, hend, wstart, wend) arrays of
    ``group_size`` entries, clipped to the feature map."""
    scale = dtype.type(spatial_scale)
    rounded = round_half_away(roi[1:5].astype(dtype))
    start_w = dtype.type(rounded[0]) * scale
    start_h = dtype.type(rounded[1]) * scale
    end_w = dtype.type(rounded[2] + 1.0) * scale
    end_h = dtype.type(rounded[3] + 1.0) * scale
    roi_w = max(end_w - start_w, dtype.type(0.1))
    roi_h = max(end_h - start_h, dtype.type(0.1))
    bin_h = roi_h / dtype.type(group_size)
    bin_w = roi_w / dtype.type(group_size)
    i = np.arange(group_size, dtype=dtype)
    hs = np.floor(i * bin_h + start_h).astype(np.int64)
    he = np.ceil((i + 1) * bin_h + start_h).astype(np.int64)
    ws = np.floor(i * bin_w + start_w).astype(np.int64)
    we = np.ceil((i + 1) * bin_w + start_w).astype(np.int64)
    return (np.clip(hs, 0, height), np.clip(he, 0, height),
            np.clip(ws, 0, width), np.clip(we, 0, width))


def psroi_pool_forward(x, rois, spatial_scale, output_dim, group_size):
    """Average of bin (gh, gw) of each region, read from channel
    (ctop · group_size + gh) · group_size + gw: (R, output_dim, G, G)."""
    n, c, h, w = x.shape
    g = group_size
    dtype = x.dtype
    top = np.zeros((rois.shape[0], output_dim, g, g), dtype=dtype)
    channels = (np.arange(output_dim)[:, None, None] * g
                + np.arange(g)[None, :, None]) * g + np.arange(g)[None, None, :]
    for r, roi in enumerate(rois):
        b = int(roi[0])
        hs, he, ws, we = psroi_bins(roi, spatial_scale, g, h, w, dtype)
        for gh in range(g):
            for gw in range(g):
                area = (he[gh] - hs[gh]) * (we[gw] - ws[gw])
                if he[gh] <= hs[gh] or we[gw] <= ws[gw]:
                    continue
                window = x[b, channels[:, gh, gw], hs[gh]:he[gh],
                           ws[gw]:we[gw]]
                top[r, :, gh, gw] = window.sum(axis=(1, 2)) / dtype.type(area)
    return top


def psroi_pool_backward(dy, rois, x_shape, spatial_scale, group_size):
    """Each bin's diff, divided by the bin's area, to every input element of
    the bin."""
    n, c, h, w = x_shape
    g = group_size
    output_dim = dy.shape[1]
    dtype = dy.dtype
    dx = np.zeros(x_shape, dtype=dtype)
    channels = (np.arange(output_dim)[:, None, None] * g
                + np.arange(g)[None, :, None]) * g + np.arange(g)[None, None, :]
    for r, roi in enumerate(rois):
        b = int(roi[0])
        hs, he, ws, we = psroi_bins(roi, spatial_scale, g, h, w, dtype)
        for gh in range(g):
            for gw in range(g):
                if he[gh] <= hs[gh] or we[gw] <= ws[gw]:
                    continue
                area = dtype.type((he[gh] - hs[gh]) * (we[gw] - ws[gw]))
                share = dy[r, :, gh, gw] / area
                dx[b, channels[:, gh, gw], hs[gh]:he[gh],
                   ws[gw]:we[gw]] += share[:, None, None]
    return dx
