"""HDF5Data: datasets named after the tops, rows in order across files,
looping, seeded shuffling, and the errors Caffe checks."""
import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeFormatError
from kaffe.core.random import set_random_seed
from kaffe.testing.gradient import empty_blobs, make_layer

h5py = pytest.importorskip("h5py", reason="h5py (kaffe[data]) not installed")


def write_h5(path, **datasets):
    with h5py.File(path, "w") as f:
        for name, value in datasets.items():
            f.create_dataset(name, data=value)
    return str(path)


def source_of(tmp_path, *files):
    listing = tmp_path / "files.txt"
    listing.write_text("\n".join(files) + "\n")
    return str(listing)


def hdf5_data(source, params="batch_size: 2", tops=("data", "label"),
              extra=""):
    top_text = " ".join(f'top: "{t}"' for t in tops)
    layer = make_layer(f'name: "h5" type: "HDF5Data" {top_text} '
                       f'hdf5_data_param {{ source: "{source}" {params} }} '
                       f'{extra}')
    top = empty_blobs(len(tops))
    layer.SetUp([], top)
    return layer, top


@pytest.fixture
def two_files(tmp_path):
    a = write_h5(tmp_path / "a.h5",
                 data=np.arange(3 * 2 * 2, dtype=np.float32).reshape(3, 2, 2),
                 label=np.array([0, 1, 2], dtype=np.int32))
    b = write_h5(tmp_path / "b.h5",
                 data=100 + np.arange(2 * 2 * 2, dtype=np.float64).reshape(
                     2, 2, 2),
                 label=np.array([3, 4], dtype=np.int32))
    return source_of(tmp_path, a, b)


def test_rows_in_order_across_files_and_looping(two_files):
    layer, top = hdf5_data(two_files)
    assert top[0].shape == (2, 2, 2) and top[1].shape == (2,)
    labels = []
    for _ in range(4):
        layer.Forward([], top)
        labels.extend(top[1].data.tolist())
    assert labels == [0, 1, 2, 3, 4, 0, 1, 2]
    np.testing.assert_array_equal(top[0].data[1],
                                  np.arange(8, 12).reshape(2, 2))


def test_shuffle_is_seeded_and_a_permutation(two_files):
    def labels(seed):
        set_random_seed(seed)
        layer, top = hdf5_data(two_files, "batch_size: 5 shuffle: true")
        out = []
        for _ in range(2):
            layer.Forward([], top)
            out.extend(top[1].data.tolist())
        return out

    first = labels(3)
    assert first == labels(3)
    assert sorted(first[:5]) == sorted(first[5:]) == [0, 1, 2, 3, 4]
    # Rows of a file stay together: files are shuffled, then their rows.
    assert set(first[:3]) in ({0, 1, 2}, {3, 4, first[2]})


def test_one_top(tmp_path):
    f = write_h5(tmp_path / "x.h5", values=np.ones((4, 3)))
    layer, top = hdf5_data(source_of(tmp_path, f), "batch_size: 4",
                           tops=("values",))
    layer.Forward([], top)
    assert top[0].shape == (4, 3) and top[0].data.sum() == 12


def test_transform_param_is_refused(two_files):
    with pytest.raises(KaffeConfigError, match="does not transform"):
        hdf5_data(two_files, extra="transform_param { scale: 2 }")


def test_errors(tmp_path):
    with pytest.raises(KaffeFormatError, match="not found"):
        hdf5_data(str(tmp_path / "nothing.txt"))
    with pytest.raises(KaffeConfigError, match="lists no HDF5"):
        hdf5_data(source_of(tmp_path, ""))
    f = write_h5(tmp_path / "x.h5", data=np.ones((2, 1)),
                 label=np.ones(3))
    with pytest.raises(KaffeFormatError, match="has 3 rows"):
        hdf5_data(source_of(tmp_path, f))
    g = write_h5(tmp_path / "y.h5", data=np.ones((2, 1)))
    with pytest.raises(KaffeFormatError) as info:
        hdf5_data(source_of(tmp_path, g))
    assert "no dataset 'label'" in str(info.value)
    assert "files.txt:1" in str(info.value)
    with pytest.raises(KaffeFormatError, match="cannot be opened"):
        hdf5_data(source_of(tmp_path, str(tmp_path / "missing.h5")))
    with pytest.raises(KaffeConfigError, match="batch_size"):
        hdf5_data(source_of(tmp_path, g), "batch_size: 0")


def test_missing_h5py_says_what_to_install(tmp_path, monkeypatch):
    f = write_h5(tmp_path / "x.h5", data=np.ones((2, 1)))
    source = source_of(tmp_path, f)
    monkeypatch.setitem(__import__("sys").modules, "h5py", None)
    with pytest.raises(KaffeConfigError, match=r"kaffe\[data\]"):
        hdf5_data(source, tops=("data",))
