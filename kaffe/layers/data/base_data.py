"""The base of the prefetching data layers (Data, ImageData, WindowData).

Caffe's ``BaseDataLayer`` + ``BasePrefetchingDataLayer``
(``src/caffe/layers/base_data_layer.cpp``): setup makes the DataTransformer
from ``transform_param``, lets the subclass open its source and shape the
tops, then starts a thread that keeps ``data_param.prefetch`` batches ready
(every prefetching layer reads that field, as in Caffe, so ImageData and
WindowData get its default, 4). Forward hands out the oldest batch; the tops
take its shape, so batches whose first example differs in size reshape them.
"""
import numpy as np

from ...core.errors import KaffeError
from ...core.layer import Layer
from ...data.prefetch import Prefetcher
from ...data.transformer import DataTransformer


class BasePrefetchingDataLayer(Layer):
    """Data layer whose batches are made by ``load_batch`` on a thread.

    Subclasses implement ``data_setup(top)`` (open the source, shape the
    tops) and ``load_batch()`` (return ``(data, label)`` arrays, label None
    without a label top). They must draw random numbers only from generators
    they own (seeded in ``data_setup``) or from ``self.transformer``.

    Attributes:
        transformer: the layer's DataTransformer.
        output_labels: whether there is a label top.
    """

    exact_num_bottom_blobs = 0

    def setup(self, bottom, top):
        self.close()
        self.output_labels = len(top) > 1
        self.transformer = DataTransformer(self.layer_param.transform_param,
                                           self.phase, layer=self)
        depth = self.layer_param.data_param.prefetch
        if depth < 1:
            raise self.config_error(
                "must be at least 1", field="data_param.prefetch",
                received=depth, fix="leave it out (default 4)")
        try:
            self.data_setup(top)
        except BaseException as e:
            self.close()          # what data_setup opened
            if isinstance(e, KaffeError):
                raise located(self, e) from None
            raise
        self.prefetcher = Prefetcher(
            self._load_located, depth,
            name=f"kaffe-prefetch-{self.type}-{self.name}")

    def data_setup(self, top):
        """Open the source and shape the tops (each data layer defines it)."""
        raise TypeError(f"{type(self).__name__} does not define data_setup()")

    def load_batch(self):
        """Read the next batch (on the prefetch thread; each data layer
        defines it)."""
        raise TypeError(f"{type(self).__name__} does not define load_batch()")

    def _load_located(self):
        try:
            return self.load_batch()
        except KaffeError as e:
            raise located(self, e) from None

    def new_batch(self, shape):
        """A zeroed data array of ``shape`` in the layer's dtype."""
        return np.zeros(shape, dtype=self.dtype)

    def reshape(self, bottom, top):
        """The tops take each batch's shape in forward."""

    def forward(self, bottom, top):
        data, label = self.prefetcher.next()
        top[0].reshape(data.shape)
        top[0].data[...] = data
        if self.output_labels:
            top[1].reshape(label.shape)
            top[1].data[...] = label

    def backward(self, top, propagate_down, bottom):
        """No bottoms: nothing to propagate."""

    def close(self):
        """Stop the prefetch thread (also happens when the layer is freed)."""
        prefetcher = getattr(self, "prefetcher", None)
        if prefetcher is not None:
            prefetcher.stop()
            self.prefetcher = None


def located(layer, error, field=None):
    """``error``, a KaffeError, with ``layer``'s name and type added.

    Errors that already name a layer are returned as they are; a file:line
    the error has (a list file's line) is kept, else the layer's own is used.
    """
    if error.layer is not None:
        return error
    if error.file is not None or error.line is not None:
        file, line, column = error.file, error.line, error.column
    else:
        (file, line), column = layer.where(), None
    details = {"expected": error.expected, "fix": error.fix}
    if error.has_received:
        details["received"] = error.received
    return type(error)(error.problem, file=file, line=line, column=column,
                       layer=layer.name, layer_type=layer.type,
                       field=error.field or field, **details)
