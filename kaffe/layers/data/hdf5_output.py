"""HDF5Output: writes its two bottoms to an HDF5 file as "data" and "label"."""
import logging

import numpy as np

from ...core.registry import register_layer
from ...core.layer import Layer
from .hdf5_data import h5py_module

log = logging.getLogger("kaffe")

DATA_DATASET = "data"
LABEL_DATASET = "label"


@register_layer("HDF5Output")
class HDF5OutputLayer(Layer):
    """Saves bottom 0 as dataset "data" and bottom 1 as "label".

    Reads hdf5_output_param.file_name. As in Caffe the file is created
    (truncated) at setup, and every forward writes both bottoms in the legacy
    4-D layout (num, channels, height, width), in the net's float type.

    Caffe writes the datasets once and aborts on a second forward (they exist
    already); kaffe instead replaces them, so the file holds the last batch.

    Bottoms: data (N, ...) and label (N, ...), at most 4 axes each. No tops.
    Backward does nothing.
    """

    exact_num_bottom_blobs = 2
    exact_num_top_blobs = 0

    def setup(self, bottom, top):
        h5py = h5py_module()
        self.file_name = self.layer_param.hdf5_output_param.file_name
        if not self.file_name:
            raise self.config_error("is not set",
                                    field="hdf5_output_param.file_name",
                                    fix="name the .h5 file to write")
        try:
            with h5py.File(self.file_name, "w"):
                pass
        except OSError as e:
            raise self.config_error(
                f"cannot be created ({e})",
                field="hdf5_output_param.file_name", received=self.file_name,
                fix="check that the directory exists and is writable") \
                from None

    def reshape(self, bottom, top):
        """No tops."""

    def forward(self, bottom, top):
        data, label = bottom
        if data.num_axes > 4 or label.num_axes > 4:
            raise self.shape_error(
                "takes bottoms of at most 4 axes (Caffe writes the legacy "
                "num/channels/height/width shape)", field="bottom",
                received=f"{data.shape} and {label.shape}")
        if data.num != label.num:
            raise self.shape_error(
                "data blob and label blob must have the same batch size",
                field="bottom", received=f"{data.num} and {label.num}")
        h5py = h5py_module()
        log.info("Saving HDF5 file %s", self.file_name)
        with h5py.File(self.file_name, "a") as f:
            for name, blob in ((DATA_DATASET, data), (LABEL_DATASET, label)):
                shape = (blob.num, blob.channels, blob.height, blob.width)
                if name in f:
                    del f[name]
                f.create_dataset(name, data=np.asarray(
                    blob.data, dtype=self.dtype).reshape(shape))
        log.info("Successfully saved %d rows", data.num)

    def backward(self, top, propagate_down, bottom):
        """Nothing to propagate: the bottoms are only written out."""
