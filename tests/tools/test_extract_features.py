"""kaffe extract_features: a tiny net over a tiny LMDB; float_data Datums
under %010d keys, one DB per blob."""
import numpy as np
import pytest

from kaffe.core.net import TEST, Net
from kaffe.data.datum import array_to_datum, datum_to_array, parse_datum
from kaffe.data.db import BatchWriter, open_db
from kaffe.tools import cli

pytest.importorskip("lmdb", reason="lmdb (kaffe[data]) not installed")

NET = """name: "features"
layer {{ name: "data" type: "Data" top: "data" top: "label"
  data_param {{ source: "{db}" backend: LMDB batch_size: 2 }}
  transform_param {{ scale: 0.5 }} }}
layer {{ name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
  inner_product_param {{ num_output: 3 }} }}
"""


@pytest.fixture
def setup(tmp_path):
    db = str(tmp_path / "input")
    inputs = [np.full((1, 2, 2), i, np.uint8) for i in range(3)]
    with BatchWriter(db, "lmdb") as writer:
        for i, array in enumerate(inputs):
            writer.put(b"%08d" % i, array_to_datum(array, i)
                       .SerializeToString())
    proto = tmp_path / "net.prototxt"
    proto.write_text(NET.format(db=db))
    net = Net(str(proto), TEST)
    weights = np.arange(12, dtype=np.float32).reshape(3, 4)
    net.params["ip"][0].data[...] = weights
    net.params["ip"][1].data[...] = [1, 2, 3]
    path = str(tmp_path / "w.caffemodel")
    net.save(path)
    return str(proto), path, inputs, weights


def rows(path):
    db = open_db(path, "lmdb")
    cursor = db.cursor()
    out = []
    while cursor.valid:
        out.append((cursor.key(), parse_datum(cursor.value())))
        cursor.next()
    cursor.close()
    db.close()
    return out


def test_extracts_two_blobs(tmp_path, setup, capsys):
    proto, weights_path, inputs, weights = setup
    ip_db, data_db = str(tmp_path / "ip"), str(tmp_path / "data")
    status = cli.main(["extract_features", weights_path, proto, "ip,data",
                       f"{ip_db},{data_db}", "2", "lmdb", "CPU"])
    assert status == 0
    assert "Successfully extracted the features!" in capsys.readouterr().err
    ip = rows(ip_db)
    # 2 batches of 2 = 4 rows; the DB loops back to record 0 for the 4th.
    assert [k for k, _ in ip] == [b"%010d" % i for i in range(4)]
    for (_, datum), i in zip(ip, [0, 1, 2, 0]):
        assert (datum.channels, datum.height, datum.width) == (3, 1, 1)
        assert not datum.data and not datum.HasField("label")
        expected = weights @ np.full(4, i * 0.5, np.float32) + [1, 2, 3]
        np.testing.assert_allclose(datum_to_array(datum).ravel(), expected)
    data = rows(data_db)
    assert (data[1][1].channels, data[1][1].height) == (1, 2)
    np.testing.assert_array_equal(datum_to_array(data[1][1]),
                                  inputs[1] * 0.5)


def test_errors(tmp_path, setup, capsys):
    proto, weights_path, _, _ = setup
    status = cli.main(["extract_features", weights_path, proto, "nope",
                       str(tmp_path / "x"), "1"])
    assert status == 2
    assert "unknown feature blob name 'nope'" in capsys.readouterr().err
    status = cli.main(["extract_features", weights_path, proto, "ip,data",
                       str(tmp_path / "x"), "1"])
    assert status == 2
    assert "must be equal" in capsys.readouterr().err
    status = cli.main(["extract_features", weights_path, proto, "ip",
                       str(tmp_path / "x"), "1", "lmdb", "GPU"])
    assert status == 2
