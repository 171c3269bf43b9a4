"""ShuffleChannel: ShuffleNet's channel shuffle."""
from ...core.registry import register_layer
from ...core.layer import Layer


@register_layer("ShuffleChannel")
class ShuffleChannelLayer(Layer):
    """Interleaves the channels of ``group`` groups: top channel j·group + i
    is bottom channel i·(C/group) + j.

    From the ShuffleNet Caffe fork (farmingyard/ShuffleNet,
    ``shuffle_channel_layer.cpp``; OpenCV 4.x implements it too). Reads
    shuffle_channel_param: group (1; must divide the channels). The bottom
    is viewed as (N, group, C/group, spatial…) and its two middle axes are
    swapped. Shape: top = bottom. Backward applies the inverse shuffle.
    """

    exact_num_bottom_blobs = 1
    exact_num_top_blobs = 1

    def setup(self, bottom, top):
        group = self.layer_param.shuffle_channel_param.group
        if group <= 0:
            raise self.config_error(
                "must be > 0", field="shuffle_channel_param.group",
                received=group)
        self.refuse_in_place(bottom, top)
        self.group = group

    def reshape(self, bottom, top):
        x = bottom[0]
        if x.num_axes < 2:
            raise self.shape_error(
                "needs an input with a channel axis (N, C, ...)",
                field="bottom", received=x.shape)
        channels = x.shape[1]
        if channels % self.group:
            raise self.shape_error(
                f"must divide the number of channels ({channels})",
                field="shuffle_channel_param.group", received=self.group,
                expected=f"a divisor of {channels}")
        top[0].reshape(x.shape)

    def _grouped(self, array, rows):
        """(N, rows, C/rows, inner) view of an (N, C, ...) array."""
        n, c = array.shape[:2]
        return array.reshape(n, rows, c // rows, -1)

    def forward(self, bottom, top):
        x = self._grouped(bottom[0].data, self.group)
        y = self._grouped(top[0].data, x.shape[2])
        y[...] = x.transpose(0, 2, 1, 3)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        channels = bottom[0].shape[1]
        dy = self._grouped(top[0].diff, channels // self.group)
        dx = self._grouped(bottom[0].diff, self.group)
        dx[...] = dy.transpose(0, 2, 1, 3)

    def explain(self, bottoms, tops):
        """The formula line for ``kaffe explain``."""
        channels = bottoms[0].shape[1]
        per = channels // self.group
        return (f"{self.name}: {self.group} groups of {per} channels "
                f"interleaved: output channel j·{self.group} + i = input "
                f"channel i·{per} + j (output 0, 1, 2 … = input 0, {per}, "
                f"{2 * per if self.group > 2 else 1} …)")
