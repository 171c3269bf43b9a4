"""ReLU6: the clipped rectifier of the MobileNet-v2 / SSDLite Caffe forks."""
from ...core.backend import array_module
from ...core.registry import register_layer
from .neuron import NeuronLayer


@register_layer("ReLU6")
class ReLU6Layer(NeuronLayer):
    """y = min(max(x, 0), 6).

    From the MobileNet-v2 and SSDLite Caffe forks (e.g. chuanqi305's
    MobileNetv2-SSDLite deploy files, which OpenCV 4.x also reads as
    ``ReLU6``); it has no parameter message. Backward: dx = dy where
    0 < x < 6, else 0 (the kinks at 0 and 6 pass no gradient, as in the
    forks' CPU code). In place kaffe keeps a copy of the input, so the mask
    is the input's.
    """

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = array_module(x)
        self.keep_input(bottom, top)
        xp.clip(x, x.dtype.type(0), x.dtype.type(6), out=top[0].data)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        x = self.forward_input(top, bottom)
        inside = (x > 0) & (x < 6)
        array_module(x).multiply(top[0].diff, inside, out=bottom[0].diff)

    def explain(self, bottoms, tops):
        """The formula line for ``kaffe explain``."""
        return (f"{self.name}: y = min(max(x, 0), 6) element-wise → "
                f"{_shape(tops[0].shape)}")


def _shape(shape):
    return "(" + ", ".join(map(str, shape)) + ")"
