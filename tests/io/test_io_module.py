"""kaffe.io, pycaffe's caffe.io: blobproto/datum conversions, Transformer,
load_image, resize_image, oversample.

Expected numbers are hand-computed from pycaffe's semantics (python/caffe/io.py
with skimage.transform.resize(mode='constant') and scipy.ndimage.zoom), and,
where OpenCV's conventions coincide, checked against cv2 itself.
"""
import numpy as np
import pytest

from kaffe import KaffeError, io
from kaffe.proto import caffe_pb2


# -- BlobProto ----------------------------------------------------------------
def test_blobproto_legacy_4d_shape():
    blob = caffe_pb2.BlobProto()
    blob.data.extend(np.arange(100.0).tolist())
    blob.num, blob.channels, blob.height, blob.width = 1, 1, 10, 10
    arr = io.blobproto_to_array(blob)
    assert arr.shape == (1, 1, 10, 10)
    assert arr.dtype == np.float64          # pycaffe's np.array(blob.data)
    assert arr[0, 0, 3, 4] == 34


def test_blobproto_new_format_shape():
    blob = caffe_pb2.BlobProto()
    blob.data.extend(np.zeros(10 * 10).tolist())
    blob.shape.dim.extend([10, 10])
    assert io.blobproto_to_array(blob).shape == (10, 10)


def test_blobproto_without_shape_is_a_value_error():
    blob = caffe_pb2.BlobProto()
    blob.data.extend(np.zeros(100).tolist())
    with pytest.raises(ValueError, match="do not fit"):
        io.blobproto_to_array(blob)


def test_blobproto_scalar():
    blob = caffe_pb2.BlobProto()
    blob.data.extend([123.0])
    arr = io.blobproto_to_array(blob)
    assert arr.shape == () and arr == 123


def test_array_blobproto_round_trip_with_diff():
    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7
    diff = -arr
    blob = io.array_to_blobproto(arr, diff)
    assert list(blob.shape.dim) == [2, 3, 4]
    assert not blob.HasField("num")
    np.testing.assert_array_equal(io.blobproto_to_array(blob), arr)
    np.testing.assert_array_equal(
        io.blobproto_to_array(blob, return_diff=True), diff)


def test_legacy_blob_diff_and_missing_diff():
    blob = caffe_pb2.BlobProto(num=1, channels=2, height=1, width=2)
    blob.data.extend([1, 2, 3, 4])
    blob.diff.extend([5, 6, 7, 8])
    np.testing.assert_array_equal(
        io.blobproto_to_array(blob, return_diff=True),
        np.array([5, 6, 7, 8.]).reshape(1, 2, 1, 2))
    del blob.diff[:]
    with pytest.raises(KaffeError, match="diff holds 0 values"):
        io.blobproto_to_array(blob, return_diff=True)


def test_blobproto_double_data():
    blob = caffe_pb2.BlobProto()
    blob.shape.dim.extend([2])
    blob.double_data.extend([0.1, 0.2])
    np.testing.assert_array_equal(io.blobproto_to_array(blob), [0.1, 0.2])


def test_array_to_blobproto_diff_shape_mismatch():
    with pytest.raises(KaffeError, match="diff must have the data's shape"):
        io.array_to_blobproto(np.zeros((2, 3)), np.zeros((3, 2)))


def test_blobprotovector_round_trip():
    arrays = [np.arange(6.0).reshape(2, 3), np.ones((1, 2, 2, 1)), np.zeros(0)]
    data = io.arraylist_to_blobprotovector_str(arrays)
    assert isinstance(data, bytes)
    back = io.blobprotovector_str_to_arraylist(data)
    assert len(back) == 3
    for a, b in zip(arrays, back):
        np.testing.assert_array_equal(a, b)
        assert a.shape == b.shape


def test_blobprotovector_garbage():
    with pytest.raises(KaffeError, match="BlobProtoVector"):
        io.blobprotovector_str_to_arraylist(b"\xff\xff\xff")


# -- Datum --------------------------------------------------------------------
def test_uint8_datum_round_trip():
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    datum = io.array_to_datum(arr, label=7)
    assert (datum.channels, datum.height, datum.width) == (2, 3, 4)
    assert datum.data == arr.tobytes() and len(datum.float_data) == 0
    assert datum.label == 7
    back = io.datum_to_array(datum)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, arr)
    back[0, 0, 0] = 99                      # writable, as np.fromstring's copy


