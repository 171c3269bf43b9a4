"""MVN: mean-variance normalisation per item (and channel)."""
from ...core.layer import Layer
from ...core.registry import register_layer
from ...ops.normalization import centered_moments, normalize_backward


@register_layer("MVN")
class MVNLayer(Layer):
    """y = (x − mean) / (sqrt(var) + eps), or y = x − mean.

    Reads mvn_param: normalize_variance (true), across_channels (false),
    eps (1e-9; added to the standard deviation, not to the variance).
    The statistics (mean, biased variance) are taken per (n, c) over H·W,
    or per n over C·H·W with across_channels.
    Shape: Caffe's legacy 4-D view — the top is (num, channels, height,
    width) with missing axes read as 1, so a (N, C) input gives an
    (N, C, 1, 1) top; inputs with more than 4 axes are refused.

    Backward (Caffe's formula): dx = dy − mean(dy) without variance
    normalisation, else (dy − mean(dy) − mean(dy·y)·y) / (sqrt(var) + eps),
    the true gradient only as eps → 0. It reads y from the top at backward
    time, as Caffe does. In place it reads the top diff before writing the
    bottom diff, so the gradient is the one computed out of place, unlike
    Caffe's CPU code which overwrites the top diff it still needs.
    """

    exact_num_bottom_blobs = 1
    exact_num_top_blobs = 1

    def reshape(self, bottom, top):
        if bottom[0].num_axes > 4:
            raise self.shape_error(
                "takes inputs of at most 4 axes (Caffe reads it as num, "
                "channels, height, width)", field="bottom",
                received=bottom[0].shape, expected="at most 4 axes",
                fix="reshape the input to 4 axes first")
        shape = tuple(bottom[0].legacy_shape(i) for i in range(4))
        top[0].reshape(shape)
        n, c = shape[0], shape[1]
        groups = n if self.layer_param.mvn_param.across_channels else n * c
        self.groups = (groups, bottom[0].count // groups if groups else 0)

    def forward(self, bottom, top):
        p = self.layer_param.mvn_param
        x = bottom[0].data.reshape(self.groups)
        centered, _, var = centered_moments(x, 1)
        y = top[0].data.reshape(self.groups)
        if p.normalize_variance:
            self.denom = var ** 0.5 + self.dtype.type(p.eps)
            y[...] = centered / self.denom
        else:
            y[...] = centered

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dy = top[0].diff.reshape(self.groups)
        dx = bottom[0].diff.reshape(self.groups)
        if not self.layer_param.mvn_param.normalize_variance:
            dx[...] = dy - dy.mean(axis=1, keepdims=True)
            return
        # normalize_backward reads all of dy before it writes dx, which in
        # place is the same buffer.
        y = top[0].data.reshape(self.groups)
        normalize_backward(dy, y, self.denom, 1, out=dx)
