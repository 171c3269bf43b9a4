"""Proposal (Faster R-CNN's region proposal layer): kaffe's own
implementation of py-faster-rcnn's Python layer rpn.proposal_layer, also
reachable as ``type: "Proposal"`` with OpenCV's proposal_param."""
import ast

import numpy as np

from kaffe.core.layer import Layer
from kaffe.core.registry import register_layer
from kaffe.layers.common.python_layer import register_python_layer
from kaffe.ops.detection import generate_anchors, rpn_proposals
from kaffe.proto import caffe_pb2

FIELD = "proposal_param"
# py-faster-rcnn's cfg.TRAIN / cfg.TEST values for its Python layer.
_RCNN_CFG = {caffe_pb2.TRAIN: dict(pre_nms_topn=12000, post_nms_topn=2000),
             caffe_pb2.TEST: dict(pre_nms_topn=6000, post_nms_topn=300)}


@register_layer("Proposal")
class ProposalLayer(Layer):
    """Region proposals: anchors at every cell of the RPN's maps, moved by
    the predicted deltas, clipped, filtered, ranked and de-duplicated.

    As py-faster-rcnn's lib/rpn/proposal_layer.py (with its
    generate_anchors, bbox_transform_inv, clip_boxes and NMS): anchors from
    base_size (16), ratio (0.5, 1, 2) and scale (8, 16, 32); boxes with a
    side under min_size · im_info[2] dropped; best pre_nms_topn (6000) by
    score; NMS at nms_thresh (0.7, IoU with +1 pixel sides); first
    post_nms_topn (300).
    Reads proposal_param (OpenCV's schema): feat_stride (16), base_size,
    min_size (16), ratio, scale, pre_nms_topn, post_nms_topn, nms_thresh.
    A ``type: "Python"`` layer with python_param { module:
    "rpn.proposal_layer" layer: "ProposalLayer" } is served by this class
    without importing anything: its param_str ("'feat_stride': 16", with
    optional 'scales' and 'ratios') is read as py-faster-rcnn reads it and
    the top-N limits follow its config for the phase (TRAIN 12000/2000,
    TEST 6000/300).
    Shape: bottom[0] (1, 2A, H, W) scores (background A maps, then
    foreground), bottom[1] (1, 4A, H, W) deltas, bottom[2] (1, 3) im_info
    (height, width, scale) → top[0] (R, 5) rows (0, x1, y1, x2, y2) and
    optional top[1] (R, 1) scores; R is known after the forward (before it:
    1, as in py-faster-rcnn).
    Backward: none (py-faster-rcnn's does nothing); a gradient request into
    an input is an error.
    """

    exact_num_bottom_blobs = 3
    min_top_blobs = 1
    # For kaffe explain: ranking and NMS use every input.
    receptive_field_rule = "whole"
    max_top_blobs = 2

    def setup(self, bottom, top):
        config = self.proposal_config()
        for name in ("feat_stride", "base_size"):
            if not getattr(config, name) > 0:
                raise self.config_error("must be > 0",
                                        field=f"{FIELD}.{name}",
                                        received=getattr(config, name))
        self.config = config
        ratios = list(config.ratio) or [0.5, 1.0, 2.0]
        scales = list(config.scale) or [8.0, 16.0, 32.0]
        self.anchors = generate_anchors(config.base_size, ratios, scales)

    def proposal_config(self):
        """The ProposalParameter in force (from param_str for the Python
        layer form)."""
        if self.layer_param.type != "Python":
            return self.layer_param.proposal_param
        config = caffe_pb2.ProposalParameter(
            **_RCNN_CFG[self.phase], nms_thresh=0.7, min_size=16)
        values = self._param_str_dict()
        unknown = set(values) - {"feat_stride", "scales", "ratios"}
        if unknown:
            raise self.config_error(
                "has keys py-faster-rcnn's ProposalLayer does not read",
                field="python_param.param_str", received=sorted(unknown),
                expected="feat_stride, scales, ratios")
        if "feat_stride" not in values:
            raise self.config_error("must give 'feat_stride'",
                                    field="python_param.param_str",
                                    received=self.layer_param.python_param
                                    .param_str)
        config.feat_stride = int(values["feat_stride"])
        config.scale.extend(float(v) for v in values.get("scales", ()))
        config.ratio.extend(float(v) for v in values.get("ratios", ()))
        return config

    def _param_str_dict(self):
        """py-faster-rcnn's YAML param_str ("'feat_stride': 16") as a dict,
        read as Python literals (one mapping, or one key per line)."""
        text = self.layer_param.python_param.param_str.strip()
        try:
            value = ast.literal_eval("{" + text + "}")
            if isinstance(value, dict):
                return {str(k): v for k, v in value.items()}
        except (ValueError, SyntaxError):
            pass
        values = {}
        for line in text.splitlines():
            if not line.strip():
                continue
            key, sep, rest = line.partition(":")
            try:
                if not sep:
                    raise ValueError(line)
                values[key.strip().strip("'\"")] = ast.literal_eval(
                    rest.strip())
            except (ValueError, SyntaxError):
                raise self.config_error(
                    "cannot be read as py-faster-rcnn's 'key': value "
                    "settings", field="python_param.param_str",
                    received=text,
                    fix="write e.g. param_str: \"'feat_stride': 16\"") \
                    from None
        return values

    def allow_force_backward(self, bottom_index):
        return False

    def reshape(self, bottom, top):
        scores, deltas, info = bottom
        num_anchors = len(self.anchors)
        if scores.num_axes != 4 or scores.shape[0] != 1:
            raise self.shape_error(
                "must be (1, 2A, H, W): one image at a time, as in "
                "py-faster-rcnn", field="bottom[0]",
                received=f"shape {scores.shape}")
        if scores.shape[1] != 2 * num_anchors:
            raise self.shape_error(
                "must have 2 score maps per anchor", field="bottom[0]",
                received=f"shape {scores.shape}",
                expected=f"{2 * num_anchors} channels ({num_anchors} "
                         f"anchors)")
        if deltas.shape != (1, 4 * num_anchors) + scores.shape[2:]:
            raise self.shape_error(
                "must have 4 delta maps per anchor, the size of the scores",
                field="bottom[1]", received=f"shape {deltas.shape}",
                expected=f"(1, {4 * num_anchors}, {scores.shape[2]}, "
                         f"{scores.shape[3]})")
        if info.count < 3:
            raise self.shape_error(
                "must hold (height, width, scale)", field="bottom[2]",
                received=f"shape {info.shape}")
        if top[0].num_axes != 2 or top[0].shape[1] != 5:
            top[0].reshape((1, 5))
        if len(top) > 1 and top[1].num_axes != 2:
            top[1].reshape((1, 1))

    def forward(self, bottom, top):
        c = self.config
        num_anchors = len(self.anchors)
        boxes, scores = rpn_proposals(
            np.asarray(bottom[0].data)[0, num_anchors:],
            np.asarray(bottom[1].data)[0],
            np.asarray(bottom[2].data).reshape(-1)[:3], self.anchors,
            c.feat_stride, c.min_size, c.pre_nms_topn, c.post_nms_topn,
            c.nms_thresh)
        top[0].reshape((len(boxes), 5))
        top[0].data[:, 0] = 0
        top[0].data[:, 1:] = boxes
        if len(top) > 1:
            top[1].reshape((len(boxes), 1))
            top[1].data[:, 0] = scores

    def backward(self, top, propagate_down, bottom):
        for i, down in enumerate(propagate_down):
            if down:
                raise self.no_gradient_error(
                    i, ("the scores", "the box deltas", "im_info")[i])

    def explain(self, bottoms, tops):
        """The proposal pipeline's numbers, for ``kaffe explain``."""
        c = self.config
        h, w = bottoms[0].shape[2:4]
        anchors = len(self.anchors)
        return (f"{self.name}: {h}×{w} cells × {anchors} anchors = "
                f"{h * w * anchors} boxes (stride {c.feat_stride}); drop "
                f"sides < {c.min_size}·scale, best {c.pre_nms_topn}, NMS IoU "
                f"> {c.nms_thresh:g}, first {c.post_nms_topn} → (R, 5)")


def _from_python_layer(layer_param, *, dtype, source):
    return ProposalLayer(layer_param, dtype=dtype, source=source)


register_python_layer("rpn.proposal_layer", "ProposalLayer",
                      _from_python_layer)