def test_float_datum_round_trip():
    arr = np.linspace(-1, 1, 12).reshape(3, 2, 2)
    datum = io.array_to_datum(arr)
    assert len(datum.data) == 0 and len(datum.float_data) == 12
    back = io.datum_to_array(datum)
    assert back.dtype == np.float64
    np.testing.assert_allclose(back, arr, rtol=1e-7)   # stored as float32


def test_datum_label_none_is_not_serialized():
    d1 = io.array_to_datum(np.ones((10, 10, 3)), label=1)
    d2 = io.array_to_datum(np.ones((10, 10, 3)))
    assert not d2.HasField("label")
    assert len(d1.SerializeToString()) > len(d2.SerializeToString())


def test_datum_needs_3d():
    with pytest.raises(ValueError, match="Incorrect array shape"):
        io.array_to_datum(np.zeros((2, 2)))


def test_encoded_datum_is_decoded_to_bgr():
    pytest.importorskip("PIL")
    from kaffe.data.image import encode_image
    bgr = np.zeros((2, 3, 3), np.uint8)
    bgr[..., 2] = 200                       # red in OpenCV's BGR
    datum = caffe_pb2.Datum(data=encode_image(bgr, "png"), encoded=True)
    arr = io.datum_to_array(datum)
    assert arr.shape == (3, 2, 3)
    np.testing.assert_array_equal(arr[2], 200)
    np.testing.assert_array_equal(arr[:2], 0)


# -- Transformer --------------------------------------------------------------
def caffenet_transformer(shape=(1, 3, 2, 2), mean=(10.0, 20.0, 30.0),
                         input_scale=0.5):
    t = io.Transformer({"data": shape})
    t.set_transpose("data", (2, 0, 1))
    t.set_channel_swap("data", (2, 1, 0))
    t.set_raw_scale("data", 255)
    t.set_mean("data", np.array(mean))
    t.set_input_scale("data", input_scale)
    return t


def test_preprocess_order_by_hand():
    rng = np.random.default_rng(0)
    image = rng.random((2, 2, 3)).astype(np.float32)       # H×W×RGB in [0, 1]
    t = caffenet_transformer()
    out = t.preprocess("data", image)
    assert out.shape == (3, 2, 2) and out.dtype == np.float32
    mean = np.array([10.0, 20.0, 30.0])
    for c in range(3):
        # channel c of the blob is BGR's c = RGB's 2 - c; scale, mean, scale.
        expected = (image[:, :, 2 - c] * 255 - mean[c]) * 0.5
        np.testing.assert_allclose(out[c], expected, rtol=1e-6)


def test_preprocess_deprocess_round_trip():
    rng = np.random.default_rng(1)
    image = rng.random((4, 5, 3)).astype(np.float32)
    t = caffenet_transformer((2, 3, 4, 5))
    blob = t.preprocess("data", image)
    np.testing.assert_allclose(t.deprocess("data", blob), image, atol=1e-6)
    # a batch of one (net.blobs['data'].data) is squeezed
    np.testing.assert_allclose(t.deprocess("data", blob[np.newaxis]), image,
                               atol=1e-6)


def test_preprocess_does_not_modify_its_input():
    image = np.full((2, 2, 3), 0.5, np.float32)
    t = io.Transformer({"data": (1, 2, 2, 3)})   # no transpose, no swap
    t.set_raw_scale("data", 255)
    t.preprocess("data", image)
    np.testing.assert_array_equal(image, 0.5)


def test_preprocess_resizes_to_the_input_size():
    image = np.zeros((4, 4, 3), np.float32)
    image[:, 2:] = 1.0
    t = io.Transformer({"data": (1, 3, 2, 2)})
    t.set_transpose("data", (2, 0, 1))
    out = t.preprocess("data", image)
    assert out.shape == (3, 2, 2)
    # 2x downscale, pixel centres at 0.5 and 2.5: (0+0)/2 and (1+1)/2
    np.testing.assert_allclose(out[:, :, 0], 0)
    np.testing.assert_allclose(out[:, :, 1], 1)


