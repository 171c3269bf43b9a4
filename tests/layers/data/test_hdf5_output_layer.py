"""HDF5Output: the two bottoms written as "data" and "label" (4-D)."""
import numpy as np
import pytest

from kaffe.core.errors import KaffeShapeError
from kaffe.testing.gradient import blobs_from, make_layer

h5py = pytest.importorskip("h5py", reason="h5py (kaffe[data]) not installed")


def hdf5_output(path, bottoms):
    layer = make_layer(f'name: "out" type: "HDF5Output" bottom: "data" '
                       f'bottom: "label" hdf5_output_param {{ '
                       f'file_name: "{path}" }}', dtype=np.float32)
    bottom = blobs_from(bottoms, np.float32)
    layer.SetUp(bottom, [])
    return layer, bottom


def test_writes_data_and_label(tmp_path):
    path = tmp_path / "out.h5"
    data = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    label = np.array([5, 6], dtype=np.float32)
    layer, bottom = hdf5_output(path, [data, label])
    with h5py.File(path, "r") as f:       # created at setup, empty
        assert list(f) == []
    layer.Forward(bottom, [])
    with h5py.File(path, "r") as f:
        assert f["data"].shape == (2, 3, 4, 1)       # legacy 4-D
        assert f["label"].shape == (2, 1, 1, 1)
        assert f["data"].dtype == np.float32
        np.testing.assert_array_equal(f["data"][()].reshape(2, 3, 4), data)
        np.testing.assert_array_equal(f["label"][()].ravel(), label)
    # A second forward replaces the datasets (Caffe would abort here).
    bottom[1].data[...] = [7, 8]
    layer.Forward(bottom, [])
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["label"][()].ravel(), [7, 8])
    layer.Backward([], [False, False], bottom)


def test_batch_sizes_must_match(tmp_path):
    layer, bottom = hdf5_output(tmp_path / "o.h5",
                                [np.zeros((2, 3)), np.zeros(3)])
    with pytest.raises(KaffeShapeError, match="same batch size"):
        layer.Forward(bottom, [])
