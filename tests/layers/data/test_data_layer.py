"""Data: batches from an LMDB/LevelDB in key order, looping, transformed,
prefetched deterministically; errors for missing, empty and odd sources."""
import logging
import time

import numpy as np
import pytest

from kaffe.core.errors import (KaffeConfigError, KaffeFormatError,
                               KaffeShapeError)
from kaffe.core.random import set_random_seed
from kaffe.data.datum import array_to_datum
from kaffe.data.db import BatchWriter
from kaffe.proto import caffe_pb2
from kaffe.testing.gradient import empty_blobs, make_layer

pytest.importorskip("lmdb", reason="lmdb (kaffe[data]) not installed")


def make_db(path, arrays, backend="lmdb", keys=None):
    with BatchWriter(str(path), backend) as writer:
        for i, array in enumerate(arrays):
            key = keys[i] if keys else b"%08d" % i
            writer.put(key, array_to_datum(array, label=10 + i)
                       .SerializeToString())
    return str(path)


def images(n, shape=(2, 3, 4)):
    return [np.full(shape, i, np.uint8) + np.arange(
        np.prod(shape), dtype=np.uint8).reshape(shape) for i in range(n)]


def data_layer(source, params="", transform="", n_top=2,
               phase=caffe_pb2.TEST, backend="LMDB"):
    layer = make_layer(
        f'name: "data" type: "Data" top: "data" top: "label" '
        f'data_param {{ source: "{source}" backend: {backend} {params} }} '
        f'transform_param {{ {transform} }}', phase, dtype=np.float32)
    top = empty_blobs(n_top, np.float32)
    layer.SetUp([], top)
    return layer, top


def test_tops_values_and_key_order_with_looping(tmp_path, caplog):
    arrays = images(5)
    source = make_db(tmp_path / "db", arrays)
    # The thread reads ahead from setup on: capture the log from there.
    with caplog.at_level(logging.INFO, logger="kaffe"):
        layer, top = data_layer(source, "batch_size: 2")
        assert top[0].shape == (2, 2, 3, 4) and top[1].shape == (2,)
        labels = []
        for _ in range(3):
            layer.Forward([], top)
            labels.extend(top[1].data.tolist())
    # 5 records, batches of 2: the 6th item is the first record again.
    assert labels == [10, 11, 12, 13, 14, 10]
    np.testing.assert_array_equal(top[0].data[0], arrays[4])
    np.testing.assert_array_equal(top[0].data[1], arrays[0])
    assert "Restarting data prefetching from start." in caplog.text
    layer.close()


def test_keys_are_read_in_sorted_order(tmp_path):
    arrays = images(3)
    source = make_db(tmp_path / "db", arrays, keys=[b"c", b"a", b"b"])
    layer, top = data_layer(source, "batch_size: 3")
    layer.Forward([], top)
    assert top[1].data.tolist() == [11, 12, 10]
    layer.close()


def test_data_only_top_and_transform(tmp_path):
    source = make_db(tmp_path / "db", images(2))
    layer, top = data_layer(source, "batch_size: 1",
                            "scale: 0.5 mean_value: 1 crop_size: 2", n_top=1)
    assert top[0].shape == (1, 2, 2, 2)
    layer.Forward([], top)
    # TEST crop: h_off = (3 - 2) // 2 = 0, w_off = (4 - 2) // 2 = 1.
    np.testing.assert_array_equal(
        top[0].data[0], (images(1)[0][:, 0:2, 1:3].astype(np.float32) - 1)
        * 0.5)
    layer.close()


def test_leveldb_backend(tmp_path):
    pytest.importorskip("plyvel", reason="plyvel (kaffe[leveldb]) not "
                                         "installed")
    source = make_db(tmp_path / "db", images(3), backend="leveldb")
    layer, top = data_layer(source, "batch_size: 3", backend="LEVELDB")
    layer.Forward([], top)
    assert top[1].data.tolist() == [10, 11, 12]
    layer.close()


