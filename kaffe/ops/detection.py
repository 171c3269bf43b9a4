"""Box arithmetic of the SSD fork (weiliu89/caffe, ssd branch): prior boxes,
box decoding, Jaccard overlap and greedy non-maximum suppression.

Pure NumPy functions, written from the fork's prior_box_layer.cpp and
util/bbox_util.cpp. The fork computes these on the host in single precision
(C ``float``), with some steps in ``double`` (a literal ``2.`` promotes);
the functions below follow the same precision step by step, so that the
boxes, and therefore NMS's comparisons, come out as the fork's.

Boxes are (..., 4) arrays of (xmin, ymin, xmax, ymax).
"""
import math

import numpy as np

F32 = np.float32

# PriorBoxParameter.CodeType values (caffe.proto).
CORNER, CENTER_SIZE, CORNER_SIZE = 1, 2, 3


def prior_aspect_ratios(aspect_ratios, flip):
    """The fork's list of ratios: 1 first, then each new ratio (within 1e-6
    of none before it) and, with ``flip``, its inverse right after it."""
    ratios = [1.0]
    for ar in aspect_ratios:
        ar = float(F32(ar))
        if any(abs(ar - r) < 1e-6 for r in ratios):
            continue
        ratios.append(ar)
        if flip:
            ratios.append(float(F32(1.0 / ar)))
    return ratios


def prior_sizes(min_sizes, max_sizes, ratios):
    """(width, height) of each prior of one cell, in the fork's order.

    Per min_size s (truncated to an integer, as the fork does): the s × s
    box; sqrt(s · max) square if max sizes are given; then s·√r × s/√r for
    each ratio r ≠ 1.
    """
    sizes = []
    for i, min_size in enumerate(min_sizes):
        s = int(min_size)
        sizes.append((F32(s), F32(s)))
        if max_sizes:
            side = F32(math.sqrt(s * int(max_sizes[i])))
            sizes.append((side, side))
        for r in ratios:
            if abs(r - 1.0) < 1e-6:
                continue
            root = math.sqrt(F32(r))
            sizes.append((F32(s * root), F32(s / root)))
    return np.array(sizes, dtype=F32).reshape(-1, 2)