def test_transformer_errors():
    t = io.Transformer({"data": (1, 3, 4, 4)})
    with pytest.raises(KaffeError, match="not one of the net inputs"):
        t.set_raw_scale("label", 255)
    with pytest.raises(KaffeError, match="Transpose order"):
        t.set_transpose("data", (1, 0))
    with pytest.raises(KaffeError, match="Channel swap"):
        t.set_channel_swap("data", (1, 0))
    with pytest.raises(ValueError, match="Mean channels incompatible"):
        t.set_mean("data", np.zeros(4))
    with pytest.raises(ValueError, match="Mean channels incompatible"):
        t.set_mean("data", np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="Mean shape invalid"):
        t.set_mean("data", np.zeros((1, 3, 4, 4)))
    with pytest.raises(KaffeError, match="not one of the net inputs"):
        t.preprocess("nope", np.zeros((4, 4, 3)))


def test_per_channel_mean_broadcasts():
    t = io.Transformer({"data": (1, 3, 4, 4)})
    t.set_mean("data", np.array([1.0, 2.0, 3.0]))
    assert t.mean["data"].shape == (3, 1, 1)


def test_mean_of_another_size_is_resized():
    t = io.Transformer({"data": (1, 3, 4, 4)})
    mean = np.empty((3, 8, 8))
    mean[0], mean[1], mean[2] = 10, 20, 30
    mean[2, :, 4:] = 50
    t.set_mean("data", mean)
    resized = t.mean["data"]
    assert resized.shape == (3, 4, 4)
    # 2x downscale: every output pixel is the mean of a 2x2 block.
    np.testing.assert_allclose(resized[0], 10, rtol=1e-6)
    np.testing.assert_allclose(resized[1], 20, rtol=1e-6)
    np.testing.assert_allclose(resized[2, :, :2], 30, rtol=1e-6)
    np.testing.assert_allclose(resized[2, :, 2:], 50, rtol=1e-6)


def test_constant_mean_of_another_size():
    t = io.Transformer({"data": (1, 1, 3, 3)})
    t.set_mean("data", np.full((5, 5), 7.0))      # 2-D mean, 1 channel
    np.testing.assert_array_equal(t.mean["data"], np.full((1, 3, 3), 7.0))


def test_preprocess_matches_opencv_blobfromimage():
    """cv2.dnn.blobFromImage(img, scalefactor, size, mean, swapRB) equals
    preprocess with raw_scale unset, transpose (2, 0, 1), channel swap
    (2, 1, 0), the mean in the *output* channel order and input_scale =
    scalefactor, on an image of the input's size."""
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(2)
    rgb255 = (rng.random((5, 6, 3)) * 255).astype(np.float32)
    t = io.Transformer({"data": (1, 3, 5, 6)})
    t.set_transpose("data", (2, 0, 1))
    t.set_channel_swap("data", (2, 1, 0))
    t.set_mean("data", np.array([104.0, 117.0, 123.0]))
    t.set_input_scale("data", 0.017)
    ours = t.preprocess("data", rgb255)
    blob = cv2.dnn.blobFromImage(rgb255, scalefactor=0.017, size=(6, 5),
                                 mean=(104, 117, 123), swapRB=True,
                                 crop=False)
    np.testing.assert_allclose(ours, blob[0], rtol=1e-6, atol=1e-6)


# -- load_image ---------------------------------------------------------------
@pytest.fixture
def Image():
    return pytest.importorskip("PIL.Image")


RGB = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]],
                [[10, 20, 30], [128, 128, 128], [0, 0, 0]]], np.uint8)


def test_load_png_rgb(tmp_path, Image):
    path = str(tmp_path / "rgb.png")
    Image.fromarray(RGB).save(path)
    im = io.load_image(path)
    assert im.shape == (2, 3, 3) and im.dtype == np.float32
    np.testing.assert_allclose(im, RGB / 255.0, rtol=1e-7)    # RGB order
    grey = io.load_image(path, color=False)
    assert grey.shape == (2, 3, 1) and grey.dtype == np.float32
    expected = RGB / 255.0 @ np.array([0.2125, 0.7154, 0.0721])
    np.testing.assert_allclose(grey[..., 0], expected, rtol=1e-6)


def test_load_grey_png_is_tiled_for_color(tmp_path, Image):
    path = str(tmp_path / "grey.png")
    grey = np.array([[0, 51], [102, 255]], np.uint8)
    Image.fromarray(grey).save(path)
    im = io.load_image(path)
    assert im.shape == (2, 2, 3)
    for c in range(3):
        np.testing.assert_allclose(im[..., c], grey / 255.0, rtol=1e-7)
    im1 = io.load_image(path, color=False)
    assert im1.shape == (2, 2, 1)
    np.testing.assert_allclose(im1[..., 0], grey / 255.0, rtol=1e-7)


