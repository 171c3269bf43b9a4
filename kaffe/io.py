"""pycaffe's ``caffe.io``: protobuf ↔ NumPy, image loading and preprocessing.

``import kaffe as caffe; caffe.io.load_image(...)`` works as in pycaffe, with
the breakages of the original fixed (skimage's removed ``as_grey`` argument,
NumPy's removed ``tostring``/``fromstring``) and without scikit-image or SciPy:
images are decoded with Pillow and resized with NumPy.

Two conventions meet here, and mixing them up is the most common mistake
(BVLC/caffe#5040, #525, #867)::

    load_image()          H×W×K float32, RGB, values in [0, 1]
    a Caffe net's input   K×H×W float32, BGR, values in [0, 255] minus a mean

:class:`Transformer` goes from the first to the second, always in this order
(each step only if it was configured)::

    preprocess(in_, image):
      1. cast to float32 (a copy: the caller's array is never modified)
      2. resize to the input blob's H×W            (resize_image, bilinear)
      3. transpose            set_transpose(in_, (2, 0, 1))    H×W×K → K×H×W
      4. reorder channels     set_channel_swap(in_, (2, 1, 0)) RGB → BGR
      5. × raw_scale          set_raw_scale(in_, 255)          [0,1] → [0,255]
      6. − mean               set_mean(in_, mean)   K×H×W or per channel (K,)
      7. × input_scale        set_input_scale(in_, s)

    deprocess(in_, blob) undoes 7 → 3 (it does not undo the resize).

So the mean is subtracted *after* raw_scale and channel swap (it is in the
net's BGR, 0–255 space, as Caffe's mean files are) and ``input_scale``
multiplies *after* the mean (Caffe's ``transform_param.scale`` order:
(x − mean) · scale). For an ImageNet CaffeNet::

    t = caffe.io.Transformer({'data': net.blobs['data'].data.shape})
    t.set_transpose('data', (2, 0, 1))
    t.set_channel_swap('data', (2, 1, 0))
    t.set_raw_scale('data', 255)
    t.set_mean('data', mean_bgr)            # e.g. np.array([104, 117, 123])
    net.blobs['data'].data[...] = t.preprocess('data', caffe.io.load_image(f))

Compared with OpenCV's ``cv2.dnn.blobFromImage(img, scalefactor, size, mean,
swapRB)`` on a 0–255 image of the input's size: it computes the same thing as
``raw_scale`` 1 (or unset), a per-channel mean given in the *output* channel
order, ``input_scale`` = scalefactor and ``channel_swap`` (2, 1, 0) for
swapRB. (Its resize is OpenCV's bilinear, which replicates edge pixels; see
:func:`resize_image` for where the two differ.)

Deviations from pycaffe (all deliberate):

* ``load_image`` decodes with Pillow (scikit-image decodes through imageio or
  Pillow too, so pixels match); for ``color=False`` a colour image becomes
  scikit-image's ``rgb2gray`` (0.2125 R + 0.7154 G + 0.0721 B). An alpha
  channel is dropped in both modes, as pycaffe does for colour (current
  scikit-image composites RGBA over white before ``rgb2gray``; older
  versions ignored alpha); a grey+alpha image is grey.
* ``resize_image`` reproduces pycaffe's
  ``skimage.transform.resize(..., mode='constant')`` call with the
  scikit-image of its time: no anti-aliasing (scikit-image ≥ 0.15 blurs
  before downscaling by default; pass ``anti_aliasing=True`` for that).
  Orders 0 (nearest) and 1 (bilinear) only.
* ``Transformer.preprocess`` never writes into the caller's array (pycaffe did
  when the input was already float32 and no resize or channel swap copied
  it); ``set_mean`` accepts a 2-D H×W mean for 1-channel inputs and refuses a
  mean whose channel count does not match the input instead of failing later.
* ``blobproto_to_array`` also reads ``double_data``/``double_diff``;
  ``datum_to_array`` decodes an encoded (JPEG/PNG) Datum to C×H×W BGR uint8.
* Errors are :class:`~kaffe.KaffeError` subclasses (all ``ValueError``s, so
  ``except ValueError`` and ``except Exception`` still catch them).
"""
import math

import numpy as np

from .core.errors import KaffeConfigError, KaffeFormatError, KaffeShapeError
from .data.resize import resize_image
from .proto import caffe_pb2

