"""SigmoidCrossEntropyLoss: logistic loss of independent binary targets."""
from ...core.backend import array_module
from ...core.registry import register_layer
from ...proto import caffe_pb2
from .loss import LossLayer, normalization_mode, valid_normalizer

_NORM = caffe_pb2.LossParameter


@register_layer("SigmoidCrossEntropyLoss")
class SigmoidCrossEntropyLossLayer(LossLayer):
    """loss = −Σ [t·log σ(x) + (1 − t)·log(1 − σ(x))] / normalizer.

    Computed from the logits in the stable form
    x·(t − [x ≥ 0]) − log(1 + e^(x − 2x·[x ≥ 0])) per element, never from
    σ(x) itself. The targets t (usually in [0, 1]) need the scores' count
    and first dimension, any shape.

    Reads loss_param: ignore_label (an element whose target truncates to it,
    as static_cast<int>, counts neither in the loss nor in the gradient: with
    ignore_label 0 a target of 0.5 is ignored), normalization — BATCH_SIZE by
    default here (divide by N, the first dimension), not VALID as in the
    other losses; VALID divides by the number of non-ignored elements, FULL
    by the count — or the deprecated normalize (true: VALID, false:
    BATCH_SIZE).
    Backward: d loss / dx = (σ(x) − t) / normalizer; none to the targets.
    """

    def setup(self, bottom, top):
        super().setup(bottom, top)
        p = self.layer_param.loss_param
        self.ignore_label = p.ignore_label if p.HasField("ignore_label") else None
        self.normalization = normalization_mode(p, default=_NORM.BATCH_SIZE)
        self.sigmoid = None
        self.norm = None

    def reshape(self, bottom, top):
        super().reshape(bottom, top)
        if bottom[0].count != bottom[1].count:
            raise self.shape_error(
                "the targets must have as many values as the scores",
                field="bottom[1]",
                received=f"{bottom[1].count} targets, shape {bottom[1].shape}",
                expected=f"{bottom[0].count} (the count of the scores "
                         f"{bottom[0].shape})")
        self.outer = bottom[0].shape[0] if bottom[0].num_axes else 1
        self.inner = bottom[0].count_axes(1)

    def _valid(self, target):
        """The mask of elements that count (ignore_label compares the
        truncated target)."""
        xp = array_module(target)
        if self.ignore_label is None:
            return None
        return target.astype(xp.int64) != self.ignore_label

    def forward(self, bottom, top):
        xp = array_module(bottom[0].data)
        x = bottom[0].data.reshape(-1)
        t = bottom[1].data.reshape(-1)
        positive = x >= 0
        log_likelihood = (x * (t - positive)
                          - xp.log(1 + xp.exp(x - 2 * x * positive)))
        valid = self._valid(t)
        if valid is None:
            count = x.size
            loss = -log_likelihood.sum()
        else:
            count = valid.sum()
            loss = -(log_likelihood * valid).sum()
        self.norm = valid_normalizer(self.normalization, self.outer,
                                     self.inner, count)
        top[0].data[...] = loss / self.norm
        # Caffe's SigmoidLayer form, kept for backward.
        self.sigmoid = 0.5 * xp.tanh(0.5 * x) + 0.5

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            raise self.label_backward_error()
        if not propagate_down[0]:
            return
        t = bottom[1].data.reshape(-1)
        grad = self.sigmoid - t
        valid = self._valid(t)
        if valid is not None:
            grad *= valid
        grad *= top[0].diff.reshape(()) / self.norm
        bottom[0].diff[...] = grad.reshape(bottom[0].shape)
