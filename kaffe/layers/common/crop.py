"""Crop: cut bottom[0] to the size of bottom[1] from an axis on."""
from ...core.layer import Layer
from ...core.registry import register_layer


@register_layer("Crop")
class CropLayer(Layer):
    """top = bottom[0][..., o_a : o_a + r_a, ...] for every axis a >= axis.

    Reads crop_param: axis (2), offset (none = 0 everywhere; one value for
    every cropped axis; or one per axis from ``axis`` to the last).
    bottom[1] is the reference: only its shape is read (it needs at least as
    many axes as bottom[0]).
    Shape: bottom[0]'s dims before ``axis``, bottom[1]'s dims from it on.
    Backward: bottom[0]'s diff is the top diff placed at the offsets, zero
    elsewhere; bottom[1] gets no gradient (its diff is left untouched).
    In place only when nothing is cut.
    """

    exact_num_bottom_blobs = 2
    exact_num_top_blobs = 1

    def setup(self, bottom, top):
        p = self.layer_param.crop_param
        axis = self.canonical_axis(bottom[0], p.axis, "crop_param.axis")
        cropped = bottom[0].num_axes - axis
        if len(p.offset) > 1 and len(p.offset) != cropped:
            raise self.config_error(
                f"must be given once, or once per cropped axis (axes {axis} "
                f"to {bottom[0].num_axes - 1})", field="crop_param.offset",
                received=f"{len(p.offset)} values",
                expected=f"1 or {cropped} values")

    def reshape(self, bottom, top):
        p = self.layer_param.crop_param
        x, ref = bottom
        axis = self.canonical_axis(x, p.axis, "crop_param.axis")
        if ref.num_axes < x.num_axes:
            raise self.shape_error(
                "(the reference) needs at least as many axes as bottom[0] "
                f"{x.shape}", field="bottom[1]", received=ref.shape,
                expected=f"at least {x.num_axes} axes")
        shape = list(x.shape)
        self.offsets = [0] * x.num_axes
        for i in range(axis, x.num_axes):
            offset = 0
            if len(p.offset) == 1:
                offset = p.offset[0]
            elif len(p.offset) > 1:
                offset = p.offset[i - axis]
            if x.shape[i] - offset < ref.shape[i]:
                raise self.shape_error(
                    f"runs past the input on axis {i}: a crop of size "
                    f"{ref.shape[i]} at offset {offset} needs "
                    f"{ref.shape[i] + offset} elements, the input has "
                    f"{x.shape[i]}", field="crop_param.offset",
                    received=offset,
                    expected=f"at most {x.shape[i] - ref.shape[i]}")
            shape[i] = ref.shape[i]
            self.offsets[i] = offset
        if top[0] is x and tuple(shape) != x.shape:
            raise self.config_error(
                "cannot run in place when it cuts the input", field="top",
                received=self.layer_param.top[0] if self.layer_param.top
                else "bottom[0]",
                fix="give the top a name different from bottom[0]")
        self.window = tuple(slice(o, o + d)
                            for o, d in zip(self.offsets, shape))
        top[0].reshape(tuple(shape))

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data[self.window]

    def backward(self, top, propagate_down, bottom):
        # In place nothing was cut: the bottom diff already is the top diff.
        if not propagate_down[0] or top[0] is bottom[0]:
            return
        dx = bottom[0].diff
        dx[...] = 0
        dx[self.window] = top[0].diff
