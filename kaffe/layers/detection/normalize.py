"""Normalize (SSD fork, weiliu89/caffe ssd branch): L2 normalisation with a
learned scale (ParseNet's layer, used on SSD's conv4_3)."""
import logging

from kaffe.core.backend import array_module
from kaffe.core.filler import fill
from kaffe.core.layer import Layer
from kaffe.core.registry import register_layer
from kaffe.proto import caffe_pb2

log = logging.getLogger("kaffe")
FIELD = "norm_param"


@register_layer("Normalize")
class NormalizeLayer(Layer):
    """y = s · x / ‖x‖, ‖x‖ = sqrt(Σ x² + eps).

    From the SSD fork (weiliu89/caffe, ssd branch), as its
    normalize_layer.cpp computes it.
    Reads norm_param: across_spatial (true: one norm per image over C·H·W;
    false: one per pixel over the channels), channel_shared (true: one scale;
    false: one per channel), scale_filler (constant 1), eps (1e-10).
    Blobs: [0] the scale s, shape () if channel_shared else (C,).
    Shape: bottom (N, C, H, W) (or (N, C)) → top of the same shape; may run
    in place (the input is then kept for backward).
    Backward: dx = (s·dy − x · Σ(x·s·dy) / ‖x‖²) / ‖x‖, sums over the
    normalised group; ds += Σ y·dy / s (the fork's form, per channel if not
    shared). With one shared scale this is the fork's formula; with a scale
    per channel the fork leaves s out of the sum (Σ x·dy, then · s), which
    is not the derivative of its forward: kaffe computes the exact gradient
    (the gradient checks hold it to it).
    """

    exact_num_bottom_blobs = 1
    exact_num_top_blobs = 1

    def setup(self, bottom, top):
        p = self.layer_param.norm_param
        self._check_axes(bottom[0])
        channels = bottom[0].shape[1]
        self.across_spatial = p.across_spatial
        self.channel_shared = p.channel_shared
        self.eps = float(p.eps)
        if self.blobs:
            log.info("Skipping parameter initialization")
        else:
            scale = self.make_blob(() if self.channel_shared else (channels,))
            filler = p.scale_filler
            if not p.HasField("scale_filler"):
                filler = caffe_pb2.FillerParameter(type="constant", value=1.0)
            fill(scale, filler, layer=self, field=f"{FIELD}.scale_filler")
            self.blobs.append(scale)
        expected = 1 if self.channel_shared else channels
        if self.blobs[0].count != expected:
            raise self.shape_error(
                "holds the wrong number of scales for this configuration",
                field="blobs[0]", received=f"shape {self.blobs[0].shape}",
                expected=("1 scale (channel_shared)" if self.channel_shared
                          else f"{channels} scales (one per channel)"),
                fix="make norm_param.channel_shared match the saved scales")

    @property
    def receptive_field_rule(self):
        """For kaffe explain: per pixel, or the whole image's norm."""
        return "whole" if self.across_spatial else "elementwise"

    def _check_axes(self, blob):
        if not 2 <= blob.num_axes <= 4:
            raise self.shape_error(
                "must have 2 to 4 axes (N, C, …)", field="bottom[0]",
                received=f"shape {blob.shape}")

    def reshape(self, bottom, top):
        self._check_axes(bottom[0])
        if (not self.channel_shared
                and bottom[0].shape[1] != self.blobs[0].count):
            raise self.shape_error(
                "has a channel count different from the number of scales",
                field="bottom[0]", received=f"shape {bottom[0].shape}",
                expected=f"{self.blobs[0].count} channels")
        top[0].reshape_like(bottom[0])

    def _view(self, array, blob):
        """(N, C, S): the input with its spatial axes merged."""
        return array.reshape(blob.shape[0], blob.shape[1],
                             blob.count_axes(2))

    def _scale(self):
        s = self.blobs[0].data
        return s if self.channel_shared else s.reshape(1, -1, 1)

    def _norm(self, x3):
        xp = array_module(x3)
        square = x3 * x3
        if self.across_spatial:
            sums = square.sum(axis=(1, 2), keepdims=True)
        else:
            sums = square.sum(axis=1, keepdims=True)
        return xp.sqrt(sums + x3.dtype.type(self.eps))

    def forward(self, bottom, top):
        x3 = self._view(bottom[0].data, bottom[0])
        self.norm = self._norm(x3)
        # In place, backward still needs the input: keep a copy.
        self.saved_input = x3.copy() if top[0] is bottom[0] else None
        y3 = self._view(top[0].data, top[0])
        y3[...] = x3 / self.norm
        y3 *= self._scale()

    def backward(self, top, propagate_down, bottom):
        x3 = (self.saved_input if self.saved_input is not None
              else self._view(bottom[0].data, bottom[0]))
        y3 = self._view(top[0].data, top[0])
        dy = self._view(top[0].diff, top[0])
        norm = self.norm
        if self.param_needs_backward(0):
            product = y3 * dy
            if self.channel_shared:
                self.blobs[0].diff += product.sum() / self.blobs[0].data
            else:
                self.blobs[0].diff += (product.sum(axis=(0, 2))
                                       / self.blobs[0].data)
        if propagate_down[0]:
            axes = (1, 2) if self.across_spatial else 1
            scaled = dy * self._scale()
            dot = (x3 * scaled).sum(axis=axes, keepdims=True)
            grad = (scaled - x3 * (dot / (norm * norm))) / norm
            self._view(bottom[0].diff, bottom[0])[...] = grad

    def explain(self, bottoms, tops):
        """What is normalised, for ``kaffe explain``."""
        over = ("C·H·W of each image" if self.across_spatial
                else "the channels at each pixel")
        scale = ("one learned scale" if self.channel_shared
                 else f"{self.blobs[0].count} learned scales (per channel)")
        return (f"{self.name}: y = s·x / sqrt(Σx² + {self.eps:g}), Σ over "
                f"{over}; {scale}")
