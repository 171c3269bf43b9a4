"""Axpy: SENet's fused channel scale and residual sum."""
from ...core.backend import array_module
from ...core.layer import Layer
from ...core.registry import register_layer


@register_layer("Axpy")
class AxpyLayer(Layer):
    """top = a · x + y, with one scale a[n, c] per channel of each example.

    From the SENet Caffe fork (hujie-frank/SENet, ``axpy_layer.cpp``).
    OpenCV 4.x reads it as a Scale and an Eltwise sum that compute
    a · bottom[2] + bottom[1], the last two bottoms swapped against the
    fork; kaffe follows the fork. Bottoms: [0] a
    (N, C) or (N, C, 1, 1), the excitation; [1] x (N, C, ...), the
    features; [2] y, shaped as x, the shortcut. Top: shaped as x. No
    parameters.

    Backward: da[n, c] = Σ over the spatial positions of x·dtop,
    dx = a·dtop, dy = dtop. (The fork's CPU code writes dx only when the
    gradient of a is asked for, a slip; kaffe follows propagate_down for
    each bottom.)
    """

    exact_num_bottom_blobs = 3
    exact_num_top_blobs = 1

    def setup(self, bottom, top):
        if top[0] is bottom[0] or top[0] is bottom[1]:
            raise self.config_error(
                "may only run in place on bottom[2] (the shortcut)",
                field="top", received=self.layer_param.top[0],
                fix="name the top after the third bottom, or give it a new "
                    "name")

    def reshape(self, bottom, top):
        a, x, y = bottom
        if x.num_axes < 2 or a.num_axes < 2 or a.shape[:2] != x.shape[:2]:
            raise self.shape_error(
                "bottom[0] (the scales) must be (N, C) or (N, C, 1, 1) for "
                "the (N, C, ...) features in bottom[1]", field="bottom",
                received=f"{a.shape} and {x.shape}")
        if a.num_axes == 4 and a.shape[2:] != (1, 1):
            raise self.shape_error(
                "bottom[0] (the scales) must have 1×1 spatial size",
                field="bottom", received=a.shape,
                expected=f"({x.shape[0]}, {x.shape[1]}, 1, 1)")
        if a.count != x.shape[0] * x.shape[1]:
            raise self.shape_error(
                "bottom[0] must hold one scale per channel of each example",
                field="bottom", received=a.shape,
                expected=f"{x.shape[0] * x.shape[1]} values")
        if y.shape != x.shape:
            raise self.shape_error(
                "bottom[2] (the shortcut) must have the shape of bottom[1]",
                field="bottom", received=y.shape, expected=x.shape)
        top[0].reshape(x.shape)

    def _scales(self, a, x):
        """The scales as an (N, C, 1) array against x viewed (N, C, -1)."""
        return a.reshape(x.shape[0], x.shape[1], 1)

    def forward(self, bottom, top):
        a, x, y = (b.data for b in bottom)
        x3 = x.reshape(x.shape[0], x.shape[1], -1)
        out = self._scales(a, x) * x3 + y.reshape(x3.shape)
        top[0].data[...] = out.reshape(top[0].shape)

    def backward(self, top, propagate_down, bottom):
        a, x = bottom[0].data, bottom[1].data
        dy = top[0].diff
        x3 = x.reshape(x.shape[0], x.shape[1], -1)
        dy3 = dy.reshape(x3.shape)
        xp = array_module(dy)
        if propagate_down[0]:
            da = xp.einsum("ncs,ncs->nc", x3, dy3)
            bottom[0].diff[...] = da.reshape(bottom[0].shape)
        if propagate_down[1]:
            bottom[1].diff[...] = (self._scales(a, x) * dy3).reshape(x.shape)
        if propagate_down[2]:
            bottom[2].diff[...] = dy

    def explain(self, bottoms, tops):
        """The formula line for ``kaffe explain``."""
        a, x, y = self.layer_param.bottom if len(self.layer_param.bottom) \
            == 3 else ("bottom[0]", "bottom[1]", "bottom[2]")
        n, c = bottoms[1].shape[:2]
        return (f"{self.name}: {a}[n, c] · {x} + {y}: one scale per channel "
                f"({n}×{c} scales) times each {x} map, plus the shortcut")
