"""HingeLoss: the one-versus-all hinge (SVM) loss."""
from ...core.backend import array_module
from ...core.registry import register_layer
from ...proto import caffe_pb2
from .loss import LossLayer, check_legacy_axes, class_labels

_L2 = caffe_pb2.HingeLossParameter.L2


@register_layer("HingeLoss")
class HingeLossLayer(LossLayer):
    """loss = Σ_{n,k} max(0, 1 − t_nk·x_nk)^p / N, p = 1 (L1) or 2 (L2).

    t_nk = +1 for the true class k = label_n, −1 for every other class.
    Reads hinge_loss_param.norm (L1). The classes are all D = count / N
    values of an item (C·H·W for a 4-D input), so a label indexes the
    flattened item; the labels are the first N values of bottom[1],
    truncated to integers, in [0, D).
    Backward: −t·h·(2/N for L2), sign(−t·h)/N for L1, with h the hinge
    term; none to the labels.
    """

    def reshape(self, bottom, top):
        super().reshape(bottom, top)
        check_legacy_axes(self, bottom[0], "bottom[0]")
        self.num = bottom[0].num
        self.dim = bottom[0].count // self.num

    def _signs(self, bottom):
        """t: +1 at each item's label, −1 elsewhere, shape (N, D)."""
        xp = array_module(bottom[0].data)
        values = bottom[1].data.reshape(-1)[:self.num]
        labels, _, _ = class_labels(self, values, self.dim)
        classes = xp.arange(self.dim)
        return xp.where(classes[None, :] == labels[:, None], 1, -1).astype(
            bottom[0].data.dtype)

    def forward(self, bottom, top):
        xp = array_module(bottom[0].data)
        x = bottom[0].data.reshape(self.num, self.dim)
        self.hinge = xp.maximum(0, 1 - self._signs(bottom) * x)
        if self.layer_param.hinge_loss_param.norm == _L2:
            total = (self.hinge * self.hinge).sum()
        else:
            total = self.hinge.sum()
        top[0].data[...] = total / self.num

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            raise self.label_backward_error()
        if not propagate_down[0]:
            return
        xp = array_module(self.hinge)
        # The labels are read again (Caffe flips the sign of the forward's
        # hinge terms at the labels it finds now).
        grad = -self._signs(bottom) * self.hinge
        loss_weight = top[0].diff.reshape(())
        if self.layer_param.hinge_loss_param.norm == _L2:
            grad *= loss_weight * 2 / self.num
        else:
            grad = xp.sign(grad) * (loss_weight / self.num)
        bottom[0].diff[...] = grad.reshape(bottom[0].shape)
