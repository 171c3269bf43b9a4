"""Accuracy: the fraction of items whose true class is in the top k."""
from ...core.backend import array_module
from ...core.layer import Layer
from ...core.registry import register_layer
from ..loss.loss import read_labels


@register_layer("Accuracy")
class AccuracyLayer(Layer):
    """top[0] = fraction of (non-ignored) labels ranked within the top k.

    Reads accuracy_param: top_k (1), axis (1), ignore_label. A class counts
    as ranked above the true one when its score is >= the true score, so ties
    count against the prediction (Caffe's rule). Optional top[1]: accuracy per
    class (C values; 0 for classes absent from the batch).
    Accuracy is not differentiable: its gradient is zero.
    """

    exact_num_bottom_blobs = 2
    min_top_blobs = 1
    max_top_blobs = 2

    def setup(self, bottom, top):
        p = self.layer_param.accuracy_param
        self.top_k = p.top_k
        self.ignore_label = p.ignore_label if p.HasField("ignore_label") else None

    def reshape(self, bottom, top):
        p = self.layer_param.accuracy_param
        classes = bottom[0].count // max(1, bottom[1].count)
        if self.top_k > classes:
            raise self.config_error(
                "must be less than or equal to the number of classes",
                field="accuracy_param.top_k", received=self.top_k,
                expected=f"<= {classes}")
        self.axis = self.canonical_axis(bottom[0], p.axis,
                                        "accuracy_param.axis")
        self.outer = bottom[0].count_axes(0, self.axis)
        self.inner = bottom[0].count_axes(self.axis + 1)
        if self.outer * self.inner != bottom[1].count:
            raise self.shape_error(
                "the number of labels must match the number of predictions",
                field="bottom[1]", received=f"{bottom[1].count} labels",
                expected=str(self.outer * self.inner))
        top[0].reshape(())
        if len(top) > 1:
            top[1].reshape((bottom[0].shape[self.axis],))

    def forward(self, bottom, top):
        xp = array_module(bottom[0].data)
        channels = bottom[0].shape[self.axis]
        scores = bottom[0].data.reshape(self.outer, channels, self.inner)
        _, valid, safe = read_labels(self, bottom, self.axis, self.outer,
                                     self.inner, self.ignore_label)
        true_score = xp.take_along_axis(scores, safe[:, None, :], axis=1)
        better = (scores >= true_score).sum(axis=1) - 1
        correct = valid & (better < self.top_k)
        # No valid label: 0 (correct is 0 then); the count stays on the
        # device.
        top[0].data[...] = correct.sum() / xp.maximum(valid.sum(), 1)
        if len(top) > 1:
            totals = xp.bincount(safe[valid], minlength=channels)
            hits = xp.bincount(safe[correct], minlength=channels)
            per_class = xp.where(totals > 0, hits / xp.maximum(totals, 1), 0.0)
            top[1].data[...] = per_class

    def backward(self, top, propagate_down, bottom):
        for blob, down in zip(bottom, propagate_down):
            if down:
                blob.diff[...] = 0
