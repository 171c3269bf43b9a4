"""MemoryData: batches taken from arrays the caller hands over."""
import logging

import numpy as np

from ...core.errors import KaffeError
from ...core.layer import Layer
from ...core.registry import register_layer
from ...data.transformer import DataTransformer
from .base_data import located

log = logging.getLogger("kaffe")


@register_layer("MemoryData")
class MemoryDataLayer(Layer):
    """Serves batch_size rows at a time from arrays set by the caller.

    Reads memory_data_param: batch_size, channels, height, width (all > 0).
    Feed it with :meth:`set_input_arrays` (pycaffe's
    ``net.set_input_arrays(data, labels)``; the arrays are used as given,
    *without* transform_param, as Caffe's ``Reset``), or with
    :meth:`add_datum_vector` / :meth:`add_mat_vector` (Caffe's C++ API), which
    apply transform_param. Each forward serves the next batch_size rows and
    wraps around at the end.

    Tops: data (batch_size, channels, height, width); label (batch_size,)
    after setup, then (batch_size, 1, 1, 1) from the first forward on, as
    Caffe reshapes it. Backward does nothing (no bottoms).
    """

    exact_num_bottom_blobs = 0
    exact_num_top_blobs = 2

    def setup(self, bottom, top):
        p = self.layer_param.memory_data_param
        self.batch_size = p.batch_size
        self.channels, self.height, self.width = p.channels, p.height, p.width
        for field in ("batch_size", "channels", "height", "width"):
            if getattr(p, field) <= 0:
                raise self.config_error(
                    "must be specified and positive",
                    field=f"memory_data_param.{field}",
                    received=getattr(p, field),
                    fix="set batch_size, channels, height and width")
        self.transformer = DataTransformer(self.layer_param.transform_param,
                                           self.phase, layer=self)
        top[0].reshape((self.batch_size, self.channels, self.height,
                        self.width))
        top[1].reshape((self.batch_size,))
        self.data = None
        self.labels = None
        self.n = 0
        self.pos = 0
        self.has_new_data = False

    # -- feeding -----------------------------------------------------------
    def set_input_arrays(self, data, labels):
        """pycaffe's ``Net.set_input_arrays``: serve ``data`` and ``labels``.

        Args:
            data: float32, C-contiguous, (N, channels, height, width).
            labels: float32, (N,) or (N, 1, 1, 1).

        N must be a multiple of batch_size. The arrays are kept, not copied:
        changing them later changes what forward serves.
        """
        if isinstance(labels, np.ndarray) and labels.ndim == 1:
            labels = np.ascontiguousarray(labels[:, None, None, None])
        self._check_array(data, "data array",
                          (self.channels, self.height, self.width))
        self._check_array(labels, "labels array", (1, 1, 1))
        if data.shape[0] != labels.shape[0]:
            raise self.shape_error(
                "data and labels must have the same first dimension",
                received=f"{data.shape[0]} and {labels.shape[0]}")
        if data.shape[0] % self.batch_size:
            raise self.shape_error(
                "first dimensions of input arrays must be a multiple of "
                "batch size", received=data.shape[0],
                expected=f"a multiple of {self.batch_size}")
        self.reset(data, labels.reshape(-1), data.shape[0])

    def _check_array(self, array, name, trailing):
        if not isinstance(array, np.ndarray):
            raise self.shape_error(f"{name} must be a NumPy array",
                                   received=type(array).__name__)
        if not array.flags.c_contiguous:
            raise self.shape_error(f"{name} must be C contiguous",
                                   fix="pass np.ascontiguousarray(array)")
        if array.ndim != 4:
            raise self.shape_error(f"{name} must be 4-d",
                                   received=array.shape)
        if array.dtype != np.float32:
            raise self.shape_error(f"{name} must be float32",
                                   received=str(array.dtype),
                                   fix="pass array.astype(np.float32)")
        for axis, what in zip((1, 2, 3), ("number of channels", "height",
                                          "width")):
            if array.shape[axis] != trailing[axis - 1]:
                raise self.shape_error(
                    f"{name} has wrong {what}", received=array.shape,
                    expected=f"(N, {', '.join(map(str, trailing))})")

    def reset(self, data, labels, n):
        """Caffe's ``Reset``: serve the first ``n`` rows of ``data``/``labels``
        (no transformation)."""
        if n % self.batch_size:
            raise self.shape_error("n must be a multiple of batch size",
                                   received=n,
                                   expected=f"a multiple of {self.batch_size}")
        if self.layer_param.HasField("transform_param"):
            log.warning("%s does not transform array data on Reset()",
                        self.type)
        self.data = np.asarray(data).reshape(-1, self.channels, self.height,
                                             self.width)
        self.labels = np.asarray(labels).reshape(-1)
        self.n = n
        self.pos = 0

    def add_datum_vector(self, datums):
        """Caffe's ``AddDatumVector``: transform Datums and serve them."""
        try:
            arrays = [self.transformer.datum_array(d, f"datum {i}")
                      for i, d in enumerate(datums)]
        except KaffeError as e:
            raise located(self, e) from None
        self._add(arrays, [d.label for d in datums], "datum")

    def add_mat_vector(self, images, labels):
        """Caffe's ``AddMatVector``: transform H×W×C uint8 images (OpenCV
        layout, BGR) and serve them with ``labels``."""
        arrays = []
        for i, image in enumerate(images):
            image = np.asarray(image)
            if image.ndim == 2:
                image = image[..., None]
            if image.dtype != np.uint8:
                raise self.shape_error(
                    f"image {i} must be uint8 (Caffe's CV_8U)",
                    received=str(image.dtype))
            arrays.append(image.transpose(2, 0, 1))
        self._add(arrays, list(labels), "mat")

    def _add(self, arrays, labels, what):
        if self.has_new_data:
            raise self.config_error(
                f"cannot add {what}s until the current data has been "
                f"consumed",
                fix="run forward until the added rows have all been served")
        num = len(arrays)
        if num == 0:
            raise self.config_error(f"there is no {what} to add",
                                    received=0, expected="at least one")
        if num % self.batch_size:
            raise self.shape_error(
                "the added data must be a multiple of the batch size",
                received=num, expected=f"a multiple of {self.batch_size}")
        if len(labels) != num:
            raise self.shape_error(f"needs one label per {what}",
                                   received=f"{len(labels)} labels for "
                                            f"{num} {what}s")
        data = np.zeros((num, self.channels, self.height, self.width),
                        dtype=self.dtype)
        try:
            for i, array in enumerate(arrays):
                self.transformer.transform(array, data[i], f"{what} {i}")
        except KaffeError as e:
            raise located(self, e) from None
        self.reset(data, np.asarray(labels, dtype=self.dtype), num)
        self.has_new_data = True

    def set_batch_size(self, new_size):
        """Caffe's ``set_batch_size`` (only between fed data)."""
        if self.has_new_data:
            raise self.config_error(
                "cannot change batch_size until the current data has been "
                "consumed")
        self.batch_size = new_size

    # -- running -----------------------------------------------------------
    def reshape(self, bottom, top):
        """Forward sets the shapes."""

    def forward(self, bottom, top):
        if self.data is None:
            raise self.config_error(
                "has no data: MemoryData needs to be fed before forward",
                fix="call net.set_input_arrays(data, labels) (or the "
                    "layer's set_input_arrays) first")
        b = self.batch_size
        top[0].reshape((b, self.channels, self.height, self.width))
        top[1].reshape((b, 1, 1, 1))
        top[0].data[...] = self.data[self.pos:self.pos + b]
        top[1].data[...] = self.labels[self.pos:self.pos + b].reshape(
            b, 1, 1, 1)
        self.pos = (self.pos + b) % self.n
        if self.pos == 0:
            self.has_new_data = False

    def backward(self, top, propagate_down, bottom):
        """No bottoms: nothing to propagate."""
