"""kaffe.Detector (pycaffe's caffe.Detector): windows of PNG images through a
tiny conv net, with and without R-CNN context padding."""
import numpy as np
import pytest

import kaffe
from kaffe import KaffeError, io
from kaffe.detector import Detector

Image = pytest.importorskip("PIL.Image")

NET = """
name: "tiny"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 2 dim: 3 dim: 6 dim: 6 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 2 kernel_size: 3
          weight_filler { type: "gaussian" std: 0.1 }
          bias_filler { type: "constant" value: 0.1 } } }
layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc"
        inner_product_param { num_output: 4
          weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""
MEAN = np.array([100.0, 110.0, 120.0])            # BGR, 0-255 space


@pytest.fixture
def files(tmp_path):
    """(prototxt, caffemodel, [two PNG paths])."""
    proto = tmp_path / "deploy.prototxt"
    proto.write_text(NET)
    kaffe.set_random_seed(5)
    weights = str(tmp_path / "tiny.caffemodel")
    kaffe.Net(str(proto), kaffe.TEST).save(weights)
    rng = np.random.default_rng(0)
    paths = []
    for i, shape in enumerate([(10, 12, 3), (9, 8, 3)]):
        path = str(tmp_path / f"im{i}.png")
        Image.fromarray((rng.random(shape) * 255).astype(np.uint8)).save(path)
        paths.append(path)
    return str(proto), weights, paths


def make_detector(files, **kwargs):
    proto, weights, _ = files
    options = dict(mean=MEAN, raw_scale=255, channel_swap=(2, 1, 0))
    options.update(kwargs)
    return Detector(proto, weights, **options)


def forward_one(det, crop):
    """The net's output for one window, preprocessed by hand: warp to 6×6,
    RGB [0,1] → BGR [0,255] − mean, C×H×W."""
    warped = io.resize_image(crop, (6, 6))
    blob = (warped[:, :, ::-1] * 255.0 - MEAN).transpose(2, 0, 1)
    return det.forward(data=np.stack([blob, blob]))["prob"][0].copy()


def test_detect_windows_without_context(files):
    det = make_detector(files)
    assert isinstance(det, kaffe.Net)
    assert list(det.crop_dims) == [6, 6, 3]
    paths = files[2]
    windows = [[(0, 0, 5, 5), (2, 3, 10, 12), (1, 1, 7, 9)], [(0, 0, 9, 8)]]
    # a zip is read once (pycaffe's detect_selective_search passed a zip)
    detections = det.detect_windows(zip(paths, windows))
    assert len(detections) == 4
    flat = [(p, w) for p, ws in zip(paths, windows) for w in ws]
    expected = []
    for path, (y0, x0, y1, x1) in flat:
        expected.append(forward_one(det, io.load_image(path)[y0:y1, x0:x1]))
    for det_, (path, window), exp in zip(detections, flat, expected):
        assert set(det_) == {"window", "prediction", "filename"}
        assert det_["filename"] == path and det_["window"] == window
        assert det_["prediction"].shape == (4,)
        np.testing.assert_allclose(det_["prediction"], exp, rtol=1e-5,
                                   atol=1e-7)


def test_no_windows_no_detections(files):
    assert make_detector(files).detect_windows([(files[2][0], [])]) == []


def test_crop_without_context_is_a_slice(files):
    det = make_detector(files)
    im = np.arange(10 * 12 * 3, dtype=np.float32).reshape(10, 12, 3)
    np.testing.assert_array_equal(det.crop(im, np.array([2, 3, 7, 9])),
                                  im[2:7, 3:9])


def test_context_crop_by_hand(files):
    """Input 6×6, context_pad 1: scale 6/4. Window (0, 0, 3, 3): half size 2,
    centre (2, 2), box round(2 ∓ 3) = (−1, −1, 5, 5), 7 px → scale 6/7;
    pad = round(1·6/7) = 1; clipped box (0, 0, 5, 5) is 6 px → round(36/7)
    = 5 px. So crop[1:6, 1:6] is im[0:5, 0:5] (warped 5×5 → 5×5) and the
    first row and column are the mean in image space."""
    det = make_detector(files, context_pad=1)
    crop_mean = MEAN[::-1] / 255.0                 # RGB, [0, 1]
    np.testing.assert_allclose(det.crop_mean.reshape(3), crop_mean)
    rng = np.random.default_rng(1)
    im = rng.random((10, 12, 3)).astype(np.float32)
    crop = det.crop(im, np.array([0, 0, 3, 3]))
    assert crop.shape == (6, 6, 3) and crop.dtype == np.float32
    np.testing.assert_allclose(crop[1:, 1:], im[0:5, 0:5], rtol=1e-5)
    np.testing.assert_allclose(crop[0], np.broadcast_to(crop_mean, (6, 3)),
                               rtol=1e-6)
    np.testing.assert_allclose(crop[:, 0], np.broadcast_to(crop_mean, (6, 3)),
                               rtol=1e-6)


def test_context_crop_inside_the_image(files):
    """Window (4, 4, 5, 5) in a 20×20 image: 2 px → box round(5 ∓ 1.5) =
    (4, 4, 6, 6) (round half to even), 3 px, scale 2; no padding; the 2×2
    crop im[4:6, 4:6] is resized to round(3·2) = 6 pixels."""
    det = make_detector(files, context_pad=1)
    im = np.random.default_rng(2).random((20, 20, 3)).astype(np.float32)
    crop = det.crop(im, (4, 4, 5, 5))
    np.testing.assert_allclose(crop, io.resize_image(im[4:6, 4:6], (6, 6)),
                               rtol=1e-6)


def test_context_crop_without_mean_pads_with_zeros(files):
    det = make_detector(files, mean=None, context_pad=1)
    np.testing.assert_array_equal(det.crop_mean, np.zeros((6, 6, 3)))
    crop = det.crop(np.ones((10, 12, 3), np.float32), (0, 0, 3, 3))
    np.testing.assert_array_equal(crop[0], 0)
    np.testing.assert_allclose(crop[1:, 1:], 1)


def test_detect_windows_with_context(files):
    det = make_detector(files, context_pad=1)
    path = files[2][0]
    detections = det.detect_windows([(path, [(0, 0, 3, 3)])])
    expected = forward_one(det, det.crop(io.load_image(path), (0, 0, 3, 3)))
    np.testing.assert_allclose(detections[0]["prediction"], expected,
                               rtol=1e-5, atol=1e-7)


def test_window_outside_the_image(files):
    det = make_detector(files, context_pad=1)
    with pytest.raises(KaffeError, match="outside the image"):
        det.crop(np.zeros((10, 12, 3), np.float32), (30, 30, 40, 40))


def test_selective_search_is_not_available(files):
    det = make_detector(files)
    with pytest.raises(KaffeError, match="detect_windows"):
        det.detect_selective_search(files[2])
