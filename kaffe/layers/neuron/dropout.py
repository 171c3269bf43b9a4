"""Dropout (inverted: scaled at training time)."""
from ...core.backend import array_module
from ...core.random import rng
from ...core.registry import register_layer
from ...proto import caffe_pb2
from .neuron import NeuronLayer


@register_layer("Dropout")
class DropoutLayer(NeuronLayer):
    """TRAIN: y = x · mask / (1 − r), mask ~ Bernoulli(1 − r); TEST: y = x.

    Reads dropout_param: dropout_ratio r (0.5), which must lie in [0, 1);
    and Fast/Faster R-CNN's fork field scale_train (true): false drops the
    1/(1 − r) at training time and scales by 1 − r at test time instead
    (rbgirshick/caffe-fast-rcnn), as py-faster-rcnn's prototxts ask;
    and Bayesian SegNet's fork field sample_weights_test (false): true draws
    masks in TEST too, as in TRAIN (Monte Carlo dropout).
    The mask is drawn from kaffe's RNG on every TRAIN forward and reused by
    backward.
    """

    def setup(self, bottom, top):
        ratio = self.layer_param.dropout_param.dropout_ratio
        if not 0.0 <= ratio < 1.0:
            raise self.config_error(
                "must be in [0, 1)", field="dropout_param.dropout_ratio",
                received=ratio, fix="use a fraction such as 0.5")
        self.ratio = ratio
        self.scale = 1.0 / (1.0 - ratio)
        # Fast R-CNN's scale_train: false moves the scaling to test time.
        self.scale_train = self.layer_param.dropout_param.scale_train
        self.test_scale = 1.0 if self.scale_train else 1.0 / self.scale
        self.mask = None
        self.sampling = (self.phase == caffe_pb2.TRAIN or
                         self.layer_param.dropout_param.sample_weights_test)

    def forward(self, bottom, top):
        x = bottom[0].data
        if self.sampling:
            xp = array_module(x)
            keep = rng().random(size=x.shape) >= self.ratio
            self.mask = xp.asarray(keep * (self.scale if self.scale_train
                                           else 1.0), dtype=x.dtype)
            xp.multiply(x, self.mask, out=top[0].data)
        elif self.test_scale != 1.0:
            array_module(x).multiply(x, x.dtype.type(self.test_scale),
                                     out=top[0].data)
        elif top[0] is not bottom[0]:
            top[0].data[...] = x

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        if self.sampling:
            array_module(top[0].diff).multiply(
                top[0].diff, self.mask, out=bottom[0].diff)
        elif self.test_scale != 1.0:
            dy = top[0].diff
            array_module(dy).multiply(dy, dy.dtype.type(self.test_scale),
                                      out=bottom[0].diff)
        elif top[0] is not bottom[0]:
            bottom[0].diff[...] = top[0].diff
