"""ContrastiveLoss: pull similar pairs together, push dissimilar ones apart."""
from ...core.backend import array_module
from ...core.registry import register_layer
from .loss import LossLayer, check_legacy_axes

# Added to the distance in the dissimilar-pair gradient (Caffe's guard
# against dividing by a zero distance).
DISTANCE_EPSILON = 1e-4


@register_layer("ContrastiveLoss")
class ContrastiveLossLayer(LossLayer):
    """loss = Σ_n [y_n·d_n² + (1 − y_n)·max(margin − d_n, 0)²] / (2N).

    d_n = ‖a_n − b_n‖. A pair is similar when y_n, truncated to an integer
    (static_cast<int>), is not 0: y = 0.5 counts as dissimilar.
    Reads contrastive_loss_param: margin (1), legacy_version (false; true
    uses max(margin − d², 0) for dissimilar pairs, without the square).
    Bottoms: a and b (N, C) or (N, C, 1, 1); y with N values (N, 1, 1, 1) or
    (N,) — a longer y is read only up to N, as Caffe does.
    Backward to a and to b (= −gradient of a); none to y. The dissimilar
    gradient is −(margin − d)/(d + 1e-4)·(a − b)/N: Caffe's 1e-4 guard makes
    it differ slightly from the exact derivative.
    """

    exact_num_bottom_blobs = 3

    def setup(self, bottom, top):
        super().setup(bottom, top)
        p = self.layer_param.contrastive_loss_param
        self.margin = p.margin
        self.legacy_version = p.legacy_version

    def reshape(self, bottom, top):
        super().reshape(bottom, top)
        for i, blob in enumerate(bottom):
            check_legacy_axes(self, blob, f"bottom[{i}]")
        if bottom[0].channels != bottom[1].channels:
            raise self.shape_error(
                "a and b must have the same number of channels",
                field="bottom[1]", received=bottom[1].shape,
                expected=f"{bottom[0].channels} channels (like bottom[0] "
                         f"{bottom[0].shape})")
        for i, ones in ((0, (2, 3)), (1, (2, 3)), (2, (1, 2, 3))):
            blob = bottom[i]
            if any(blob.legacy_shape(a) != 1 for a in ones):
                expected = ("(N, C) or (N, C, 1, 1)" if i < 2
                            else "(N,) or (N, 1, 1, 1)")
                raise self.shape_error(
                    "must be a batch of vectors" if i < 2
                    else "must hold one similarity value per pair",
                    field=f"bottom[{i}]", received=blob.shape,
                    expected=expected,
                    fix="flatten the features first (e.g. with a Flatten "
                        "layer)" if i < 2 else "give one label per pair")
        if bottom[2].count < bottom[0].num:
            raise self.shape_error(
                "must hold one similarity value per pair", field="bottom[2]",
                received=f"{bottom[2].count} values",
                expected=f"at least {bottom[0].num} (one per pair)")

    def allow_force_backward(self, bottom_index):
        return bottom_index != 2

    def _similar(self, bottom):
        xp = array_module(bottom[2].data)
        y = bottom[2].data.reshape(-1)[:bottom[0].num]
        return y.astype(xp.int64) != 0

    def forward(self, bottom, top):
        xp = array_module(bottom[0].data)
        num = bottom[0].num
        self.diff = (bottom[0].data.reshape(num, -1)
                     - bottom[1].data.reshape(num, -1))
        self.dist_sq = (self.diff * self.diff).sum(axis=1)
        if self.legacy_version:
            dissimilar = xp.maximum(self.margin - self.dist_sq, 0)
        else:
            dissimilar = xp.maximum(self.margin - xp.sqrt(self.dist_sq), 0)
            dissimilar = dissimilar * dissimilar
        per_pair = xp.where(self._similar(bottom), self.dist_sq, dissimilar)
        top[0].data[...] = per_pair.sum() / num / 2

    def backward(self, top, propagate_down, bottom):
        xp = array_module(self.diff)
        similar = self._similar(bottom)
        if self.legacy_version:
            mdist = self.margin - self.dist_sq
            factor = -xp.ones_like(mdist)
        else:
            dist = xp.sqrt(self.dist_sq)
            mdist = self.margin - dist
            factor = -mdist / (dist + DISTANCE_EPSILON)
        # Per pair, the gradient of a as a multiple of alpha·(a − b).
        factor = xp.where(similar, 1.0, xp.where(mdist > 0, factor, 0.0))
        for i, sign in ((0, 1.0), (1, -1.0)):
            if propagate_down[i]:
                alpha = sign * top[0].diff.reshape(()) / bottom[i].num
                grad = (alpha * factor)[:, None] * self.diff
                bottom[i].diff[...] = grad.reshape(bottom[i].shape)
