"""TanH."""
from ...core.backend import array_module
from ...core.registry import register_layer
from .neuron import NeuronLayer


@register_layer("TanH")
class TanHLayer(NeuronLayer):
    """y = tanh(x). Backward uses the output: dx = dy · (1 − y²)."""

    def forward(self, bottom, top):
        xp = array_module(bottom[0].data)
        xp.tanh(bottom[0].data, out=top[0].data)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            y = top[0].data
            bottom[0].diff[...] = top[0].diff * (1 - y * y)
