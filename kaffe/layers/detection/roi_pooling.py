"""ROIPooling (Fast R-CNN, rbgirshick/caffe-fast-rcnn): max pooling of each
region of interest into a fixed grid."""
import numpy as np

from kaffe.core.layer import Layer
from kaffe.core.registry import register_layer
from kaffe.ops.roi_pooling import roi_pool_backward, roi_pool_forward

FIELD = "roi_pooling_param"


def check_rois(layer, features, rois):
    """The (R, 5) view of a rois bottom, after checking its shape."""
    if rois.num_axes < 1 or rois.count_axes(1) != 5:
        raise layer.shape_error(
            "must hold one (batch index, x1, y1, x2, y2) row per region",
            field="bottom[1]", received=f"shape {rois.shape}",
            expected="(R, 5) or (R, 5, 1, 1)")
    if features.num_axes != 4:
        raise layer.shape_error("must be 4-D (N, C, H, W)", field="bottom[0]",
                                received=f"shape {features.shape}")
    return rois.shape[0]


def rois_array(layer, features, rois):
    """The rois as an (R, 5) array; batch indices checked."""
    array = np.asarray(rois.data).reshape(-1, 5)
    batch = array[:, 0]
    bad = (batch < 0) | (batch >= features.shape[0])
    if bad.any():
        raise layer.shape_error(
            "names an image outside the batch", field="bottom[1]",
            received=f"batch index {batch[bad][0]:g}",
            expected=f"0 to {features.shape[0] - 1}")
    return array


@register_layer("ROIPooling")
class ROIPoolingLayer(Layer):
    """Max-pools each region of interest into pooled_h × pooled_w bins.

    From Fast R-CNN (rbgirshick/caffe-fast-rcnn), as its
    roi_pooling_layer.cpp computes it: the region's corners times
    spatial_scale are rounded (halves away from zero), its size is
    (x2 − x1 + 1) × (y2 − y1 + 1) cells (at least 1), bin (i, j) covers rows
    floor(i · h/pooled_h) to ceil((i + 1) · h/pooled_h) (clipped); an empty
    bin gives 0.
    Reads roi_pooling_param: pooled_h, pooled_w (> 0), spatial_scale (1).
    Shape: bottom[0] (N, C, H, W) features, bottom[1] (R, 5) regions
    (batch index, x1, y1, x2, y2) in input pixels → top (R, C, pooled_h,
    pooled_w).
    Backward: each bin's diff to its maximum's input element (summed over
    regions), as the fork's GPU backward; the regions get zero gradient
    (rounding makes the output piecewise constant in them).
    """

    exact_num_bottom_blobs = 2
    exact_num_top_blobs = 1
    # For kaffe explain: where a value comes from depends on its region.
    receptive_field_rule = "no_layout"

    def setup(self, bottom, top):
        p = self.layer_param.roi_pooling_param
        for name in ("pooled_h", "pooled_w"):
            if not getattr(p, name) > 0:
                raise self.config_error("must be > 0", field=f"{FIELD}.{name}",
                                        received=getattr(p, name))

    def reshape(self, bottom, top):
        p = self.layer_param.roi_pooling_param
        num_rois = check_rois(self, bottom[0], bottom[1])
        top[0].reshape((num_rois, bottom[0].shape[1], p.pooled_h,
                        p.pooled_w))

    def forward(self, bottom, top):
        p = self.layer_param.roi_pooling_param
        self.rois = rois_array(self, bottom[0], bottom[1])
        out, self.argmax = roi_pool_forward(
            np.asarray(bottom[0].data), self.rois, p.pooled_h, p.pooled_w,
            p.spatial_scale)
        top[0].data[...] = out

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = roi_pool_backward(
                np.asarray(top[0].diff), self.argmax, self.rois,
                bottom[0].shape)
        if propagate_down[1]:
            bottom[1].diff[...] = 0

    def explain(self, bottoms, tops):
        """The bin arithmetic, for ``kaffe explain``."""
        p = self.layer_param.roi_pooling_param
        return (f"{self.name}: each of {bottoms[1].shape[0]} regions × "
                f"{p.spatial_scale:g} (rounded) → {p.pooled_h}×{p.pooled_w} "
                f"bins, bin i = [floor(i·h/{p.pooled_h}), "
                f"ceil((i+1)·h/{p.pooled_h})), max over each, per channel "
                f"→ {tuple(tops[0].shape)}")
