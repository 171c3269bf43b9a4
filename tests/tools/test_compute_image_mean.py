"""kaffe compute_image_mean: legacy 1×C×H×W BlobProto and the
"mean_value channel [c]" log lines, with float32 sums as Caffe's."""
import numpy as np
import pytest

from kaffe.data.datum import array_to_datum
from kaffe.data.db import BatchWriter
from kaffe.proto import caffe_pb2
from kaffe.proto.io import read_blobproto
from kaffe.tools import cli

pytest.importorskip("lmdb", reason="lmdb (kaffe[data]) not installed")


def make_db(path, arrays):
    with BatchWriter(str(path), "lmdb") as writer:
        for i, array in enumerate(arrays):
            writer.put(b"%08d" % i, array_to_datum(array).SerializeToString())
    return str(path)


def test_mean_of_a_tiny_db(tmp_path, capsys):
    arrays = [np.array([[[0, 10]], [[1, 1]]], np.uint8),
              np.array([[[3, 20]], [[2, 1]]], np.uint8),
              np.array([[[6, 30]], [[3, 2]]], np.uint8)]
    db = make_db(tmp_path / "db", arrays)
    out = str(tmp_path / "mean.binaryproto")
    assert cli.main(["compute_image_mean", db, out, "-backend=lmdb"]) == 0
    mean = read_blobproto(out)
    assert (mean.num, mean.channels, mean.height, mean.width) == (1, 2, 1, 2)
    assert not mean.HasField("shape")
    np.testing.assert_allclose(mean.data, [3, 20, 2, 4 / 3], rtol=1e-7)
    err = capsys.readouterr().err
    assert "mean_value channel [0]: 11.5" in err
    assert "mean_value channel [1]: 1.66667" in err
    assert "Number of channels: 2" in err and "Processed 3 files." in err


def test_float_data_and_no_output_file(tmp_path):
    from kaffe.tools.compute_image_mean import compute_image_mean
    db = make_db(tmp_path / "db", [np.full((1, 2, 2), 0.5, np.float32),
                                   np.full((1, 2, 2), 1.5, np.float32)])
    blob, means = compute_image_mean(db)
    assert list(blob.data) == [1, 1, 1, 1] and means == [1.0]


def test_encoded_records_are_decoded(tmp_path):
    pytest.importorskip("PIL", reason="Pillow not installed")
    from kaffe.data.image import encode_image
    from kaffe.tools.compute_image_mean import compute_image_mean
    image = np.zeros((2, 2, 3), np.uint8)
    image[..., 2] = 90                      # BGR: red
    datum = caffe_pb2.Datum(data=encode_image(image, "png"), encoded=True)
    with BatchWriter(str(tmp_path / "db"), "lmdb") as writer:
        writer.put(b"0", datum.SerializeToString())
    blob, means = compute_image_mean(str(tmp_path / "db"))
    assert blob.channels == 3 and means == [0, 0, 90]


def test_inconsistent_sizes_are_an_error(tmp_path, capsys):
    db = make_db(tmp_path / "db", [np.zeros((1, 2, 2), np.uint8),
                                   np.zeros((1, 3, 3), np.uint8)])
    assert cli.main(["compute_image_mean", db]) == 2
    assert "incorrect data field size" in capsys.readouterr().err
