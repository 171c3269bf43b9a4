"""Forward parity with OpenCV's Caffe importer for the fork detection layers
(PriorBox, Permute, Normalize, DetectionOutput, ROIPooling, PSROIPooling,
Proposal), a small SSD net blob by blob on random weights, and the real
res10 SSD face detector.

Where OpenCV departs from the forks these tests stay on the common ground,
and the layer tests (tests/layers/detection) check the fork's behaviour
against a reference written from its source: OpenCV ignores PriorBox's
img_size/img_h/img_w, does not truncate fractional min/max sizes, defaults
clip to true and needs variances given; its Permute needs every axis
listed; its Normalize has no per-channel scale with across_spatial; its
DetectionOutput pads the output with zero rows to keep_top_k (and orders
what keep_top_k keeps by score, where the fork groups it by class) and its
Proposal pads to post_nms_topn.
"""
import os

import numpy as np
import pytest

import kaffe
from kaffe.testing.parity import assert_close, opencv_net, saved_random_net

cv2 = pytest.importorskip(
    "cv2", reason="opencv-python-headless (test extra) not installed")

RES10 = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                     "models", "res10_ssd")
FACES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                     "data", "images", "faces.jpg")


def inputs(**shapes):
    return "".join(
        f'layer {{ name: "{name}" type: "Input" top: "{name}" input_param '
        f'{{ shape {{ {" ".join(f"dim: {d}" for d in shape)} }} }} }}\n'
        for name, shape in shapes.items())


def compare(tmp_path, key, text, feed, layers):
    """Run kaffe and OpenCV on the same saved net; {layer: (ours, cv's)}."""
    net, prototxt, weights = saved_random_net(tmp_path, key, text)
    reference = opencv_net(prototxt, weights, feed)
    for name, value in feed.items():
        net.blobs[name].data[...] = value
    net.forward()
    results = reference.forwardAndRetrieve(layers)
    return {layer: (net.blobs[net.top_names[layer][0]].data, blobs[0])
            for layer, blobs in zip(layers, results)}


def test_prior_box(tmp_path):
    rng = np.random.default_rng(0)
    feed = {"feat": rng.standard_normal((1, 4, 5, 7)).astype(np.float32),
            "data": rng.standard_normal((1, 3, 40, 56)).astype(np.float32)}
    text = inputs(feat=(1, 4, 5, 7), data=(1, 3, 40, 56)) + """
layer { name: "ssd" type: "PriorBox" bottom: "feat" bottom: "data" top: "ssd"
  prior_box_param { min_size: 10 max_size: 21 aspect_ratio: 2
    aspect_ratio: 3 flip: true clip: true variance: 0.1 variance: 0.1
    variance: 0.2 variance: 0.2 } }
layer { name: "two_sizes" type: "PriorBox" bottom: "feat" bottom: "data"
  top: "two_sizes" prior_box_param { min_size: 8 min_size: 16
    aspect_ratio: 2 flip: false clip: false variance: 0.2 step: 6
    offset: 0.3 } }
layer { name: "steps" type: "PriorBox" bottom: "feat" bottom: "data"
  top: "steps" prior_box_param { min_size: 12 max_size: 30 clip: false
    step_h: 7 step_w: 9 variance: 0.1 } }
"""
    for layer, (ours, theirs) in compare(tmp_path, "prior", text, feed,
                                         ["ssd", "two_sizes",
                                          "steps"]).items():
        assert ours.shape == theirs.shape
        assert_close(ours, theirs, layer)


def test_permute_and_normalize(tmp_path):
    x = np.random.default_rng(1).standard_normal((2, 6, 4, 5)).astype(
        np.float32)
    text = inputs(x=(2, 6, 4, 5)) + """
layer { name: "last" type: "Permute" bottom: "x" top: "last"
  permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "mixed" type: "Permute" bottom: "x" top: "mixed"
  permute_param { order: 1 order: 0 order: 3 order: 2 } }
layer { name: "per_pixel" type: "Normalize" bottom: "x" top: "per_pixel"
  norm_param { across_spatial: false channel_shared: false
    scale_filler { type: "gaussian" std: 2 } } }
layer { name: "per_image" type: "Normalize" bottom: "x" top: "per_image"
  norm_param { across_spatial: true channel_shared: true
    scale_filler { type: "constant" value: 3 } } }
layer { name: "shared" type: "Normalize" bottom: "x" top: "shared"
  norm_param { across_spatial: false channel_shared: true eps: 0.01 } }
"""
    for layer, (ours, theirs) in compare(
            tmp_path, "perm_norm", text, {"x": x},
            ["last", "mixed", "per_pixel", "per_image", "shared"]).items():
        assert ours.shape == theirs.shape
        assert_close(ours, theirs, layer)


