"""Split: one blob to several readers (inserted automatically by the net)."""
from ...core.layer import Layer
from ...core.registry import register_layer


@register_layer("Split")
class SplitLayer(Layer):
    """Every top shares the bottom's data; backward sums the tops' diffs.

    The net inserts one after every blob read by more than one layer, named
    ``<blob>_<layer>_<i>_split`` with tops ``<blob>_<layer>_<i>_split_<j>``.
    """

    exact_num_bottom_blobs = 1
    min_top_blobs = 1

    def reshape(self, bottom, top):
        for blob in top:
            if blob is bottom[0]:
                raise self.config_error(
                    "cannot run in place", field="top", received=self.layer_param
                    .top[top.index(blob)], fix="give every top its own name")
            blob.reshape_like(bottom[0])
            blob.share_data(bottom[0])

    def forward(self, bottom, top):
        for blob in top:
            blob.share_data(bottom[0])

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dx = bottom[0].diff
        dx[...] = top[0].diff
        for blob in top[1:]:
            dx += blob.diff
