"""DataTransformer: Caffe's preprocessing of every example a data layer reads.

Reads ``transform_param`` (TransformationParameter) as Caffe's
``src/caffe/data_transformer.cpp`` does. For one C×H×W example::

    do_mirror = mirror and Rand(2)              # in TRAIN *and* TEST
    if crop_size and phase == TRAIN:            # random offsets
        h_off = Rand(H - crop + 1); w_off = Rand(W - crop + 1)
    elif crop_size:                             # TEST: the centre
        h_off = (H - crop) // 2;    w_off = (W - crop) // 2
    out = (x[:, h_off:+crop, w_off:+crop] - mean) * scale, flipped if do_mirror

* The mean is ``mean_file`` (a BlobProto of the *full* example size, indexed
  at the crop offset) or ``mean_value`` (one value, or one per channel), never
  both; it is subtracted before scaling.
* Encoded examples are decoded first: as stored, or as 3 channels
  (``force_color``) or 1 channel (``force_gray``).
* Random numbers come from the transformer's own generator, seeded from
  :func:`kaffe.core.random.rng` when the transformer is made (Caffe's
  ``InitRand`` seeds it from ``caffe_rng_rand()``), so a prefetch thread draws
  the same sequence whatever the timing. The draws per example are, in order:
  the mirror coin (if ``mirror``), then h_off and w_off (TRAIN with a crop).

Where Caffe ``CHECK``-fails, this raises a KaffeError naming the layer.
"""
import logging

import numpy as np

from ..core.blob import Blob
from ..core.errors import (KaffeConfigError, KaffeError, KaffeFormatError,
                           KaffeShapeError)
from ..core.random import rng
from ..proto import caffe_pb2
from .datum import datum_to_array

log = logging.getLogger("kaffe")


# The SSD fork's additions to TransformationParameter (see caffe.proto).
SSD_AUGMENTATION_FIELDS = ("resize_param", "noise_param", "emit_constraint",
                           "crop_h", "crop_w", "distort_param", "expand_param")


def child_generator():
    """A new Generator seeded from kaffe's RNG (Caffe's ``caffe_rng_rand()``
    seeding a component's own RNG)."""
    return np.random.default_rng(int(rng().integers(0, 2**63)))


