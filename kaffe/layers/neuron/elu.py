"""ELU: the exponential linear unit."""
from ...core.backend import array_module
from ...core.registry import register_layer
from .neuron import NeuronLayer


@register_layer("ELU")
class ELULayer(NeuronLayer):
    """y = max(x, 0) + α · (exp(min(x, 0)) − 1): x for x > 0, α(eˣ − 1) else.

    Reads elu_param: alpha α (1). Backward uses the input and the output:
    dx = dy · ((x > 0) + (α + y) · (x ≤ 0)), so the gradient at 0 is α.
    In place the input read is y, which has x's sign whenever α ≥ 0 (the
    result is then unchanged; Caffe does the same).
    """

    def setup(self, bottom, top):
        self.alpha = self.dtype.type(self.layer_param.elu_param.alpha)

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = array_module(x)
        negative = xp.exp(xp.minimum(x, 0))
        negative -= 1
        negative *= self.alpha
        xp.add(xp.maximum(x, 0), negative, out=top[0].data)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        x = bottom[0].data
        dtype = x.dtype
        factor = (x > 0).astype(dtype)
        factor += (self.alpha + top[0].data) * (x <= 0)
        dx = bottom[0].diff
        array_module(x).multiply(top[0].diff, factor, out=dx)
