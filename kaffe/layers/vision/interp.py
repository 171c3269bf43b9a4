"""Interp: DeepLab's and PSPNet's bilinear resize layer."""
from ...core.layer import Layer
from ...core.registry import register_layer
from ...ops.interp import interp_backward, interp_forward

FIELD = "interp_param"


@register_layer("Interp")
class InterpLayer(Layer):
    """Bilinear resize of each channel with corners aligned (see
    :mod:`kaffe.ops.interp`).

    From the DeepLab v2 Caffe fork (``interp_layer.cpp``, also PSPNet's;
    OpenCV 4.x implements it). Reads interp_param: zoom_factor,
    shrink_factor, height + width, pad_beg / pad_end (≤ 0: crop the input
    first). With H_eff = H + pad_beg + pad_end (the same for W), the output
    size is, checked in the fork's order:

    - a second bottom (none of the four size fields set): its H × W;
    - shrink_factor s alone: (H_eff − 1)/s + 1 (floor);
    - zoom_factor z alone: H_eff + (H_eff − 1)(z − 1);
    - height and width: those;
    - shrink then zoom when both factors are set.

    The second-bottom form is that of the PSPNet-derived forks; their check
    that the batch is 1 is not kept (the resize does not depend on it).
    Backward: the adjoint of the resize (the fork's ``interp2_backward``);
    a second bottom gets a zero gradient (only its shape is read).
    """

    min_bottom_blobs = 1
    max_bottom_blobs = 2
    exact_num_top_blobs = 1

    def setup(self, bottom, top):
        p = self.layer_param.interp_param
        for name in ("pad_beg", "pad_end"):
            if getattr(p, name) > 0:
                raise self.config_error(
                    "must be ≤ 0 (only cropping is supported, as in the "
                    "fork)", field=f"{FIELD}.{name}",
                    received=getattr(p, name))
        if len(bottom) > 1:
            given = [f for f in ("shrink_factor", "zoom_factor", "height",
                                 "width") if p.HasField(f)]
            if given:
                raise self.config_error(
                    "cannot be combined with a second bottom (ambiguous "
                    "output size)", field=f"{FIELD}.{given[0]}",
                    received=getattr(p, given[0]),
                    fix="remove the size fields, or the second bottom")
        elif not (p.HasField("shrink_factor") or p.HasField("zoom_factor")
                  or (p.HasField("height") and p.HasField("width"))):
            raise self.config_error(
                "sets no output size", field=FIELD, received="none of "
                "zoom_factor, shrink_factor, height + width",
                fix="set zoom_factor, shrink_factor, or height and width")
        for name in ("shrink_factor", "zoom_factor"):
            if p.HasField(name) and getattr(p, name) < 1:
                raise self.config_error(
                    "must be ≥ 1", field=f"{FIELD}.{name}",
                    received=getattr(p, name))
        self.refuse_in_place(bottom, top)

    def output_size(self, in_hw, bottom):
        """(H_out, W_out) for an input of spatial size ``in_hw``."""
        p = self.layer_param.interp_param
        if len(bottom) > 1:
            return tuple(bottom[1].shape[2:4])
        eff = [s + p.pad_beg + p.pad_end for s in in_hw]
        shrink, zoom = p.HasField("shrink_factor"), p.HasField("zoom_factor")
        if shrink and not zoom:
            return tuple((e - 1) // p.shrink_factor + 1 for e in eff)
        if zoom and not shrink:
            return tuple(e + (e - 1) * (p.zoom_factor - 1) for e in eff)
        if p.HasField("height") and p.HasField("width"):
            return (p.height, p.width)
        shrunk = [(e - 1) // p.shrink_factor + 1 for e in eff]
        return tuple(s + (s - 1) * (p.zoom_factor - 1) for s in shrunk)

    def reshape(self, bottom, top):
        x = bottom[0]
        for i, blob in enumerate(bottom):
            if blob.num_axes != 4:
                raise self.shape_error(
                    f"bottom[{i}] must have 4 axes (num, channels, height, "
                    "width)", field="bottom", received=blob.shape)
        p = self.layer_param.interp_param
        self.in_hw = tuple(x.shape[2:])
        self.size = tuple(s + p.pad_beg + p.pad_end for s in self.in_hw)
        self.origin = (-p.pad_beg, -p.pad_beg)
        self.out_hw = self.output_size(self.in_hw, bottom)
        if min(self.size) <= 0 or min(self.out_hw) <= 0:
            raise self.shape_error(
                "leaves no input or output pixels", field=FIELD,
                received=f"input {self.in_hw}, cropped {self.size}, output "
                         f"{self.out_hw}",
                expected="positive sizes")
        top[0].reshape(x.shape[:2] + self.out_hw)

    def forward(self, bottom, top):
        top[0].data[...] = interp_forward(bottom[0].data, self.out_hw,
                                          self.origin, self.size)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = interp_backward(
                top[0].diff, self.in_hw, self.origin, self.size)
        if len(bottom) > 1 and propagate_down[1]:
            bottom[1].diff[...] = 0  # only its shape is read

    def explain(self, bottoms, tops):
        """The formula line for ``kaffe explain``."""
        p = self.layer_param.interp_param
        (h, w), (eh, ew), (oh, ow) = self.in_hw, self.size, self.out_hw
        crop = (f"cropped by pad_beg {p.pad_beg}, pad_end {p.pad_end} to "
                f"{eh}×{ew}, " if (eh, ew) != (h, w) else "")
        if len(bottoms) > 1:
            how = f"the size of {self.layer_param.bottom[1]}"
        elif p.HasField("height") and p.HasField("width") and not (
                p.HasField("zoom_factor") or p.HasField("shrink_factor")):
            how = "height × width"
        else:
            steps = []
            if p.HasField("shrink_factor"):
                steps.append(f"({eh} − 1)/{p.shrink_factor} + 1 (floor)")
            if p.HasField("zoom_factor"):
                base = "that" if steps else str(eh)
                steps.append(f"{base} + ({base} − 1)·({p.zoom_factor} − 1)")
            how = "H_out = " + ", then ".join(steps)
        return (f"{self.name}: bilinear resize, corners aligned (output row r "
                f"samples input row r·({eh} − 1)/({oh} − 1)); {crop}{how} → "
                f"{oh}×{ow}")
