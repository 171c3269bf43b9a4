"""Silence: consumes blobs so that they are not net outputs."""
from ...core.layer import Layer
from ...core.registry import register_layer


@register_layer("Silence")
class SilenceLayer(Layer):
    """Takes any number of bottoms, produces nothing; their gradient is zero."""

    min_bottom_blobs = 1
    exact_num_top_blobs = 0

    def reshape(self, bottom, top):
        """No tops to shape."""

    def forward(self, bottom, top):
        """Nothing to compute."""

    def backward(self, top, propagate_down, bottom):
        for blob, down in zip(bottom, propagate_down):
            if down:
                blob.diff[...] = 0
