"""BN: SegNet's batch normalisation layer, with its own learned scale and
shift."""
import logging

from ...core.backend import array_module
from ...core.filler import fill
from ...core.layer import Layer
from ...core.registry import register_layer
from ...proto import caffe_pb2

log = logging.getLogger("kaffe")

FIELD = "bn_param"
# SegNet's constant: variance + 1e-9 under the square root.
VAR_EPS = 1e-9


@register_layer("BN")
class BNLayer(Layer):
    """y = scale · x̂ + shift per channel, x̂ from the batch or x itself.

    From the SegNet Caffe fork (alexgkendall/caffe-segnet, ``bn_layer.cpp``).
    Reads bn_param: bn_mode LEARN (default) or INFERENCE, scale_filler,
    shift_filler (both constant 0 when unset, as the fork's fillers).
    Blobs (the fork's layout): [0] scale (1, C, 1, 1), [1] shift
    (1, C, 1, 1).

    LEARN: μ = E[x] and σ² = E[x²] − μ² over (N, H, W) of each channel
    (biased), x̂ = (x − μ) / sqrt(σ² + 1e-9); tops [1] and [2], when given,
    are μ and σ² as (1, C, 1, 1). SegNet keeps no running statistics:
    its ``compute_bn_statistics.py`` folds them into scale and shift and
    switches the net to INFERENCE, where y = scale · x + shift.

    Backward (LEARN): dscale = Σ x̂·dy, dshift = Σ dy and
    dx = (d − mean(d) − x̂·mean(d·x̂)) / sqrt(σ² + 1e-9) with d = scale·dy,
    the fork's formula; INFERENCE: dscale = Σ x·dy, dshift = Σ dy,
    dx = scale·dy. The fork overwrites its parameter diffs; kaffe
    accumulates them, as every other layer (the same with iter_size 1).
    Shape: (N, C, H, W) → the same.
    """

    exact_num_bottom_blobs = 1
    min_top_blobs = 1
    max_top_blobs = 3

    def setup(self, bottom, top):
        p = self.layer_param.bn_param
        self.learn = p.bn_mode == caffe_pb2.BNParameter.LEARN
        if len(top) > 1 and not self.learn:
            raise self.config_error(
                "gives the batch mean and variance tops only in LEARN mode",
                field="top", received=f"{len(top)} tops with bn_mode: "
                "INFERENCE", expected="1 top")
        x = bottom[0]
        if x.num_axes != 4:
            raise self.shape_error(
                "input must have 4 axes (num, channels, height, width)",
                field="bottom", received=x.shape)
        shape = (1, x.shape[1], 1, 1)
        if self.blobs:
            log.info("Skipping parameter initialization")
            if len(self.blobs) != 2:
                raise self.config_error(
                    "has the wrong number of blobs (scale, shift)",
                    field="blobs", received=len(self.blobs), expected=2)
            for i, blob in enumerate(self.blobs):
                if blob.count != x.shape[1]:
                    raise self.shape_error(
                        "must hold one value per channel", field=f"blobs[{i}]",
                        received=blob.shape, expected=shape)
            return
        for name in ("scale_filler", "shift_filler"):
            blob = self.make_blob(shape)
            fill(blob, getattr(p, name), layer=self, field=f"{FIELD}.{name}")
            self.blobs.append(blob)

    def reshape(self, bottom, top):
        x = bottom[0]
        if x.num_axes != 4 or x.shape[1] != self.blobs[0].count:
            raise self.shape_error(
                "input must stay (N, C, H, W) with the channels the "
                "parameters were made for", field="bottom", received=x.shape,
                expected=f"(N, {self.blobs[0].count}, H, W)")
        top[0].reshape(x.shape)
        for blob in top[1:]:
            blob.reshape((1, x.shape[1], 1, 1))

    def _per_channel(self, blob):
        return blob.data.reshape(1, -1, 1, 1)

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = array_module(x)
        scale, shift = (self._per_channel(b) for b in self.blobs)
        if not self.learn:
            self.saved_input = x.copy() if top[0] is bottom[0] else None
            top[0].data[...] = scale * x + shift
            return
        mean = x.mean(axis=(0, 2, 3), keepdims=True)
        variance = (x * x).mean(axis=(0, 2, 3), keepdims=True) - mean * mean
        if len(top) > 1:
            top[1].data[...] = mean
        if len(top) > 2:
            top[2].data[...] = variance
        self.std = xp.sqrt(variance + x.dtype.type(VAR_EPS))
        self.x_norm = (x - mean) / self.std
        top[0].data[...] = self.x_norm * scale + shift

    def backward(self, top, propagate_down, bottom):
        dy = top[0].diff
        axes = (0, 2, 3)
        scale = self._per_channel(self.blobs[0])
        if self.learn:
            basis = self.x_norm
        else:
            saved = getattr(self, "saved_input", None)
            basis = saved if saved is not None else bottom[0].data
        if self.param_needs_backward(0):
            self.blobs[0].diff += (basis * dy).sum(axis=axes).reshape(
                self.blobs[0].shape)
        if self.param_needs_backward(1):
            self.blobs[1].diff += dy.sum(axis=axes).reshape(
                self.blobs[1].shape)
        if not propagate_down[0]:
            return
        d = scale * dy
        if not self.learn:
            bottom[0].diff[...] = d
            return
        x_norm = self.x_norm
        dx = (d - d.mean(axis=axes, keepdims=True)
              - x_norm * (d * x_norm).mean(axis=axes, keepdims=True))
        bottom[0].diff[...] = dx / self.std

    def explain(self, bottoms, tops):
        """The formula line for ``kaffe explain``."""
        if self.learn:
            return (f"{self.name}: per channel y = scale·(x − μ)/√(σ² + "
                    "1e-9) + shift, μ and σ² of this batch over (N, H, W) "
                    "(SegNet LEARN mode)")
        return (f"{self.name}: per channel y = scale·x + shift (SegNet "
                "INFERENCE mode: the statistics folded into scale and shift)")
