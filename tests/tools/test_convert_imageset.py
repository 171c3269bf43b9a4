"""kaffe convert_imageset: generated PNGs → Datums under %08d_<path> keys,
raw (BGR C×H×W) or encoded, resized, grey, shuffled, with gflags spellings."""
import numpy as np
import pytest

from kaffe.core.random import set_random_seed
from kaffe.data.datum import datum_to_array, parse_datum
from kaffe.data.db import open_db
from kaffe.data.image import resize_bilinear
from kaffe.tools import cli

Image = pytest.importorskip("PIL.Image", reason="Pillow (kaffe[data]) not "
                                                "installed")
pytest.importorskip("lmdb", reason="lmdb (kaffe[data]) not installed")


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    (root / "sub dir").mkdir(parents=True)
    arrays = {}
    for i, name in enumerate(["a.png", "sub dir/b c.png", "d.png"]):
        rgb = rng.integers(0, 256, (4 + i, 5, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(root / name)
        arrays[name] = rgb
    listing = tmp_path / "list.txt"
    listing.write_text("a.png 0\nsub dir/b c.png 1\nmissing.png 9\n"
                       "d.png 2\n")
    return str(root) + "/", str(listing), arrays


def records(path, backend="lmdb"):
    db = open_db(path, backend)
    cursor = db.cursor()
    out = {}
    while cursor.valid:
        out[cursor.key().decode()] = parse_datum(cursor.value())
        cursor.next()
    cursor.close()
    db.close()
    return out


def test_raw_datums_keys_and_skipped_images(tmp_path, folder, capsys):
    root, listing, arrays = folder
    db = str(tmp_path / "db")
    assert cli.main(["convert_imageset", root, listing, db]) == 0
    err = capsys.readouterr().err
    assert "Could not open or find file" in err
    assert "A total of 4 images." in err and "Processed 3 files." in err
    out = records(db)
    # The line index stays in the key: the missing image leaves a gap.
    assert sorted(out) == ["00000000_a.png", "00000001_sub dir/b c.png",
                           "00000003_d.png"]
    datum = out["00000001_sub dir/b c.png"]
    assert datum.label == 1 and not datum.encoded
    np.testing.assert_array_equal(
        datum_to_array(datum),
        arrays["sub dir/b c.png"][..., ::-1].transpose(2, 0, 1))


def test_resize_gray_check_size(tmp_path, folder):
    root, listing, arrays = folder
    db = str(tmp_path / "db")
    assert cli.main(["convert_imageset", "--gray", "--resize_height=3",
                     "--resize_width", "2", "--check_size", root, listing,
                     db]) == 0
    out = records(db)
    a = datum_to_array(out["00000000_a.png"])
    assert a.shape == (1, 3, 2)
    r, g, b = (arrays["a.png"][..., i].astype(int) for i in range(3))
    grey = ((9797 * r + 19234 * g + 3737 * b) >> 15).astype(np.uint8)
    np.testing.assert_array_equal(a[0], resize_bilinear(grey, 3, 2))


def test_check_size_rejects_different_sizes(tmp_path, folder, capsys):
    root, listing, _ = folder
    status = cli.main(["convert_imageset", "-check_size", root, listing,
                       str(tmp_path / "db")])
    assert status == 2
    err = capsys.readouterr().err
    assert "list.txt:2:" in err and "incorrect data field size" in err


def test_encoded(tmp_path, folder):
    root, listing, arrays = folder
    db = str(tmp_path / "db")
    assert cli.main(["convert_imageset", "--encoded", root, listing,
                     db]) == 0
    datum = records(db)["00000000_a.png"]
    assert datum.encoded
    assert datum.data == open(root + "a.png", "rb").read()
    db2 = str(tmp_path / "db2")
    assert cli.main(["convert_imageset", "--encode_type=jpg", "--shuffle",
                     root, listing, db2]) == 0
    jpg = [d for d in records(db2).values() if d.label == 0][0]
    assert jpg.encoded and jpg.data[:2] == b"\xff\xd8"
    assert datum_to_array(jpg).shape == (3, 4, 5)


def test_shuffle_is_seeded(tmp_path, folder):
    root, listing, _ = folder

    def keys(seed, name):
        set_random_seed(seed)
        cli.main(["convert_imageset", "--shuffle=true", root, listing,
                  str(tmp_path / name)])
        return sorted(records(str(tmp_path / name)))

    assert keys(4, "x") == keys(4, "y")


def test_leveldb_backend(tmp_path, folder):
    pytest.importorskip("plyvel", reason="plyvel (kaffe[leveldb]) not "
                                         "installed")
    root, listing, _ = folder
    db = str(tmp_path / "db")
    assert cli.main(["convert_imageset", "--backend", "leveldb", root,
                     listing, db]) == 0
    assert len(records(db, "leveldb")) == 3
