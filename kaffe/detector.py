"""pycaffe's ``caffe.Detector``: classify windows of images, R-CNN style.

::

    net = caffe.Detector('deploy.prototxt', 'weights.caffemodel',
                         mean=mean_bgr, raw_scale=255, channel_swap=(2, 1, 0),
                         context_pad=16)
    dets = net.detect_windows([('img.jpg', [(ymin, xmin, ymax, xmax), ...])])
    dets[0]['prediction']          # the net's first output for that window

Each window is cropped from the image (RGB, [0, 1], as
:func:`kaffe.io.load_image` gives it), optionally with ``context_pad``
pixels of surrounding context as in R-CNN (Girshick et al. 2014,
arXiv:1311.2524), warped to the net's input size and preprocessed by a
:class:`kaffe.io.Transformer`.

Deviations from pycaffe: ``detect_selective_search`` raises a KaffeError
(pycaffe imported the external MATLAB-based
``selective_search_ijcv_with_python``, which kaffe does not ship); windows
may be lists or tuples and any iterable of (image, windows) pairs is read
once (pycaffe iterated it twice, so a ``zip`` under Python 3 gave no
detections); context crops use integer indices (pycaffe sliced with floats,
an error with current NumPy) and Python 3's round-half-to-even, as pycaffe
under Python 3.
"""
import numpy as np

from . import io as caffe_io
from .classifier import make_transformer
from .core.errors import KaffeConfigError, KaffeShapeError
from .core.net import TEST, Net


