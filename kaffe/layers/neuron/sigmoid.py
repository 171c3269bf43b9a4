"""Sigmoid."""
from ...core.registry import register_layer
from ...ops.sigmoid import sigmoid
from .neuron import NeuronLayer


@register_layer("Sigmoid")
class SigmoidLayer(NeuronLayer):
    """y = 1 / (1 + e^−x), computed as 0.5·tanh(0.5x) + 0.5 (stable for any x).

    Backward uses the output: dx = dy · y · (1 − y), so it works in place.
    """

    def forward(self, bottom, top):
        sigmoid(bottom[0].data, out=top[0].data)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            y = top[0].data
            dx = bottom[0].diff
            dx[...] = top[0].diff * y * (1 - y)