def prior_boxes(layer_h, layer_w, img_h, img_w, step_h, step_w, offset,
                sizes, clip, variances):
    """PriorBox's top: (2, layer_h · layer_w · P · 4), boxes then variances.

    Row 0 holds, cell by cell (row-major) and prior by prior, the corners
    ((cx ∓ w/2) / img_w, (cy ∓ h/2) / img_h) with cx = (x + offset) · step_w,
    cy = (y + offset) · step_h; clipped to [0, 1] if ``clip``. Row 1 repeats
    the 4 variances (or the single one) for every coordinate.
    """
    offset, step_w, step_h = F32(offset), F32(step_w), F32(step_h)
    cx = (np.arange(layer_w, dtype=F32) + offset) * step_w  # float, as cx
    cy = (np.arange(layer_h, dtype=F32) + offset) * step_h
    cx = cx.astype(np.float64)[None, :, None]
    cy = cy.astype(np.float64)[:, None, None]
    half_w = sizes[:, 0].astype(np.float64)[None, None, :] / 2.0
    half_h = sizes[:, 1].astype(np.float64)[None, None, :] / 2.0
    shape = (layer_h, layer_w, len(sizes))
    boxes = np.empty(shape + (4,), dtype=F32)
    boxes[..., 0] = np.broadcast_to((cx - half_w) / img_w, shape)
    boxes[..., 1] = np.broadcast_to((cy - half_h) / img_h, shape)
    boxes[..., 2] = np.broadcast_to((cx + half_w) / img_w, shape)
    boxes[..., 3] = np.broadcast_to((cy + half_h) / img_h, shape)
    out = np.empty((2, boxes.size), dtype=F32)
    out[0] = boxes.reshape(-1)
    if clip:
        np.clip(out[0], 0, 1, out=out[0])
    variances = np.asarray(variances, dtype=F32)
    out[1] = np.tile(variances, boxes.size // variances.size)
    return out


def box_sizes(boxes):
    """Area of each box, 0 where xmax < xmin or ymax < ymin (float32)."""
    width = boxes[..., 2] - boxes[..., 0]
    height = boxes[..., 3] - boxes[..., 1]
    valid = (width >= 0) & (height >= 0)
    return np.where(valid, width * height, F32(0)).astype(F32)


def decode_boxes(loc, priors, variances, code_type, variance_in_target):
    """Decode (P, 4) offsets ``loc`` against (P, 4) ``priors`` (float32).

    CORNER adds the (variance-scaled) offsets to the corners; CENTER_SIZE
    moves the center by offset · variance · prior size and scales the size
    by exp(offset · variance); CORNER_SIZE adds offsets scaled by the prior
    size. ``variance_in_target`` drops the variance factors.
    Returns (boxes, sizes): sizes are computed as the fork stores them
    (before any clipping) and are what the overlap uses.
    """
    loc = loc.astype(F32, copy=False)
    priors = priors.astype(F32, copy=False)
    var = (np.ones_like(loc) if variance_in_target
           else variances.astype(F32, copy=False))
    out = np.empty_like(loc)
    if code_type == CORNER:
        out[:] = priors + var * loc
    else:
        prior_w = priors[:, 2] - priors[:, 0]
        prior_h = priors[:, 3] - priors[:, 1]
        if code_type == CENTER_SIZE:
            center_x = ((priors[:, 0] + priors[:, 2]).astype(np.float64)
                        / 2.0).astype(F32)
            center_y = ((priors[:, 1] + priors[:, 3]).astype(np.float64)
                        / 2.0).astype(F32)
            dcx = var[:, 0] * loc[:, 0] * prior_w + center_x
            dcy = var[:, 1] * loc[:, 1] * prior_h + center_y
            dw = np.exp(var[:, 2] * loc[:, 2]) * prior_w
            dh = np.exp(var[:, 3] * loc[:, 3]) * prior_h
            dcx, dcy = dcx.astype(np.float64), dcy.astype(np.float64)
            half_w, half_h = dw.astype(np.float64) / 2, dh.astype(np.float64) / 2
            out[:, 0] = dcx - half_w
            out[:, 1] = dcy - half_h
            out[:, 2] = dcx + half_w
            out[:, 3] = dcy + half_h
        elif code_type == CORNER_SIZE:
            size = np.stack([prior_w, prior_h, prior_w, prior_h], axis=1)
            out[:] = priors + var * loc * size
        else:
            raise ValueError(f"unknown code type {code_type}")
    return out, box_sizes(out)


def jaccard_overlap(box, size, boxes, sizes):
    """Overlap |A ∩ B| / |A ∪ B| of one box with each of (n, 4) ``boxes``,
    in float32, with the fork's rule that boxes apart (or only touching)
    give 0."""
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    apart = ((x1 > box[2]) | (x2 < box[0]) | (y1 > box[3]) | (y2 < box[1]))
    iw = np.minimum(x2, box[2]) - np.maximum(x1, box[0])
    ih = np.minimum(y2, box[3]) - np.maximum(y1, box[1])
    inter = iw * ih
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / ((size + sizes) - inter)
    return np.where(~apart & (iw > 0) & (ih > 0), iou, F32(0))


def nms_fast(boxes, sizes, scores, score_threshold, nms_threshold, eta,
             top_k):
    """The fork's ApplyNMSFast: indices kept, best score first.

    Candidates are the scores above ``score_threshold`` in descending order
    (ties keep index order), cut to ``top_k`` (-1: all). A candidate is kept
    when its overlap with every box kept so far is ≤ the threshold; after a
    kept box the threshold is multiplied by ``eta`` while it is above 0.5.
    """
    scores = np.asarray(scores, dtype=F32)
    candidates = np.flatnonzero(scores > F32(score_threshold))
    order = candidates[np.argsort(-scores[candidates], kind="stable")]
    if -1 < top_k < order.size:
        order = order[:top_k]
    boxes = boxes[order].astype(F32, copy=False)
    sizes = sizes[order].astype(F32, copy=False)
    threshold = F32(nms_threshold)
    eta = F32(eta)
    kept = []
    if eta < 1 and threshold > 0.5:
        # The threshold changes as boxes are kept: test each candidate
        # against the boxes kept before it, at the threshold of its turn.
        for i in range(order.size):
            if kept and not (jaccard_overlap(boxes[i], sizes[i], boxes[kept],
                                             sizes[kept]) <= threshold).all():
                continue
            kept.append(i)
            if threshold > 0.5:
                threshold = F32(threshold * eta)
        return order[kept].tolist()
    # A fixed threshold: each kept box suppresses the later candidates it
    # overlaps by more than the threshold (the same test, box by box). Up
    # to _NMS_MATRIX_MAX candidates every overlap is computed at once (the
    # same float32 operations per pair, so the same bits; res10's
    # DetectionOutput on faces.jpg 2.45 → 2.2 ms), then only the greedy
    # pass loops.
    suppressed = np.zeros(order.size, dtype=bool)
    if order.size <= _NMS_MATRIX_MAX:
        over = _overlap_matrix(boxes, sizes) > threshold
        for i in range(order.size):
            if not suppressed[i]:
                kept.append(i)
                suppressed[i + 1:] |= over[i, i + 1:]
        return order[kept].tolist()
    for i in range(order.size):
        if suppressed[i]:
            continue
        kept.append(i)
        suppressed[i + 1:] |= jaccard_overlap(
            boxes[i], sizes[i], boxes[i + 1:], sizes[i + 1:]) > threshold
    return order[kept].tolist()


# NMS computes the whole overlap matrix up to this many candidates (a
# float32 matrix of 4 MiB), box by box beyond.
_NMS_MATRIX_MAX = 1024


def _overlap_matrix(boxes, sizes):
    """jaccard_overlap of every box (rows) with every box (columns)."""
    x1, y1, x2, y2 = (boxes[:, k] for k in range(4))
    apart = ((x1[None, :] > x2[:, None]) | (x2[None, :] < x1[:, None])
             | (y1[None, :] > y2[:, None]) | (y2[None, :] < y1[:, None]))
    iw = (np.minimum(x2[None, :], x2[:, None])
          - np.maximum(x1[None, :], x1[:, None]))
    ih = (np.minimum(y2[None, :], y2[:, None])
          - np.maximum(y1[None, :], y1[:, None]))
    inter = iw * ih
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / ((sizes[:, None] + sizes[None, :]) - inter)
    return np.where(~apart & (iw > 0) & (ih > 0), iou, F32(0))


def detection_output(loc, conf, priors, *, num_classes, share_location,
                     background_label_id, code_type, variance_in_target,
                     confidence_threshold, nms_threshold, eta, top_k,
                     keep_top_k):
    """SSD's DetectionOutput for a batch: a (1, 1, N, 7) float32 array.

    Args:
        loc: (num, P · L · 4) box offsets, L = 1 if ``share_location`` else
            ``num_classes``.
        conf: (num, P · num_classes) class scores.
        priors: (2, P · 4) prior boxes and variances (PriorBox's layout).
    Rows are [image, label, score, xmin, ymin, xmax, ymax]: per image, the
    classes in increasing label order, each class's boxes best first (with
    keep_top_k, the best keep_top_k of all classes, still grouped by class).
    An image set without any detection gives one row [i, -1, ...] per image.
    """
    num = loc.shape[0]
    num_priors = priors.shape[1] // 4
    loc_classes = 1 if share_location else num_classes
    loc = loc.reshape(num, num_priors, loc_classes, 4)
    conf = conf.reshape(num, num_priors, num_classes)
    prior_boxes_ = priors[0].reshape(num_priors, 4)
    variances = priors[1].reshape(num_priors, 4)
    rows = []
    for i in range(num):
        decoded = {}
        for c in range(loc_classes):
            label = -1 if share_location else c
            if label == background_label_id:
                continue
            decoded[label] = decode_boxes(loc[i, :, c], prior_boxes_,
                                          variances, code_type,
                                          variance_in_target)
        picks = {}
        for c in range(num_classes):
            if c == background_label_id:
                continue
            label = -1 if share_location else c
            if label not in decoded:
                continue
            boxes, sizes = decoded[label]
            picks[c] = nms_fast(boxes, sizes, conf[i, :, c],
                                confidence_threshold, nms_threshold, eta,
                                top_k)
        total = sum(len(v) for v in picks.values())
        if -1 < keep_top_k < total:
            pairs = [(conf[i, idx, c], c, idx) for c, kept in picks.items()
                     for idx in kept]
            order = sorted(range(len(pairs)), key=lambda j: -pairs[j][0])
            picks = {}
            for j in order[:keep_top_k]:
                _, c, idx = pairs[j]
                picks.setdefault(c, []).append(idx)
        for c in sorted(picks):
            boxes = decoded[-1 if share_location else c][0]
            for idx in picks[c]:
                rows.append((i, c, conf[i, idx, c], *boxes[idx]))
    if not rows:
        out = np.full((1, 1, num, 7), -1, dtype=F32)
        out[0, 0, :, 0] = np.arange(num)
        return out
    return np.array(rows, dtype=F32).reshape(1, 1, len(rows), 7)


# -- Faster R-CNN's region proposals (rbgirshick/py-faster-rcnn, lib/rpn) ----

def generate_anchors(base_size, ratios, scales):
    """py-faster-rcnn's anchors (A, 4), float64: per ratio r (area kept,
    sides rounded) and then per scale s, boxes centred on the
    base_size × base_size cell at the origin, corners inclusive."""
    base = np.array([0, 0, base_size - 1, base_size - 1], dtype=np.float64)

    def whctrs(anchor):
        w = anchor[2] - anchor[0] + 1
        h = anchor[3] - anchor[1] + 1
        return w, h, anchor[0] + 0.5 * (w - 1), anchor[1] + 0.5 * (h - 1)

    def make(ws, hs, cx, cy):
        ws, hs = ws[:, None], hs[:, None]
        return np.hstack((cx - 0.5 * (ws - 1), cy - 0.5 * (hs - 1),
                          cx + 0.5 * (ws - 1), cy + 0.5 * (hs - 1)))

    w, h, cx, cy = whctrs(base)
    ratios = np.asarray(ratios, dtype=np.float64)
    ws = np.round(np.sqrt(w * h / ratios))
    hs = np.round(ws * ratios)
    out = []
    for anchor in make(ws, hs, cx, cy):
        w, h, cx, cy = whctrs(anchor)
        scales = np.asarray(scales, dtype=np.float64)
        out.append(make(w * scales, h * scales, cx, cy))
    return np.vstack(out)


def rpn_proposals(scores, deltas, im_info, anchors, feat_stride, min_size,
                  pre_nms_topn, post_nms_topn, nms_thresh):
    """py-faster-rcnn's ProposalLayer.forward for one image.

    Args:
        scores: (A, H, W) foreground scores.
        deltas: (4A, H, W) box deltas.
        im_info: (height, width, scale) of the network input.
        anchors: (A, 4) from :func:`generate_anchors`.
    Returns:
        (boxes (R, 4), scores (R,)), float32: anchors shifted to every cell,
        moved by the deltas, clipped to the image, boxes smaller than
        min_size · scale dropped, the best pre_nms_topn (if > 0) kept, then
        NMS (IoU > nms_thresh suppressed, sides counted +1), then the first
        post_nms_topn (if > 0).
    """
    num_anchors, height, width = scores.shape
    shift_x, shift_y = np.meshgrid(np.arange(width) * feat_stride,
                                   np.arange(height) * feat_stride)
    shifts = np.stack([shift_x.ravel(), shift_y.ravel(),
                       shift_x.ravel(), shift_y.ravel()], axis=1)
    all_anchors = (anchors[None, :, :] + shifts[:, None, :]).reshape(-1, 4)
    dtype = deltas.dtype
    deltas = deltas.transpose(1, 2, 0).reshape(-1, 4)
    scores = scores.transpose(1, 2, 0).reshape(-1)
    boxes = all_anchors.astype(dtype)
    widths = boxes[:, 2] - boxes[:, 0] + dtype.type(1.0)
    heights = boxes[:, 3] - boxes[:, 1] + dtype.type(1.0)
    ctr_x = boxes[:, 0] + dtype.type(0.5) * widths
    ctr_y = boxes[:, 1] + dtype.type(0.5) * heights
    pred_cx = deltas[:, 0] * widths + ctr_x
    pred_cy = deltas[:, 1] * heights + ctr_y
    with np.errstate(over="ignore"):   # inf, as the fork's NumPy computes
        pred_w = np.exp(deltas[:, 2]) * widths
        pred_h = np.exp(deltas[:, 3]) * heights
    half = dtype.type(0.5)
    proposals = np.stack([pred_cx - half * pred_w, pred_cy - half * pred_h,
                          pred_cx + half * pred_w, pred_cy + half * pred_h],
                         axis=1)
    im_h, im_w, im_scale = (dtype.type(v) for v in im_info[:3])
    proposals[:, 0::2] = np.maximum(np.minimum(proposals[:, 0::2],
                                               im_w - 1), 0)
    proposals[:, 1::2] = np.maximum(np.minimum(proposals[:, 1::2],
                                               im_h - 1), 0)
    ws = proposals[:, 2] - proposals[:, 0] + 1
    hs = proposals[:, 3] - proposals[:, 1] + 1
    limit = min_size * im_scale
    keep = np.where((ws >= limit) & (hs >= limit))[0]
    proposals, scores = proposals[keep], scores[keep]
    order = scores.ravel().argsort()[::-1]
    if pre_nms_topn > 0:
        order = order[:pre_nms_topn]
    proposals, scores = proposals[order], scores[order]
    keep = _rcnn_nms(proposals.astype(np.float32), scores.astype(np.float32),
                     nms_thresh)
    if post_nms_topn > 0:
        keep = keep[:post_nms_topn]
    return proposals[keep].astype(F32), scores[keep].astype(F32)


def _rcnn_nms(boxes, scores, threshold):
    """Greedy NMS with pixel-inclusive areas ((x2 − x1 + 1)·(y2 − y1 + 1)),
    float32: a box is dropped when its IoU with a kept one is > threshold
    (py-faster-rcnn's nms kernels)."""
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = scores.argsort()[::-1]
    threshold = F32(threshold)
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(F32(0), np.minimum(x2[i], x2[rest])
                       - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(F32(0), np.minimum(y2[i], y2[rest])
                       - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        overlap = inter / (areas[i] + areas[rest] - inter)
        order = rest[overlap <= threshold]
    return np.array(keep, dtype=np.int64)
