"""PriorBox (SSD fork, weiliu89/caffe ssd branch): the default boxes of one
feature map."""
import math

import numpy as np

from kaffe.core.layer import Layer
from kaffe.core.registry import register_layer
from kaffe.ops.detection import prior_aspect_ratios, prior_boxes, prior_sizes

FIELD = "prior_box_param"


@register_layer("PriorBox")
class PriorBoxLayer(Layer):
    """Default ("prior") boxes at every cell of a feature map, in [0, 1]
    image coordinates, with their variances.

    From the SSD fork (weiliu89/caffe, ssd branch), computed as its
    prior_box_layer.cpp does (min and max sizes are truncated to integers).
    Reads prior_box_param: min_size (one or more, > 0), max_size (none, or
    one per min_size, each larger), aspect_ratio (beyond the implicit 1;
    repeats dropped), flip (true: add 1/r), clip (false), variance (none →
    0.1; one; or four), img_size or img_h + img_w (default: bottom[1]'s
    H × W), step or step_h + step_w (default: image size / feature-map
    size), offset (0.5). OpenCV's offset_h/offset_w/width/height additions
    are refused by name.
    Priors per cell P = len(min_size) · len(ratios) + len(max_size), ratios
    counting 1 and the flips.
    Shape: bottom[0] (N, C, H, W) feature map, bottom[1] (N, C', H', W')
    image → top (1, 2, H · W · P · 4): row 0 the boxes (xmin, ymin, xmax,
    ymax) cell by cell, row 1 their variances.
    Backward: the boxes do not depend on the inputs' values, so the bottom
    gradients are zero (the fork's backward leaves them untouched).
    """

    exact_num_bottom_blobs = 2
    exact_num_top_blobs = 1
    # For kaffe explain: the boxes depend on the inputs' shapes only.
    receptive_field_rule = "none"

    def setup(self, bottom, top):
        p = self.layer_param.prior_box_param
        for name in ("offset_h", "offset_w", "width", "height"):
            if len(getattr(p, name)):
                raise self.config_error(
                    "is OpenCV's extension of PriorBox, which kaffe does not "
                    "implement", field=f"{FIELD}.{name}",
                    received=list(getattr(p, name)),
                    fix="describe the boxes with min_size / max_size / "
                        "aspect_ratio as the SSD fork does")
        if not len(p.min_size):
            raise self.config_error("must be given at least once",
                                    field=f"{FIELD}.min_size",
                                    received="none",
                                    fix="add min_size: <pixels>")
        for name in ("min_size", "max_size", "aspect_ratio"):
            for value in getattr(p, name):
                if not 0 < value < math.inf:
                    raise self.config_error(
                        "must be a positive finite number",
                        field=f"{FIELD}.{name}", received=value)
        if len(p.max_size):
            if len(p.max_size) != len(p.min_size):
                raise self.config_error(
                    "must be given once per min_size, or not at all",
                    field=f"{FIELD}.max_size",
                    received=f"{len(p.max_size)} max_size for "
                             f"{len(p.min_size)} min_size")
            for low, high in zip(p.min_size, p.max_size):
                if not high > low:
                    raise self.config_error(
                        "must be larger than its min_size",
                        field=f"{FIELD}.max_size", received=high,
                        expected=f"> {low}")
        if len(p.variance) not in (0, 1, 4):
            raise self.config_error(
                "must be given 0, 1 or 4 times", field=f"{FIELD}.variance",
                received=f"{len(p.variance)} values")
        for value in p.variance:
            if not value > 0:
                raise self.config_error("must be positive",
                                        field=f"{FIELD}.variance",
                                        received=value)
        self.ratios = prior_aspect_ratios(list(p.aspect_ratio), p.flip)
        self.sizes = prior_sizes(list(p.min_size), list(p.max_size),
                                 self.ratios)
        self.num_priors = len(self.sizes)
        self.variances = list(p.variance) or [0.1]
        self.img_hw = self._pair(p, "img_size", "img_h", "img_w", int)
        self.step_hw = self._pair(p, "step", "step_h", "step_w", float)

    def _pair(self, p, single, h_name, w_name, kind):
        """(h, w) from ``single`` or its _h/_w pair; (0, 0) when unset."""
        if p.HasField(h_name) or p.HasField(w_name):
            if p.HasField(single):
                raise self.config_error(
                    f"cannot be combined with {h_name}/{w_name}",
                    field=f"{FIELD}.{single}",
                    fix=f"give either {single} or both {h_name} and {w_name}")
            pair = (kind(getattr(p, h_name)), kind(getattr(p, w_name)))
            for name, value in zip((h_name, w_name), pair):
                if not value > 0:
                    raise self.config_error(
                        "must be positive (set both of the pair)",
                        field=f"{FIELD}.{name}", received=value)
            return pair
        if p.HasField(single):
            value = kind(getattr(p, single))
            if not value > 0:
                raise self.config_error("must be positive",
                                        field=f"{FIELD}.{single}",
                                        received=value)
            return (value, value)
        return (0, 0)

    def _geometry(self, bottom):
        layer_h, layer_w = bottom[0].shape[2:4]
        img_h, img_w = self.img_hw
        if img_h == 0 or img_w == 0:
            img_h, img_w = bottom[1].shape[2:4]
        step_h, step_w = self.step_hw
        if step_h == 0 or step_w == 0:
            # float division, as the fork's static_cast<float>(img) / layer
            step_h = float(np.float32(img_h) / np.float32(layer_h))
            step_w = float(np.float32(img_w) / np.float32(layer_w))
        return layer_h, layer_w, img_h, img_w, step_h, step_w

    def reshape(self, bottom, top):
        for i, blob in enumerate(bottom):
            if blob.num_axes != 4:
                raise self.shape_error(
                    "must be 4-D (N, C, H, W)", field=f"bottom[{i}]",
                    received=f"shape {blob.shape}")
        layer_h, layer_w = bottom[0].shape[2:4]
        if layer_h * layer_w == 0:
            raise self.shape_error("has an empty feature map",
                                   field="bottom[0]",
                                   received=f"shape {bottom[0].shape}")
        top[0].reshape((1, 2, layer_h * layer_w * self.num_priors * 4))

    def forward(self, bottom, top):
        layer_h, layer_w, img_h, img_w, step_h, step_w = self._geometry(bottom)
        p = self.layer_param.prior_box_param
        top[0].data[0] = prior_boxes(layer_h, layer_w, img_h, img_w, step_h,
                                     step_w, p.offset, self.sizes, p.clip,
                                     self.variances)

    def backward(self, top, propagate_down, bottom):
        for blob, down in zip(bottom, propagate_down):
            if down:
                blob.diff[...] = 0

    def explain(self, bottoms, tops):
        """The box-count arithmetic, for ``kaffe explain``."""
        layer_h, layer_w, img_h, img_w, step_h, step_w = self._geometry(
            bottoms)
        p = self.layer_param.prior_box_param
        n_min, n_max = len(p.min_size), len(p.max_size)
        ratios = ", ".join(f"{r:g}" for r in self.ratios)
        per_cell = (f"{n_min} min_size × {len(self.ratios)} ratios "
                    f"({ratios})" + (f" + {n_max} max_size" if n_max else "")
                    + f" = {self.num_priors} priors per cell")
        total = layer_h * layer_w * self.num_priors
        return (f"{self.name}: {per_cell}; {layer_h}×{layer_w} cells × "
                f"{self.num_priors} = {total} boxes (× 4 coordinates = "
                f"{total * 4}); step {step_w:g}×{step_h:g} px on a "
                f"{img_w}×{img_h} image, offset {p.offset:g}"
                + (", clipped to [0, 1]" if p.clip else ""))
