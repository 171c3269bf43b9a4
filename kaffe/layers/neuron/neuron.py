"""NeuronLayer: the family of element-wise layers (top has the bottom's shape)."""
from ...core.layer import Layer


class NeuronLayer(Layer):
    """An element-wise function of one bottom; may run in place (top = bottom)."""

    exact_num_bottom_blobs = 1
    exact_num_top_blobs = 1

    def reshape(self, bottom, top):
        top[0].reshape_like(bottom[0])