ROIS = np.array([[0, 3.2, 4.6, 30.1, 20.5], [1, 0, 0, 63, 47],
                 [0, 40.5, 10.5, 44.5, 12.5], [1, -5, -8, 20, 70]],
                dtype=np.float32)


def test_roi_and_psroi_pooling(tmp_path):
    rng = np.random.default_rng(2)
    feed = {"x": rng.standard_normal((2, 18, 12, 16)).astype(np.float32),
            "rois": ROIS}
    text = inputs(x=(2, 18, 12, 16), rois=(4, 5)) + """
layer { name: "roi" type: "ROIPooling" bottom: "x" bottom: "rois" top: "roi"
  roi_pooling_param { pooled_h: 3 pooled_w: 4 spatial_scale: 0.25 } }
layer { name: "ps" type: "PSROIPooling" bottom: "x" bottom: "rois" top: "ps"
  psroi_pooling_param { spatial_scale: 0.25 output_dim: 2 group_size: 3 } }
"""
    for layer, (ours, theirs) in compare(tmp_path, "roi", text, feed,
                                         ["roi", "ps"]).items():
        assert ours.shape == theirs.shape
        assert_close(ours, theirs, layer)


def test_proposal(tmp_path):
    rng = np.random.default_rng(3)
    H, W = 6, 8
    feed = {"scores": rng.uniform(0, 1, (1, 18, H, W)).astype(np.float32),
            "deltas": (rng.standard_normal((1, 36, H, W)) * 0.1).astype(
                np.float32),
            "im_info": np.array([[H * 16, W * 16, 1.0]], dtype=np.float32)}
    text = inputs(scores=(1, 18, H, W), deltas=(1, 36, H, W),
                  im_info=(1, 3)) + """
layer { name: "proposal" type: "Proposal" bottom: "scores" bottom: "deltas"
  bottom: "im_info" top: "rois"
  proposal_param { feat_stride: 16 scale: 8 scale: 16 scale: 32 ratio: 0.5
    ratio: 1 ratio: 2 pre_nms_topn: 100 post_nms_topn: 20 nms_thresh: 0.7
    min_size: 16 } }
"""
    ours, theirs = compare(tmp_path, "proposal", text, feed,
                           ["proposal"])["proposal"]
    theirs = theirs.reshape(-1, 5)
    assert 1 < len(ours) <= len(theirs)
    assert_close(ours, theirs[:len(ours)], "proposal")
    assert (theirs[len(ours):] == 0).all()     # OpenCV's padding


def _by_image_label_score(rows):
    return rows[np.lexsort((-rows[:, 2], rows[:, 1], rows[:, 0]))]


def check_detections(ours, theirs, what):
    """The same rows. OpenCV pads to keep_top_k with zero rows, and after a
    keep_top_k cut orders the rows by score across classes where the fork
    groups them by class: rows are compared sorted by (image, label,
    score)."""
    ours, theirs = ours.reshape(-1, 7), theirs.reshape(-1, 7)
    assert len(ours) <= len(theirs), what
    assert (theirs[len(ours):] == 0).all(), what
    ours = _by_image_label_score(ours)
    theirs = _by_image_label_score(theirs[:len(ours)])
    np.testing.assert_array_equal(ours[:, :2], theirs[:, :2])
    np.testing.assert_allclose(ours[:, 2:], theirs[:, 2:],
                               rtol=1e-5, atol=1e-5, err_msg=what)


