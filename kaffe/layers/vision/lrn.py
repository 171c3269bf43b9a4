"""LRN: local response normalisation across or within channels."""
from ...core.backend import array_module
from ...core.layer import Layer
from ...core.registry import register_layer
from ...ops.lrn import lrn_backward, lrn_forward
from ...proto import caffe_pb2

_L = caffe_pb2.LRNParameter


@register_layer("LRN")
class LRNLayer(Layer):
    """y = x · scale^−β, with scale from the squares of x around each value.

    Reads lrn_param: local_size n (5, odd), alpha (1), beta (0.75), k (1),
    norm_region ACROSS_CHANNELS (default) or WITHIN_CHANNEL.
    ACROSS_CHANNELS: scale = k + α/n · Σ x² over the n channels centred on c
    (zero beyond the first and last channel).
    WITHIN_CHANNEL: scale = 1 + α · mean of x² over the n×n square centred on
    (h, w) (zero-padded, always divided by n²); Caffe ignores ``k`` here.
    Shape: top has the bottom's (N, C, H, W) shape.

    After setup: ``size``, ``alpha``, ``beta``, ``k``, ``norm_region``.
    """

    exact_num_bottom_blobs = 1
    exact_num_top_blobs = 1

    def setup(self, bottom, top):
        p = self.layer_param.lrn_param
        if p.local_size <= 0 or p.local_size % 2 == 0:
            raise self.config_error(
                "must be a positive odd number", field="lrn_param.local_size",
                received=p.local_size, fix="use 3, 5, 7, …")
        self.size = p.local_size
        self.alpha = p.alpha
        self.beta = p.beta
        self.k = p.k
        self.norm_region = _L.NormRegion.Name(p.norm_region)

    def reshape(self, bottom, top):
        if bottom[0].num_axes != 4:
            raise self.shape_error(
                "input must have 4 axes (num, channels, height, width)",
                field="bottom", received=bottom[0].shape)
        top[0].reshape_like(bottom[0])
        x = bottom[0].data
        if getattr(self, "scale", None) is None or \
                self.scale.shape != x.shape or self.scale.dtype != x.dtype:
            # scale and scale^−β, kept for backward; backward's two scratch
            # arrays are made on its first call. Reused from step to step.
            xp = array_module(x)
            self.scale = xp.empty_like(x)
            self._power = xp.empty_like(x)
            self._work = None

    def forward(self, bottom, top):
        x = bottom[0].data
        y = top[0].data
        out = None if array_module(x).may_share_memory(x, y) else y
        region = "ACROSS" if self.norm_region == "ACROSS_CHANNELS" \
            else "WITHIN"
        k = self.k if region == "ACROSS" else 1
        y_new, _, _ = lrn_forward(x, self.size, region, self.alpha,
                                  self.beta, k, out=out, scale=self.scale,
                                  power=self._power)
        if out is None:
            y[...] = y_new

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        x, dy, dx = bottom[0].data, top[0].diff, bottom[0].diff
        xp = array_module(x)
        if self._work is None:
            self._work = (xp.empty_like(x), xp.empty_like(x))
        region = "ACROSS" if self.norm_region == "ACROSS_CHANNELS" \
            else "WITHIN"
        shared = xp.may_share_memory(dx, dy) or xp.may_share_memory(dx, x) \
            or xp.may_share_memory(dx, top[0].data)
        result = lrn_backward(dy, x, top[0].data, self.scale, self.size,
                              region, self.alpha, self.beta,
                              power=self._power,
                              out=None if shared else dx, work=self._work)
        if shared:
            dx[...] = result
