"""kaffe convert_mnist_data: IDX (raw or .gz) → Datums under %08d keys."""
import gzip
import pathlib
import struct

import pytest

from kaffe.data.datum import datum_to_array, parse_datum
from kaffe.data.db import open_db
from kaffe.tools import cli

pytest.importorskip("lmdb", reason="lmdb (kaffe[data]) not installed")

MNIST = pathlib.Path(__file__).parents[2] / ".." / "shared" / "data" / "mnist"


def write_idx(path, magic, dims, payload, compress=False):
    data = struct.pack(">I", magic) + b"".join(struct.pack(">I", d)
                                               for d in dims) + payload
    path.write_bytes(gzip.compress(data) if compress else data)
    return str(path)


def records(path):
    db = open_db(path, "lmdb")
    cursor = db.cursor()
    out = []
    while cursor.valid:
        out.append((cursor.key(), parse_datum(cursor.value())))
        cursor.next()
    cursor.close()
    db.close()
    return out


@pytest.mark.parametrize("compress", [False, True])
def test_tiny_synthetic_idx(tmp_path, capsys, compress):
    pixels = bytes(range(3 * 2 * 4))
    images = write_idx(tmp_path / "images", 2051, (3, 2, 4), pixels, compress)
    labels = write_idx(tmp_path / "labels", 2049, (3,), bytes([7, 0, 200]),
                       compress)
    db = str(tmp_path / "db")
    status = cli.main(["convert_mnist_data", images, labels, db,
                       "--backend=lmdb"])
    assert status == 0
    err = capsys.readouterr().err
    assert "A total of 3 items." in err and "Rows: 2 Cols: 4" in err
    assert "Processed 3 files." in err
    out = records(db)
    assert [k for k, _ in out] == [b"00000000", b"00000001", b"00000002"]
    # Caffe reads the label into a signed char: 200 is stored as -56.
    assert [d.label for _, d in out] == [7, 0, -56]
    first = out[0][1]
    assert (first.channels, first.height, first.width) == (1, 2, 4)
    assert first.data == pixels[:8]


def test_wrong_magic_and_mismatched_counts(tmp_path, capsys):
    images = write_idx(tmp_path / "images", 2051, (2, 1, 1), b"\x01\x02")
    labels = write_idx(tmp_path / "labels", 2049, (3,), b"\x00\x01\x02")
    status = cli.main(["convert_mnist_data", labels, images,
                       str(tmp_path / "db")])
    assert status == 2
    assert "incorrect image file magic" in capsys.readouterr().err
    status = cli.main(["convert_mnist_data", images, labels,
                       str(tmp_path / "db2")])
    assert status == 2
    assert "different numbers of items" in capsys.readouterr().err


@pytest.mark.skipif(not (MNIST / "t10k-images-idx3-ubyte.gz").exists(),
                    reason="real MNIST not found at ../shared/data/mnist")
def test_real_mnist_test_set(tmp_path):
    from kaffe.tools.convert_mnist_data import convert_mnist_data
    images = str(MNIST / "t10k-images-idx3-ubyte.gz")
    labels = str(MNIST / "t10k-labels-idx1-ubyte.gz")
    db = str(tmp_path / "mnist_test_lmdb")
    assert convert_mnist_data(images, labels, db, "lmdb") == 10000
    out = records(db)
    assert len(out) == 10000 and out[-1][0] == b"00009999"
    # The first test digits are 7, 2, 1, 0, 4 (LeCun's t10k labels).
    assert [d.label for _, d in out[:5]] == [7, 2, 1, 0, 4]
    raw = gzip.decompress((MNIST / "t10k-images-idx3-ubyte.gz").read_bytes())
    first = out[0][1]
    assert (first.channels, first.height, first.width) == (1, 28, 28)
    assert first.data == raw[16:16 + 784]
    array = datum_to_array(first)
    assert array.shape == (1, 28, 28) and array.max() == 255
