"""Helpers for parity tests against OpenCV's independent Caffe importer.

``opencv_net`` loads a prototxt + caffemodel with ``cv2.dnn.readNetFromCaffe``
on OpenCV's own CPU backend with layer fusion off, so that every layer's own
output can be compared; ``assert_close`` compares a kaffe blob with OpenCV's
array, allowing float32 rounding relative to the blob's scale (sums done in
another order; elements near zero suffer cancellation).
"""
import numpy as np


def opencv_net(prototxt, weights=None, inputs=None):
    """The OpenCV dnn net for these files, fusion off, inputs set.

    Args:
        prototxt, weights: paths (weights may be None).
        inputs: {input blob name: float32 array} to set.
    """
    import cv2
    net = (cv2.dnn.readNetFromCaffe(str(prototxt), str(weights))
           if weights is not None else cv2.dnn.readNetFromCaffe(str(prototxt)))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.enableFusion(False)
    for name, value in (inputs or {}).items():
        net.setInput(value, name)
    return net


def assert_close(ours, expected, what, rtol=1e-4, atol_scale=1e-5):
    """kaffe's ``ours`` equals OpenCV's ``expected`` (same values; OpenCV may
    keep another shape of the same size)."""
    assert ours.size == expected.size, f"{what}: {ours.shape} vs {expected.shape}"
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(ours.reshape(expected.shape), expected,
                               rtol=rtol, atol=atol_scale * scale,
                               err_msg=what)


def saved_random_net(folder, name, text, seed=7):
    """Write ``text`` as ``<name>.prototxt`` in ``folder``, build the TEST net
    with kaffe's fillers seeded, save its weights as ``<name>.caffemodel``.

    Returns (net, prototxt path, caffemodel path), paths as strings.
    """
    import kaffe
    prototxt = folder / f"{name}.prototxt"
    prototxt.write_text(text)
    kaffe.set_random_seed(seed)
    net = kaffe.Net(str(prototxt), kaffe.TEST)
    weights = folder / f"{name}.caffemodel"
    net.save(str(weights))
    return net, str(prototxt), str(weights)
