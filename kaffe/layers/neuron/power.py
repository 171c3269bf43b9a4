"""Power: y = (shift + scale · x)^power."""
from ...core.registry import register_layer
from ...ops.power import power_backward, power_forward
from .neuron import NeuronLayer


@register_layer("Power")
class PowerLayer(NeuronLayer):
    """y = (shift + scale · x)^power.

    Reads power_param: power (1), scale (1), shift (0), used as scalars of
    the blob's type. With power = 0 or scale = 0 the output is the constant
    1 (power 0) or shift^power, and the gradient is 0. A negative base with a
    non-integer power gives NaN, and with shift = 0 the gradient at x = 0 is
    NaN or inf (Caffe computes it as power · y / x). kaffe.ops.power has
    every case. In place kaffe keeps a copy of the input so the gradient is
    exact, unlike Caffe's CPU code which reads the overwritten input.
    """

    def setup(self, bottom, top):
        p = self.layer_param.power_param
        dtype = self.dtype.type
        self.power = dtype(p.power)
        self.scale = dtype(p.scale)
        self.shift = dtype(p.shift)

    def forward(self, bottom, top):
        self.keep_input(bottom, top)
        power_forward(bottom[0].data, top[0].data, self.power, self.scale,
                      self.shift)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            power_backward(self.forward_input(top, bottom), top[0].data,
                           top[0].diff, bottom[0].diff, self.power,
                           self.scale, self.shift)
