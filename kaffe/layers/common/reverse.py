"""Reverse: flip a blob along one axis (the OCR forks' bidirectional LSTM)."""
from ...core.layer import Layer
from ...core.registry import register_layer


@register_layer("Reverse")
class ReverseLayer(Layer):
    """top[..., i, ...] = bottom[..., d − 1 − i, ...] along ``axis``.

    From the CRNN-style OCR Caffe forks (senlinuc/caffe_ocr and the forks
    it draws on, ``reverse_layer.cpp``), where two Reverse layers around a
    Lstm make it run backwards in time. Reads reverse_param: axis (0; a
    non-negative axis of the bottom, as the fork checks). Shape: top =
    bottom. Backward flips the top diff back. Not in place (as the fork).
    """

    exact_num_bottom_blobs = 1
    exact_num_top_blobs = 1

    def setup(self, bottom, top):
        self.refuse_in_place(bottom, top)

    def reshape(self, bottom, top):
        axis = self.layer_param.reverse_param.axis
        n = bottom[0].num_axes
        if not 0 <= axis < n:
            raise self.shape_error(
                "must be an axis of the bottom", field="reverse_param.axis",
                received=axis, expected=f"an axis in [0, {n - 1}] of the "
                f"input of shape {bottom[0].shape}")
        self.axis = axis
        top[0].reshape(bottom[0].shape)

    def _flipped(self, array):
        index = [slice(None)] * array.ndim
        index[self.axis] = slice(None, None, -1)
        return array[tuple(index)]

    def forward(self, bottom, top):
        top[0].data[...] = self._flipped(bottom[0].data)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = self._flipped(top[0].diff)

    def explain(self, bottoms, tops):
        """The formula line for ``kaffe explain``."""
        d = bottoms[0].shape[self.axis]
        return (f"{self.name}: axis {self.axis} reversed: index i reads "
                f"{d - 1} − i (no arithmetic; a Reverse before and after a "
                "Lstm runs it backwards in time)")
