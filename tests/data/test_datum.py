"""Datum ↔ arrays: raw uint8, float_data, encoded PNG/JPEG, Caffe's
ReadImageToDatum rules."""
import io

import numpy as np
import pytest

from kaffe.core.errors import KaffeFormatError
from kaffe.data.datum import (array_to_datum, datum_to_array, decode_datum,
                              image_to_datum, parse_datum,
                              read_file_to_datum, read_image_to_datum)
from kaffe.proto import caffe_pb2

Image = pytest.importorskip("PIL.Image", reason="Pillow (kaffe[data]) not "
                                                "installed")


def png_bytes(rgb):
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG")
    return out.getvalue()


def test_uint8_round_trip_is_c_h_w_bytes():
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    datum = array_to_datum(array, label=7)
    assert (datum.channels, datum.height, datum.width, datum.label) == \
        (2, 3, 4, 7)
    assert datum.data == bytes(range(24)) and not datum.float_data
    again = parse_datum(datum.SerializeToString())
    out = datum_to_array(again)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, array)


def test_float_round_trip_uses_float_data():
    array = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 2, 2)
    datum = array_to_datum(array)
    assert not datum.data and len(datum.float_data) == 12
    out = datum_to_array(parse_datum(datum.SerializeToString()))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, array)


def test_serialization_matches_caffe_field_order():
    # Caffe's converters set channels, height, width, data, label: protobuf
    # writes them by field number, so the bytes are the same as C++'s.
    datum = caffe_pb2.Datum(channels=1, height=1, width=2, data=b"\x05\x06",
                            label=3)
    assert datum.SerializeToString() == \
        b"\x08\x01\x10\x01\x18\x02\x22\x02\x05\x06\x28\x03"


def test_encoded_png_decodes_to_bgr():
    rgb = np.zeros((2, 3, 3), dtype=np.uint8)
    rgb[..., 0] = 200          # red
    rgb[0, 0] = (1, 2, 3)
    datum = caffe_pb2.Datum(data=png_bytes(rgb), label=1, encoded=True)
    out = datum_to_array(datum)
    assert out.shape == (3, 2, 3)
    # BGR: channel 2 is red.
    assert out[2, 1, 1] == 200 and out[0, 1, 1] == 0
    assert tuple(out[:, 0, 0]) == (3, 2, 1)
    grey = datum_to_array(datum, "gray")
    assert grey.shape == (1, 2, 3)
    colour = datum_to_array(caffe_pb2.Datum(
        data=png_bytes(rgb[..., 0]), encoded=True), "color")
    assert colour.shape == (3, 2, 3)
    np.testing.assert_array_equal(colour[0], rgb[..., 0])


def test_encoded_jpeg_is_close_to_the_pixels():
    rgb = np.full((16, 16, 3), (10, 120, 240), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=95)
    datum = caffe_pb2.Datum(data=out.getvalue(), encoded=True)
    bgr = datum_to_array(datum)
    assert bgr.shape == (3, 16, 16)
    assert np.abs(bgr.astype(int) - [[[240]], [[120]], [[10]]]).max() <= 3


def test_decode_datum_turns_encoded_into_raw():
    rgb = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3)
    datum = caffe_pb2.Datum(data=png_bytes(rgb), label=4, encoded=True)
    raw, decoded = decode_datum(datum)
    assert decoded and not raw.encoded and raw.label == 4
    assert (raw.channels, raw.height, raw.width) == (3, 2, 2)
    same, decoded = decode_datum(raw)
    assert same is raw and not decoded


def test_bad_records_are_format_errors():
    with pytest.raises(KaffeFormatError, match="not a serialized Datum"):
        parse_datum(b"\xff\xff\xff", where="record 'x'")
    short = caffe_pb2.Datum(channels=1, height=2, width=2, data=b"abc")
    with pytest.raises(KaffeFormatError, match="holds 3 data bytes"):
        datum_to_array(short)
    with pytest.raises(KaffeFormatError, match="no valid shape"):
        datum_to_array(caffe_pb2.Datum())
    with pytest.raises(KaffeFormatError, match="cannot be decoded"):
        datum_to_array(caffe_pb2.Datum(data=b"not an image", encoded=True))


def test_image_to_datum_is_cv_mat_to_datum():
    image = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)   # H, W, C
    datum = image_to_datum(image, 2)
    np.testing.assert_array_equal(datum_to_array(datum),
                                  image.transpose(2, 0, 1))


def test_read_image_to_datum_follows_caffe(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (4, 6, 3), np.uint8)
    path = tmp_path / "a.png"
    path.write_bytes(png_bytes(rgb))
    raw = read_image_to_datum(str(path), 3)
    assert (raw.channels, raw.height, raw.width, raw.label) == (3, 4, 6, 3)
    np.testing.assert_array_equal(datum_to_array(raw),
                                  rgb[..., ::-1].transpose(2, 0, 1))
    # Same type, no resize, colour as asked: the file's own bytes, and only
    # data/label/encoded set (as Caffe's ReadFileToDatum).
    same = read_image_to_datum(str(path), 3, encoding="png")
    assert same.encoded and same.data == path.read_bytes()
    assert not same.HasField("channels")
    # Resized or re-typed: re-encoded.
    resized = read_image_to_datum(str(path), 3, 2, 3, encoding="png")
    assert datum_to_array(resized).shape == (3, 2, 3)
    assert datum_to_array(resized, "gray").shape == (1, 2, 3)
    # Caffe's test is (channels == 3) == is_color, which a grey read of a
    # colour file passes too: the colour file is stored as it is (read it
    # with force_gray).
    grey = read_image_to_datum(str(path), 3, is_color=False, encoding="png")
    assert grey.data == path.read_bytes()
    jpg = read_image_to_datum(str(path), 3, is_color=False, encoding="jpg")
    assert datum_to_array(jpg).shape == (1, 4, 6)
    assert read_image_to_datum(str(tmp_path / "missing.png")) is None
    assert read_file_to_datum(str(tmp_path / "missing.png")) is None
