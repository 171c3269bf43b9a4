"""Permute (SSD fork, weiliu89/caffe ssd branch): reorder a blob's axes."""
from kaffe.core.backend import array_module
from kaffe.core.layer import Layer
from kaffe.core.registry import register_layer

FIELD = "permute_param"


@register_layer("Permute")
class PermuteLayer(Layer):
    """Top axis i is bottom axis ``order[i]``; axes not listed follow in
    their original order (as the SSD fork's permute_layer.cpp).

    Reads permute_param: order (each < the number of axes, no repeats).
    Shape: bottom (d0, …, dk) → top (d_order[0], …). SSD uses it to move
    channels last: order 0 2 3 1 turns (N, C, H, W) into (N, H, W, C).
    Backward: the inverse permutation of the top diff.
    """

    exact_num_bottom_blobs = 1
    exact_num_top_blobs = 1
    # For kaffe explain: the axes move, so values lose the input's layout.
    receptive_field_rule = "no_layout"

    def setup(self, bottom, top):
        order = list(self.layer_param.permute_param.order)
        n = bottom[0].num_axes
        seen = []
        for axis in order:
            if axis >= n:
                raise self.config_error(
                    "must be less than the number of input axes",
                    field=f"{FIELD}.order", received=axis,
                    expected=f"< {n} (input shape {bottom[0].shape})")
            if axis in seen:
                raise self.config_error("repeats an axis",
                                        field=f"{FIELD}.order",
                                        received=order)
            seen.append(axis)
        self.order = tuple(seen + [a for a in range(n) if a not in seen])
        self.inverse = tuple(self.order.index(a) for a in range(n))

    def reshape(self, bottom, top):
        self.refuse_in_place(bottom, top)
        if bottom[0].num_axes != len(self.order):
            raise self.shape_error(
                "changed its number of axes after setup", field="bottom[0]",
                received=f"shape {bottom[0].shape}",
                expected=f"{len(self.order)} axes")
        top[0].reshape(tuple(bottom[0].shape[a] for a in self.order))

    def forward(self, bottom, top):
        xp = array_module(bottom[0].data)
        top[0].data[...] = xp.transpose(bottom[0].data, self.order)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            xp = array_module(top[0].diff)
            bottom[0].diff[...] = xp.transpose(top[0].diff, self.inverse)

    def explain(self, bottoms, tops):
        """The axis order, for ``kaffe explain``."""
        shape_in = "×".join(map(str, bottoms[0].shape))
        shape_out = "×".join(map(str, tops[0].shape))
        return (f"{self.name}: top axes = bottom axes "
                f"({', '.join(map(str, self.order))}): {shape_in} → "
                f"{shape_out}")
