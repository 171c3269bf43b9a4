"""Flatten: merge a range of axes into one (no copy)."""
from ...core.layer import Layer
from ...core.registry import register_layer


@register_layer("Flatten")
class FlattenLayer(Layer):
    """Reshapes axes ``axis`` .. ``end_axis`` into one; data and diff are shared.

    Reads flatten_param: axis (1), end_axis (−1).
    Shape: (N, C, H, W) → (N, C·H·W) by default. Not in place.
    """

    exact_num_bottom_blobs = 1
    exact_num_top_blobs = 1

    def reshape(self, bottom, top):
        self.refuse_in_place(bottom, top)
        p = self.layer_param.flatten_param
        start = self.canonical_axis(bottom[0], p.axis, "flatten_param.axis")
        end = self.canonical_axis(bottom[0], p.end_axis,
                                  "flatten_param.end_axis")
        shape = bottom[0].shape
        if end < start:
            raise self.config_error(
                "must not come before axis", field="flatten_param.end_axis",
                received=p.end_axis, expected=f">= axis ({p.axis})")
        top[0].reshape(shape[:start] + (bottom[0].count_axes(start, end + 1),)
                       + shape[end + 1:])
        top[0].share_data(bottom[0])

    def forward(self, bottom, top):
        top[0].share_data(bottom[0])

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].share_diff(top[0])