__all__ = [
    "Transformer", "array_to_blobproto", "array_to_datum",
    "arraylist_to_blobprotovector_str", "blobproto_to_array",
    "blobprotovector_str_to_arraylist", "datum_to_array", "load_image",
    "oversample", "resize_image",
]


# -- proto / datum / ndarray conversion --------------------------------------
def blobproto_to_array(blob, return_diff=False):
    """A BlobProto's ``data`` (``diff`` if ``return_diff``) as an array.

    The shape is the legacy 4-D ``num × channels × height × width`` when any of
    those fields is set (old caffemodels, mean.binaryproto files), else
    ``shape.dim``. A blob without a shape holding one value gives a 0-d array.

    Returns:
        float64 ndarray (pycaffe's type; the values are Caffe's float32s).

    Raises:
        KaffeShapeError: the number of values does not fit the shape (e.g. a
            blob with no shape and many values, or no diff stored).
    """
    if return_diff:
        values, doubles, what = blob.diff, blob.double_diff, "diff"
    else:
        values, doubles, what = blob.data, blob.double_data, "data"
    array = np.array(values if len(values) or not len(doubles) else doubles,
                     dtype=np.float64)
    legacy = any(blob.HasField(f) for f in ("num", "channels", "height",
                                            "width"))
    shape = ((blob.num, blob.channels, blob.height, blob.width) if legacy
             else tuple(blob.shape.dim))
    if len(shape) > 32:
        raise KaffeShapeError(
            "the BlobProto's shape has too many axes", received=len(shape),
            expected="at most 32 (Caffe's kMaxBlobAxes)")
    if any(d < 0 for d in shape):
        raise KaffeShapeError(
            "the BlobProto's shape has a negative dimension", received=shape,
            fix="give the blob a shape of dimensions >= 0")
    # An exact product (an int64 one wraps around for absurd shapes).
    if array.size != math.prod(shape):
        kind = "legacy num/channels/height/width" if legacy else "shape.dim"
        raise KaffeShapeError(
            f"the BlobProto's {what} holds {array.size} values, which do not "
            f"fit its {kind} shape", received=shape,
            fix="give the blob a shape (shape.dim or num/channels/height/"
                "width) with as many elements as it has values")
    try:
        return array.reshape(shape)
    except ValueError:          # e.g. (0, 2**40, 2**40): too big for NumPy
        raise KaffeShapeError(
            "the BlobProto's shape cannot be an array", received=shape,
            fix="give the blob a shape NumPy can hold") from None


def array_to_blobproto(arr, diff=None):
    """An N-D array (and optionally a same-shaped ``diff``) as a BlobProto.

    The shape goes to ``shape.dim`` (the current format); values are stored as
    float32 in ``data``/``diff``.
    """
    arr = np.asarray(arr)
    blob = caffe_pb2.BlobProto()
    blob.shape.dim.extend(int(d) for d in arr.shape)
    blob.data.extend(arr.astype(np.float64).ravel().tolist())
    if diff is not None:
        diff = np.asarray(diff)
        if diff.shape != arr.shape:
            raise KaffeShapeError("diff must have the data's shape",
                                  received=diff.shape, expected=arr.shape)
        blob.diff.extend(diff.astype(np.float64).ravel().tolist())
    return blob


def arraylist_to_blobprotovector_str(arraylist):
    """Arrays → the serialized bytes of a BlobProtoVector."""
    vec = caffe_pb2.BlobProtoVector()
    vec.blobs.extend(array_to_blobproto(arr) for arr in arraylist)
    return vec.SerializeToString()


def blobprotovector_str_to_arraylist(str):  # noqa: A002 (pycaffe's name)
    """The serialized bytes of a BlobProtoVector → a list of arrays."""
    vec = caffe_pb2.BlobProtoVector()
    try:
        vec.ParseFromString(str)
    except Exception as e:  # protobuf's DecodeError
        raise KaffeFormatError(
            f"the bytes are not a serialized BlobProtoVector ({e})") from None
    return [blobproto_to_array(blob) for blob in vec.blobs]


