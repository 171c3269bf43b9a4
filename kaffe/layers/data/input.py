"""Input: the net's entry points, filled by the user."""
from ...core.layer import Layer
from ...core.registry import register_layer


@register_layer("Input")
class InputLayer(Layer):
    """Declares input blobs; the user writes their values (``net.blobs[...]``).

    Reads input_param: shape (0, 1, or one per top). With no shape the tops
    stay empty until the user reshapes them. Legacy ``input:``/``input_dim:``
    fields are upgraded into this layer when a net is read.
    """

    exact_num_bottom_blobs = 0
    min_top_blobs = 1

    def setup(self, bottom, top):
        shapes = self.layer_param.input_param.shape
        if len(shapes) not in (0, 1, len(top)):
            raise self.config_error(
                "must be given once, once per top, or not at all",
                field="input_param.shape", received=f"{len(shapes)} shapes",
                expected=f"0, 1 or {len(top)} (one per top)")
        for i, blob in enumerate(top):
            if len(shapes):
                shape = tuple(shapes[0 if len(shapes) == 1 else i].dim)
                if any(d < 0 for d in shape):
                    raise self.config_error(
                        "must not have negative dimensions",
                        field="input_param.shape", received=shape)
                blob.reshape(shape)

    def reshape(self, bottom, top):
        """Input shapes change only when the user reshapes the blobs."""

    def forward(self, bottom, top):
        """The values are whatever the user wrote into the tops."""

    def backward(self, top, propagate_down, bottom):
        """No bottoms: nothing to propagate."""
