"""EuclideanLoss: half the mean squared distance over the batch."""
from ...core.registry import register_layer
from .loss import LossLayer


@register_layer("EuclideanLoss")
class EuclideanLossLayer(LossLayer):
    """loss = Σ (a − b)² / (2N), N = the first dim of the bottoms.

    Both bottoms must hold the same number of values per item. Either bottom
    may receive gradient (the target gets the negated one).
    """

    def reshape(self, bottom, top):
        super().reshape(bottom, top)
        if bottom[0].count_axes(1) != bottom[1].count_axes(1):
            raise self.shape_error(
                "inputs must have the same dimension", field="bottom",
                received=f"{bottom[0].shape} and {bottom[1].shape}",
                expected="the same number of values per item")

    def allow_force_backward(self, bottom_index):
        return True

    def forward(self, bottom, top):
        self.difference = bottom[0].data - bottom[1].data.reshape(
            bottom[0].shape)
        d = self.difference.reshape(-1)
        top[0].data[...] = d.dot(d) / bottom[0].num / 2

    def backward(self, top, propagate_down, bottom):
        for i, sign in ((0, 1.0), (1, -1.0)):
            if propagate_down[i]:
                alpha = sign * top[0].diff.reshape(()) / bottom[i].num
                bottom[i].diff[...] = (alpha * self.difference).reshape(
                    bottom[i].shape)
