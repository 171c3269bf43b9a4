"""Log: y = log_base(shift + scale · x)."""
import numpy as np

from ...core.backend import array_module
from ...core.registry import register_layer
from .exp import log_of_base
from .neuron import NeuronLayer


@register_layer("Log")
class LogLayer(NeuronLayer):
    """y = ln(shift + scale · x) / ln(base).

    Reads log_param: base (−1 = e), scale (1), shift (0). base 1 is refused
    (1 / ln(base) would be infinite; Caffe CHECKs it). As in Caffe, a scale
    of 1, a shift of 0 and a 1 / ln(base) of 1 are skipped, and the log of a
    negative number is NaN (of 0, −inf): nothing is clamped.
    Backward: dx = dy · (scale / ln(base)) · (shift + scale · x)⁻¹.
    In place kaffe keeps a copy of the input so the gradient is exact,
    unlike Caffe's CPU code which reads the overwritten input.
    """

    def setup(self, bottom, top):
        p = self.layer_param.log_param
        dtype = self.dtype.type
        log_base = log_of_base(self, p.base, "log_param.base")
        if log_base == 0:
            raise self.config_error(
                "must not be 1 (log base 1 is undefined)",
                field="log_param.base", received=p.base,
                fix="use base: -1 for e, or a positive base other than 1")
        self.base_scale = dtype(1) / log_base
        self.input_scale = dtype(p.scale)
        self.input_shift = dtype(p.shift)
        self.backward_num_scale = self.input_scale / log_base

    def forward(self, bottom, top):
        x = bottom[0].data
        y = top[0].data
        xp = array_module(x)
        self.keep_input(bottom, top)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.input_scale == 1 and self.input_shift == 0:
                xp.log(x, out=y)
            else:
                self._shifted(x, y)
                xp.log(y, out=y)
        if self.base_scale != 1:
            y *= self.base_scale

    def _shifted(self, x, out):
        """out = shift + scale · x, skipping a scale of 1 and a shift of 0."""
        if self.input_scale != 1:
            array_module(x).multiply(x, self.input_scale, out=out)
        else:
            out[...] = x
        if self.input_shift != 0:
            out += self.input_shift

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        # Caffe's steps, with the factor in its own array: in place the
        # bottom diff is the top diff, which must be read intact.
        x = self.forward_input(top, bottom)
        xp = array_module(x)
        factor = xp.empty_like(x)
        self._shifted(x, factor)
        with np.errstate(divide="ignore"):
            xp.power(factor, -1, out=factor)
        if self.backward_num_scale != 1:
            factor *= self.backward_num_scale
        xp.multiply(top[0].diff, factor, out=bottom[0].diff)
