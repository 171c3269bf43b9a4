"""PSROIPooling (R-FCN, daijifeng001/caffe-rfcn): position-sensitive
average pooling of regions of interest."""
import numpy as np

from kaffe.core.layer import Layer
from kaffe.core.registry import register_layer
from kaffe.layers.detection.roi_pooling import check_rois, rois_array
from kaffe.ops.roi_pooling import psroi_pool_backward, psroi_pool_forward

FIELD = "psroi_pooling_param"


@register_layer("PSROIPooling")
class PSROIPoolingLayer(Layer):
    """Bin (gh, gw) of each region averages its own channel group: output
    channel k reads input channel (k · G + gh) · G + gw.

    From R-FCN (daijifeng001/caffe-rfcn), as its psroi_pooling_layer.cu
    computes it: corners rounded (halves away from zero), x2/y2 + 1, times
    spatial_scale, size at least 0.1; bin edges floor/ceil of
    start + i · size/G, clipped; an empty bin gives 0.
    Reads psroi_pooling_param: spatial_scale, output_dim, group_size G (all
    required, as in the fork).
    Shape: bottom[0] (N, output_dim · G², H, W), bottom[1] (R, 5) regions
    (batch index, x1, y1, x2, y2) → top (R, output_dim, G, G).
    Backward: each bin's diff / its area to every element of the bin; the
    regions get zero gradient (as the fork writes).
    """

    exact_num_bottom_blobs = 2
    exact_num_top_blobs = 1
    # For kaffe explain: where a value comes from depends on its region.
    receptive_field_rule = "no_layout"

    def setup(self, bottom, top):
        p = self.layer_param.psroi_pooling_param
        for name in ("spatial_scale", "output_dim", "group_size"):
            if not p.HasField(name):
                raise self.config_error(
                    "must be given (the fork requires it)",
                    field=f"{FIELD}.{name}", received="none")
        for name in ("output_dim", "group_size"):
            if not getattr(p, name) > 0:
                raise self.config_error("must be > 0", field=f"{FIELD}.{name}",
                                        received=getattr(p, name))

    def reshape(self, bottom, top):
        p = self.layer_param.psroi_pooling_param
        num_rois = check_rois(self, bottom[0], bottom[1])
        expected = p.output_dim * p.group_size ** 2
        if bottom[0].shape[1] != expected:
            raise self.shape_error(
                "must have output_dim · group_size² channels",
                field="bottom[0]", received=f"shape {bottom[0].shape}",
                expected=f"{expected} channels ({p.output_dim} · "
                         f"{p.group_size}²)")
        top[0].reshape((num_rois, p.output_dim, p.group_size, p.group_size))

    def forward(self, bottom, top):
        p = self.layer_param.psroi_pooling_param
        self.rois = rois_array(self, bottom[0], bottom[1])
        top[0].data[...] = psroi_pool_forward(
            np.asarray(bottom[0].data), self.rois, p.spatial_scale,
            p.output_dim, p.group_size)

    def backward(self, top, propagate_down, bottom):
        p = self.layer_param.psroi_pooling_param
        if propagate_down[0]:
            bottom[0].diff[...] = psroi_pool_backward(
                np.asarray(top[0].diff), self.rois, bottom[0].shape,
                p.spatial_scale, p.group_size)
        if propagate_down[1]:
            bottom[1].diff[...] = 0

    def explain(self, bottoms, tops):
        """The channel arithmetic, for ``kaffe explain``."""
        p = self.layer_param.psroi_pooling_param
        g = p.group_size
        return (f"{self.name}: {bottoms[0].shape[1]} channels = "
                f"{p.output_dim} outputs × {g}×{g} positions; each of "
                f"{bottoms[1].shape[0]} regions × {p.spatial_scale:g} → "
                f"{g}×{g} bins, bin (i, j) averages channel (k·{g} + i)·{g} "
                f"+ j → {tuple(tops[0].shape)}")