def array_to_datum(arr, label=None):
    """A C×H×W array as a Datum: uint8 → bytes in ``data``, any other dtype →
    ``float_data``. ``label`` is set only when given (as pycaffe)."""
    arr = np.asarray(arr)
    if arr.ndim != 3:
        raise KaffeShapeError("Incorrect array shape: a Datum holds a 3-D "
                              "C×H×W array", received=arr.shape,
                              expected="3 axes (channels, height, width)")
    datum = caffe_pb2.Datum()
    datum.channels, datum.height, datum.width = (int(d) for d in arr.shape)
    if arr.dtype == np.uint8:
        datum.data = np.ascontiguousarray(arr).tobytes()
    else:
        datum.float_data.extend(arr.astype(np.float64).ravel().tolist())
    if label is not None:
        datum.label = int(label)
    return datum


def datum_to_array(datum):
    """A Datum's values as a C×H×W array (the label is ``datum.label``).

    Returns:
        uint8 for byte ``data`` (and for encoded JPEG/PNG Datums, decoded to
        BGR as Caffe's data layers do), float64 for ``float_data``. The array
        is a writable copy.
    """
    from .data.datum import datum_to_array as decode
    if datum.encoded or len(datum.data):
        return np.array(decode(datum))
    return decode(datum).astype(np.float64)