TINY_SSD = inputs(data=(1, 3, 48, 64)) + """
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 8 kernel_size: 3 stride: 2 pad: 1
    weight_filler { type: "gaussian" std: 0.3 }
    bias_filler { type: "gaussian" std: 0.1 } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "norm" type: "Normalize" bottom: "conv1" top: "norm"
  norm_param { across_spatial: false channel_shared: false
    scale_filler { type: "constant" value: 20 } } }
layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2"
  convolution_param { num_output: 8 kernel_size: 3 stride: 2 pad: 1
    weight_filler { type: "gaussian" std: 0.3 } } }
""" + "".join(f"""
layer {{ name: "{src}_loc" type: "Convolution" bottom: "{src}" top: "{src}_loc"
  convolution_param {{ num_output: {4 * p} kernel_size: 3 pad: 1
    weight_filler {{ type: "gaussian" std: 0.1 }} }} }}
layer {{ name: "{src}_loc_perm" type: "Permute" bottom: "{src}_loc"
  top: "{src}_loc_perm" permute_param {{ order: 0 order: 2 order: 3 order: 1 }} }}
layer {{ name: "{src}_loc_flat" type: "Flatten" bottom: "{src}_loc_perm"
  top: "{src}_loc_flat" }}
layer {{ name: "{src}_conf" type: "Convolution" bottom: "{src}"
  top: "{src}_conf" convolution_param {{ num_output: {3 * p} kernel_size: 3
    pad: 1 weight_filler {{ type: "gaussian" std: 0.02 }} }} }}
layer {{ name: "{src}_conf_perm" type: "Permute" bottom: "{src}_conf"
  top: "{src}_conf_perm" permute_param {{ order: 0 order: 2 order: 3 order: 1 }} }}
layer {{ name: "{src}_conf_flat" type: "Flatten" bottom: "{src}_conf_perm"
  top: "{src}_conf_flat" }}
layer {{ name: "{src}_prior" type: "PriorBox" bottom: "{src}" bottom: "data"
  top: "{src}_prior" prior_box_param {{ {prior} clip: false variance: 0.1
    variance: 0.1 variance: 0.2 variance: 0.2 }} }}
""" for src, p, prior in [
    ("norm", 4, "min_size: 10 max_size: 20 aspect_ratio: 2 flip: true"),
    ("conv2", 6, "min_size: 20 max_size: 40 aspect_ratio: 2 aspect_ratio: 3 "
                 "flip: true")]) + """
layer { name: "loc" type: "Concat" bottom: "norm_loc_flat"
  bottom: "conv2_loc_flat" top: "loc" concat_param { axis: 1 } }
layer { name: "conf" type: "Concat" bottom: "norm_conf_flat"
  bottom: "conv2_conf_flat" top: "conf" concat_param { axis: 1 } }
layer { name: "priors" type: "Concat" bottom: "norm_prior"
  bottom: "conv2_prior" top: "priors" concat_param { axis: 2 } }
layer { name: "conf_reshape" type: "Reshape" bottom: "conf"
  top: "conf_reshape" reshape_param { shape { dim: 0 dim: -1 dim: 3 } } }
layer { name: "conf_softmax" type: "Softmax" bottom: "conf_reshape"
  top: "conf_softmax" softmax_param { axis: 2 } }
layer { name: "conf_flatten" type: "Flatten" bottom: "conf_softmax"
  top: "conf_flatten" }
layer { name: "detection_out" type: "DetectionOutput" bottom: "loc"
  bottom: "conf_flatten" bottom: "priors" top: "detection_out"
  detection_output_param { num_classes: 3 share_location: true
    background_label_id: 0 nms_param { nms_threshold: 0.45 top_k: 100 }
    code_type: CENTER_SIZE keep_top_k: 50 confidence_threshold: 0.2 } }
"""


def test_small_ssd_blob_by_blob(tmp_path):
    image = np.random.default_rng(4).uniform(-1, 1, (1, 3, 48, 64)).astype(
        np.float32)
    net, prototxt, weights = saved_random_net(tmp_path, "tiny_ssd", TINY_SSD)
    reference = opencv_net(prototxt, weights, {"data": image})
    net.blobs["data"].data[...] = image
    net.forward()
    layers = [name for name in net._layer_names
              if net.layer_dict[name].type not in ("Input", "Split")
              and name != "conv1"]   # overwritten in place by relu1
    results = dict(zip(layers, reference.forwardAndRetrieve(layers)))
    for name in layers:
        ours = net.blobs[net.top_names[name][0]].data
        theirs = results[name][0]
        if name == "detection_out":
            check_detections(ours, theirs, name)
            assert ours.shape[2] > 1       # something was detected
        else:
            assert_close(ours, theirs, name)


def res10_or_skip():
    prototxt = os.path.join(RES10, "deploy.prototxt")
    weights = os.path.join(RES10, "res10_300x300_ssd_iter_140000.caffemodel")
    if not (os.path.isfile(prototxt) and os.path.isfile(weights)
            and os.path.isfile(FACES)):
        pytest.skip("../shared (res10_ssd model and faces.jpg) is not here")
    return prototxt, weights


