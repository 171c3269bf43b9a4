"""Proposal (Faster R-CNN): py-faster-rcnn's ProposalLayer transliterated
as the reference, OpenCV's proposal_param form and the Python-layer form
(served without importing rpn.proposal_layer), errors."""
import sys

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.proto import caffe_pb2
from kaffe.testing.gradient import setup_layer


def anchors_reference(base_size=16, ratios=(0.5, 1, 2), scales=(8, 16, 32)):
    """py-faster-rcnn's generate_anchors, step by step."""
    base = np.array([1, 1, base_size, base_size]) - 1
    w, h = base[2] - base[0] + 1, base[3] - base[1] + 1
    cx, cy = base[0] + 0.5 * (w - 1), base[1] + 0.5 * (h - 1)
    out = []
    for r in ratios:
        ws = np.round(np.sqrt(w * h / r))
        hs = np.round(ws * r)
        for s in scales:
            sw, sh = ws * s, hs * s
            out.append([cx - 0.5 * (sw - 1), cy - 0.5 * (sh - 1),
                        cx + 0.5 * (sw - 1), cy + 0.5 * (sh - 1)])
    return np.array(out)


def proposals_reference(scores, deltas, info, stride, pre, post, thresh,
                        min_size=16, anchors=None):
    anchors = anchors_reference() if anchors is None else anchors
    A = len(anchors)
    fg = scores[:, A:]
    H, W = fg.shape[-2:]
    sx, sy = np.meshgrid(np.arange(W) * stride, np.arange(H) * stride)
    shifts = np.vstack((sx.ravel(), sy.ravel(), sx.ravel(),
                        sy.ravel())).transpose()
    all_anchors = (anchors.reshape(1, A, 4) + shifts.reshape(
        1, -1, 4).transpose(1, 0, 2)).reshape(-1, 4).astype(np.float32)
    d = deltas.transpose(0, 2, 3, 1).reshape(-1, 4)
    s = fg.transpose(0, 2, 3, 1).reshape(-1, 1)
    widths = all_anchors[:, 2] - all_anchors[:, 0] + 1.0
    heights = all_anchors[:, 3] - all_anchors[:, 1] + 1.0
    cx = all_anchors[:, 0] + 0.5 * widths
    cy = all_anchors[:, 1] + 0.5 * heights
    pcx, pcy = d[:, 0] * widths + cx, d[:, 1] * heights + cy
    pw, ph = np.exp(d[:, 2]) * widths, np.exp(d[:, 3]) * heights
    boxes = np.stack([pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw,
                      pcy + 0.5 * ph], 1)
    im = info[0]
    boxes[:, 0::2] = np.maximum(np.minimum(boxes[:, 0::2], im[1] - 1), 0)
    boxes[:, 1::2] = np.maximum(np.minimum(boxes[:, 1::2], im[0] - 1), 0)
    ws, hs = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    keep = np.where((ws >= min_size * im[2]) & (hs >= min_size * im[2]))[0]
    boxes, s = boxes[keep], s[keep]
    order = s.ravel().argsort()[::-1][:pre]
    boxes, s = boxes[order], s[order]
    # py_cpu_nms
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = s.ravel().argsort()[::-1]
    kept = []
    while order.size > 0:
        i = order[0]
        kept.append(i)
        xx1 = np.maximum(x1[i], x1[order[1:]])
        yy1 = np.maximum(y1[i], y1[order[1:]])
        xx2 = np.minimum(x2[i], x2[order[1:]])
        yy2 = np.minimum(y2[i], y2[order[1:]])
        inter = np.maximum(0.0, xx2 - xx1 + 1) * np.maximum(0.0, yy2 - yy1 + 1)
        ovr = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[np.where(ovr <= thresh)[0] + 1]
    kept = kept[:post]
    return boxes[kept], s[kept]


def rpn_inputs(seed=0, H=6, W=8, A=9):
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0, 1, (1, 2 * A, H, W)).astype(np.float32)
    deltas = (rng.standard_normal((1, 4 * A, H, W)) * 0.2).astype(np.float32)
    info = np.array([[H * 16, W * 16, 1.0]], dtype=np.float32)
    return [scores, deltas, info]


