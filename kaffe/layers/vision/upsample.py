"""Upsample: SegNet's and ENet's max-unpooling with the pooling mask."""
from ...core.backend import array_module
from ...core.layer import Layer
from ...core.registry import register_layer

FIELD = "upsample_param"


@register_layer("Upsample")
class UpsampleLayer(Layer):
    """Puts every value back where its max pooling found it; zeros elsewhere.

    From the SegNet Caffe fork (alexgkendall/caffe-segnet,
    ``upsample_layer.cpp``; ENet uses it too). Bottoms: [0] the pooled
    values (N, C, H, W); [1] the mask, the argmax top of the matching MAX
    Pooling layer (flat index y·W_out + x in each channel), of the same
    shape. Reads upsample_param: upsample_h + upsample_w (the output size,
    both > 1), else scale (2) or scale_h + scale_w (each > 1) with
    pad_out_h / pad_out_w (subtract one row / column; only with scale 2):
    H_out = H·scale_h − pad_out_h, W_out = W·scale_w − pad_out_w.

    Forward: top = 0, then top[n, c].flat[mask[n, c, i]] = bottom[n, c, i]
    in order of i (a later duplicate index wins, as in the fork's loop).
    Backward: dbottom[n, c, i] = dtop[n, c].flat[mask[n, c, i]]; the mask
    gets a zero gradient. A mask index outside the output is refused (the fork
    aborts).
    """

    exact_num_bottom_blobs = 2
    exact_num_top_blobs = 1

    def setup(self, bottom, top):
        p = self.layer_param.upsample_param
        has_hw = p.HasField("upsample_h") and p.HasField("upsample_w")
        has_scale_hw = p.HasField("scale_h") and p.HasField("scale_w")
        if not (has_hw or (not p.HasField("scale") and has_scale_hw)
                or not (p.HasField("scale_h") or p.HasField("scale_w"))):
            raise self.config_error(
                "needs upsample_h and upsample_w, else scale, or scale_h and "
                "scale_w (not scale with them)", field=FIELD,
                received=str(p).replace("\n", " ").strip() or "nothing",
                fix="set upsample_h and upsample_w to the size of the "
                    "pooling layer's input")
        self.fixed = None
        if has_hw:
            if p.upsample_h <= 1 or p.upsample_w <= 1:
                raise self.config_error(
                    "must both be > 1", field=f"{FIELD}.upsample_h",
                    received=(p.upsample_h, p.upsample_w))
            self.fixed = (p.upsample_h, p.upsample_w)
            return
        self.scale = ((p.scale_h, p.scale_w) if has_scale_hw
                      else (p.scale, p.scale))
        if min(self.scale) <= 1:
            raise self.config_error(
                "must be > 1", field=f"{FIELD}.scale", received=self.scale)
        self.pad_out = (int(p.pad_out_h), int(p.pad_out_w))
        for axis, name in enumerate(("pad_out_h", "pad_out_w")):
            if self.pad_out[axis] and self.scale[axis] != 2:
                raise self.config_error(
                    "requires a scale of 2 along its axis (otherwise the "
                    "output size is ill-defined)", field=f"{FIELD}.{name}",
                    received="true", expected=f"scale 2, not "
                                              f"{self.scale[axis]}")

    def reshape(self, bottom, top):
        x, mask = bottom
        if x.num_axes != 4 or mask.shape != x.shape:
            raise self.shape_error(
                "needs 4-axis values and a mask of the same shape",
                field="bottom", received=f"{x.shape} and {mask.shape}",
                expected="two (N, C, H, W) blobs of one shape")
        if self.fixed is not None:
            out = self.fixed
        else:
            out = tuple(s * k - pad for s, k, pad in
                        zip(x.shape[2:], self.scale, self.pad_out))
        self.out_hw = out
        top[0].reshape(x.shape[:2] + out)

    def _indices(self, mask):
        xp = array_module(mask)
        n, c = mask.shape[:2]
        index = mask.reshape(n * c, -1).astype(xp.int64)
        area = self.out_hw[0] * self.out_hw[1]
        if index.size and (int(index.min()) < 0 or int(index.max()) >= area):
            bad = int(index.max()) if int(index.max()) >= area else \
                int(index.min())
            raise self.shape_error(
                "holds an index outside the output (check that the scale "
                "or upsample size matches the pooling layer's input)",
                field="bottom[1]", received=bad,
                expected=f"indices in [0, {area - 1}] for the "
                         f"{self.out_hw[0]}×{self.out_hw[1]} output")
        return index

    def forward(self, bottom, top):
        x = bottom[0].data
        index = self._indices(bottom[1].data)
        rows = array_module(x).arange(index.shape[0])[:, None]
        flat = top[0].data.reshape(index.shape[0], -1)
        flat[...] = 0
        flat[rows, index] = x.reshape(index.shape)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            bottom[1].diff[...] = 0  # indices: no gradient flows into them
        if not propagate_down[0]:
            return
        index = self._indices(bottom[1].data)
        rows = array_module(index).arange(index.shape[0])[:, None]
        dy = top[0].diff.reshape(index.shape[0], -1)
        bottom[0].diff[...] = dy[rows, index].reshape(bottom[0].shape)

    def allow_force_backward(self, bottom_index):
        return bottom_index == 0

    def explain(self, bottoms, tops):
        """The formula line for ``kaffe explain``."""
        h, w = bottoms[0].shape[2:]
        out_h, out_w = self.out_hw
        if self.fixed is not None:
            size = f"upsample_h × upsample_w = {out_h}×{out_w}"
        else:
            size = (f"H_out = {h}·{self.scale[0]} − {self.pad_out[0]} = "
                    f"{out_h}, W_out = {w}·{self.scale[1]} − "
                    f"{self.pad_out[1]} = {out_w}")
        mask = (self.layer_param.bottom[1] if len(self.layer_param.bottom)
                > 1 else "the mask")
        return (f"{self.name}: each value goes back to the position its max "
                f"pooling took it from ({mask}), zeros elsewhere; {size}")
