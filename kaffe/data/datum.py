"""Datum, Caffe's record of one example in a LevelDB/LMDB, to and from arrays.

A ``caffe_pb2.Datum`` holds channels, height, width, a label and the values
in one of three forms:

* ``data``: uint8 bytes in C×H×W order (BGR for colour images, as OpenCV
  decodes them);
* ``float_data``: the same layout as float32 values (extract_features writes
  these);
* ``encoded``: ``data`` holds a compressed image file (JPEG, PNG, ...); the
  image is decoded when read, as Caffe's ``DecodeDatumToCVMat*`` do.

Arrays here are C×H×W (Caffe's blob layout); decoded images are H×W×C (see
:mod:`kaffe.data.image`).
"""
import numpy as np

from ..core.errors import KaffeFormatError
from ..proto import caffe_pb2
from .image import decode_image, encode_image, read_image, extension_matches


def parse_datum(value, *, where=None):
    """Parse serialized bytes from a DB into a Datum.

    Args:
        value: the bytes stored under a key.
        where: text naming the record in errors ("train_lmdb, key 00000003").
    """
    datum = caffe_pb2.Datum()
    try:
        datum.ParseFromString(value)
    except Exception as e:  # protobuf raises DecodeError / RuntimeError
        raise KaffeFormatError(
            f"{where or 'a record'} is not a serialized Datum ({e})",
            fix="the DB must hold Caffe Datum records, as convert_imageset "
                "or convert_mnist_data write them") from None
    return datum


def array_to_datum(array, label=0):
    """A Datum holding a C×H×W array: uint8 → ``data``, anything else →
    ``float_data`` (as pycaffe's ``caffe.io.array_to_datum``)."""
    array = np.asarray(array)
    if array.ndim != 3:
        raise KaffeFormatError("a Datum holds a 3-D C×H×W array",
                               received=array.shape, expected="3 axes")
    datum = caffe_pb2.Datum()
    datum.channels, datum.height, datum.width = array.shape
    if array.dtype == np.uint8:
        datum.data = np.ascontiguousarray(array).tobytes()
    else:
        datum.float_data.extend(array.astype(np.float32).ravel().tolist())
    datum.label = int(label)
    return datum


def image_to_datum(image, label=0):
    """Caffe's ``CVMatToDatum``: an H×W×C uint8 image → a raw C×H×W Datum."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.dtype != np.uint8:
        raise KaffeFormatError("image data type must be unsigned byte",
                               received=str(image.dtype), expected="uint8")
    return array_to_datum(image.transpose(2, 0, 1), label)


def datum_to_array(datum, mode="native", *, where=None):
    """The values of a Datum as a C×H×W array.

    Args:
        datum: a caffe_pb2.Datum.
        mode: how to decode an encoded Datum: "native" (as stored), "color"
            (3 channels) or "gray" (1 channel); ignored for raw Datums.
        where: text naming the record in errors.

    Returns:
        uint8 for ``data`` and encoded Datums, float32 for ``float_data``.
    """
    what = where or "datum"
    if datum.encoded:
        image = decode_image(datum.data, mode, what=f"encoded {what}")
        return image.transpose(2, 0, 1)
    shape = (datum.channels, datum.height, datum.width)
    if datum.channels <= 0 or datum.height < 0 or datum.width < 0:
        raise KaffeFormatError(
            f"{what} has no valid shape",
            received=f"channels {datum.channels}, height {datum.height}, "
                     f"width {datum.width}",
            expected="channels > 0 (Caffe's CHECK_GT(datum_channels, 0))")
    size = shape[0] * shape[1] * shape[2]
    if len(datum.data):
        if len(datum.data) != size:
            raise KaffeFormatError(
                f"{what} holds {len(datum.data)} data bytes for a "
                f"{shape[0]}×{shape[1]}×{shape[2]} datum",
                received=len(datum.data), expected=size)
        return np.frombuffer(datum.data, dtype=np.uint8).reshape(shape)
    if len(datum.float_data) != size:
        raise KaffeFormatError(
            f"{what} holds {len(datum.float_data)} float_data values for a "
            f"{shape[0]}×{shape[1]}×{shape[2]} datum",
            received=len(datum.float_data), expected=size)
    return np.asarray(datum.float_data, dtype=np.float32).reshape(shape)


def decode_datum(datum, mode="native", *, where=None):
    """Caffe's ``DecodeDatum``/``DecodeDatumNative``: an encoded Datum → a raw
    one (same label); a raw Datum is returned unchanged. Returns (datum,
    whether it was decoded)."""
    if not datum.encoded:
        return datum, False
    array = datum_to_array(datum, mode, where=where)
    return array_to_datum(array, datum.label), True


def read_file_to_datum(path, label=0):
    """Caffe's ``ReadFileToDatum``: the file's bytes as an encoded Datum.

    Only ``data``, ``label`` and ``encoded`` are set, as Caffe does. Returns
    None when the file cannot be read.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    datum = caffe_pb2.Datum()
    datum.data = data
    datum.label = int(label)
    datum.encoded = True
    return datum


def read_image_to_datum(path, label=0, height=0, width=0, is_color=True,
                        encoding=""):
    """Caffe's ``ReadImageToDatum``.

    Reads (and resizes, when both ``height`` and ``width`` are > 0) the image.
    With an ``encoding`` ("png", "jpg") the Datum is encoded: the file's own
    bytes when nothing changed and the extension already matches, else the
    image re-encoded. Without one it is raw C×H×W uint8.

    Returns None when the image cannot be read (Caffe logs and skips it).
    """
    image = read_image(path, height, width, is_color)
    if image is None:
        return None
    if encoding:
        if ((image.shape[2] == 3) == is_color and not height and not width
                and extension_matches(path, encoding)):
            return read_file_to_datum(path, label)
        datum = caffe_pb2.Datum()
        datum.data = encode_image(image, encoding)
        datum.label = int(label)
        datum.encoded = True
        return datum
    return image_to_datum(image, label)