class DataTransformer:
    """Applies a TransformationParameter to examples.

    Args:
        param: the caffe_pb2.TransformationParameter.
        phase: caffe_pb2.TRAIN or TEST (random crops only in TRAIN).
        layer: the layer using it, to name in errors (optional).

    Attributes:
        mean: the mean_file values as a float32 (C, H, W) array, or None.
        mean_values: the mean_value list (may be empty).
    """

    def __init__(self, param, phase=caffe_pb2.TEST, *, layer=None):
        self.param = param
        self.phase = phase
        self.layer = layer
        self.mean = None
        self.mean_values = list(param.mean_value)
        self._warned_force = False
        for name in SSD_AUGMENTATION_FIELDS:
            if param.HasField(name):
                raise self.error(
                    KaffeConfigError, "is SSD's training-time augmentation, "
                    "which kaffe does not implement (training SSD is out of "
                    "scope)", field=f"transform_param.{name}",
                    fix="remove it to run the net as Caffe's plain "
                        "transformer would")
        if param.HasField("mean_file"):
            if self.mean_values:
                raise self.error(
                    KaffeConfigError, "cannot be combined with mean_value",
                    field="transform_param.mean_file",
                    received=f"mean_file and {len(self.mean_values)} "
                             f"mean_value(s)",
                    fix="keep either mean_file or mean_value")
            self.mean = self._load_mean(param.mean_file)
        self.generator = None
        self.init_rand()

    # -- set-up ------------------------------------------------------------
    def _load_mean(self, path):
        from ..proto.io import read_blobproto
        log.info("Loading mean file from: %s", path)
        try:
            proto = read_blobproto(path)
            blob = Blob(dtype=np.float32)
            blob.from_proto(proto)
            shape = (blob.channels, blob.height, blob.width)
        except KaffeError as e:
            raise self.error(KaffeFormatError, f"cannot be used: {e}",
                             field="transform_param.mean_file",
                             received=path) from None
        data = blob.data.ravel()
        size = shape[0] * shape[1] * shape[2]
        if data.size < size or size == 0:
            raise self.error(KaffeFormatError,
                             f"holds {data.size} values for a "
                             f"{'×'.join(map(str, shape))} mean",
                             field="transform_param.mean_file",
                             received=path)
        return data[:size].reshape(shape)

    def init_rand(self):
        """(Re)seed the generator from kaffe's RNG when the options need one
        (``mirror``, or a crop in TRAIN), as Caffe's ``InitRand``."""
        p = self.param
        needs_rand = p.mirror or (self.phase == caffe_pb2.TRAIN
                                  and p.crop_size)
        self.generator = child_generator() if needs_rand else None

    def rand(self, n):
        """Caffe's ``Rand(n)``: a random int in [0, n)."""
        return int(self.generator.integers(n))

    def error(self, cls, problem, field=None, **details):
        """A ``cls`` error located at the layer (when there is one)."""
        if self.layer is not None:
            return self.layer._error(cls, problem, field, details)
        return cls(problem, field=field, **details)

    # -- reading examples --------------------------------------------------
    @property
    def decode_mode(self):
        """How encoded examples are decoded: native, color or gray."""
        p = self.param
        if p.force_color and p.force_gray:
            raise self.error(
                KaffeConfigError, "cannot be set with force_gray",
                field="transform_param.force_color",
                received="force_color: true and force_gray: true",
                fix="keep one of them")
        return "color" if p.force_color else "gray" if p.force_gray \
            else "native"

    def datum_array(self, datum, where=None):
        """A Datum's values as C×H×W, decoded if encoded (uint8 or float32)."""
        if datum.encoded:
            return datum_to_array(datum, self.decode_mode, where=where)
        if (self.param.force_color or self.param.force_gray) \
                and not self._warned_force:
            log.error("force_color and force_gray only for encoded datum")
            self._warned_force = True
        return datum_to_array(datum, where=where)

    def infer_shape(self, array, where=None):
        """The (1, C, H, W) shape ``transform`` makes of a C×H×W example."""
        crop = self.param.crop_size
        channels, height, width = array.shape
        self._check_example(channels, height, width, where)
        return (1, channels, crop or height, crop or width)

    def _check_example(self, channels, height, width, where):
        crop = self.param.crop_size
        if channels <= 0:
            raise self.error(KaffeShapeError,
                             f"{where or 'an example'} has no channels",
                             received=channels, expected="channels > 0")
        if height < crop or width < crop:
            raise self.error(
                KaffeShapeError,
                f"is larger than {where or 'the example'}",
                field="transform_param.crop_size", received=crop,
                expected=f"at most the example's height {height} and "
                         f"width {width}")

    # -- transforming ------------------------------------------------------
    def transform(self, array, out, where=None):
        """Transform one C×H×W example into ``out`` (C, h, w), in place.

        ``out``'s shape must be the example's, or crop×crop with a crop: a
        batch is shaped by its first example and the others must fit it.
        """
        p = self.param
        channels, height, width = array.shape
        out_channels, out_height, out_width = out.shape
        crop = p.crop_size
        if (out_channels != channels or out_height > height
                or out_width > width
                or (crop and (out_height, out_width) != (crop, crop))
                or (not crop and (out_height, out_width) != (height, width))):
            raise self.error(
                KaffeShapeError,
                f"{where or 'an example'} does not fit the batch, which its "
                f"first example shaped",
                received=f"{channels}×{height}×{width}",
                expected=f"{out_channels}×{out_height}×{out_width}" + (
                    "" if crop else " (the same size as the first example)"),
                fix="make every example the same size (convert_imageset "
                    "--resize_height/--resize_width), or set "
                    "transform_param.crop_size")
        self._check_example(channels, height, width, where)
        dtype = out.dtype.type
        mean = None
        if self.mean is not None:
            if self.mean.shape != (channels, height, width):
                raise self.error(
                    KaffeShapeError,
                    "does not have the size of the examples",
                    field="transform_param.mean_file",
                    received="×".join(map(str, self.mean.shape)),
                    expected=f"{channels}×{height}×{width} (the full, "
                             f"uncropped example)",
                    fix="compute the mean on the same data (kaffe "
                        "compute_image_mean), or use mean_value")
            mean = self.mean
        elif self.mean_values:
            if len(self.mean_values) not in (1, channels):
                raise self.error(
                    KaffeConfigError,
                    "must be given once or once per channel",
                    field="transform_param.mean_value",
                    received=f"{len(self.mean_values)} values",
                    expected=f"1 or {channels}")
            values = self.mean_values * (channels if len(self.mean_values)
                                         == 1 else 1)
            mean = np.asarray(values, dtype=out.dtype)[:, None, None]

        do_mirror = bool(p.mirror and self.rand(2))
        h_off = w_off = 0
        if crop:
            if self.phase == caffe_pb2.TRAIN:
                h_off = self.rand(height - crop + 1)
                w_off = self.rand(width - crop + 1)
            else:
                h_off = (height - crop) // 2
                w_off = (width - crop) // 2
        rows = slice(h_off, h_off + out_height)
        cols = slice(w_off, w_off + out_width)
        values = array[:, rows, cols].astype(out.dtype)
        if mean is not None:
            if mean.shape[1] > 1:
                mean = mean[:, rows, cols]
            values = values - mean.astype(out.dtype)
        values = values * dtype(p.scale)
        out[...] = values[:, :, ::-1] if do_mirror else values
