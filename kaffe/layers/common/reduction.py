"""Reduction: sum, absolute sum, sum of squares or mean over trailing axes."""
from ...core.backend import array_module
from ...core.layer import Layer
from ...core.registry import register_layer
from ...proto import caffe_pb2

_OP = caffe_pb2.ReductionParameter


@register_layer("Reduction")
class ReductionLayer(Layer):
    """top[i] = coeff · op(bottom[i, …]) over all axes from ``axis`` on.

    Reads reduction_param: operation SUM (default) / ASUM (Σ|x|) / SUMSQ
    (Σx²) / MEAN, axis (0), coeff (1).
    Shape: (d0 … d{axis-1}, *) → (d0 … d{axis-1}); axis 0 gives a scalar
    (0-axis) top. Only trailing axes can be reduced.
    MEAN is SUM with coeff / (number of reduced values), as in Caffe.
    Gradient: coeff (SUM, MEAN), coeff·sign(x) with sign(0) = 0 (ASUM),
    2·coeff·x (SUMSQ), times the top's gradient.
    """

    exact_num_bottom_blobs = 1
    exact_num_top_blobs = 1

    def setup(self, bottom, top):
        self.operation = self.layer_param.reduction_param.operation

    def reshape(self, bottom, top):
        p = self.layer_param.reduction_param
        axis = self.canonical_axis(bottom[0], p.axis, "reduction_param.axis")
        top[0].reshape(bottom[0].shape[:axis])
        self.num = bottom[0].count_axes(0, axis)
        self.dim = bottom[0].count_axes(axis)
        # Caffe keeps coeff in the blob's type and folds MEAN's 1/dim into it.
        coeff = self.dtype.type(p.coeff)
        if self.operation == _OP.MEAN:
            coeff = coeff / self.dtype.type(self.dim)
        self.coeff = coeff

    def forward(self, bottom, top):
        x = bottom[0].data.reshape(self.num, self.dim)
        y = top[0].data.reshape(self.num)
        xp = array_module(x)
        if self.operation == _OP.ASUM:
            xp.abs(x).sum(axis=1, out=y)
        elif self.operation == _OP.SUMSQ:
            (x * x).sum(axis=1, out=y)
        else:
            x.sum(axis=1, out=y)
        if self.coeff != 1:
            y *= self.coeff

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        x = bottom[0].data.reshape(self.num, self.dim)
        dx = bottom[0].diff.reshape(self.num, self.dim)
        # Per item, in Caffe's order: (top diff · coeff), then the rest.
        scale = (top[0].diff.reshape(self.num, 1) * self.coeff)
        if self.operation == _OP.ASUM:
            sign = (x > 0).astype(x.dtype) - (x < 0).astype(x.dtype)
            dx[...] = sign * scale
        elif self.operation == _OP.SUMSQ:
            dx[...] = (2 * scale) * x
        else:
            dx[...] = scale
