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
# The bn_param fields only PSPNet's BN has.
PSPNET_FIELDS = ("slope_filler", "bias_filler", "momentum", "eps", "frozen")


@register_layer("BN")
class BNLayer(Layer):
    """y = scale · x̂ + shift per channel, x̂ from the batch, stored
    statistics or x itself.

    Two forks named a layer ``BN`` with one ``bn_param`` message:

    SegNet (alexgkendall/caffe-segnet, ``bn_layer.cpp``): bn_param bn_mode
    LEARN (default) or INFERENCE, scale_filler, shift_filler (constant 0
    when unset). Blobs: [0] scale (1, C, 1, 1), [1] shift (1, C, 1, 1).
    LEARN: μ = E[x] and σ² = E[x²] − μ² over (N, H, W) of each channel
    (biased), x̂ = (x − μ) / sqrt(σ² + 1e-9); tops [1] and [2], when given,
    are μ and σ² as (1, C, 1, 1). SegNet keeps no running statistics: its
    ``compute_bn_statistics.py`` folds them into scale and shift and
    switches the net to INFERENCE, where y = scale · x + shift.

    PSPNet (hszhao/PSPNet, yjxiong's BN): recognised by four blobs or by
    any of its fields slope_filler, bias_filler, momentum (0.9), eps (1e-5),
    frozen. Blobs: [0] scale, [1] shift, [2] running mean, [3] running
    variance, each (1, C, 1, 1). In TEST, or when frozen, x̂ = (x − mean) /
    sqrt(var + eps) with the running statistics; otherwise μ = E[x] and
    σ² = E[(x − μ)²] over (N, H, W), and each running statistic becomes
    (1 − momentum)·batch + momentum·running. As in PSPNet, blobs 2 and 3
    (and with frozen all four) get lr_mult and decay_mult 0.

    Backward with batch statistics: dscale = Σ x̂·dy, dshift = Σ dy,
    dx = (d − mean(d) − x̂·mean(d·x̂)) / sqrt(σ² + eps) with d = scale·dy
    (both forks' formula); with stored statistics (PSPNet's TEST or frozen)
    dx = d / sqrt(var + eps), the exact derivative (PSPNet's code applies
    the batch formula in TEST when not frozen); SegNet INFERENCE:
    dscale = Σ x·dy, dshift = Σ dy, dx = scale·dy. The forks overwrite
    their parameter diffs; kaffe accumulates them, as every other layer
    (the same with iter_size 1). Shape: (N, C, H, W) → the same.
    """


    exact_num_bottom_blobs = 1
    min_top_blobs = 1
    max_top_blobs = 3

    def setup(self, bottom, top):
        p = self.layer_param.bn_param
        self.pspnet = len(self.blobs) == 4 or any(
            p.HasField(f) for f in PSPNET_FIELDS)
        if self.pspnet and p.HasField("bn_mode"):
            raise self.config_error(
                "mixes SegNet's bn_mode with PSPNet's fields",
                field=f"{FIELD}.bn_mode", received=caffe_pb2.BNParameter
                .BNMode.Name(p.bn_mode), fix="keep the fields of one fork")
        self.learn = self.pspnet or p.bn_mode == caffe_pb2.BNParameter.LEARN
        if len(top) > 1 and not (self.learn and not self.pspnet):
            raise self.config_error(
                "gives the batch mean and variance tops only in SegNet's "
                "LEARN mode", field="top", received=f"{len(top)} tops",
                expected="1 top")
        x = bottom[0]
        if x.num_axes != 4:
            raise self.shape_error(
                "input must have 4 axes (num, channels, height, width)",
                field="bottom", received=x.shape)
        shape = (1, x.shape[1], 1, 1)
        expected = 4 if self.pspnet else 2
        if self.pspnet:
            self._statistics_not_learned()
        if self.blobs:
            log.info("Skipping parameter initialization")
            if len(self.blobs) != expected:
                raise self.config_error(
                    "has the wrong number of blobs (scale, shift"
                    + (", running mean and variance)" if self.pspnet
                       else ")"), field="blobs", received=len(self.blobs),
                    expected=expected)
            for i, blob in enumerate(self.blobs):
                if blob.count != x.shape[1]:
                    raise self.shape_error(
                        "must hold one value per channel", field=f"blobs[{i}]",
                        received=blob.shape, expected=shape)
            return
        fillers = (("slope_filler", "bias_filler") if self.pspnet
                   else ("scale_filler", "shift_filler"))
        for name in fillers:
            blob = self.make_blob(shape)
            fill(blob, getattr(p, name), layer=self, field=f"{FIELD}.{name}")
            self.blobs.append(blob)
        if self.pspnet:
            mean, variance = self.make_blob(shape), self.make_blob(shape)
            variance.data[...] = 1 if p.frozen else 0
            self.blobs += [mean, variance]

    def _statistics_not_learned(self):
        """PSPNet's setup: the running statistics (blobs 2, 3), and with
        frozen also scale and shift, get lr_mult and decay_mult 0 in the
        layer's own copy of its parameter."""
        own = caffe_pb2.LayerParameter()
        own.CopyFrom(self.layer_param)
        while len(own.param) < 4:
            own.param.add()
        for i in (0, 1, 2, 3) if own.bn_param.frozen else (2, 3):
            own.param[i].lr_mult = 0
            own.param[i].decay_mult = 0
        self.layer_param = own

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

    def _stored(self):
        """Whether the forward uses the running statistics (PSPNet's TEST
        phase, or frozen)."""
        return self.pspnet and (self.phase == caffe_pb2.TEST
                                or self.layer_param.bn_param.frozen)

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = array_module(x)
        scale, shift = (self._per_channel(b) for b in self.blobs[:2])
        if not self.learn:
            self.saved_input = x.copy() if top[0] is bottom[0] else None
            top[0].data[...] = scale * x + shift
            return
        axes = (0, 2, 3)
        if self._stored():
            mean = self._per_channel(self.blobs[2])
            variance = self._per_channel(self.blobs[3])
        elif self.pspnet:
            mean = x.mean(axis=axes, keepdims=True)
            variance = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
            momentum = x.dtype.type(self.layer_param.bn_param.momentum)
            for blob, batch in ((self.blobs[2], mean),
                                (self.blobs[3], variance)):
                blob.data[...] = ((1 - momentum) * batch + momentum
                                  * self._per_channel(blob)).reshape(
                                      blob.shape)
        else:
            mean = x.mean(axis=axes, keepdims=True)
            variance = (x * x).mean(axis=axes, keepdims=True) - mean * mean
            if len(top) > 1:
                top[1].data[...] = mean
            if len(top) > 2:
                top[2].data[...] = variance
        eps = self.layer_param.bn_param.eps if self.pspnet else VAR_EPS
        self.std = xp.sqrt(variance + x.dtype.type(eps))
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
        if self._stored():
            bottom[0].diff[...] = d / self.std
            return
        x_norm = self.x_norm
        dx = (d - d.mean(axis=axes, keepdims=True)
              - x_norm * (d * x_norm).mean(axis=axes, keepdims=True))
        bottom[0].diff[...] = dx / self.std

    def explain(self, bottoms, tops):
        """The formula line for ``kaffe explain``."""
        if self._stored():
            return (f"{self.name}: per channel y = scale·(x − mean)/√(var + "
                    f"{self.layer_param.bn_param.eps:g}) + shift with "
                    "the stored running mean and variance (PSPNet BN)")
        if self.pspnet:
            return (f"{self.name}: per channel y = scale·(x − μ)/√(σ² + "
                    f"{self.layer_param.bn_param.eps:g}) + shift, μ and "
                    "σ² of this batch over (N, H, W) (PSPNet BN)")
        if self.learn:
            return (f"{self.name}: per channel y = scale·(x − μ)/√(σ² + "
                    "1e-9) + shift, μ and σ² of this batch over (N, H, W) "
                    "(SegNet LEARN mode)")
        return (f"{self.name}: per channel y = scale·x + shift (SegNet "
                "INFERENCE mode: the statistics folded into scale and shift)")
