"""ArgMax: the indices (and values) of the k largest entries."""
from ...core.layer import Layer
from ...core.registry import register_layer
from ...ops.argmax import top_k

FIELD = "argmax_param"


@register_layer("ArgMax")
class ArgMaxLayer(Layer):
    """Indices of the top_k largest values, per item or along an axis.

    Reads argmax_param: out_max_val (false), top_k (1), axis (unset).
    Without axis, each item n ranks its C·H·W… values flattened: top is
    (N, 1, top_k) padded with 1s to the bottom's number of axes (at least
    3), e.g. (N, 1, top_k, 1) for a 4-D bottom; with out_max_val it is
    (N, 2, top_k, …): [n, 0, j] the index, [n, 1, j] the value.
    With axis, the ranking runs along that axis, which becomes top_k long:
    indices, or the values instead if out_max_val.
    Ties: the larger index ranks first (Caffe's std::greater on (value,
    index) pairs). Indices are written as floats.
    Not differentiable (Caffe has no backward): the bottom gradient is
    written as zeros.
    """

    exact_num_bottom_blobs = 1
    exact_num_top_blobs = 1

    def setup(self, bottom, top):
        p = self.layer_param.argmax_param
        if p.top_k < 1:
            raise self.config_error("must be >= 1", field=f"{FIELD}.top_k",
                                    received=p.top_k)

    def reshape(self, bottom, top):
        p = self.layer_param.argmax_param
        x = bottom[0]
        if p.HasField("axis"):
            self.axis = self.canonical_axis(x, p.axis, f"{FIELD}.axis")
            dim = x.shape[self.axis]
            where = f"the length of axis {self.axis}"
        else:
            self.axis = None
            dim = x.count_axes(1)
            where = "the number of values per item (the count from axis 1 on)"
        if p.top_k > dim:
            raise self.config_error(
                f"must not exceed {where}", field=f"{FIELD}.top_k",
                received=p.top_k, expected=f"<= {dim} for the input of "
                f"shape {x.shape}")
        if self.axis is not None:
            shape = list(x.shape)
            shape[self.axis] = p.top_k
        else:
            shape = [1] * max(x.num_axes, 3)
            shape[0] = x.shape[0]
            shape[1] = 2 if p.out_max_val else 1
            shape[2] = p.top_k
        top[0].reshape(tuple(shape))

    def forward(self, bottom, top):
        p = self.layer_param.argmax_param
        x = bottom[0]
        if self.axis is None:
            scores = x.data.reshape(x.shape[0], x.count_axes(1), 1)
        else:
            scores = x.data.reshape(x.count_axes(0, self.axis),
                                    x.shape[self.axis],
                                    x.count_axes(self.axis + 1))
        indices, values = top_k(scores, p.top_k)
        y = top[0].data
        if self.axis is not None:
            y[...] = (values if p.out_max_val else indices).reshape(y.shape)
        elif p.out_max_val:
            pairs = y.reshape(x.shape[0], 2, p.top_k)
            pairs[:, 0] = indices[..., 0]
            pairs[:, 1] = values[..., 0]
        else:
            y[...] = indices.reshape(y.shape)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = 0
