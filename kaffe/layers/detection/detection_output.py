"""DetectionOutput (SSD fork, weiliu89/caffe ssd branch): decode SSD's box
predictions and keep the best boxes per class by non-maximum suppression."""
import logging

import numpy as np

from kaffe.core.layer import Layer
from kaffe.core.registry import register_layer
from kaffe.ops.detection import detection_output
from kaffe.proto import caffe_pb2

FIELD = "detection_output_param"
_CODE = caffe_pb2.PriorBoxParameter.CodeType
log = logging.getLogger("kaffe")
_FLT_MAX = float(np.finfo(np.float32).max)


@register_layer("DetectionOutput")
class DetectionOutputLayer(Layer):
    """Turns location offsets, class scores and prior boxes into detections.

    From the SSD fork (weiliu89/caffe, ssd branch), as its
    detection_output_layer.cpp and util/bbox_util.cpp compute them.
    Reads detection_output_param: num_classes (required), share_location
    (true: one box per prior for all classes), background_label_id (0; -1:
    none), code_type (CORNER, CENTER_SIZE or CORNER_SIZE), variance_encoded_
    in_target (false), confidence_threshold (unset: every score),
    nms_param { nms_threshold (0.3), top_k (unset: all), eta (1) },
    keep_top_k (-1: all). The fork's side effects are not reproduced, with
    a warning: results files (save_output_param with an output_directory;
    without one the fork writes nothing either) and visualize's window.
    OpenCV's normalized_bbox: false is refused by name.
    Shape: bottom[0] loc (N, P·L·4) (L = 1 if share_location else
    num_classes), bottom[1] conf (N, P·num_classes), bottom[2] priors
    (1, 2, P·4) → top (1, 1, D, 7), rows [image, label, score, xmin, ymin,
    xmax, ymax], D found by the forward (one row of -1 per image, image
    index first, when nothing is detected). Reshape alone leaves it
    (1, 1, 1, 7), as in the fork.
    Backward: none (the fork has none); a gradient request is an error.
    """

    exact_num_bottom_blobs = 3
    exact_num_top_blobs = 1
    # For kaffe explain: NMS lets every row depend on every input.
    receptive_field_rule = "whole"

    def setup(self, bottom, top):
        p = self.layer_param.detection_output_param
        if not p.HasField("num_classes"):
            raise self.config_error("must be given",
                                    field=f"{FIELD}.num_classes",
                                    received="none",
                                    fix="add num_classes: <classes, "
                                        "background included>")
        # Side effects of the fork's layer that do not change its output:
        # results files (only with an output_directory; SSD's published
        # deploy files carry a save_output_param holding just a
        # label_map_file) and a display window.
        if p.save_output_param.output_directory:
            log.warning("%s: %s.save_output_param.output_directory: kaffe "
                        "does not write the fork's results files; read the "
                        "(1, 1, D, 7) top instead", self.name, FIELD)
        if p.visualize:
            log.warning("%s: %s.visualize: kaffe opens no display window; "
                        "`kaffe detect -o` draws the boxes", self.name, FIELD)
        if not p.normalized_bbox:
            raise self.config_error(
                "false (OpenCV's pixel-coordinate boxes) is not implemented",
                field=f"{FIELD}.normalized_bbox", received=False,
                fix="use priors in [0, 1], as SSD does")
        nms = p.nms_param
        if not nms.nms_threshold >= 0:
            raise self.config_error("must be non-negative",
                                    field=f"{FIELD}.nms_param.nms_threshold",
                                    received=nms.nms_threshold)
        if not 0 < nms.eta <= 1:
            raise self.config_error("must be in (0, 1]",
                                    field=f"{FIELD}.nms_param.eta",
                                    received=nms.eta)
        if p.share_location and p.background_label_id == -1:
            # The fork decodes the shared boxes under label -1 and skips the
            # background label, so with -1 it finds no boxes and aborts.
            raise self.config_error(
                "cannot be -1 with share_location: the shared boxes are "
                "decoded under label -1, which the fork then skips as "
                "background (it aborts)",
                field=f"{FIELD}.background_label_id", received=-1,
                expected="a class index in [0, num_classes), as SSD's 0",
                fix="set background_label_id to the background class, or "
                    "share_location: false")
        self.num_classes = p.num_classes
        self.code_type = p.code_type
        self.confidence_threshold = (p.confidence_threshold
                                     if p.HasField("confidence_threshold")
                                     else -_FLT_MAX)
        self.top_k = nms.top_k if nms.HasField("top_k") else -1

    def allow_force_backward(self, bottom_index):
        return False

    def reshape(self, bottom, top):
        p = self.layer_param.detection_output_param
        loc, conf, priors = bottom
        if loc.shape[0] != conf.shape[0]:
            raise self.shape_error(
                "must have as many images as the conf input",
                field="bottom[0]",
                received=f"{loc.shape[0]} vs {conf.shape[0]}")
        if priors.num_axes != 3 or priors.shape[1] != 2:
            raise self.shape_error(
                "must be PriorBox's (1, 2, P·4) output", field="bottom[2]",
                received=f"shape {priors.shape}")
        num_priors = priors.shape[2] // 4
        loc_classes = 1 if p.share_location else self.num_classes
        if loc.count_axes(1) != num_priors * loc_classes * 4:
            raise self.shape_error(
                "does not hold 4 offsets per prior"
                + ("" if p.share_location else " and class"),
                field="bottom[0]", received=f"shape {loc.shape}",
                expected=f"{num_priors * loc_classes * 4} values per image "
                         f"({num_priors} priors)")
        if conf.count_axes(1) != num_priors * self.num_classes:
            raise self.shape_error(
                "does not hold one score per prior and class",
                field="bottom[1]", received=f"shape {conf.shape}",
                expected=f"{num_priors * self.num_classes} values per image "
                         f"({num_priors} priors × {self.num_classes} "
                         f"classes)")
        top[0].reshape((1, 1, 1, 7))        # the fork's Reshape; forward sizes it

    def forward(self, bottom, top):
        p = self.layer_param.detection_output_param
        num = bottom[0].shape[0]
        out = detection_output(
            np.asarray(bottom[0].data, dtype=np.float32).reshape(num, -1),
            np.asarray(bottom[1].data, dtype=np.float32).reshape(num, -1),
            np.asarray(bottom[2].data, dtype=np.float32).reshape(2, -1),
            num_classes=self.num_classes, share_location=p.share_location,
            background_label_id=p.background_label_id,
            code_type=self.code_type,
            variance_in_target=p.variance_encoded_in_target,
            confidence_threshold=self.confidence_threshold,
            nms_threshold=p.nms_param.nms_threshold, eta=p.nms_param.eta,
            top_k=self.top_k, keep_top_k=p.keep_top_k)
        top[0].reshape(out.shape)
        top[0].data[...] = out

    def backward(self, top, propagate_down, bottom):
        for i, down in enumerate(propagate_down):
            if down:
                raise self.no_gradient_error(
                    i, ("the box offsets", "the class scores",
                        "the prior boxes")[i])

    def explain(self, bottoms, tops):
        """The thresholds, for ``kaffe explain``."""
        p = self.layer_param.detection_output_param
        num_priors = bottoms[2].shape[2] // 4
        score = (f"score > {p.confidence_threshold:g}"
                 if p.HasField("confidence_threshold") else "every score")
        top_k = f"best {self.top_k}" if self.top_k > -1 else "all"
        background = ("no background class" if p.background_label_id < 0
                      else f"class {p.background_label_id} is background")
        keep = (f"keep the best {p.keep_top_k} per image"
                if p.keep_top_k > -1 else "keep all")
        eta = (f", threshold × {p.nms_param.eta:g} after each kept box "
               "while > 0.5" if p.nms_param.eta < 1 else "")
        rows = (f"D ≤ {p.keep_top_k}·N" if p.keep_top_k > -1
                else "D") + " rows, known only after the forward"
        return (f"{self.name}: {num_priors} priors × {self.num_classes} "
                f"classes ({background}); decode {_CODE.Name(self.code_type)}"
                f"; per class: {score}, {top_k}, NMS IoU > "
                f"{p.nms_param.nms_threshold:g} suppressed{eta}; {keep} → "
                f"(1, 1, D, 7), {rows}: [image, label, score, xmin, ymin, "
                "xmax, ymax]")
