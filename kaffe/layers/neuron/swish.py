"""Swish: y = x · σ(βx)."""
from ...core.backend import array_module
from ...core.registry import register_layer
from ...ops.sigmoid import sigmoid
from .neuron import NeuronLayer


@register_layer("Swish")
class SwishLayer(NeuronLayer):
    """y = x · σ(βx), σ(z) = 1 / (1 + e⁻ᶻ).

    Reads swish_param: beta β (1). σ(βx) is computed as the Sigmoid layer
    does (0.5 · tanh(0.5 · βx) + 0.5) and kept for the backward:
    dx = dy · (β · y + σ(βx) · (1 − β · y)). The gradient is taken with
    respect to x only (β is a fixed setting). The backward needs only y and
    σ(βx), so the layer works in place.
    """

    def setup(self, bottom, top):
        self.beta = self.dtype.type(self.layer_param.swish_param.beta)
        self.sigmoid_output = None

    def forward(self, bottom, top):
        x = bottom[0].data
        s = sigmoid(x * self.beta)
        self.sigmoid_output = s
        array_module(x).multiply(x, s, out=top[0].data)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        s = self.sigmoid_output
        beta_y = self.beta * top[0].data
        factor = 1 - beta_y
        factor *= s
        factor += beta_y
        array_module(s).multiply(top[0].diff, factor, out=bottom[0].diff)