def test_load_rgba_drops_alpha(tmp_path, Image):
    path = str(tmp_path / "rgba.png")
    rgba = np.concatenate([RGB, np.full((2, 3, 1), 7, np.uint8)], axis=2)
    Image.fromarray(rgba, "RGBA").save(path)
    im = io.load_image(path)
    assert im.shape == (2, 3, 3)
    np.testing.assert_allclose(im, RGB / 255.0, rtol=1e-7)
    assert io.load_image(path, color=False).shape == (2, 3, 1)


def test_load_grey_alpha_png(tmp_path, Image):
    path = str(tmp_path / "la.png")
    la = np.stack([np.array([[0, 255]], np.uint8),
                   np.array([[9, 9]], np.uint8)], axis=2)
    Image.fromarray(la, "LA").save(path)
    np.testing.assert_allclose(io.load_image(path)[0], [[0] * 3, [1] * 3])
    assert io.load_image(path, color=False).shape == (1, 2, 1)


def test_load_16bit_png(tmp_path, Image):
    path = str(tmp_path / "g16.png")
    Image.fromarray(np.array([[0, 65535, 32768]], np.uint16)).save(path)
    im = io.load_image(path, color=False)
    np.testing.assert_allclose(im[0, :, 0], [0, 1, 32768 / 65535], rtol=1e-6)


def test_load_jpeg(tmp_path, Image):
    path = str(tmp_path / "flat.jpg")
    flat = np.zeros((16, 16, 3), np.uint8)
    flat[...] = (200, 100, 50)
    Image.fromarray(flat).save(path, quality=100)
    im = io.load_image(path)
    assert im.shape == (16, 16, 3)
    # JPEG is lossy: within 2 levels of the colour, and exactly what Pillow
    # (which scikit-image's readers use too) decodes.
    np.testing.assert_allclose(im * 255, flat, atol=2)
    with Image.open(path) as decoded:
        pixels = np.asarray(decoded, np.float64)
    np.testing.assert_array_equal(im, (pixels / 255.0).astype(np.float32))


def test_load_image_errors(tmp_path, Image):
    with pytest.raises(FileNotFoundError):
        io.load_image(str(tmp_path / "missing.png"))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(KaffeError, match="cannot be read as an image"):
        io.load_image(str(bad))


# -- resize_image -------------------------------------------------------------
def test_resize_upscale_by_hand():
    """1×2 → 1×4, pixel centres aligned: source x = (o + .5)/2 − .5 =
    −.25, .25, .75, 1.25; skimage's mode='constant' reads beyond the border
    as the minimum (2 here), so the border pixels are pulled towards it."""
    im = np.array([[[2.0], [6.0]]])
    out = io.resize_image(im, (1, 4))
    assert out.dtype == np.float32 and out.shape == (1, 4, 1)
    # normalised [0, 1]: 0, .25, .75, .75·1 + .25·0 → ×4 + 2
    np.testing.assert_allclose(out[0, :, 0], [2, 3, 5, 5], rtol=1e-6)


def test_resize_2d_bilinear_by_hand():
    values = np.array([[0.0, 1.0], [2.0, 3.0]])
    out = io.resize_image(values[..., None] / 3, (3, 3))[..., 0] * 3
    # Source coordinates (o + .5)·2/3 − .5 = −1/6, 1/2, 7/6 on both axes, as
    # (low index, high index, fraction t); samples outside read as 0 (the
    # minimum).
    taps = [(-1, 0, 5 / 6), (0, 1, 1 / 2), (1, 2, 1 / 6)]

    def at(y, x):
        return values[y, x] if 0 <= y < 2 and 0 <= x < 2 else 0.0

    expected = np.zeros((3, 3))
    for i, (y0, y1, ty) in enumerate(taps):
        for j, (x0, x1, tx) in enumerate(taps):
            top = (1 - tx) * at(y0, x0) + tx * at(y0, x1)
            bottom = (1 - tx) * at(y1, x0) + tx * at(y1, x1)
            expected[i, j] = (1 - ty) * top + ty * bottom
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-7)
    assert out[1, 1] == pytest.approx(1.5)
    assert out[0, 0] == pytest.approx(0.0)
    assert out[2, 2] == pytest.approx(3 * 25 / 36)


