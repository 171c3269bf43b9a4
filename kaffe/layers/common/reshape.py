"""Reshape: give a blob a new shape (no copy)."""
from ...core.layer import Layer
from ...core.registry import register_layer


@register_layer("Reshape")
class ReshapeLayer(Layer):
    """Replaces the axes [axis, axis + num_axes) by reshape_param.shape.

    Reads reshape_param: shape { dim } (0 = copy the input's dim at that
    position, −1 = infer from the count, at most once), axis (0; negative
    counts from the end, −1 = after the last axis), num_axes (−1 = every
    axis from axis on; 0 inserts the new dims).
    The top shares the bottom's data and diff. Not in place.
    Example: (2, 3, 4, 5) with shape { dim: 0 dim: -1 } → (2, 60).
    """

    exact_num_bottom_blobs = 1
    exact_num_top_blobs = 1

    def setup(self, bottom, top):
        self.refuse_in_place(bottom, top)
        dims = list(self.layer_param.reshape_param.shape.dim)
        self.copy_axes = [i for i, d in enumerate(dims) if d == 0]
        inferred = [i for i, d in enumerate(dims) if d == -1]
        if len(inferred) > 1:
            raise self.config_error(
                "may contain -1 (infer this dim) at most once",
                field="reshape_param.shape", received=tuple(dims),
                fix="give every dim but one explicitly")
        if any(d < -1 for d in dims):
            raise self.config_error(
                "dims must be positive, 0 (copy) or -1 (infer)",
                field="reshape_param.shape", received=tuple(dims))
        self.inferred_axis = inferred[0] if inferred else None
        self.constant_count = 1
        for d in dims:
            if d > 0:
                self.constant_count *= d

    def reshape(self, bottom, top):
        p = self.layer_param.reshape_param
        x = bottom[0]
        n = x.num_axes
        start = p.axis if p.axis >= 0 else n + p.axis + 1
        if not 0 <= start <= n:
            raise self.shape_error(
                f"is out of range for the {n}-D input of shape "
                f"({', '.join(map(str, x.shape))})", field="reshape_param.axis",
                received=p.axis, expected=f"an axis in [{-n - 1}, {n}]")
        if p.num_axes < -1:
            raise self.config_error(
                "must be >= 0, or -1 for every axis from axis on",
                field="reshape_param.num_axes", received=p.num_axes)
        end = n if p.num_axes == -1 else start + p.num_axes
        if end > n:
            raise self.shape_error(
                f"runs past the {n}-D input from axis {start}",
                field="reshape_param.num_axes", received=p.num_axes,
                expected=f"at most {n - start}")
        dims = list(p.shape.dim)
        shape = list(x.shape[:start]) + dims + list(x.shape[end:])
        for i in self.copy_axes:
            if start + i >= n:
                raise self.shape_error(
                    f"has a 0 (copy) at position {i} but the input has no "
                    f"axis {start + i} to copy", field="reshape_param.shape",
                    received=tuple(dims))
            shape[start + i] = x.shape[start + i]
        if self.inferred_axis is not None:
            known = (self.constant_count * x.count_axes(0, start)
                     * x.count_axes(end))
            for i in self.copy_axes:
                known *= shape[start + i]
            if known == 0 or x.count % known:
                raise self.shape_error(
                    f"cannot infer the -1 dim: the input count {x.count} is "
                    f"not a multiple of the other dims' product {known}",
                    field="reshape_param.shape", received=tuple(dims))
            shape[start + self.inferred_axis] = x.count // known
        count = 1
        for d in shape:
            count *= d
        if count != x.count:
            raise self.shape_error(
                f"gives {count} elements from an input of {x.count} "
                f"(shape ({', '.join(map(str, x.shape))}))",
                field="reshape_param.shape", received=tuple(dims),
                expected=f"dims whose product gives {x.count} elements")
        top[0].reshape(tuple(shape))
        top[0].share_data(x)
        top[0].share_diff(x)

    def forward(self, bottom, top):
        top[0].share_data(bottom[0])

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].share_diff(top[0])
