"""Filter: keep the items of a batch that a selector marks."""
from ...core.backend import array_module
from ...core.layer import Layer
from ...core.registry import register_layer


@register_layer("Filter")
class FilterLayer(Layer):
    """top[t] = the items n of bottom[t] whose selector value is nonzero.

    Bottoms: the K blobs to filter, then the selector, of shape (N, 1, …)
    (every axis but the first of length 1; NaN counts as nonzero). Tops: K,
    top[t] of shape (S, *bottom[t].shape[1:]), S = the number of selected
    items, kept in batch order. S may be 0 (empty tops).
    Caffe's first reshape (during setup) gives the tops all N items; from
    the first forward on they have S.
    Backward copies each selected item's gradient back to its place and
    writes zeros for the others; there is no gradient for the selector.
    """

    min_bottom_blobs = 2
    min_top_blobs = 1

    def setup(self, bottom, top):
        if len(top) != len(bottom) - 1:
            raise self.config_error(
                "needs one top per filtered bottom (all bottoms but the last, "
                "the selector)", field="top", received=f"{len(top)} tops "
                f"for {len(bottom)} bottoms", expected=f"{len(bottom) - 1}",
                fix="list one top for each bottom except the selector")
        self.selector_index = len(bottom) - 1
        self.first_reshape = True

    def allow_force_backward(self, bottom_index):
        return bottom_index != self.selector_index

    def reshape(self, bottom, top):
        selector = bottom[-1]
        last = len(bottom) - 1
        if any(d != 1 for d in selector.shape[1:]) or not selector.num_axes:
            raise self.shape_error(
                "the selector must have shape (N, 1, …): every axis but the "
                "first of length 1", field=f"bottom[{last}]",
                received=selector.shape)
        for i, blob in enumerate(bottom[:-1]):
            if not blob.num_axes or blob.shape[0] != selector.shape[0]:
                raise self.shape_error(
                    f"bottom[{i}] must have as many items (axis 0) as the "
                    f"selector", field=f"bottom[{i}]", received=blob.shape,
                    expected=f"{selector.shape[0]} items")
        xp = array_module(selector.data)
        self.indices = xp.nonzero(selector.data.reshape(-1))[0]
        count = self.indices.shape[0]
        if self.first_reshape:
            count = selector.shape[0]
            self.first_reshape = False
        for blob, out in zip(bottom, top):
            out.reshape((count,) + blob.shape[1:])

    def forward(self, bottom, top):
        for blob, out in zip(bottom, top):
            xp = array_module(blob.data)
            xp.take(blob.data, self.indices, axis=0, out=out.data)

    def backward(self, top, propagate_down, bottom):
        last = len(bottom) - 1
        if propagate_down[last]:
            raise self.no_gradient_error(last, "the selector")
        for i, out in enumerate(top):
            if propagate_down[i]:
                dx = bottom[i].diff
                dx[...] = 0
                dx[self.indices] = out.diff
