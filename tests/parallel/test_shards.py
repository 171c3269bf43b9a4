"""Which records each worker's data layers read (no MPI needed): Caffe 1.0's
every-N-th record in TRAIN, whole batches under sharded inference, nothing
skipped in TEST otherwise."""
import contextlib

import numpy as np
import pytest

import kaffe
from kaffe.core.errors import KaffeConfigError
from kaffe.parallel import context
from kaffe.proto import caffe_pb2
from kaffe.testing.gradient import empty_blobs, make_layer

TRAIN, TEST = caffe_pb2.TRAIN, caffe_pb2.TEST


@contextlib.contextmanager
def workers(count, rank, inference=False):
    kaffe.set_solver_count(count)
    kaffe.set_solver_rank(rank)
    context.set_inference_sharding(inference)
    try:
        yield
    finally:
        kaffe.set_solver_count(1)
        kaffe.set_solver_rank(0)
        context.set_inference_sharding(False)


def layer_of(text, phase, n_top=2):
    layer = make_layer(text, phase, dtype=np.float32)
    top = empty_blobs(n_top, np.float32)
    layer.SetUp([], top)
    return layer, top


def labels(layer, top, batches):
    out = []
    for _ in range(batches):
        layer.Forward([], top)
        out.append(top[1].data.astype(int).tolist())
    if hasattr(layer, "close"):
        layer.close()
    return out


def test_shard_rules():
    assert context.data_shard(TRAIN, 4) is None          # one worker
    with workers(3, 1):
        shard = context.data_shard(TRAIN, 4)
        assert [o for o in range(9) if shard.keeps(o)] == [1, 4, 7]
        assert context.data_shard(TEST, 4) is None       # Caffe: TEST reads all
    with workers(2, 1, inference=True):
        shard = context.data_shard(TEST, 3)
        assert [o for o in range(12) if shard.keeps(o)] == [3, 4, 5, 9, 10,
                                                            11]
    with workers(2, 2):
        with pytest.raises(KaffeConfigError, match="solver_rank"):
            context.data_shard(TRAIN, 1)
    with pytest.raises(KaffeConfigError, match="at least 1"):
        kaffe.set_solver_count(0)


def test_root_solver_and_counters():
    with workers(2, 1):
        assert not context.root_solver()
        assert kaffe.solver_count() == 2 and kaffe.solver_rank() == 1
    assert context.root_solver()


@pytest.fixture
def lmdb_source(tmp_path):
    pytest.importorskip("lmdb", reason="lmdb (kaffe[data]) not installed")
    from kaffe.data.datum import array_to_datum
    from kaffe.data.db import BatchWriter
    with BatchWriter(str(tmp_path / "db"), "lmdb") as writer:
        for i in range(5):
            writer.put(b"%08d" % i, array_to_datum(
                np.full((1, 2, 2), i, np.uint8), label=10 + i)
                .SerializeToString())
    return str(tmp_path / "db")


def data_layer(source, phase):
    return layer_of(f'name: "d" type: "Data" top: "data" top: "label" '
                    f'data_param {{ source: "{source}" backend: LMDB '
                    f'batch_size: 2 }}', phase)


def test_data_reads_every_nth_record_across_restarts(lmdb_source):
    with workers(2, 1):
        # offsets 1, 3 | 5, 7 | 9, 11 of 5 records: 1, 3 | 0, 2 | 4, 1
        assert labels(*data_layer(lmdb_source, TRAIN), 3) == [
            [11, 13], [10, 12], [14, 11]]
        assert labels(*data_layer(lmdb_source, TEST), 2) == [
            [10, 11], [12, 13]]
    with workers(2, 0):
        assert labels(*data_layer(lmdb_source, TRAIN), 2) == [
            [10, 12], [14, 11]]


def test_data_inference_shard_is_whole_batches(lmdb_source):
    with workers(2, 1, inference=True):
        # batches 1 and 3 of a one-worker run: records 2, 3 and 6, 7 → 1, 2
        assert labels(*data_layer(lmdb_source, TEST), 2) == [
            [12, 13], [11, 12]]


