"""Softmax along an axis."""
from ...core.layer import Layer
from ...core.registry import register_layer
from ...ops.softmax import softmax, softmax_backward


@register_layer("Softmax")
class SoftmaxLayer(Layer):
    """top = exp(x − max) / Σ exp(x − max) along ``softmax_param.axis``.

    Reads softmax_param: axis (1). Every other axis is independent.
    Shape: top has the bottom's shape.
    """

    exact_num_bottom_blobs = 1
    exact_num_top_blobs = 1

    def reshape(self, bottom, top):
        self.axis = self.canonical_axis(
            bottom[0], self.layer_param.softmax_param.axis, "softmax_param.axis")
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        softmax(bottom[0].data, self.axis, out=top[0].data)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            softmax_backward(top[0].data, top[0].diff, self.axis,
                             out=bottom[0].diff)
