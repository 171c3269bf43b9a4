"""BNLL: the binomial normal log likelihood, log(1 + eˣ) (softplus)."""
import numpy as np

from ...core.backend import array_module
from ...core.registry import register_layer
from .neuron import NeuronLayer

# Caffe clamps the input of the backward's exponential at this value.
BNLL_THRESHOLD = 50.0


@register_layer("BNLL")
class BNLLLayer(NeuronLayer):
    """y = log(1 + eˣ), computed as x + log(1 + e⁻ˣ) for x > 0.

    As in Caffe the forward is evaluated in double precision (its ``1.``
    literal) and rounded to the blob's type once, and it is log(1 + e),
    not log1p: for x below about −37 the result is exactly 0.
    Backward: dx = dy · e / (e + 1) with e = exp(min(x, 50)).
    In place kaffe keeps a copy of the input so the gradient is exact,
    unlike Caffe's CPU code which reads the overwritten input.
    """

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = array_module(x)
        self.keep_input(bottom, top)
        x64 = x.astype(np.float64, copy=False)
        y = xp.maximum(x64, 0) + xp.log(1.0 + xp.exp(-xp.abs(x64)))
        top[0].data[...] = y

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        x = self.forward_input(top, bottom)
        dx = bottom[0].diff
        xp = array_module(x)
        e = xp.exp(xp.minimum(x, x.dtype.type(BNLL_THRESHOLD)))
        xp.multiply(top[0].diff, e, out=dx)
        e += 1
        dx /= e
