"""Exp: y = base^(shift + scale · x)."""
import math

import numpy as np

from ...core.backend import array_module
from ...core.registry import register_layer
from .neuron import NeuronLayer


def log_of_base(layer, base, field):
    """ln(base) in the layer's dtype; base −1 stands for e (ln = 1 exactly).

    Raises the layer's config error unless base is −1 or a finite number
    > 0 (Caffe CHECKs base > 0 and that ln(base) is finite).
    """
    dtype = layer.dtype.type
    if base == -1:
        return dtype(1)
    if not 0 < base < math.inf:
        raise layer.config_error(
            "must be -1 (meaning e) or a finite number > 0", field=field,
            received=base, fix="use base: -1 for e, or a positive base")
    return dtype(math.log(base))


@register_layer("Exp")
class ExpLayer(NeuronLayer):
    """y = base^(shift + scale · x), computed as outer · exp(inner · x).

    Reads exp_param: base (−1 = e), scale (1), shift (0). As in Caffe the
    constants are precomputed in the blob's type: inner = ln(base) · scale
    (ln(base) = 1 exactly for base −1), outer = base^shift (e^shift for base
    −1; exactly 1 when shift = 0); a factor equal to 1 is skipped.
    Backward uses only the output: dx = dy · y · inner (fine in place).
    """

    def setup(self, bottom, top):
        p = self.layer_param.exp_param
        dtype = self.dtype.type
        log_base = log_of_base(self, p.base, "exp_param.base")
        self.inner_scale = log_base * dtype(p.scale)
        if p.shift == 0:
            self.outer_scale = dtype(1)
        else:
            with np.errstate(over="ignore"):
                # base^shift may overflow to inf, as it does in Caffe.
                value = (np.exp(np.float64(p.shift)) if p.base == -1 else
                         np.power(np.float64(p.base), np.float64(p.shift)))
                self.outer_scale = dtype(value)

    def forward(self, bottom, top):
        x = bottom[0].data
        y = top[0].data
        xp = array_module(x)
        with np.errstate(over="ignore"):
            if self.inner_scale == 1:
                xp.exp(x, out=y)
            else:
                xp.multiply(x, self.inner_scale, out=y)
                xp.exp(y, out=y)
            if self.outer_scale != 1:
                y *= self.outer_scale

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dx = bottom[0].diff
        xp = array_module(dx)
        xp.multiply(top[0].data, top[0].diff, out=dx)
        if self.inner_scale != 1:
            dx *= self.inner_scale
