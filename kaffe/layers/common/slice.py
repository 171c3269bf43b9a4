"""Slice: cut a blob into pieces along an axis."""
from ...core.layer import Layer
from ...core.registry import register_layer


@register_layer("Slice")
class SliceLayer(Layer):
    """Splits the bottom along ``axis`` into the tops, in order.

    Reads slice_param: axis (1) or the deprecated slice_dim (not both;
    slice_dim counts from 0, no negatives), slice_point (ntop − 1 strictly
    increasing cut positions; a last piece of size 0 is allowed, as in
    Caffe). Without slice_point the axis is split equally, which the number
    of tops must divide.
    Backward writes each top's diff into its piece of the bottom diff.
    One top: it shares the bottom's data and diff (no copy).
    """

    exact_num_bottom_blobs = 1
    min_top_blobs = 1

    def setup(self, bottom, top):
        p = self.layer_param.slice_param
        if p.HasField("axis") and p.HasField("slice_dim"):
            raise self.config_error(
                "cannot be combined with the deprecated slice_dim",
                field="slice_param.axis",
                received=f"axis {p.axis} and slice_dim {p.slice_dim}",
                fix="keep only axis")

    def _axis(self, blob):
        p = self.layer_param.slice_param
        if not p.HasField("slice_dim"):
            return self.canonical_axis(blob, p.axis, "slice_param.axis")
        if p.slice_dim >= blob.num_axes:
            raise self.shape_error(
                f"is out of range for the {blob.num_axes}-D input",
                field="slice_param.slice_dim", received=p.slice_dim,
                expected=f"an axis in [0, {blob.num_axes - 1}]")
        return p.slice_dim

    def _sizes(self, size, n_top):
        points = list(self.layer_param.slice_param.slice_point)
        if not points:
            if size % n_top:
                raise self.shape_error(
                    f"cannot split an axis of size {size} into {n_top} equal "
                    "tops", field="top", received=f"{n_top} tops",
                    expected=f"a number of tops that divides {size}",
                    fix="use slice_point for unequal pieces")
            return [size // n_top] * n_top
        if len(points) != n_top - 1:
            raise self.config_error(
                "must list one cut fewer than there are tops",
                field="slice_param.slice_point", received=tuple(points),
                expected=f"{n_top - 1} increasing positions")
        if n_top > size:
            raise self.shape_error(
                f"gives {n_top} tops for an axis of size {size}",
                field="slice_param.slice_point", received=tuple(points),
                expected=f"at most {size} tops")
        bounds = [0] + points
        if any(b <= a for a, b in zip(bounds, bounds[1:])) or points[-1] > size:
            raise self.shape_error(
                f"must increase strictly from 1 and stay within the axis "
                f"size {size}", field="slice_param.slice_point",
                received=tuple(points))
        return [b - a for a, b in zip(bounds, points + [size])]

    def reshape(self, bottom, top):
        x = bottom[0]
        self.axis = self._axis(x)
        sizes = self._sizes(x.shape[self.axis], len(top))
        if len(top) > 1 and any(blob is x for blob in top):
            raise self.config_error(
                "cannot run in place with several tops", field="top",
                received=", ".join(self.layer_param.top) or "the bottom",
                fix="give every top its own name")
        for blob, size in zip(top, sizes):
            shape = list(x.shape)
            shape[self.axis] = size
            blob.reshape(tuple(shape))
        if len(top) == 1:
            top[0].share_data(x)
            top[0].share_diff(x)
        self.windows = []
        start = 0
        for size in sizes:
            index = [slice(None)] * x.num_axes
            index[self.axis] = slice(start, start + size)
            self.windows.append(tuple(index))
            start += size

    def forward(self, bottom, top):
        if len(top) == 1:
            return
        x = bottom[0].data
        for blob, window in zip(top, self.windows):
            blob.data[...] = x[window]

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0] or len(top) == 1:
            return
        dx = bottom[0].diff
        for blob, window in zip(top, self.windows):
            dx[window] = blob.diff