def test_res10_face_detector_gives_opencvs_detections():
    prototxt, weights = res10_or_skip()
    image = cv2.imread(FACES)
    blob = cv2.dnn.blobFromImage(image, 1.0, (300, 300), (104.0, 177.0, 123.0))
    net = kaffe.Net(prototxt, kaffe.TEST, weights=weights)
    net.blobs["data"].data[...] = blob
    ours = net.forward()["detection_out"].reshape(-1, 7)
    reference = cv2.dnn.readNetFromCaffe(prototxt, weights)
    reference.setInput(blob)
    theirs = reference.forward().reshape(-1, 7)
    confident = ours[ours[:, 2] > 0.5]
    assert len(confident) == (theirs[:, 2] > 0.5).sum() > 0
    np.testing.assert_allclose(confident[:, 3:],
                               theirs[theirs[:, 2] > 0.5][:, 3:], atol=1e-4)
    check_detections(ours, theirs, "detection_out")


TINY_FASTER_RCNN = inputs(data=(1, 3, 64, 80), im_info=(1, 3)) + """
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 8 kernel_size: 3 stride: 4 pad: 1
    weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2"
  convolution_param { num_output: 8 kernel_size: 3 stride: 4 pad: 1
    weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "rpn_cls_score" type: "Convolution" bottom: "conv2"
  top: "rpn_cls_score" convolution_param { num_output: 18 kernel_size: 1
    weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "rpn_bbox_pred" type: "Convolution" bottom: "conv2"
  top: "rpn_bbox_pred" convolution_param { num_output: 36 kernel_size: 1
    weight_filler { type: "gaussian" std: 0.01 } } }
layer { name: "rpn_cls_score_reshape" type: "Reshape" bottom: "rpn_cls_score"
  top: "rpn_cls_score_reshape"
  reshape_param { shape { dim: 0 dim: 2 dim: -1 dim: 0 } } }
layer { name: "rpn_cls_prob" type: "Softmax" bottom: "rpn_cls_score_reshape"
  top: "rpn_cls_prob" }
layer { name: "rpn_cls_prob_reshape" type: "Reshape" bottom: "rpn_cls_prob"
  top: "rpn_cls_prob_reshape"
  reshape_param { shape { dim: 0 dim: 18 dim: -1 dim: 0 } } }
layer { name: "proposal" type: "Python" bottom: "rpn_cls_prob_reshape"
  bottom: "rpn_bbox_pred" bottom: "im_info" top: "rois"
  python_param { module: "rpn.proposal_layer" layer: "ProposalLayer"
    param_str: "'feat_stride': 16" } }
layer { name: "roi_pool" type: "ROIPooling" bottom: "conv2" bottom: "rois"
  top: "pool" roi_pooling_param { pooled_w: 3 pooled_h: 3
    spatial_scale: 0.0625 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc"
  inner_product_param { num_output: 5
    weight_filler { type: "gaussian" std: 0.3 } } }
"""


def test_faster_rcnn_with_py_faster_rcnns_python_proposal(tmp_path):
    # kaffe serves the Python layer itself; OpenCV's importer cannot, so its
    # copy of the net names OpenCV's Proposal with the same settings.
    net, prototxt, weights = saved_random_net(tmp_path, "faster_rcnn",
                                              TINY_FASTER_RCNN)
    opencv_text = TINY_FASTER_RCNN.replace(
        'type: "Python"', 'type: "Proposal"').replace(
        """python_param { module: "rpn.proposal_layer" layer: "ProposalLayer"
    param_str: "'feat_stride': 16" }""",
        "proposal_param { feat_stride: 16 ratio: 0.5 ratio: 1 ratio: 2 "
        "scale: 8 scale: 16 scale: 32 }")
    assert "Proposal" in opencv_text and "python_param" not in opencv_text
    opencv_prototxt = tmp_path / "faster_rcnn_opencv.prototxt"
    opencv_prototxt.write_text(opencv_text)
    rng = np.random.default_rng(5)
    feed = {"data": rng.uniform(-1, 1, (1, 3, 64, 80)).astype(np.float32),
            "im_info": np.array([[64, 80, 1.0]], dtype=np.float32)}
    reference = opencv_net(opencv_prototxt, weights, feed)
    for name, value in feed.items():
        net.blobs[name].data[...] = value
    net.forward()
    layers = ["rpn_cls_prob_reshape", "proposal", "roi_pool", "fc"]
    results = dict(zip(layers, reference.forwardAndRetrieve(layers)))
    rows = len(net.blobs["rois"].data)
    assert rows > 1
    for name in layers:
        ours = net.blobs[net.top_names[name][0]].data
        theirs = results[name][0]
        if name != "rpn_cls_prob_reshape":      # OpenCV pads to 300 rois
            theirs = theirs.reshape((-1,) + ours.shape[1:])[:rows]
        assert_close(ours, theirs, name)
