"""SoftmaxWithLoss: softmax followed by multinomial logistic loss."""
import numpy as np

from ...core.backend import array_module
from ...core.registry import register_layer
from ...ops.softmax import softmax
from .loss import (LossLayer, normalization_mode, read_labels,
                   valid_normalizer)

FLT_MIN = float(np.finfo(np.float32).tiny)


@register_layer("SoftmaxWithLoss")
class SoftmaxWithLossLayer(LossLayer):
    """loss = −Σ log(max(softmax(x)[label], FLT_MIN)) / normalizer.

    Reads softmax_param.axis (1) and loss_param: ignore_label, normalization
    (VALID by default: divide by the number of non-ignored labels; FULL,
    BATCH_SIZE, NONE), or the deprecated normalize. The FLT_MIN clamp is why a
    diverged net reports loss 87.3365 = −log(FLT_MIN).
    Bottoms: scores (N, C, …) and labels with N·(inner) integer values in
    [0, C). Tops: the loss, and optionally the probabilities (then give
    ``loss_weight: 1 loss_weight: 0``).
    """

    exact_num_top_blobs = -1
    min_top_blobs = 1
    max_top_blobs = 2

    def setup(self, bottom, top):
        super().setup(bottom, top)
        p = self.layer_param.loss_param
        self.ignore_label = p.ignore_label if p.HasField("ignore_label") else None
        self.normalization = normalization_mode(p)
        self.prob = None

    def reshape(self, bottom, top):
        super().reshape(bottom, top)
        self.axis = self.canonical_axis(
            bottom[0], self.layer_param.softmax_param.axis, "softmax_param.axis")
        self.outer = bottom[0].count_axes(0, self.axis)
        self.inner = bottom[0].count_axes(self.axis + 1)
        if self.outer * self.inner != bottom[1].count:
            raise self.shape_error(
                "the number of labels must match the number of predictions "
                f"(with softmax axis {self.axis} and prediction shape "
                f"{bottom[0].shape}, the label count must be "
                f"{self.outer * self.inner}, values in {{0, …, "
                f"{bottom[0].shape[self.axis] - 1}}})", field="bottom[1]",
                received=f"{bottom[1].count} labels, shape {bottom[1].shape}",
                expected=str(self.outer * self.inner))
        if len(top) >= 2:
            top[1].reshape_like(bottom[0])

    def _normalizer(self, valid):
        """Caffe's get_normalizer in the net's float type, the valid count
        kept on the device (no host round-trip)."""
        xp = array_module(valid)
        return xp.asarray(valid_normalizer(
            self.normalization, self.outer, self.inner, valid.sum()),
            dtype=self.prob.dtype)

    def _labels(self, bottom):
        return read_labels(self, bottom, self.axis, self.outer, self.inner,
                           self.ignore_label)

    def forward(self, bottom, top):
        xp = array_module(bottom[0].data)
        channels = bottom[0].shape[self.axis]
        scores = bottom[0].data.reshape(self.outer, channels, self.inner)
        self.prob = softmax(scores, axis=1)
        labels, valid, safe = self._labels(bottom)
        picked = xp.take_along_axis(self.prob, safe[:, None, :], axis=1)[:, 0]
        logs = xp.log(xp.maximum(picked, FLT_MIN))
        loss = -(logs * valid).sum()
        top[0].data[...] = loss / self._normalizer(valid)
        if len(top) == 2:
            top[1].data[...] = self.prob.reshape(bottom[0].shape)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            raise self.label_backward_error()
        if not propagate_down[0]:
            return
        xp = array_module(self.prob)
        labels, valid, safe = self._labels(bottom)
        grad = self.prob.copy()
        rows = xp.arange(self.outer)[:, None]
        cols = xp.arange(self.inner)[None, :]
        grad[rows, safe, cols] -= valid
        grad *= valid[:, None, :]
        grad *= top[0].diff.reshape(()) / self._normalizer(valid)
        bottom[0].diff[...] = grad.reshape(bottom[0].shape)