class Detector(Net):
    """A Net for windowed detection over given crops.

    Args:
        model_file: the deploy prototxt (its first input is the image input).
        pretrained_file: the trained weights, or None.
        mean, input_scale, raw_scale, channel_swap: the Transformer settings
            of the input (see :class:`kaffe.io.Transformer`).
        context_pad: pixels of the net's input that show context around the
            window (R-CNN uses 16), or None for a tight crop.

    Attributes:
        transformer: the :class:`kaffe.io.Transformer` of ``inputs[0]``.
        crop_dims: the input's (H, W, K), an ndarray.
        context_pad, crop_mean: see :meth:`configure_crop`.
    """

    def __init__(self, model_file, pretrained_file, mean=None,
                 input_scale=None, raw_scale=None, channel_swap=None,
                 context_pad=None):
        Net.__init__(self, model_file, TEST, weights=pretrained_file)
        self.transformer = make_transformer(self, mean, input_scale,
                                            raw_scale, channel_swap)
        self.configure_crop(context_pad)

    def detect_windows(self, images_windows):
        """Classify windows of images; each is cropped and warped to the input.

        Args:
            images_windows: iterable of (image filename, windows) pairs; a
                window is (ymin, xmin, ymax, xmax) in pixels.

        Returns:
            list of {'window': window, 'prediction': the first output's row,
            'filename': image filename} dicts, in input order.
        """
        images_windows = [(fname, list(windows))
                          for fname, windows in images_windows]
        window_inputs = []
        for image_fname, windows in images_windows:
            image = caffe_io.load_image(image_fname).astype(np.float32)
            for window in windows:
                window_inputs.append(self.crop(image, window))
        if not window_inputs:
            return []
        in_ = self.inputs[0]
        caffe_in = np.zeros((len(window_inputs), window_inputs[0].shape[2])
                            + self.blobs[in_].data.shape[2:],
                            dtype=np.float32)
        for ix, window_in in enumerate(window_inputs):
            caffe_in[ix] = self.transformer.preprocess(in_, window_in)
        out = self.forward_all(**{in_: caffe_in})
        predictions = out[self.outputs[0]]
        detections = []
        ix = 0
        for image_fname, windows in images_windows:
            for window in windows:
                detections.append({'window': window,
                                   'prediction': predictions[ix],
                                   'filename': image_fname})
                ix += 1
        return detections

    def detect_selective_search(self, image_fnames):
        """pycaffe ran the external selective-search tool here; kaffe has none.

        Raises:
            KaffeConfigError: always, saying how to pass windows instead.
        """
        raise KaffeConfigError(
            "selective search proposals are not available: pycaffe called "
            "the external MATLAB tool selective_search_ijcv_with_python, "
            "which kaffe does not include",
            fix="compute windows with any proposal method (e.g. OpenCV's "
                "cv2.ximgproc.segmentation selective search) and call "
                "detect_windows([(filename, [(ymin, xmin, ymax, xmax), "
                "...]), ...])")

    def crop(self, im, window):
        """Crop ``window`` = (ymin, xmin, ymax, xmax) from an H×W×K image.

        Without context the crop is ``im[ymin:ymax, xmin:xmax]``. With
        ``context_pad`` the box is enlarged so that, once warped to the net's
        (square) input, ``context_pad`` pixels of it are context; the part of
        the enlarged box outside the image is filled with ``crop_mean``
        (the mean in image space), and the result is the input's size.
        """
        window = np.asarray(window)
        y0, x0, y1, x1 = (int(v) for v in window[:4])
        crop = im[y0:y1, x0:x1]
        if not self.context_pad:
            return crop
        box = window[:4].astype(np.float64)
        crop_size = self.blobs[self.inputs[0]].width      # assumes square
        scale = crop_size / (1. * crop_size - self.context_pad * 2)
        # Crop a box + surrounding context.
        half_h = (box[2] - box[0] + 1) / 2.
        half_w = (box[3] - box[1] + 1) / 2.
        center = (box[0] + half_h, box[1] + half_w)
        scaled_dims = scale * np.array((-half_h, -half_w, half_h, half_w))
        box = np.round(np.tile(center, 2) + scaled_dims)
        full_h = box[2] - box[0] + 1
        full_w = box[3] - box[1] + 1
        scale_h = crop_size / full_h
        scale_w = crop_size / full_w
        pad_y = round(max(0, -box[0]) * scale_h)     # amount out of bounds
        pad_x = round(max(0, -box[1]) * scale_w)
        # Clip the box to the image.
        im_h, im_w = im.shape[:2]
        box = np.clip(box, 0., [im_h, im_w, im_h, im_w])
        clip_h = box[2] - box[0] + 1
        clip_w = box[3] - box[1] + 1
        crop_h = round(clip_h * scale_h)
        crop_w = round(clip_w * scale_w)
        if pad_y + crop_h > crop_size:
            crop_h = crop_size - pad_y
        if pad_x + crop_w > crop_size:
            crop_w = crop_size - pad_x
        b = box.astype(int)
        context_crop = im[b[0]:b[2], b[1]:b[3]]
        if clip_h <= 0 or clip_w <= 0 or crop_h <= 0 or crop_w <= 0 \
                or context_crop.size == 0:
            raise KaffeShapeError(
                "the window lies outside the image", field="window",
                received=tuple(window.tolist()),
                expected=f"(ymin, xmin, ymax, xmax) inside {im_h}×{im_w}")
        # Collect with context padding and place in input with mean padding.
        context_crop = caffe_io.resize_image(context_crop, (crop_h, crop_w))
        crop = np.ones(self.crop_dims, dtype=np.float32) * self.crop_mean
        crop[pad_y:pad_y + crop_h, pad_x:pad_x + crop_w] = context_crop
        return crop

    def configure_crop(self, context_pad):
        """Set the crop size (the input's H×W×K) and the context padding.

        With context, ``crop_mean`` is the Transformer's mean brought back to
        image space (inverse transpose and channel swap, ÷ raw_scale), used to
        fill the part of a context box outside the image; zeros without a
        mean.
        """
        in_ = self.inputs[0]
        tpose = self.transformer.transpose[in_]
        inv_tpose = np.argsort(tpose)
        self.crop_dims = np.array(self.blobs[in_].data.shape[1:])[inv_tpose]
        self.context_pad = context_pad
        if not self.context_pad:
            return
        channel_order = self.transformer.channel_swap.get(in_)
        raw_scale = self.transformer.raw_scale.get(in_)
        mean = self.transformer.mean.get(in_)
        if mean is None:
            self.crop_mean = np.zeros(self.crop_dims, dtype=np.float32)
            return
        crop_mean = np.array(mean, dtype=np.float32).transpose(inv_tpose)
        if channel_order is not None:
            crop_mean = crop_mean[:, :, np.argsort(channel_order)]
        if raw_scale is not None:
            crop_mean /= raw_scale
        self.crop_mean = crop_mean
