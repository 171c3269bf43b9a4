"""HDF5Data: batches of rows from the HDF5 files a source list names."""
import logging

import numpy as np

from ...core.errors import KaffeError, KaffeFormatError
from ...core.layer import Layer
from ...core.registry import register_layer
from ...data.transformer import child_generator
from ...parallel.context import data_shard, next_kept
from .base_data import located
from ...optional import require

log = logging.getLogger("kaffe")


def h5py_module():
    """The h5py module, or a KaffeError saying how to install it."""
    return require("h5py", "HDF5Data/HDF5Output", extra="data")


def read_file_list(source):
    """The whitespace-separated file names of an HDF5Data source, each with
    its 1-based line, as Caffe reads them (``source_file >> line``)."""
    try:
        with open(source, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except FileNotFoundError:
        raise KaffeFormatError(
            "list of HDF5 files not found", file=source,
            fix="check hdf5_data_param.source (relative paths are relative "
                "to the current directory)") from None
    except OSError as e:
        raise KaffeFormatError(f"cannot read the list of HDF5 files "
                               f"({e.strerror})", file=source) from None
    return [(name, number)
            for number, line in enumerate(text.split("\n"), start=1)
            for name in line.split()]


@register_layer("HDF5Data")
class HDF5DataLayer(Layer):
    """Reads rows of the datasets named after its tops, file after file.

    Reads hdf5_data_param: source (a text file listing .h5 files, separated
    by whitespace, relative to the current directory as in Caffe),
    batch_size, shuffle (the file order at setup and after each pass over
    the files, and the rows of a file each time it is (re)entered, as
    Caffe does). Each top names a dataset; dimension 0 counts the rows, and
    every top's dataset must have as many rows. Float or integer datasets are
    read as the net's float type. ``transform_param`` is refused: HDF5 data is
    used as it is.

    Tops: one per dataset, shape (batch_size, *dataset.shape[1:]) — the
    trailing dimensions come from the first file and later files must agree.
    Backward does nothing (no bottoms).

    With several solvers a TRAIN-phase layer uses every N-th row (from row
    ``solver_rank`` on, counted across files and passes), as Caffe 1.0's
    HDF5Data ``Skip`` does.

    Unlike Caffe's, this layer also checks that a later file's datasets have
    the first file's row shape (Caffe would read past the rows).
    """

    exact_num_bottom_blobs = 0
    min_top_blobs = 1

    def setup(self, bottom, top):
        if self.layer_param.HasField("transform_param"):
            raise self.config_error(
                "is not supported: HDF5Data does not transform data",
                field="transform_param",
                fix="preprocess the data when writing the HDF5 files, or "
                    "use a Scale/Bias layer")
        p = self.layer_param.hdf5_data_param
        if p.batch_size <= 0:
            raise self.config_error("must be > 0",
                                    field="hdf5_data_param.batch_size",
                                    received=p.batch_size)
        if not p.source:
            raise self.config_error("is not set",
                                    field="hdf5_data_param.source",
                                    fix="name a text file listing .h5 files")
        log.info("Loading list of HDF5 filenames from: %s", p.source)
        try:
            self.files = read_file_list(p.source)
        except KaffeError as e:
            raise located(self, e, "hdf5_data_param.source") from None
        log.info("Number of HDF5 files: %d", len(self.files))
        if not self.files:
            raise self.config_error(
                "lists no HDF5 files", field="hdf5_data_param.source",
                received=p.source,
                fix="list at least one .h5 file, one per line")
        self.shuffle_generator = child_generator() if p.shuffle else None
        self.file_permutation = np.arange(len(self.files))
        if p.shuffle:
            self.shuffle_generator.shuffle(self.file_permutation)
        self.current_file = 0
        self.row_shapes = None
        self._load(self.file_permutation[0])
        self.current_row = 0
        self.shard = data_shard(self.phase, p.batch_size)
        self.offset = 0
        for blob, array in zip(top, self.arrays):
            blob.reshape((p.batch_size,) + array.shape[1:])

    def _load(self, index):
        """Read every top's dataset from file ``index`` (Caffe's
        LoadHDF5FileData)."""
        h5py = h5py_module()
        name, line = self.files[index]
        source = self.layer_param.hdf5_data_param.source
        log.debug("Loading HDF5 file: %s", name)

        def error(problem, **kw):
            return located(self, KaffeFormatError(
                f"file '{name}' {problem}", file=source, line=line, **kw))

        try:
            f = h5py.File(name, "r")
        except OSError as e:
            raise error(f"cannot be opened as HDF5 ({e})",
                        fix="check the path (relative to the current "
                            "directory) and that it is an HDF5 file") \
                from None
        arrays = []
        with f:
            for top_name in self.layer_param.top:
                dataset = f.get(top_name)
                if not isinstance(dataset, h5py.Dataset):
                    raise error(f"has no dataset '{top_name}'",
                                expected="a dataset named after each top "
                                         "(" + ", ".join(
                                             self.layer_param.top) + ")")
                if dataset.ndim < 1:
                    raise error(f"dataset '{top_name}' is a scalar",
                                expected="at least 1 axis (rows first)")
                if dataset.dtype.kind not in "fiu":
                    raise error(f"dataset '{top_name}' has the unsupported "
                                f"type {dataset.dtype}",
                                expected="float or integer values")
                arrays.append(np.asarray(dataset[()], dtype=self.dtype))
        rows = arrays[0].shape[0]
        for top_name, array in zip(self.layer_param.top, arrays):
            if array.shape[0] != rows:
                raise error(
                    f"dataset '{top_name}' has {array.shape[0]} rows, "
                    f"'{self.layer_param.top[0]}' has {rows}",
                    expected="the same number of rows in every dataset")
        shapes = [a.shape[1:] for a in arrays]
        if self.row_shapes is not None and shapes != self.row_shapes:
            raise error(
                "has rows of another shape than the first file's",
                received=", ".join(str(s) for s in shapes),
                expected=", ".join(str(s) for s in self.row_shapes))
        self.row_shapes = shapes
        self.arrays = arrays
        self.data_permutation = np.arange(rows)
        if self.shuffle_generator is not None:
            self.shuffle_generator.shuffle(self.data_permutation)
        if rows == 0:
            raise error("has no rows", expected="at least one row")

    def _next(self):
        """Advance one row, moving on to the next file at the end of one."""
        self.current_row += 1
        if self.current_row == self.arrays[0].shape[0]:
            if len(self.files) > 1:
                self.current_file += 1
                if self.current_file == len(self.files):
                    self.current_file = 0
                    if self.shuffle_generator is not None:
                        self.shuffle_generator.shuffle(self.file_permutation)
                    log.debug("Looping around to first file.")
                self._load(self.file_permutation[self.current_file])
            self.current_row = 0
            if self.shuffle_generator is not None:
                self.shuffle_generator.shuffle(self.data_permutation)

    def reshape(self, bottom, top):
        """Shapes are fixed at setup."""

    def forward(self, bottom, top):
        batch_size = self.layer_param.hdf5_data_param.batch_size
        for i in range(batch_size):
            self.offset = next_kept(self.shard, self.offset, self._next)
            row = self.data_permutation[self.current_row]
            for blob, array in zip(top, self.arrays):
                blob.data[i] = array[row]
            self._next()
            self.offset += 1

    def backward(self, top, propagate_down, bottom):
        """No bottoms: nothing to propagate."""
