"""Concat: join blobs along an axis."""
from ...core.backend import array_module
from ...core.layer import Layer
from ...core.registry import register_layer


@register_layer("Concat")
class ConcatLayer(Layer):
    """Concatenates the bottoms along ``concat_param.axis``.

    Reads concat_param: axis (1) or the deprecated concat_dim (not both).
    All other dims must agree. One bottom: the top shares it (no copy).
    """

    min_bottom_blobs = 1
    exact_num_top_blobs = 1

    def setup(self, bottom, top):
        p = self.layer_param.concat_param
        if p.HasField("axis") and p.HasField("concat_dim"):
            raise self.config_error(
                "cannot be combined with the deprecated concat_dim",
                field="concat_param.axis",
                received=f"axis {p.axis} and concat_dim {p.concat_dim}",
                fix="keep only axis")

    def reshape(self, bottom, top):
        p = self.layer_param.concat_param
        first = bottom[0]
        if p.HasField("concat_dim"):
            axis = p.concat_dim
            if axis >= first.num_axes:
                raise self.shape_error(
                    "is out of range", field="concat_param.concat_dim",
                    received=axis, expected=f"< {first.num_axes}")
        else:
            axis = self.canonical_axis(first, p.axis, "concat_param.axis")
        self.axis = axis
        shape = list(first.shape)
        for i, blob in enumerate(bottom[1:], start=1):
            other = blob.shape
            if len(other) != len(shape) or any(
                    a != b for j, (a, b) in enumerate(zip(shape, other))
                    if j != axis):
                raise self.shape_error(
                    f"bottom[{i}] must have the same shape as bottom[0] "
                    f"except along axis {axis}", field="bottom",
                    received=f"{first.shape} and {other}")
            shape[axis] += other[axis]
        top[0].reshape(tuple(shape))
        if len(bottom) == 1:
            top[0].share_data(first)
            top[0].share_diff(first)

    def forward(self, bottom, top):
        if len(bottom) == 1:
            return
        xp = array_module(bottom[0].data)
        xp.concatenate([b.data for b in bottom], axis=self.axis,
                       out=top[0].data)

    def backward(self, top, propagate_down, bottom):
        if len(bottom) == 1:
            return
        dy = top[0].diff
        offset = 0
        index = [slice(None)] * dy.ndim
        for blob, down in zip(bottom, propagate_down):
            size = blob.shape[self.axis]
            if down:
                index[self.axis] = slice(offset, offset + size)
                blob.diff[...] = dy[tuple(index)]
            offset += size
