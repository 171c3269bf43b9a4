"""pycaffe's ``caffe.Classifier``: a Net that classifies H×W×K images.

::

    net = caffe.Classifier('deploy.prototxt', 'weights.caffemodel',
                           image_dims=(256, 256), mean=mean_bgr,
                           raw_scale=255, channel_swap=(2, 1, 0))
    probs = net.predict([caffe.io.load_image('cat.jpg')])   # N × classes

``predict`` resizes every image to ``image_dims``, then either averages the
net's output over 10 crops (4 corners, centre, and their mirrors; the
default) or uses the centre crop alone, each crop preprocessed by a
:class:`kaffe.io.Transformer` (transpose → channel swap → × raw_scale −
mean → × input_scale; see :mod:`kaffe.io`).
"""
import numpy as np

from . import io as caffe_io
from .core.errors import KaffeShapeError
from .core.net import TEST, Net


class Classifier(Net):
    """A Net for image classification by scaling, centre cropping or
    oversampling.

    Args:
        model_file: the deploy prototxt (its first input is the image input).
        pretrained_file: the trained weights (.caffemodel / .h5), or None.
        image_dims: (height, width) to resize images to before cropping;
            default: the input blob's H×W (the whole image is the crop).
        mean, input_scale, raw_scale, channel_swap: the Transformer settings
            of the input (see :class:`kaffe.io.Transformer`).

    Attributes:
        transformer: the :class:`kaffe.io.Transformer` of ``inputs[0]``.
        crop_dims: the input blob's (H, W), an ndarray.
        image_dims: the size images are resized to.
    """

    def __init__(self, model_file, pretrained_file, image_dims=None,
                 mean=None, input_scale=None, raw_scale=None,
                 channel_swap=None):
        Net.__init__(self, model_file, TEST, weights=pretrained_file)
        in_ = self.inputs[0]
        self.transformer = make_transformer(self, mean, input_scale,
                                            raw_scale, channel_swap)
        self.crop_dims = np.array(self.blobs[in_].data.shape[2:])
        if image_dims is None or len(image_dims) == 0:
            image_dims = self.crop_dims
        self.image_dims = image_dims

    def predict(self, inputs, oversample=True):
        """Class probabilities (the net's first output) for each input.

        Args:
            inputs: iterable of H×W×K images (e.g. from
                :func:`kaffe.io.load_image`: RGB in [0, 1]).
            oversample: average over the centre, corner and mirrored crops
                (True, default) or use the centre crop alone.

        Returns:
            N × C ndarray for N inputs (the first output's per-item values).
        """
        inputs = list(inputs) if not isinstance(inputs, np.ndarray) \
            else inputs
        if len(inputs) == 0:
            raise KaffeShapeError("predict needs at least one image")
        image_dims = tuple(int(d) for d in self.image_dims)
        crop_dims = tuple(int(d) for d in self.crop_dims)
        if image_dims[0] < crop_dims[0] or image_dims[1] < crop_dims[1]:
            raise KaffeShapeError(
                "image_dims must be at least the net's input size",
                received=image_dims, expected=f"≥ {crop_dims}",
                fix="pass image_dims of at least the input blob's H×W")
        # Scale to standardize input dimensions.
        input_ = np.zeros((len(inputs),) + image_dims
                          + (np.asarray(inputs[0]).shape[2],),
                          dtype=np.float32)
        for ix, in_ in enumerate(inputs):
            input_[ix] = caffe_io.resize_image(in_, image_dims)
        if oversample:
            input_ = caffe_io.oversample(input_, crop_dims)
        else:
            # pycaffe's centre crop: float corners truncated to int.
            center = np.array(image_dims) / 2.0
            crop = np.concatenate([center - np.array(crop_dims) / 2.0,
                                   center + np.array(crop_dims) / 2.0]
                                  ).astype(int)
            input_ = input_[:, crop[0]:crop[2], crop[1]:crop[3], :]
        in_name = self.inputs[0]
        caffe_in = np.zeros((input_.shape[0], input_.shape[3])
                            + input_.shape[1:3], dtype=np.float32)
        for ix, in_ in enumerate(input_):
            caffe_in[ix] = self.transformer.preprocess(in_name, in_)
        out = self.forward_all(**{in_name: caffe_in})
        predictions = out[self.outputs[0]]
        if oversample:
            predictions = predictions.reshape((len(predictions) // 10, 10, -1))
            predictions = predictions.mean(1)
        return predictions


def make_transformer(net, mean=None, input_scale=None, raw_scale=None,
                     channel_swap=None):
    """The Transformer of ``net.inputs[0]`` that Classifier and Detector use:
    transpose (2, 0, 1) plus whichever settings are given."""
    in_ = net.inputs[0]
    transformer = caffe_io.Transformer({in_: net.blobs[in_].data.shape})
    transformer.set_transpose(in_, (2, 0, 1))
    if mean is not None:
        transformer.set_mean(in_, mean)
    if input_scale is not None:
        transformer.set_input_scale(in_, input_scale)
    if raw_scale is not None:
        transformer.set_raw_scale(in_, raw_scale)
    if channel_swap is not None:
        transformer.set_channel_swap(in_, channel_swap)
    return transformer

