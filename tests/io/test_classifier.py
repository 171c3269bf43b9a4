"""kaffe.Classifier (pycaffe's caffe.Classifier) end to end on a tiny conv net
whose weights kaffe itself writes to a .caffemodel."""
import numpy as np
import pytest

import kaffe
from kaffe import KaffeError, io
from kaffe.classifier import Classifier

NET = """
name: "tiny"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 4 dim: 3 dim: 6 dim: 6 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 2 kernel_size: 3
          weight_filler { type: "gaussian" std: 0.1 }
          bias_filler { type: "constant" value: 0.1 } } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc"
        inner_product_param { num_output: 5
          weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""
MEAN = np.array([100.0, 110.0, 120.0])            # BGR, 0-255 space


@pytest.fixture
def model(tmp_path):
    """(prototxt path, caffemodel path, the net that wrote the weights)."""
    proto = tmp_path / "deploy.prototxt"
    proto.write_text(NET)
    kaffe.set_random_seed(3)
    net = kaffe.Net(str(proto), kaffe.TEST)
    weights = str(tmp_path / "tiny.caffemodel")
    net.save(weights)
    return str(proto), weights, net


def reference_blob(crop):
    """CaffeNet-style preprocessing written out: RGB [0,1] H×W×3 → BGR
    [0,255] minus the mean, C×H×W."""
    return (crop[:, :, ::-1] * 255.0 - MEAN).transpose(2, 0, 1)


def reference_probs(net, crops):
    net.blobs["data"].reshape(len(crops), 3, 6, 6)
    net.reshape()
    out = net.forward(data=np.stack([reference_blob(c) for c in crops]))
    return out["prob"].copy()


def make_classifier(model, **kwargs):
    proto, weights, _ = model
    options = dict(mean=MEAN, raw_scale=255, channel_swap=(2, 1, 0))
    options.update(kwargs)
    return Classifier(proto, weights, **options)


def test_is_a_net_with_the_trained_weights(model):
    clf = make_classifier(model)
    assert isinstance(clf, kaffe.Net)
    np.testing.assert_array_equal(clf.params["conv"][0].data,
                                  model[2].params["conv"][0].data)
    assert list(clf.crop_dims) == [6, 6]
    assert list(clf.image_dims) == [6, 6]        # default: the input's size
    assert clf.transformer.transpose["data"] == (2, 0, 1)


def test_center_only_prediction(model):
    rng = np.random.default_rng(0)
    images = [rng.random((8, 8, 3)).astype(np.float32) for _ in range(3)]
    clf = make_classifier(model, image_dims=(8, 8))
    probs = clf.predict(images, oversample=False)
    assert probs.shape == (3, 5)
    # 8×8 stays 8×8; the centre 6×6 crop starts at int(4 − 3) = 1.
    expected = reference_probs(model[2], [im[1:7, 1:7] for im in images])
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-7)


def test_oversampled_prediction_averages_ten_crops(model):
    rng = np.random.default_rng(1)
    image = rng.random((8, 8, 3)).astype(np.float32)
    clf = make_classifier(model, image_dims=(8, 8))
    probs = clf.predict([image])
    assert probs.shape == (1, 5)
    corners = [(0, 0), (0, 2), (2, 0), (2, 2), (1, 1)]
    crops = [image[y:y + 6, x:x + 6] for y, x in corners]
    crops += [c[:, ::-1] for c in crops]
    expected = reference_probs(model[2], crops).mean(axis=0)
    np.testing.assert_allclose(probs[0], expected, rtol=1e-5, atol=1e-7)


def test_images_are_resized_first(model):
    rng = np.random.default_rng(2)
    image = rng.random((13, 10, 3)).astype(np.float32)
    clf = make_classifier(model, image_dims=(8, 8))
    resized = io.resize_image(image, (8, 8))
    np.testing.assert_allclose(clf.predict([image], oversample=False),
                               reference_probs(model[2], [resized[1:7, 1:7]]),
                               rtol=1e-5, atol=1e-7)


def test_batches_do_not_change_results(model):
    """7 images × 10 crops = 70 rows through a batch-4 net: 18 batches, the
    last one zero-padded and stripped."""
    rng = np.random.default_rng(3)
    images = rng.random((7, 9, 9, 3)).astype(np.float32)
    clf = make_classifier(model, image_dims=(7, 7))
    together = clf.predict(images)
    one_by_one = np.concatenate([clf.predict(images[i:i + 1])
                                 for i in range(7)])
    assert together.shape == (7, 5)
    np.testing.assert_allclose(together, one_by_one, rtol=1e-6)


def test_mean_image_of_another_size(model):
    mean = np.empty((3, 12, 12))
    mean[:] = MEAN[:, None, None]
    clf = make_classifier(model, mean=mean)
    np.testing.assert_allclose(clf.transformer.mean["data"],
                               np.broadcast_to(MEAN[:, None, None], (3, 6, 6)),
                               rtol=1e-6)


def test_image_dims_smaller_than_the_input(model):
    clf = make_classifier(model, image_dims=(4, 4))
    with pytest.raises(KaffeError, match="image_dims"):
        clf.predict([np.zeros((8, 8, 3), np.float32)])


def test_matches_opencv_dnn(model):
    """The same prototxt and caffemodel in OpenCV's Caffe importer, fed with
    cv2.dnn.blobFromImage (swapRB, mean in BGR, scalefactor = input_scale),
    give the probabilities of a centre-only prediction of an image of the
    input's size."""
    cv2 = pytest.importorskip("cv2")
    proto, weights, _ = model
    rng = np.random.default_rng(4)
    image = rng.random((6, 6, 3)).astype(np.float32)
    clf = make_classifier(model, input_scale=0.5)
    probs = clf.predict([image], oversample=False)
    ocv = cv2.dnn.readNetFromCaffe(proto, weights)
    ocv.setInput(cv2.dnn.blobFromImage(image * 255, scalefactor=0.5,
                                       size=(6, 6), mean=tuple(MEAN),
                                       swapRB=True, crop=False))
    np.testing.assert_allclose(probs, ocv.forward(), rtol=1e-4, atol=1e-6)
