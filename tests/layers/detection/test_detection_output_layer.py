"""DetectionOutput (SSD fork): a reference written box by box from the
fork's detection_output_layer.cpp and bbox_util.cpp (decode, per-class
ApplyNMSFast, keep_top_k), every code type, shared and per-class boxes,
adaptive NMS, the empty result, errors."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import check_layer_error, setup_layer

check_error = partial(check_layer_error, layer="det")
f32 = np.float32


def decode(prior, var, loc, code, in_target):
    px1, py1, px2, py2 = prior
    if in_target:
        var = [f32(1)] * 4
    if code == "CORNER":
        return [prior[k] + var[k] * loc[k] for k in range(4)]
    pw, ph = px2 - px1, py2 - py1
    if code == "CENTER_SIZE":
        cx = f32((np.float64(px1 + px2)) / 2)
        cy = f32((np.float64(py1 + py2)) / 2)
        dcx = var[0] * loc[0] * pw + cx
        dcy = var[1] * loc[1] * ph + cy
        dw = f32(np.exp(var[2] * loc[2])) * pw
        dh = f32(np.exp(var[3] * loc[3])) * ph
        return [f32(np.float64(dcx) - np.float64(dw) / 2),
                f32(np.float64(dcy) - np.float64(dh) / 2),
                f32(np.float64(dcx) + np.float64(dw) / 2),
                f32(np.float64(dcy) + np.float64(dh) / 2)]
    size = [pw, ph, pw, ph]
    return [prior[k] + var[k] * loc[k] * size[k] for k in range(4)]


def area(b):
    if b[2] < b[0] or b[3] < b[1]:
        return f32(0)
    return (b[2] - b[0]) * (b[3] - b[1])


def jaccard(a, b):
    if b[0] > a[2] or b[2] < a[0] or b[1] > a[3] or b[3] < a[1]:
        return f32(0)
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw > 0 and ih > 0:
        inter = iw * ih
        return inter / (area(a) + area(b) - inter)
    return f32(0)


def nms(boxes, scores, score_thr, nms_thr, eta, top_k):
    pairs = [(s, i) for i, s in enumerate(scores) if s > score_thr]
    pairs.sort(key=lambda p: -p[0])          # stable: ties keep index order
    if -1 < top_k < len(pairs):
        pairs = pairs[:top_k]
    kept, threshold = [], f32(nms_thr)
    for _, i in pairs:
        if all(jaccard(boxes[i], boxes[k]) <= threshold for k in kept):
            kept.append(i)
            if eta < 1 and threshold > 0.5:
                threshold = threshold * f32(eta)
    return kept


def reference(loc, conf, priors, num_classes, share, bg, code, in_target,
              score_thr, nms_thr, eta, top_k, keep_top_k):
    num = loc.shape[0]
    P = priors.shape[-1] // 4
    L = 1 if share else num_classes
    loc = loc.reshape(num, P, L, 4).astype(f32)
    conf = conf.reshape(num, P, num_classes).astype(f32)
    pri = priors.reshape(2, P, 4).astype(f32)
    rows = []
    for i in range(num):
        decoded = {}
        for c in range(L):
            label = -1 if share else c
            if label == bg:
                continue
            decoded[label] = [decode(list(pri[0, p]), list(pri[1, p]),
                                     list(loc[i, p, c]), code, in_target)
                              for p in range(P)]
        picks = {}
        for c in range(num_classes):
            label = -1 if share else c
            if c == bg or label not in decoded:
                continue
            picks[c] = nms(decoded[label], list(conf[i, :, c]), score_thr,
                           nms_thr, eta, top_k)
        if -1 < keep_top_k < sum(map(len, picks.values())):
            pairs = sorted(((conf[i, p, c], c, p) for c in picks
                            for p in picks[c]), key=lambda t: -t[0])
            picks = {}
            for _, c, p in pairs[:keep_top_k]:
                picks.setdefault(c, []).append(p)
        for c in sorted(picks):
            for p in picks[c]:
                box = decoded[-1 if share else c][p]
                rows.append([i, c, conf[i, p, c]] + box)
    if not rows:
        out = np.full((1, 1, num, 7), -1, dtype=f32)
        out[0, 0, :, 0] = np.arange(num)
        return out
    return np.array(rows, dtype=f32)[None, None]


def random_inputs(rng, num, P, num_classes, share):
    centers = rng.uniform(0.2, 0.8, (P, 2))
    sizes = rng.uniform(0.05, 0.4, (P, 2))
    boxes = np.concatenate([centers - sizes / 2, centers + sizes / 2], 1)
    priors = np.stack([boxes.ravel(),
                       np.tile([0.1, 0.1, 0.2, 0.2], P)])[None]
    L = 1 if share else num_classes
    loc = rng.standard_normal((num, P * L * 4)) * 0.5
    logits = rng.standard_normal((num, P, num_classes)) * 2
    conf = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return [x.astype(f32) for x in (loc, conf.reshape(num, -1), priors)]


def det_text(body):
    return f'name: "det" type: "DetectionOutput" ' \
           f'detection_output_param {{ {body} }}'


CASES = [
    # SSD300's own settings.
    (dict(num_classes=3, share=True, bg=0, code="CENTER_SIZE",
          in_target=False, score_thr=0.01, nms_thr=0.45, eta=1.0, top_k=40,
          keep_top_k=25), 1),
    # Per-class boxes, no background, adaptive NMS, variances in target.
    (dict(num_classes=3, share=False, bg=-1, code="CORNER", in_target=True,
          score_thr=0.2, nms_thr=0.7, eta=0.8, top_k=-1, keep_top_k=-1), 2),
    # CORNER_SIZE, two images, keep_top_k picking across classes.
    (dict(num_classes=4, share=True, bg=0, code="CORNER_SIZE",
          in_target=False, score_thr=0.05, nms_thr=0.3, eta=1.0, top_k=10,
          keep_top_k=7), 2),
    # Nothing above the threshold.
    (dict(num_classes=2, share=True, bg=0, code="CENTER_SIZE",
          in_target=False, score_thr=0.9999, nms_thr=0.45, eta=1.0,
          top_k=-1, keep_top_k=-1), 2),
]


def body_of(a):
    body = (f"num_classes: {a['num_classes']} share_location: "
            f"{str(a['share']).lower()} background_label_id: {a['bg']} "
            f"code_type: {a['code']} variance_encoded_in_target: "
            f"{str(a['in_target']).lower()} confidence_threshold: "
            f"{a['score_thr']} keep_top_k: {a['keep_top_k']} nms_param {{ "
            f"nms_threshold: {a['nms_thr']} eta: {a['eta']}")
    if a["top_k"] > -1:
        body += f" top_k: {a['top_k']}"
    return body + " }"


@pytest.mark.parametrize("args, num", CASES)
def test_forward_matches_the_forks_reference(args, num):
    rng = np.random.default_rng(num + args["num_classes"])
    bottoms = random_inputs(rng, num, 60, args["num_classes"], args["share"])
    layer, _, top = setup_layer(det_text(body_of(args)), bottoms,
                                dtype=np.float32)
    expected = reference(*bottoms, **args)
    assert top[0].shape == expected.shape
    np.testing.assert_array_equal(top[0].data, expected)


def test_nms_and_thresholds_on_hand_made_boxes():
    # Three priors: two nearly identical boxes and one apart; offsets 0.
    boxes = [[0.1, 0.1, 0.5, 0.5], [0.11, 0.1, 0.5, 0.5], [0.6, 0.6, 0.9, 0.9]]
    priors = np.array([np.ravel(boxes), [0.1, 0.1, 0.2, 0.2] * 3])[None]
    conf = np.array([[0.1, 0.9, 0.2, 0.8, 0.95, 0.05]])   # (P=3) × 2 classes
    loc = np.zeros((1, 12))
    _, _, top = setup_layer(det_text(
        "num_classes: 2 code_type: CENTER_SIZE confidence_threshold: 0.5 "
        "nms_param { nms_threshold: 0.45 }"), [loc, conf, priors],
        dtype=np.float32)
    out = top[0].data[0, 0]
    # Box 1 (0.8) overlaps box 0 (0.9) and is suppressed; box 2's class-1
    # score 0.05 is below the threshold.
    np.testing.assert_allclose(out, [[0, 1, 0.9, 0.1, 0.1, 0.5, 0.5]],
                               rtol=1e-6)


def test_top_shape_before_the_forward_and_explain():
    rng = np.random.default_rng(0)
    bottoms = random_inputs(rng, 1, 10, 2, True)
    layer, bottom, top = setup_layer(det_text(
        "num_classes: 2 confidence_threshold: 0.01 keep_top_k: 200 "
        "nms_param { nms_threshold: 0.45 top_k: 400 }"), bottoms)
    text = layer.explain(bottom, top)
    assert "10 priors × 2 classes" in text
    assert "score > 0.01, best 400, NMS IoU > 0.45" in text
    assert "keep the best 200 per image" in text


def test_no_backward():
    rng = np.random.default_rng(0)
    layer, bottom, top = setup_layer(det_text("num_classes: 2"),
                                     random_inputs(rng, 1, 4, 2, True))
    assert not layer.allow_force_backward(0)
    with pytest.raises(KaffeConfigError) as info:
        layer.Backward(top, [True, False, False], bottom)
    assert info.value.field == "propagate_down"


@pytest.mark.parametrize("body, field, received", [
    ("share_location: true", "detection_output_param.num_classes", "'none'"),
    ("num_classes: 2 nms_param { eta: 0 }",
     "detection_output_param.nms_param.eta", "0.0"),
    ("num_classes: 2 normalized_bbox: false",
     "detection_output_param.normalized_bbox", "False"),
    # The fork decodes shared boxes under label -1, skips -1 as background
    # and then aborts ("Could not find location predictions").
    ("num_classes: 2 background_label_id: -1",
     "detection_output_param.background_label_id", "-1"),
])
def test_config_errors(body, field, received):
    rng = np.random.default_rng(0)
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(det_text(body), random_inputs(rng, 1, 4, 2, True))
    if received is None:
        assert info.value.field == field
    else:
        check_error(info, field, received)


def test_save_output_param_as_ssds_deploy_files_have_it(caplog):
    # SSD's published deploy.prototxt keeps a label_map_file there; with no
    # output_directory the fork writes nothing, and neither does kaffe.
    rng = np.random.default_rng(0)
    bottoms = random_inputs(rng, 1, 6, 2, True)
    plain = setup_layer(det_text("num_classes: 2"), bottoms)[2][0].data
    with caplog.at_level("WARNING", logger="kaffe"):
        _, _, top = setup_layer(det_text(
            "num_classes: 2 save_output_param { label_map_file: "
            "'data/VOC0712/labelmap_voc.prototxt' }"), bottoms)
    assert not caplog.records
    np.testing.assert_array_equal(top[0].data, plain)
    # With an output directory the fork would write files: kaffe says so.
    with caplog.at_level("WARNING", logger="kaffe"):
        _, _, top = setup_layer(det_text(
            "num_classes: 2 visualize: true save_output_param { "
            "output_directory: 'results' output_format: 'VOC' }"), bottoms)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "output_directory" in messages and "visualize" in messages
    np.testing.assert_array_equal(top[0].data, plain)


def test_shape_errors():
    rng = np.random.default_rng(0)
    loc, conf, priors = random_inputs(rng, 1, 4, 2, True)
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(det_text("num_classes: 3"), [loc, conf, priors])
    assert info.value.field == "bottom[1]"
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(det_text("num_classes: 2"), [loc[:, :-4], conf, priors])
    assert info.value.field == "bottom[0]"
