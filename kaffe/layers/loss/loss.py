"""LossLayer: the family of layers whose first top is a scalar loss."""
import numpy as np

from ...core.backend import array_module
from ...core.layer import Layer
from ...proto import caffe_pb2

_NORM = caffe_pb2.LossParameter

# Caffe's kLOG_THRESHOLD, a float constant: InfogainLoss and
# MultinomialLogisticLoss clamp probabilities to it before the log.
LOG_THRESHOLD = float(np.float32(1e-20))


class LossLayer(Layer):
    """Two bottoms (prediction, target) → a 0-axis scalar top.

    A loss layer's top[0] gets loss_weight 1 unless the prototxt says
    otherwise; the label bottom (index 1) never receives force_backward.
    """

    exact_num_bottom_blobs = 2
    exact_num_top_blobs = 1
    auto_top_blobs = True

    def setup(self, bottom, top):
        if not len(self.layer_param.loss_weight):
            self.layer_param.loss_weight.append(1.0)

    def reshape(self, bottom, top):
        if bottom[0].shape[:1] != bottom[1].shape[:1]:
            raise self.shape_error(
                "the data and label must have the same first dimension",
                field="bottom", received=f"{bottom[0].shape} and "
                f"{bottom[1].shape}")
        top[0].reshape(())

    def allow_force_backward(self, bottom_index):
        return bottom_index != 1

    def label_backward_error(self):
        """The error for a request to backpropagate into the labels."""
        return self.no_gradient_error(1, "the label input")


def normalization_mode(loss_param, default=_NORM.VALID):
    """The effective normalization (honouring the deprecated ``normalize``)."""
    if not loss_param.HasField("normalization"):
        if loss_param.HasField("normalize"):
            return _NORM.VALID if loss_param.normalize else _NORM.BATCH_SIZE
        return default
    return loss_param.normalization


def normalizer(mode, outer, inner, valid_count):
    """Caffe's get_normalizer: FULL / VALID / BATCH_SIZE / NONE, at least 1."""
    if mode == _NORM.FULL:
        value = outer * inner
    elif mode == _NORM.VALID:
        value = outer * inner if valid_count is None else valid_count
    elif mode == _NORM.BATCH_SIZE:
        value = outer
    else:
        value = 1
    return max(1.0, float(value))


def valid_normalizer(mode, outer, inner, valid_count):
    """:func:`normalizer` for a valid count that is still an array (on the
    device): VALID gives max(1, count) as an array, without a host sync."""
    if mode == _NORM.VALID:
        return array_module(valid_count).maximum(valid_count, 1)
    return normalizer(mode, outer, inner, None)


def check_legacy_axes(layer, blob, field):
    """Refuse a blob of more than 4 axes where Caffe reads it through its
    num/channels/height/width accessors (which abort on such blobs)."""
    if blob.num_axes > 4:
        raise layer.shape_error(
            f"must have at most 4 axes ({layer.type} reads it as "
            "num × channels × height × width)", field=field,
            received=blob.shape, expected="at most 4 axes",
            fix="flatten the input first (e.g. with a Flatten or Reshape "
                "layer)")


def class_labels(layer, values, classes, ignore_label=None,
                 field="bottom[1]"):
    """Integer class labels from the float array ``values``.

    Labels are truncated to integers (as Caffe's static_cast<int>) and must
    lie in [0, classes) unless they equal ``ignore_label``.

    Returns:
        (labels, valid, safe): int labels of ``values``' shape; the mask of
        labels that count; the labels with ignored ones replaced by 0 (safe
        to index with).
    """
    xp = array_module(values)
    labels = values.astype(xp.int64)
    valid = (labels != ignore_label if ignore_label is not None
             else xp.ones(labels.shape, dtype=bool))
    bad = valid & ((labels < 0) | (labels >= classes))
    if bad.any():
        raise layer.shape_error(
            "label values must be integers in [0, C)", field=field,
            received=int(labels[bad][0]),
            expected=f"a value in [0, {classes - 1}]",
            fix="check the labels and the num_output of the layer that "
                "makes the scores, or set ignore_label")
    return labels, valid, xp.where(valid, labels, 0)


def read_labels(layer, bottom, axis, outer, inner, ignore_label):
    """Class labels of ``bottom[1]`` for scores ``bottom[0]`` split at ``axis``.

    Labels are truncated to integers (as Caffe's static_cast<int>) and must
    lie in [0, C) unless they equal ``ignore_label``.

    Returns:
        (labels, valid, safe): int labels (outer, inner); the mask of labels
        that count; the labels with ignored ones replaced by 0 (safe to index).
    """
    return class_labels(layer, bottom[1].data.reshape(outer, inner),
                        bottom[0].shape[axis], ignore_label)