# -- pre-processing -----------------------------------------------------------
class Transformer:
    """Turn H×W×K images into a net's K×H×W inputs, and back.

    Args:
        inputs: {input blob name: its shape}, e.g.
            ``{'data': net.blobs['data'].data.shape}`` (N×K×H×W).

    Steps, in this order, each one optional (see the module docstring)::

        float32 → resize to H×W → transpose → channel swap → × raw_scale
                → − mean → × input_scale

    All settings are per input name, kept in the dicts ``transpose``,
    ``channel_swap``, ``raw_scale``, ``mean`` and ``input_scale`` (pycaffe's
    attributes).
    """

    def __init__(self, inputs):
        self.inputs = {name: tuple(int(d) for d in shape)
                       for name, shape in dict(inputs).items()}
        self.transpose = {}
        self.channel_swap = {}
        self.raw_scale = {}
        self.mean = {}
        self.input_scale = {}

    def _check_input(self, in_):
        if in_ not in self.inputs:
            raise KaffeConfigError(
                "is not one of the net inputs", field="input", received=in_,
                expected=" or ".join(repr(n) for n in self.inputs))

    def preprocess(self, in_, data):
        """Format one image for the input ``in_`` of a net.

        Args:
            in_: the input blob's name.
            data: H'×W'×K ndarray (e.g. from :func:`load_image`).

        Returns:
            K×H×W float32 ndarray for ``net.blobs[in_].data[i]``:
            float32 → resize to the input's H×W (if it differs) → transpose →
            channel swap → × raw_scale → − mean → × input_scale.
        """
        self._check_input(in_)
        caffe_in = np.array(data, dtype=np.float32)   # a copy, never a view
        in_dims = self.inputs[in_][2:]
        if caffe_in.shape[:2] != in_dims:
            caffe_in = resize_image(caffe_in, in_dims)
        transpose = self.transpose.get(in_)
        channel_swap = self.channel_swap.get(in_)
        raw_scale = self.raw_scale.get(in_)
        mean = self.mean.get(in_)
        input_scale = self.input_scale.get(in_)
        if transpose is not None:
            caffe_in = caffe_in.transpose(transpose)
        if channel_swap is not None:
            caffe_in = caffe_in[list(channel_swap), :, :]
        if raw_scale is not None:
            caffe_in *= raw_scale
        if mean is not None:
            caffe_in -= mean
        if input_scale is not None:
            caffe_in *= input_scale
        return caffe_in

    def deprocess(self, in_, data):
        """Undo :meth:`preprocess` (but not its resize): blob → image.

        Args:
            in_: the input blob's name.
            data: K×H×W ndarray (a leading batch axis of 1 is squeezed away,
                so ``net.blobs['data'].data`` of a batch of one works).

        Returns:
            H×W×K ndarray: ÷ input_scale → + mean → ÷ raw_scale → inverse
            channel swap → inverse transpose.
        """
        self._check_input(in_)
        decaf_in = np.array(data, copy=True).squeeze()
        if not np.issubdtype(decaf_in.dtype, np.floating):
            decaf_in = decaf_in.astype(np.float32)
        transpose = self.transpose.get(in_)
        channel_swap = self.channel_swap.get(in_)
        raw_scale = self.raw_scale.get(in_)
        mean = self.mean.get(in_)
        input_scale = self.input_scale.get(in_)
        if input_scale is not None:
            decaf_in /= input_scale
        if mean is not None:
            decaf_in += mean
        if raw_scale is not None:
            decaf_in /= raw_scale
        if channel_swap is not None:
            decaf_in = decaf_in[np.argsort(channel_swap), :, :]
        if transpose is not None:
            decaf_in = decaf_in.transpose(np.argsort(transpose))
        return decaf_in

    def set_transpose(self, in_, order):
        """Set the order of dimensions, e.g. (2, 0, 1) to turn H×W×K images
        into K×H×W (and (1, 2, 0) reverts)."""
        self._check_input(in_)
        order = tuple(int(i) for i in order)
        if len(order) != len(self.inputs[in_]) - 1:
            raise KaffeConfigError(
                "Transpose order needs to have the same number of dimensions "
                "as the input (without the batch axis)", received=order,
                expected=f"{len(self.inputs[in_]) - 1} axes")
        self.transpose[in_] = order

    def set_channel_swap(self, in_, order):
        """Set the channel order, e.g. (2, 1, 0) for RGB → BGR (the reference
        ImageNet models' order). Applies to the first axis AFTER transpose."""
        self._check_input(in_)
        order = tuple(int(i) for i in order)
        if len(order) != self.inputs[in_][1]:
            raise KaffeConfigError(
                "Channel swap needs to have the same number of dimensions as "
                "the input channels", received=order,
                expected=f"{self.inputs[in_][1]} channels")
        self.channel_swap[in_] = order

    def set_raw_scale(self, in_, scale):
        """Set the raw scale: blob = input × scale, BEFORE the mean.

        Images from :func:`load_image` are in [0, 1]; CaffeNet, AlexNet,
        GoogLeNet, VGG, ResNet ... expect [0, 255], so their raw_scale is 255.
        """
        self._check_input(in_)
        self.raw_scale[in_] = scale

    def set_mean(self, in_, mean):
        """Set the mean to subtract (after raw_scale and channel swap, so in
        the net's channel order and value range).

        Args:
            in_: the input blob's name.
            mean: per-channel (K,) values, or an elementwise K×H×W array (a 2-D
                H×W one for 1-channel inputs). An elementwise mean of another
                H×W (ImageNet's 256×256 for a 227×227 input) is resized to the
                input's H×W with :func:`resize_image`, as pycaffe does.
        """
        self._check_input(in_)
        mean = np.asarray(mean)
        if mean.size == 0:
            raise KaffeShapeError("the mean is empty", received=mean.shape,
                                  fix="pass a mean with values")
        channels, in_hw = self.inputs[in_][1], self.inputs[in_][2:]
        if mean.ndim == 1:
            if mean.shape[0] != channels:
                raise KaffeShapeError(
                    "Mean channels incompatible with input",
                    received=mean.shape,
                    expected=f"({channels},) per-channel values")
            mean = mean[:, np.newaxis, np.newaxis]
        else:
            if mean.ndim == 2:
                mean = mean[np.newaxis]
            if mean.ndim != 3:
                raise KaffeShapeError(
                    "Mean shape invalid", received=mean.shape,
                    expected="(K,) or K×H×W")
            if mean.shape[0] != channels:
                raise KaffeShapeError(
                    "Mean channels incompatible with input",
                    received=mean.shape,
                    expected=f"{channels} channels")
            if mean.shape[1:] != in_hw:
                mean = _resize_mean(mean, in_hw)
        self.mean[in_] = mean

    def set_input_scale(self, in_, scale):
        """Set the scale of preprocessed inputs: blob = blob × scale, AFTER the
        mean is subtracted (raw_scale is applied BEFORE)."""
        self._check_input(in_)
        self.input_scale[in_] = scale


def _resize_mean(mean, hw):
    """pycaffe's resize of a K×H×W mean: to [0, 1], resize, back."""
    m_min, m_max = mean.min(), mean.max()
    if m_max == m_min:
        return np.full((mean.shape[0],) + tuple(hw), m_min, dtype=mean.dtype)
    normal = (mean - m_min) / (m_max - m_min)
    resized = resize_image(normal.transpose(1, 2, 0), hw).transpose(2, 0, 1)
    return resized * (m_max - m_min) + m_min


