"""LMDB and LevelDB as Caffe's db::DB: key order, looping, 1000-record
commits, map growth, and the errors."""
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeFormatError
from kaffe.data.db import BatchWriter, backend_name, open_db
from kaffe.proto import caffe_pb2

pytest.importorskip("lmdb", reason="lmdb (kaffe[data]) not installed")


def fill(path, backend, keys):
    with BatchWriter(path, backend) as writer:
        for key in keys:
            writer.put(key, b"value-" + key)
    return writer


def read_all(path, backend):
    db = open_db(path, backend)
    cursor = db.cursor()
    out = []
    while cursor.valid:
        out.append((cursor.key(), cursor.value()))
        cursor.next()
    cursor.close()
    db.close()
    return out


@pytest.mark.parametrize("backend", ["lmdb", "leveldb"])
def test_write_then_read_in_key_order(tmp_path, backend):
    if backend == "leveldb":
        pytest.importorskip("plyvel", reason="plyvel (kaffe[leveldb]) not "
                                             "installed")
    keys = [b"00000002", b"00000000", b"00000001"]
    fill(str(tmp_path / "db"), backend, keys)
    assert read_all(str(tmp_path / "db"), backend) == [
        (k, b"value-" + k) for k in sorted(keys)]


def test_cursor_seek_to_first_loops(tmp_path):
    fill(str(tmp_path / "db"), "lmdb", [b"a", b"b"])
    db = open_db(str(tmp_path / "db"), "lmdb")
    cursor = db.cursor()
    seen = []
    for _ in range(5):
        seen.append(cursor.key())
        cursor.next()
        if not cursor.valid:
            cursor.seek_to_first()
    assert seen == [b"a", b"b", b"a", b"b", b"a"]


def test_batch_writer_commits_every_1000(tmp_path):
    commits = []
    with BatchWriter(str(tmp_path / "db"), "lmdb",
                     on_commit=commits.append) as writer:
        for i in range(2500):
            writer.put(b"%08d" % i, b"x")
    assert commits == [1000, 2000, 2500]
    assert len(read_all(str(tmp_path / "db"), "lmdb")) == 2500


def test_lmdb_map_grows_when_full(tmp_path):
    big = bytes(3 * 1024 * 1024)
    with BatchWriter(str(tmp_path / "db"), "lmdb") as writer:
        for i in range(8):                 # 24 MiB > the 10 MiB first map
            writer.put(b"%d" % i, big)
    assert len(read_all(str(tmp_path / "db"), "lmdb")) == 8


def test_new_refuses_an_existing_db(tmp_path):
    fill(str(tmp_path / "db"), "lmdb", [b"a"])
    with pytest.raises(KaffeFormatError, match="already exists"):
        open_db(str(tmp_path / "db"), "lmdb", "new")


def test_missing_db_and_wrong_backend(tmp_path):
    with pytest.raises(KaffeFormatError, match="no such directory"):
        open_db(str(tmp_path / "nothing"), "lmdb")
    pytest.importorskip("plyvel", reason="plyvel not installed")
    fill(str(tmp_path / "db"), "lmdb", [b"a"])
    with pytest.raises(KaffeFormatError, match="it is an LMDB"):
        open_db(str(tmp_path / "db"), "leveldb")


def test_backend_names():
    assert backend_name(caffe_pb2.DataParameter.LMDB) == "lmdb"
    assert backend_name(caffe_pb2.DataParameter.LEVELDB) == "leveldb"
    assert backend_name("LMDB") == "lmdb"
    with pytest.raises(KaffeConfigError, match="backend"):
        backend_name("rocksdb")


def test_missing_packages_say_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "lmdb", None)
    monkeypatch.setitem(__import__("sys").modules, "plyvel", None)
    with pytest.raises(KaffeConfigError, match=r"kaffe\[data\]"):
        open_db(str(tmp_path / "x"), "lmdb", "new")
    with pytest.raises(KaffeConfigError, match="convert the data to LMDB"):
        open_db(str(tmp_path / "y"), "leveldb", "new")
