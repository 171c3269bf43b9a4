"""ReLU and leaky ReLU."""
from ...core.backend import array_module
from ...core.registry import register_layer
from .neuron import NeuronLayer


@register_layer("ReLU")
class ReLULayer(NeuronLayer):
    """y = max(x, 0) + negative_slope · min(x, 0).

    Reads relu_param: negative_slope (0). The gradient at x = 0 is taken from
    the negative side (Caffe: x > 0 passes the gradient, else slope).
    """

    def forward(self, bottom, top):
        x = bottom[0].data
        y = top[0].data
        xp = array_module(x)
        slope = self.layer_param.relu_param.negative_slope
        if slope == 0:
            _max0(xp, x, y)
        else:
            xp.multiply(x, _factors(x, slope), out=y)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        # In place, the bottom holds the output y; for slope >= 0, y > 0
        # exactly where x > 0, so the mask is the same (as in Caffe).
        x = bottom[0].data
        dy = top[0].diff
        dx = bottom[0].diff
        xp = array_module(x)
        slope = self.layer_param.relu_param.negative_slope
        if slope == 0:
            xp.multiply(dy, x > 0, out=dx)
        else:
            xp.multiply(dy, _factors(x, slope), out=dx)


# From this many elements on, max(x, 0) is computed as clip(x, 0, +inf):
# the same value for every x (NaN stays NaN), but NumPy's clip between two
# scalars runs a vector loop that its maximum against one scalar lacks
# (MobileNet's 32 × 112² map, one thread: 72 → 45 µs; 192 × 28²: 27 → 16
# µs); below it the plain call is cheaper.
_CLIP_MIN_SIZE = 1 << 14


def _max0(xp, x, y):
    """y = max(x, 0)."""
    if x.size >= _CLIP_MIN_SIZE:
        xp.clip(x, x.dtype.type(0), x.dtype.type("inf"), out=y)
    else:
        xp.maximum(x, 0, out=y)


def _factors(x, slope):
    """1 where x > 0, else ``slope``, in x's dtype (made in that dtype
    directly: no float64 array to convert)."""
    xp = array_module(x)
    return xp.where(x > 0, x.dtype.type(1), x.dtype.type(slope))
