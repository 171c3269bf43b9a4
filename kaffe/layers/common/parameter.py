"""Parameter: a learnable blob as a layer output."""
import logging
import math

from ...core.layer import Layer
from ...core.registry import register_layer

log = logging.getLogger("kaffe")


@register_layer("Parameter")
class ParameterLayer(Layer):
    """No bottoms; the top IS the learnable blob (shared data and diff).

    Reads parameter_param.shape. Blobs: [0] the parameter, of that shape,
    all zeros (Caffe fills nothing: load values from a caffemodel or set
    them). The top shares the blob from the first forward on, so consumers'
    gradients land in the blob's diff directly (no backward of its own).
    """

    exact_num_bottom_blobs = 0
    exact_num_top_blobs = 1

    def setup(self, bottom, top):
        shape = tuple(self.layer_param.parameter_param.shape.dim)
        if any(d < 0 for d in shape):
            raise self.config_error(
                "must not have negative dimensions",
                field="parameter_param.shape", received=shape)
        if self.blobs:
            log.info("Skipping parameter initialization")
            if self.blobs[0].count != math.prod(shape):
                raise self.shape_error(
                    "does not fit parameter_param.shape", field="blobs[0]",
                    received=self.blobs[0].shape,
                    expected=f"{math.prod(shape)} values, as shape {shape}")
        else:
            self.blobs.append(self.make_blob(shape))
        top[0].reshape(shape)

    def reshape(self, bottom, top):
        """Nothing: the top keeps parameter_param.shape."""

    def forward(self, bottom, top):
        top[0].share_data(self.blobs[0])
        top[0].share_diff(self.blobs[0])

    def backward(self, top, propagate_down, bottom):
        """Nothing: the top's diff is the blob's diff."""