def test_anchors_are_py_faster_rcnns():
    from kaffe.ops.detection import generate_anchors
    anchors = generate_anchors(16, [0.5, 1, 2], [8, 16, 32])
    np.testing.assert_array_equal(anchors, anchors_reference())
    # the published first anchor of py-faster-rcnn
    np.testing.assert_array_equal(anchors[0], [-84, -40, 99, 55])


@pytest.mark.parametrize("pre, post, thresh", [(6000, 300, 0.7),
                                               (50, 10, 0.5)])
def test_proposal_param_form_matches_the_reference(pre, post, thresh):
    bottoms = rpn_inputs()
    text = (f'name: "p" type: "Proposal" proposal_param {{ feat_stride: 16 '
            f'pre_nms_topn: {pre} post_nms_topn: {post} nms_thresh: '
            f'{thresh} }}')
    _, _, top = setup_layer(text, bottoms, n_top=2, dtype=np.float32)
    boxes, scores = proposals_reference(*bottoms, 16, pre, post, thresh)
    assert top[0].shape == (len(boxes), 5) and len(boxes) > 1
    assert (top[0].data[:, 0] == 0).all()
    np.testing.assert_allclose(top[0].data[:, 1:], boxes, rtol=1e-6)
    np.testing.assert_array_equal(top[1].data, scores)


@pytest.mark.parametrize("phase, pre, post", [(caffe_pb2.TEST, 6000, 300),
                                              (caffe_pb2.TRAIN, 12000, 2000)])
def test_python_layer_form_is_served_without_importing(phase, pre, post):
    sys.modules.pop("rpn", None)
    bottoms = rpn_inputs(1)
    text = ('name: "proposal" type: "Python" python_param { module: '
            '"rpn.proposal_layer" layer: "ProposalLayer" param_str: '
            '"\'feat_stride\': 16" }')
    layer, _, top = setup_layer(text, bottoms, phase=phase, dtype=np.float32)
    assert "rpn" not in sys.modules
    assert layer.config.pre_nms_topn == pre
    assert layer.config.post_nms_topn == post
    boxes, _ = proposals_reference(*bottoms, 16, pre, post, 0.7)
    np.testing.assert_allclose(top[0].data[:, 1:], boxes, rtol=1e-6)


@pytest.mark.parametrize("param_str, scales", [
    ("'feat_stride': 16\\n'scales': (4, 8)", [4.0, 8.0]),
    ("'feat_stride': 16, 'scales': [2, 4, 8, 16]", [2.0, 4.0, 8.0, 16.0])])
def test_python_layer_scales(param_str, scales):
    text = ('name: "proposal" type: "Python" python_param { module: '
            f'"rpn.proposal_layer" layer: "ProposalLayer" param_str: '
            f'"{param_str}" }}')
    A = 3 * len(scales)
    layer, _, _ = setup_layer(text, rpn_inputs(2, A=A), dtype=np.float32)
    assert list(layer.config.scale) == scales
    assert len(layer.anchors) == A


@pytest.mark.parametrize("param_str, message", [
    ("'scales': (8, 16)", "must give 'feat_stride'"),
    ("'feat_stride': 16, 'anchors': 3", "does not read"),
    ("feat_stride 16", "cannot be read")])
def test_python_layer_param_str_errors(param_str, message):
    text = ('name: "proposal" type: "Python" python_param { module: '
            f'"rpn.proposal_layer" layer: "ProposalLayer" param_str: '
            f'"{param_str}" }}')
    with pytest.raises(KaffeConfigError, match=message) as info:
        setup_layer(text, rpn_inputs())
    assert info.value.field == "python_param.param_str"


def test_shape_errors_and_no_backward():
    scores, deltas, info = rpn_inputs()
    with pytest.raises(KaffeShapeError) as err:
        setup_layer('name: "p" type: "Proposal"', [scores[:, :10], deltas,
                                                   info])
    assert err.value.field == "bottom[0]"
    layer, bottom, top = setup_layer('name: "p" type: "Proposal"',
                                     [scores, deltas, info])
    with pytest.raises(KaffeConfigError):
        layer.Backward(top, [True, False, False], bottom)
    assert "6×8 cells × 9 anchors = 432 boxes" in layer.explain(bottom, top)
