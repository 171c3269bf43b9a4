"""Threshold: a step function."""
from ...core.registry import register_layer
from .neuron import NeuronLayer


@register_layer("Threshold")
class ThresholdLayer(NeuronLayer):
    """y = 1 if x > threshold else 0 (x = threshold gives 0).

    Reads threshold_param: threshold (0).
    Backward: Caffe has none (NOT_IMPLEMENTED: a net that needs this layer's
    gradient aborts). The step function's true derivative is 0 everywhere
    except at the threshold itself, so kaffe writes dx = 0 instead.
    """

    def setup(self, bottom, top):
        self.threshold = self.dtype.type(
            self.layer_param.threshold_param.threshold)

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data > self.threshold

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = 0
