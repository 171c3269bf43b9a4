"""MultinomialLogisticLoss: −log of the probability given to the label."""
from ...core.backend import array_module
from ...core.registry import register_layer
from .loss import LOG_THRESHOLD, LossLayer, check_legacy_axes, class_labels


@register_layer("MultinomialLogisticLoss")
class MultinomialLogisticLossLayer(LossLayer):
    """loss = −Σ_n log(max(p_n[label_n], 1e-20)) / N.

    Takes probabilities (e.g. a Softmax top), not scores: use
    SoftmaxWithLoss on scores. The classes are all D = count / N values of
    an item, so a label indexes the flattened item.
    Bottoms: p (N, …) with at most 4 axes; labels (N,) or (N, 1, 1, 1),
    truncated to integers in [0, D). No ignore_label, no normalization.
    Backward: −1 / (N·max(p_label, 1e-20)) at each label, 0 elsewhere; none
    to the labels.
    """

    def reshape(self, bottom, top):
        super().reshape(bottom, top)
        check_legacy_axes(self, bottom[0], "bottom[0]")
        check_legacy_axes(self, bottom[1], "bottom[1]")
        if bottom[1].channels != 1 or bottom[1].height != 1 or \
                bottom[1].width != 1:
            raise self.shape_error(
                "must hold one label per item", field="bottom[1]",
                received=bottom[1].shape, expected="(N,) or (N, 1, 1, 1)")
        self.num = bottom[0].num
        self.dim = bottom[0].count // self.num

    def _picked(self, bottom):
        """(rows, labels, the clamped probabilities at the labels)."""
        xp = array_module(bottom[0].data)
        labels, _, _ = class_labels(self, bottom[1].data.reshape(-1),
                                    self.dim)
        rows = xp.arange(self.num)
        p = bottom[0].data.reshape(self.num, self.dim)[rows, labels]
        return rows, labels, xp.maximum(p, LOG_THRESHOLD)

    def forward(self, bottom, top):
        xp = array_module(bottom[0].data)
        _, _, p = self._picked(bottom)
        top[0].data[...] = -xp.log(p).sum() / self.num

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            raise self.label_backward_error()
        if not propagate_down[0]:
            return
        rows, labels, p = self._picked(bottom)
        diff = bottom[0].diff.reshape(self.num, self.dim)
        diff[...] = 0
        diff[rows, labels] = -top[0].diff.reshape(()) / self.num / p