# -- image IO -----------------------------------------------------------------
_GRAY_WEIGHTS = np.array([0.2125, 0.7154, 0.0721])  # skimage's rgb2gray


def load_image(filename, color=True):
    """Load an image as float32 in [0, 1], converting grey or alpha as needed.

    Args:
        filename: the image file (anything Pillow reads: JPEG, PNG, BMP ...).
        color: True (default) → H×W×3 **RGB** (a grey image is repeated on
            the three channels); False → H×W×1 intensity (a colour image is
            converted with 0.2125 R + 0.7154 G + 0.0721 B, scikit-image's
            ``rgb2gray``).

    Returns:
        float32 ndarray, values in [0, 1] (8-bit images ÷ 255, 16-bit ÷ 65535).
        An alpha channel is dropped. Note that Caffe nets usually want BGR in
        [0, 255]: see :class:`Transformer`.
    """
    from .data.image import pil
    Image = pil()
    try:
        with Image.open(filename) as image:
            image.load()
            array = _pil_to_float(image, filename)
    except (OSError, SyntaxError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise KaffeFormatError(
            f"'{filename}' cannot be read as an image ({e})",
            fix="check that the file is a complete JPEG/PNG/BMP image") \
            from None
    if array.ndim == 3 and array.shape[2] >= 3:
        rgb = array[:, :, :3]
        if color:
            return np.ascontiguousarray(rgb, dtype=np.float32)
        return (rgb.astype(np.float64) @ _GRAY_WEIGHTS).astype(
            np.float32)[:, :, np.newaxis]
    grey = array[:, :, :1] if array.ndim == 3 else array[:, :, np.newaxis]
    grey = grey.astype(np.float32)
    return np.repeat(grey, 3, axis=2) if color else grey


def _pil_to_float(image, filename):
    """A Pillow image → float64 H×W or H×W×C (L, LA, RGB, RGBA) in [0, 1]."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        return np.asarray(image, dtype=np.float64) / 65535.0
    if mode == "F":
        return np.asarray(image, dtype=np.float64)
    if mode == "1":
        image = image.convert("L")
    elif mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    elif mode == "La":
        image = image.convert("LA")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGB")    # CMYK, YCbCr, LAB, HSV, RGBX, RGBa
    return np.asarray(image, dtype=np.float64) / 255.0


def oversample(images, crop_dims):
    """The 4 corner crops, the centre crop and their mirrors of each image.

    Args:
        images: iterable of H×W×K ndarrays, all of the first one's size (a
            list, or an N×H×W×K array).
        crop_dims: (height, width) of the crops.

    Returns:
        (10·N)×h×w×K float32 ndarray; for each image, in this order: top-left,
        top-right, bottom-left, bottom-right, centre (start = floor((H − h)/2)
        as pycaffe's int cast), then the same five mirrored left-right.
    """
    images = list(images) if not isinstance(images, np.ndarray) else images
    if len(images) == 0:
        raise KaffeShapeError("oversample needs at least one image")
    im_shape = np.asarray(images[0]).shape
    if len(im_shape) != 3:
        raise KaffeShapeError("oversample takes H×W×K images",
                              received=im_shape, expected="3 axes")
    crop_h, crop_w = (int(d) for d in crop_dims)
    if not (0 < crop_h <= im_shape[0] and 0 < crop_w <= im_shape[1]):
        raise KaffeShapeError(
            "oversample crops must fit in the images",
            received=(crop_h, crop_w), expected=f"at most {im_shape[:2]}",
            fix="resize the images to at least the crop size first")
    # pycaffe truncates the float centre-crop corners toward zero.
    center = (int(im_shape[0] / 2.0 - crop_h / 2.0),
              int(im_shape[1] / 2.0 - crop_w / 2.0))
    corners = [(0, 0), (0, im_shape[1] - crop_w), (im_shape[0] - crop_h, 0),
               (im_shape[0] - crop_h, im_shape[1] - crop_w), center]
    crops = np.empty((10 * len(images), crop_h, crop_w, im_shape[-1]),
                     dtype=np.float32)
    ix = 0
    for im in images:
        im = np.asarray(im)
        for y, x in corners:
            crops[ix] = im[y:y + crop_h, x:x + crop_w, :]
            crops[ix + 5] = crops[ix, :, ::-1, :]
            ix += 1
        ix += 5
    return crops