def run_seeded(source, seed, delay=0.0):
    set_random_seed(seed)
    layer, top = data_layer(source, "batch_size: 4",
                            "crop_size: 2 mirror: true",
                            phase=caffe_pb2.TRAIN)
    out = []
    for _ in range(5):
        time.sleep(delay)
        layer.Forward([], top)
        out.append(top[0].data.copy())
    layer.close()
    return np.stack(out)


def test_prefetching_is_deterministic_given_the_seed(tmp_path):
    source = make_db(tmp_path / "db", images(7))
    first = run_seeded(source, 11)
    # The consumer's timing does not change what the thread draws.
    np.testing.assert_array_equal(first, run_seeded(source, 11, delay=0.02))
    assert not np.array_equal(first, run_seeded(source, 12))


def test_batches_take_the_shape_of_their_first_datum(tmp_path):
    source = make_db(tmp_path / "db", [np.zeros((1, 2, 2), np.uint8),
                                       np.zeros((1, 3, 3), np.uint8)])
    layer, top = data_layer(source, "batch_size: 1")
    layer.Forward([], top)
    assert top[0].shape == (1, 1, 2, 2)
    layer.Forward([], top)
    assert top[0].shape == (1, 1, 3, 3)
    layer.close()


def test_inconsistent_datum_sizes_in_a_batch(tmp_path):
    source = make_db(tmp_path / "db", [np.zeros((1, 2, 2), np.uint8),
                                       np.zeros((1, 3, 3), np.uint8)])
    layer, top = data_layer(source, "batch_size: 2")
    with pytest.raises(KaffeShapeError) as info:
        layer.Forward([], top)
    message = str(info.value)
    assert "layer 'data' (Data)" in message
    assert "record '00000001'" in message and "does not fit" in message
    layer.close()


def test_missing_source_defaults_to_leveldb(tmp_path):
    with pytest.raises(KaffeFormatError) as info:
        data_layer(str(tmp_path / "nope"), "batch_size: 1",
                   backend="LEVELDB")
    assert info.value.field == "data_param.source"
    assert "backend defaults to LEVELDB" in str(info.value)


def test_empty_db(tmp_path):
    BatchWriter(str(tmp_path / "db"), "lmdb").close()
    with pytest.raises(KaffeConfigError, match="empty lmdb"):
        data_layer(str(tmp_path / "db"), "batch_size: 1")


def test_config_errors(tmp_path):
    source = make_db(tmp_path / "db", images(1))
    with pytest.raises(KaffeConfigError, match="batch_size must be > 0"):
        data_layer(source)
    with pytest.raises(KaffeConfigError, match="prefetch must be at least"):
        data_layer(source, "batch_size: 1 prefetch: 0")
    with pytest.raises(KaffeConfigError, match="top"):
        data_layer(source, "batch_size: 1", n_top=3)


def test_backward_does_nothing(tmp_path):
    source = make_db(tmp_path / "db", images(1))
    layer, top = data_layer(source, "batch_size: 1")
    layer.Backward(top, [], [])
    layer.close()


def test_encoded_datums_are_decoded(tmp_path):
    pytest.importorskip("PIL", reason="Pillow (kaffe[data]) not installed")
    from kaffe.data.image import encode_image
    bgr = np.random.default_rng(0).integers(0, 256, (3, 4, 3), np.uint8)
    datum = caffe_pb2.Datum(data=encode_image(bgr, "png"), label=1,
                            encoded=True)
    with BatchWriter(str(tmp_path / "db"), "lmdb") as writer:
        writer.put(b"0", datum.SerializeToString())
    layer, top = data_layer(str(tmp_path / "db"), "batch_size: 1")
    layer.Forward([], top)
    np.testing.assert_array_equal(top[0].data[0], bgr.transpose(2, 0, 1))
    layer.close()
    layer, top = data_layer(str(tmp_path / "db"), "batch_size: 1",
                            "force_gray: true")
    assert top[0].shape == (1, 1, 3, 4)
    layer.close()
