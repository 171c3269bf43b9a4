"""AbsVal: the absolute value."""
from ...core.backend import array_module
from ...core.registry import register_layer
from .neuron import NeuronLayer


@register_layer("AbsVal")
class AbsValLayer(NeuronLayer):
    """y = |x|.

    Backward: dx = sign(x) · dy with sign(0) = 0 (Caffe's caffe_cpu_sign,
    which also gives 0 for NaN). The backward needs x, so the layer cannot
    run in place (Caffe CHECKs this too).
    """

    def setup(self, bottom, top):
        if top[0] is bottom[0]:
            raise self.config_error(
                "cannot be computed in place (the backward needs the input)",
                field="top", received=self.layer_param.top[0]
                if self.layer_param.top else "the bottom blob",
                expected="a top blob other than the bottom",
                fix="give the top a new name")

    def forward(self, bottom, top):
        xp = array_module(bottom[0].data)
        xp.abs(bottom[0].data, out=top[0].data)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        x = bottom[0].data
        dx = bottom[0].diff
        dx[...] = x > 0
        dx -= x < 0
        dx *= top[0].diff
