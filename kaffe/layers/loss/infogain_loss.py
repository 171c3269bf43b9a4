"""InfogainLoss: softmax followed by a loss weighted by an infogain matrix H."""
from ...core.backend import array_module
from ...core.errors import KaffeError
from ...core.registry import register_layer
from ...ops.softmax import softmax
from ...proto import io
from .loss import LOG_THRESHOLD, LossLayer, read_labels, valid_normalizer


@register_layer("InfogainLoss")
class InfogainLossLayer(LossLayer):
    """loss = −Σ_{valid items} Σ_k H[label, k]·log(max(p_k, 1e-20)) / normalizer.

    p = softmax of the scores along ``axis``; with H = I this is
    SoftmaxWithLoss (up to its clamp, FLT_MIN there).
    Reads infogain_loss_param: source (a .binaryproto BlobProto with K×K
    values, read when there is no third bottom), axis (1, the class axis);
    loss_param: ignore_label, normalization (VALID). The deprecated
    loss_param.normalize is refused, as in Caffe.
    Bottoms: scores (…, K, …); labels, one per item (outer·inner values,
    truncated to integers in [0, K)); optionally H (any shape of K·K
    values), which then replaces source. Tops: the loss, and optionally the
    probabilities (give ``loss_weight: 1 loss_weight: 0``).
    Backward: d loss / dx_k = (p_k·Σ_j H[label, j] − H[label, k]) /
    normalizer per valid item (the clamp is not differentiated); none to
    the labels or H.
    """

    exact_num_bottom_blobs = -1
    min_bottom_blobs = 2
    max_bottom_blobs = 3
    exact_num_top_blobs = -1
    min_top_blobs = 1
    max_top_blobs = 2

    def setup(self, bottom, top):
        super().setup(bottom, top)
        p = self.layer_param.loss_param
        if p.HasField("normalize"):
            raise self.config_error(
                "is deprecated and not accepted by InfogainLoss",
                field="loss_param.normalize",
                received=str(p.normalize).lower(),
                expected="loss_param.normalization instead",
                fix="replace 'normalize: true' by 'normalization: VALID' and "
                    "'normalize: false' by 'normalization: BATCH_SIZE'")
        self.ignore_label = p.ignore_label if p.HasField("ignore_label") else None
        self.normalization = p.normalization
        self.infogain = None
        if len(bottom) < 3:
            self.infogain = self._read_source()
        self.prob = None

    def _read_source(self):
        p = self.layer_param.infogain_loss_param
        if not p.HasField("source"):
            raise self.config_error(
                "must be given when the layer has no third bottom (H)",
                field="infogain_loss_param.source", received="nothing",
                fix="set source to a .binaryproto file holding the K×K "
                    "infogain matrix, or feed H as bottom[2]")
        try:
            proto = io.read_blobproto(p.source)
        except KaffeError as e:
            raise self.config_error(
                f"could not be read: {e.problem}",
                field="infogain_loss_param.source", received=p.source,
                fix="check the path; the file must be a binary BlobProto "
                    "holding the K×K infogain matrix H") from None
        blob = self.make_blob(())
        blob.from_proto(proto)
        return blob

    def reshape(self, bottom, top):
        super().reshape(bottom, top)
        p = self.layer_param.infogain_loss_param
        self.axis = self.canonical_axis(bottom[0], p.axis,
                                        "infogain_loss_param.axis")
        self.outer = bottom[0].count_axes(0, self.axis)
        self.inner = bottom[0].count_axes(self.axis + 1)
        self.num_labels = bottom[0].shape[self.axis]
        if self.outer * self.inner != bottom[1].count:
            raise self.shape_error(
                "the number of labels must match the number of predictions "
                f"(with infogain axis {self.axis} and prediction shape "
                f"{bottom[0].shape}, the label count must be "
                f"{self.outer * self.inner}, values in {{0, …, "
                f"{self.num_labels - 1}}})", field="bottom[1]",
                received=f"{bottom[1].count} labels, shape {bottom[1].shape}",
                expected=str(self.outer * self.inner))
        infogain = self.infogain if len(bottom) < 3 else bottom[2]
        k = self.num_labels
        if infogain.count != k * k:
            field = ("infogain_loss_param.source" if len(bottom) < 3
                     else "bottom[2]")
            raise self.shape_error(
                f"the infogain matrix H must be {k}×{k} for {k} classes",
                field=field,
                received=f"{infogain.count} values, shape {infogain.shape}",
                expected=f"{k * k} values",
                fix="give H one row and one column per class")
        if len(top) >= 2:
            top[1].reshape_like(bottom[0])

    def _h(self, bottom):
        blob = self.infogain if len(bottom) < 3 else bottom[2]
        return blob.data.reshape(self.num_labels, self.num_labels)

    def _labels(self, bottom):
        return read_labels(self, bottom, self.axis, self.outer, self.inner,
                           self.ignore_label)

    def forward(self, bottom, top):
        xp = array_module(bottom[0].data)
        scores = bottom[0].data.reshape(self.outer, self.num_labels,
                                        self.inner)
        self.prob = softmax(scores, axis=1)
        _, valid, safe = self._labels(bottom)
        h_rows = self._h(bottom)[safe]                 # (outer, inner, K)
        logs = xp.log(xp.maximum(self.prob, LOG_THRESHOLD))
        per_item = (h_rows * logs.transpose(0, 2, 1)).sum(axis=2)
        loss = -(per_item * valid).sum()
        norm = valid_normalizer(self.normalization, self.outer, self.inner,
                                valid.sum())
        top[0].data[...] = loss / norm
        if len(top) == 2:
            top[1].data[...] = self.prob.reshape(bottom[0].shape)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            raise self.label_backward_error()
        if len(propagate_down) > 2 and propagate_down[2]:
            raise self.no_gradient_error(2, "the infogain matrix")
        if not propagate_down[0]:
            return
        _, valid, safe = self._labels(bottom)
        h = self._h(bottom)
        row_sums = h.sum(axis=1)
        # (outer, K, inner): p_k·Σ_j H[l, j] − H[l, k] at each item.
        grad = (self.prob * row_sums[safe][:, None, :]
                - h[safe].transpose(0, 2, 1))
        grad *= valid[:, None, :]
        norm = valid_normalizer(self.normalization, self.outer, self.inner,
                                valid.sum())
        grad *= top[0].diff.reshape(()) / norm
        bottom[0].diff[...] = grad.reshape(bottom[0].shape)
