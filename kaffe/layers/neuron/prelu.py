"""PReLU: the parametric ReLU, with learned negative slopes."""
import logging

from ...core.backend import array_module
from ...core.filler import fill
from ...core.registry import register_layer
from ...proto import caffe_pb2
from .neuron import NeuronLayer

log = logging.getLogger("kaffe")


@register_layer("PReLU")
class PReLULayer(NeuronLayer):
    """y = max(x, 0) + a_c · min(x, 0), c the channel (axis 1).

    Reads prelu_param: channel_shared (false), filler (constant 0.25).
    Blobs: [0] the slopes a, shape (C,) — or () (one slope, a 0-axis blob)
    if channel_shared.
    Shape: bottom (N, C, …) with 2 to 4 axes (Caffe reads C through its
    legacy accessor, which aborts beyond 4 axes) → top of the same shape.
    Backward: da_c += Σ dy · x · (x ≤ 0) over the channel, computed before
    dx = dy · ((x > 0) + a_c · (x ≤ 0)). In place the layer keeps a copy of
    its input for the backward, as Caffe does, so the gradients are exact.
    """

    def setup(self, bottom, top):
        p = self.layer_param.prelu_param
        self._check_axes(bottom[0])
        channels = bottom[0].shape[1]
        self.channel_shared = p.channel_shared
        if self.blobs:
            log.info("Skipping parameter initialization")
        else:
            slope = self.make_blob(() if self.channel_shared else (channels,))
            filler = p.filler
            if not p.HasField("filler"):
                filler = caffe_pb2.FillerParameter(type="constant",
                                                   value=0.25)
            fill(slope, filler, layer=self, field="prelu_param.filler")
            self.blobs.append(slope)
        expected = 1 if self.channel_shared else channels
        if self.blobs[0].count != expected:
            raise self.shape_error(
                "holds the wrong number of slopes for this configuration",
                field="blobs[0]",
                received=f"{self.blobs[0].count} slope(s) of shape "
                         f"{self.blobs[0].shape}",
                expected=("1 slope (channel_shared)" if self.channel_shared
                          else f"{channels} slopes (one per channel)"),
                fix="make prelu_param.channel_shared match the saved slopes")

    def _check_axes(self, blob):
        if not 2 <= blob.num_axes <= 4:
            raise self.shape_error(
                "must have 2 to 4 axes (N, C, …)", field="bottom[0]",
                received=f"shape {blob.shape}",
                expected="an input with 2, 3 or 4 axes",
                fix="Reshape the input so that its channels are axis 1")

    def reshape(self, bottom, top):
        self._check_axes(bottom[0])
        channels = bottom[0].shape[1]
        if not self.channel_shared and channels != self.blobs[0].count:
            raise self.shape_error(
                "has a channel count (axis 1) different from the number of "
                "slopes", field="bottom[0]",
                received=f"{channels} channels, shape {bottom[0].shape}",
                expected=f"{self.blobs[0].count} channels")
        top[0].reshape_like(bottom[0])

    def _slopes(self):
        """The slopes, broadcastable against x viewed as (N, C, rest)."""
        slope = self.blobs[0].data
        return slope if self.channel_shared else slope.reshape(1, -1, 1)

    # (blob shape, its (N, C, rest) view shape) of the last _view.
    _viewed = (None, None)

    def _view(self, array, blob):
        if blob.shape != self._viewed[0]:
            self._viewed = (blob.shape, (blob.shape[0], blob.shape[1],
                                         blob.count_axes(2)))
        return array.reshape(self._viewed[1])

    def forward(self, bottom, top):
        x_blob, y_blob = bottom[0], top[0]
        x = x_blob.data
        xp = array_module(x)
        self.keep_input(bottom, top)
        x3 = self._view(x, x_blob)
        negative = xp.minimum(x3, 0)
        negative *= self._slopes()
        y3 = x3 if y_blob is x_blob else self._view(y_blob.data, y_blob)
        xp.add(xp.maximum(x3, 0), negative, out=y3)

    def backward(self, top, propagate_down, bottom):
        x = self.forward_input(top, bottom)
        x3 = self._view(x, bottom[0])
        dy = self._view(top[0].diff, top[0])
        # The slope diff first: in place, dx overwrites dy.
        if self.param_needs_backward(0):
            contribution = dy * x3 * (x3 <= 0)
            slope_diff = self.blobs[0].diff
            if self.channel_shared:
                slope_diff += contribution.sum()
            else:
                slope_diff += contribution.sum(axis=(0, 2))
        if propagate_down[0]:
            factor = (x3 > 0).astype(x3.dtype)
            factor += self._slopes() * (x3 <= 0)
            array_module(x).multiply(dy, factor,
                                     out=self._view(bottom[0].diff, bottom[0]))