def test_resize_downscale_and_nearest():
    im = np.arange(16, dtype=np.float32).reshape(4, 4, 1)
    out = io.resize_image(im, (2, 2))[..., 0]
    np.testing.assert_allclose(out, [[2.5, 4.5], [10.5, 12.5]], rtol=1e-6)
    near = io.resize_image(im, (2, 2), interp_order=0)[..., 0]
    # source 0.5 and 2.5 round half up to 1 and 3
    np.testing.assert_array_equal(near, [[5, 7], [13, 15]])


def test_resize_other_channel_counts_align_corners():
    im = np.stack([np.array([[0.0, 1.0, 2.0]]), np.array([[4.0, 4.0, 4.0]])],
                  axis=2)                                  # K = 2: ndimage
    out = io.resize_image(im, (1, 5))
    np.testing.assert_allclose(out[0, :, 0], [0, 0.5, 1, 1.5, 2])
    np.testing.assert_allclose(out[0, :, 1], 4)


def test_resize_keeps_range_and_returns_float32():
    im = np.arange(12, dtype=np.uint8).reshape(2, 2, 3) * 20
    out = io.resize_image(im, (5, 3))
    assert out.dtype == np.float32 and out.shape == (5, 3, 3)
    assert out.min() >= im.min() and out.max() <= im.max()
    const = io.resize_image(np.full((3, 3, 1), 0.25), (7, 2))
    assert const.dtype == np.float32
    np.testing.assert_array_equal(const, 0.25)


def test_resize_downscale_matches_opencv():
    """Downscaling, pixel-centre bilinear with no tap beyond the border:
    the same numbers as cv2.resize(INTER_LINEAR) on a float image."""
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(3)
    im = rng.random((23, 31, 3)).astype(np.float32)
    ours = io.resize_image(im, (11, 17))
    theirs = cv2.resize(im, (17, 11), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_resize_anti_aliasing():
    rng = np.random.default_rng(4)
    im = rng.random((12, 12, 1))
    # upscaling: no smoothing
    np.testing.assert_array_equal(
        io.resize_image(im, (20, 20), anti_aliasing=True),
        io.resize_image(im, (20, 20)))
    # 3x downscale: Gaussian σ = 1, radius 4, zero outside, then bilinear
    x = np.arange(-4, 5)
    w = np.exp(-0.5 * x ** 2)
    w /= w.sum()
    lo, hi = im.min(), im.max()
    norm = (im[..., 0] - lo) / (hi - lo)
    padded = np.pad(norm, 4)
    rows = sum(w[k] * padded[k:k + 12, 4:16] for k in range(9))
    padded = np.pad(rows, ((0, 0), (4, 4)))
    smooth = sum(w[k] * padded[:, k:k + 12] for k in range(9))
    expected = smooth[1::3, 1::3] * (hi - lo) + lo      # centres 1, 4, 7, 10
    np.testing.assert_allclose(
        io.resize_image(im, (4, 4), anti_aliasing=True)[..., 0], expected,
        rtol=1e-5)


def test_resize_errors():
    with pytest.raises(KaffeError, match="interp_order"):
        io.resize_image(np.zeros((2, 2, 3)), (4, 4), interp_order=3)
    with pytest.raises(KaffeError, match="H×W×K"):
        io.resize_image(np.zeros((2, 2)), (4, 4))


# -- oversample ---------------------------------------------------------------
def test_oversample_positions_and_mirrors():
    im = np.arange(5 * 6, dtype=np.float32).reshape(5, 6, 1)
    images = [im, im + 100]
    crops = io.oversample(images, (2, 3))
    assert crops.shape == (20, 2, 3, 1) and crops.dtype == np.float32
    # centre: int(5/2 − 1) = 1, int(6/2 − 1.5) = 1
    corners = [(0, 0), (0, 3), (3, 0), (3, 3), (1, 1)]
    for n, image in enumerate(images):
        for k, (y, x) in enumerate(corners):
            expected = image[y:y + 2, x:x + 3]
            np.testing.assert_array_equal(crops[10 * n + k], expected)
            np.testing.assert_array_equal(crops[10 * n + 5 + k],
                                          expected[:, ::-1])


def test_oversample_accepts_an_array_and_checks_sizes():
    batch = np.zeros((3, 4, 4, 3))
    assert io.oversample(batch, (4, 4)).shape == (30, 4, 4, 3)
    with pytest.raises(KaffeError, match="crops must fit"):
        io.oversample(batch, (5, 4))
