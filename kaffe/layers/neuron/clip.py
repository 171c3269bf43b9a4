"""Clip: clamp to [min, max]."""
from ...core.backend import array_module
from ...core.registry import register_layer
from .neuron import NeuronLayer


@register_layer("Clip")
class ClipLayer(NeuronLayer):
    """y = max(min, min(x, max)), with std::min/std::max's comparisons.

    Reads clip_param: min, max — required fields of ClipParameter: a
    clip_param that lacks either is refused (Caffe fails to parse it). As in
    Caffe, a layer with no clip_param at all clips to [0, 0], and min > max
    is not checked (every output is then min and every gradient 0).
    NaN inputs give min (std::max(min, NaN) is min).
    Backward: dx = dy where min ≤ x ≤ max (both ends included), else 0.
    In place kaffe keeps a copy of the input so the gradient is exact,
    unlike Caffe's CPU code which reads the overwritten input.
    """

    def setup(self, bottom, top):
        p = self.layer_param.clip_param
        if self.layer_param.HasField("clip_param"):
            for name in ("min", "max"):
                if not p.HasField(name):
                    raise self.config_error(
                        "is a required field of clip_param",
                        field=f"clip_param.{name}", received="no value",
                        fix=f"add {name}: <value> to clip_param")
        self.min = self.dtype.type(p.min)
        self.max = self.dtype.type(p.max)

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = array_module(x)
        self.keep_input(bottom, top)
        upper = xp.where(self.max < x, self.max, x)
        xp.copyto(top[0].data, xp.where(self.min < upper, upper, self.min))

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        x = self.forward_input(top, bottom)
        inside = (x >= self.min) & (x <= self.max)
        array_module(x).multiply(top[0].diff, inside, out=bottom[0].diff)
