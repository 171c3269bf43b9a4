"""Images as OpenCV reads them: BGR decode modes, OpenCV's INTER_LINEAR
resize (hand-checked values, and bit-exact against cv2 when installed)."""
import io

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeFormatError
from kaffe.data.image import (decode_image, encode_image, extension_matches,
                              read_image, resize_bilinear)

Image = pytest.importorskip("PIL.Image", reason="Pillow (kaffe[data]) not "
                                                "installed")


def encoded(array, fmt="PNG", mode=None, **options):
    out = io.BytesIO()
    Image.fromarray(array, mode).save(out, format=fmt, **options)
    return out.getvalue()


RGB = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)


def test_colour_png_in_every_mode():
    data = encoded(RGB)
    np.testing.assert_array_equal(decode_image(data, "native"),
                                  RGB[..., ::-1])
    np.testing.assert_array_equal(decode_image(data, "color"),
                                  RGB[..., ::-1])
    grey = decode_image(data, "gray")
    r, g, b = (RGB[..., i].astype(int) for i in range(3))
    # libpng's rgb_to_gray with OpenCV's coefficients (truncating).
    np.testing.assert_array_equal(grey[..., 0],
                                  (9797 * r + 19234 * g + 3737 * b) >> 15)


def test_grey_and_alpha_pngs():
    grey = RGB[..., 0]
    data = encoded(grey)
    assert decode_image(data, "native").shape == (5, 7, 1)
    colour = decode_image(data, "color")
    assert colour.shape == (5, 7, 3)
    np.testing.assert_array_equal(colour[..., 1], grey)
    rgba = np.dstack([RGB, RGB[..., :1]])
    data = encoded(rgba)
    bgra = decode_image(data, "native")
    assert bgra.shape == (5, 7, 4)       # IMREAD_UNCHANGED keeps alpha
    np.testing.assert_array_equal(bgra[..., 3], RGB[..., 0])
    np.testing.assert_array_equal(decode_image(data, "color"), RGB[..., ::-1])


def test_grey_jpeg_is_libjpeg_luma():
    data = encoded(RGB, "JPEG", quality=95)
    colour = decode_image(data, "color").astype(int)
    grey = decode_image(data, "gray").astype(int)[..., 0]
    # Luma of the decoded pixels, up to the rounding of libjpeg's own path.
    luma = 0.114 * colour[..., 0] + 0.587 * colour[..., 1] \
        + 0.299 * colour[..., 2]
    assert np.abs(grey - luma).max() <= 2


def test_undecodable_and_unknown_mode():
    with pytest.raises(KaffeFormatError, match="cannot be decoded"):
        decode_image(b"GIF89a-broken")
    with pytest.raises(KaffeConfigError, match="decode mode"):
        decode_image(encoded(RGB), "rgb")


def test_encode_round_trip(tmp_path):
    bgr = RGB[..., ::-1]
    np.testing.assert_array_equal(decode_image(encode_image(bgr, "png")), bgr)
    jpg = decode_image(encode_image(bgr, ".JPG"))
    assert jpg.shape == bgr.shape
    with pytest.raises(KaffeConfigError, match="encode_type"):
        encode_image(bgr, "xyz")
    path = tmp_path / "x.png"
    path.write_bytes(encode_image(bgr, "png"))
    np.testing.assert_array_equal(read_image(str(path)), bgr)
    assert read_image(str(path), is_color=False).shape == (5, 7, 1)
    assert read_image(str(path), 3, 4).shape == (3, 4, 3)
    assert read_image(str(tmp_path / "none.png")) is None


def test_extension_matches_like_caffe():
    assert extension_matches("a/b.JPEG", "jpg")
    assert extension_matches("b.png", "PNG")
    assert not extension_matches("b.png", "jpg")


def test_resize_hand_computed():
    # 1x2 → 1x4: OpenCV samples at (x + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75,
    # 1.25 → clamped edges, weights 0.25/0.75 in 11-bit fixed point.
    image = np.array([[0, 100]], dtype=np.uint8)
    np.testing.assert_array_equal(resize_bilinear(image, 1, 4),
                                  [[0, 25, 75, 100]])
    # An exact 2x shrink is OpenCV's area mean, rounded.
    block = np.array([[1, 2], [2, 2]], dtype=np.uint8)
    assert resize_bilinear(block, 1, 1)[0, 0] == 2      # (7 + 2) >> 2
    same = RGB.copy()
    np.testing.assert_array_equal(resize_bilinear(same, 5, 7), RGB)


def test_resize_is_bit_exact_with_opencv():
    cv2 = pytest.importorskip("cv2", reason="opencv-python-headless (test "
                                            "extra) not installed")
    rng = np.random.default_rng(1)
    for _ in range(60):
        h, w = rng.integers(1, 70, 2)
        out_h, out_w = rng.integers(1, 90, 2)
        channels = int(rng.choice([1, 3, 4]))
        image = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
        expected = cv2.resize(image, (int(out_w), int(out_h)),
                              interpolation=cv2.INTER_LINEAR)
        got = resize_bilinear(image, out_h, out_w)
        np.testing.assert_array_equal(got, expected.reshape(got.shape))
    image = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)
    np.testing.assert_array_equal(resize_bilinear(image, 32, 24),
                                  cv2.resize(image, (24, 32)))


def test_decoding_matches_opencv():
    cv2 = pytest.importorskip("cv2", reason="opencv-python-headless (test "
                                            "extra) not installed")
    flags = {"native": cv2.IMREAD_UNCHANGED, "color": cv2.IMREAD_COLOR,
             "gray": cv2.IMREAD_GRAYSCALE}
    smooth = (np.add.outer(np.arange(24), np.arange(32)) * 5 % 256).astype(
        np.uint8)
    files = [encoded(RGB), encoded(RGB[..., 0]),
             encoded(np.dstack([RGB, RGB[..., :1]])),
             encoded(RGB, "BMP"),
             encoded(np.dstack([smooth, smooth[::-1], smooth]), "JPEG"),
             encoded(smooth, "JPEG")]
    for data in files:
        for mode, flag in flags.items():
            expected = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
            got = decode_image(data, mode)
            np.testing.assert_array_equal(got, expected.reshape(got.shape))


def test_missing_pillow_says_what_to_install(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "PIL", None)
    with pytest.raises(KaffeConfigError, match=r"kaffe\[data\]"):
        decode_image(b"\x89PNG")
