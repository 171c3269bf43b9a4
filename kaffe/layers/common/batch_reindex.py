"""BatchReindex: gather the items of a batch by index."""
from ...core.backend import array_module
from ...core.layer import Layer
from ...core.registry import register_layer


@register_layer("BatchReindex")
class BatchReindexLayer(Layer):
    """top[i] = bottom[0][index[i]]: items picked, reordered or repeated.

    Bottoms: the data (N, …) and a 1-D blob of M indices, each in [0, N)
    (floats, truncated toward zero as Caffe's static_cast<int>).
    Shape: top (M, *bottom[0].shape[1:]).
    Backward: bottom[0]'s gradient is zeroed, then each top item's gradient
    is added to the item it came from (repeated indices accumulate); there
    is no gradient for the indices.
    """

    exact_num_bottom_blobs = 2
    exact_num_top_blobs = 1

    def allow_force_backward(self, bottom_index):
        return bottom_index != 1

    def reshape(self, bottom, top):
        if bottom[1].num_axes != 1:
            raise self.shape_error(
                "the indices must be a 1-D blob", field="bottom[1]",
                received=bottom[1].shape, expected="shape (M,)")
        if not bottom[0].num_axes:
            raise self.shape_error(
                "the data must have a batch axis", field="bottom[0]",
                received=bottom[0].shape, expected="shape (N, …)")
        top[0].reshape(bottom[1].shape + bottom[0].shape[1:])

    def _indices(self, bottom):
        """The indices as ints, checked to lie in [0, N)."""
        values = bottom[1].data
        num = bottom[0].shape[0]
        good = (values >= 0) & (values < num)
        if not good.all():
            raise self.shape_error(
                "indices must lie in [0, N), N the number of items of "
                "bottom[0]", field="bottom[1]",
                received=values[~good][0].tolist(),
                expected=f"a value in [0, {num})")
        xp = array_module(values)
        return values.astype(xp.int64)

    def forward(self, bottom, top):
        xp = array_module(bottom[0].data)
        xp.take(bottom[0].data, self._indices(bottom), axis=0,
                out=top[0].data)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            raise self.no_gradient_error(1, "the indices")
        if not propagate_down[0]:
            return
        dx = bottom[0].diff
        xp = array_module(dx)
        dx[...] = 0
        # In top order, so repeated indices add up as in Caffe.
        xp.add.at(dx, self._indices(bottom), top[0].diff)
