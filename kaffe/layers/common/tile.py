"""Tile: repeat a blob along an axis."""
from ...core.layer import Layer
from ...core.registry import register_layer


@register_layer("Tile")
class TileLayer(Layer):
    """Repeats the block of axes [axis, end) ``tiles`` times along ``axis``.

    Reads tile_param: axis (1), tiles (required, > 0).
    Shape: dim ``axis`` is multiplied by tiles; top index j along the axis
    reads bottom index j mod d (whole copies, as numpy.tile, not repeat).
    Backward sums the tiles' diffs. In place only with tiles: 1.
    """

    exact_num_bottom_blobs = 1
    exact_num_top_blobs = 1

    def setup(self, bottom, top):
        p = self.layer_param.tile_param
        if not p.HasField("tiles"):
            raise self.config_error(
                "must be given", field="tile_param.tiles", received="nothing",
                expected="a number of copies > 0")
        if p.tiles <= 0:
            raise self.config_error(
                "must be > 0", field="tile_param.tiles", received=p.tiles)
        if top[0] is bottom[0] and p.tiles != 1:
            raise self.config_error(
                "cannot run in place (the top is larger than the bottom)",
                field="top", received=self.layer_param.top[0]
                if self.layer_param.top else "the bottom",
                fix="give the top a name different from the bottom")
        self.tiles = p.tiles

    def reshape(self, bottom, top):
        x = bottom[0]
        axis = self.canonical_axis(x, self.layer_param.tile_param.axis,
                                   "tile_param.axis")
        self.outer = x.count_axes(0, axis)
        self.inner = x.count_axes(axis)
        shape = list(x.shape)
        shape[axis] *= self.tiles
        top[0].reshape(tuple(shape))

    def forward(self, bottom, top):
        x = bottom[0].data.reshape(self.outer, 1, self.inner)
        top[0].data.reshape(self.outer, self.tiles, self.inner)[...] = x

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dy = top[0].diff.reshape(self.outer, self.tiles, self.inner)
        bottom[0].diff.reshape(self.outer, self.inner)[...] = dy.sum(axis=1)