def test_image_data_every_nth_line(tmp_path):
    Image = pytest.importorskip("PIL.Image", reason="Pillow not installed")
    for i in range(3):
        Image.fromarray(np.full((2, 2, 3), i, np.uint8)).save(
            tmp_path / f"{i}.png")
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{i}.png {5 + i}\n" for i in range(3)))
    text = (f'name: "i" type: "ImageData" top: "data" top: "label" '
            f'image_data_param {{ source: "{listing}" root_folder: '
            f'"{tmp_path}/" batch_size: 2 }}')
    with workers(2, 1):
        # offsets 1, 3 | 5, 7 of 3 lines: 1, 0 | 2, 1
        assert labels(*layer_of(text, TRAIN), 2) == [[6, 5], [7, 6]]


def test_hdf5_data_every_nth_row_across_files(tmp_path):
    h5py = pytest.importorskip("h5py", reason="h5py not installed")
    names = []
    for name, rows in (("a.h5", [0, 1, 2]), ("b.h5", [3, 4])):
        with h5py.File(tmp_path / name, "w") as f:
            f.create_dataset("data", data=np.zeros((len(rows), 1),
                                                   np.float32))
            f.create_dataset("label", data=np.array(rows, np.float32))
        names.append(str(tmp_path / name))
    listing = tmp_path / "files.txt"
    listing.write_text("\n".join(names) + "\n")
    text = (f'name: "h" type: "HDF5Data" top: "data" top: "label" '
            f'hdf5_data_param {{ source: "{listing}" batch_size: 2 }}')
    with workers(2, 0):
        # offsets 0, 2 | 4, 6 of rows 0 … 4: 0, 2 | 4, 1
        assert labels(*layer_of(text, TRAIN), 2) == [[0, 2], [4, 1]]


def test_window_data_draws_from_its_share(tmp_path):
    Image = pytest.importorskip("PIL.Image", reason="Pillow not installed")
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "im.png")
    windows = tmp_path / "windows.txt"
    windows.write_text("# 0\nim.png\n3\n20\n30\n4\n3 0.9 1 1 10 10\n"
                       "4 0.9 2 2 12 12\n7 0.1 0 0 29 19\n7 0.1 0 0 9 9\n")
    text = (f'name: "w" type: "WindowData" top: "data" top: "label" '
            f'window_data_param {{ source: "{windows}" root_folder: '
            f'"{tmp_path}/" batch_size: 4 fg_fraction: 0.5 }} '
            f'transform_param {{ crop_size: 4 }}')
    with workers(2, 1):
        layer, top = layer_of(text, TRAIN)
        assert layer.fg_windows == [[0, 4, np.float32(0.9), 2, 2, 12, 12]]
        assert len(layer.bg_windows) == 1
        assert labels(layer, top, 2) == [[0, 0, 4, 4]] * 2
    with workers(3, 0):
        with pytest.raises(KaffeConfigError, match="fewer fg windows"):
            layer_of(text, TRAIN)


def test_dense_image_data_every_nth_pair(tmp_path):
    Image = pytest.importorskip("PIL.Image", reason="Pillow not installed")
    for i in range(3):
        Image.fromarray(np.full((2, 2, 3), i, np.uint8)).save(
            tmp_path / f"{i}.png")
        Image.fromarray(np.full((2, 2), 5 + i, np.uint8)).save(
            tmp_path / f"{i}_label.png")
    listing = tmp_path / "pairs.txt"
    listing.write_text("".join(f"{i}.png {i}_label.png\n" for i in range(3)))
    text = (f'name: "d" type: "DenseImageData" top: "data" top: "label" '
            f'dense_image_data_param {{ source: "{listing}" root_folder: '
            f'"{tmp_path}/" batch_size: 2 }}')
    with workers(2, 1):
        layer, top = layer_of(text, TRAIN)
        batches = []
        for _ in range(2):
            layer.Forward([], top)
            batches.append(top[1].data[:, 0, 0, 0].astype(int).tolist())
        layer.close()
    # offsets 1, 3 | 5, 7 of 3 pairs: 1, 0 | 2, 1
    assert batches == [[6, 5], [7, 6]]
