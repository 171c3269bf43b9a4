"""Lstm (OCR forks): a NumPy reference written from the fork's loop,
gradients (with and without clipping), shapes and errors."""
import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, empty_blobs,
                                    make_layer, setup_layer)


def text(hidden=4, extra=""):
    return (f'name: "lstm" type: "Lstm" lstm_param {{ num_output: {hidden} '
            f'weight_filler {{ type: "gaussian" std: 0.5 }} '
            f'bias_filler {{ type: "gaussian" std: 0.5 }} {extra} }}')


def fork_forward(x, w_i, w_h, b):
    """lstm_layer.cpp's Forward_cpu per sequence n (each with its own
    recurrent term): sigmoid 1/(1+e^−a), cont = t > 0."""
    steps, streams = x.shape[:2]
    hidden = w_h.shape[1]
    out = np.zeros((steps, streams, hidden))
    sig = lambda a: 1.0 / (1.0 + np.exp(-a))
    for n in range(streams):
        h_prev = np.zeros(hidden)
        c_prev = np.zeros(hidden)
        for t in range(steps):
            pre = w_i @ x[t, n].ravel() + b
            if t > 0:
                pre = pre + w_h @ h_prev
            i = sig(pre[:hidden])
            f = sig(pre[hidden:2 * hidden]) if t > 0 else 0.0
            o = sig(pre[2 * hidden:3 * hidden])
            g = np.tanh(pre[3 * hidden:])
            c = f * c_prev + i * g
            h = o * np.tanh(c)
            out[t, n] = h
            h_prev, c_prev = h, c
    return out


@pytest.mark.parametrize("shape", [(5, 1, 3), (4, 3, 2, 2)])
def test_forward_matches_the_fork(shape):
    x = np.random.default_rng(0).standard_normal(shape)
    layer, _, top = setup_layer(text(), [x])
    assert top[0].shape == shape[:2] + (4,)
    assert [b.shape for b in layer.blobs] == [(16, int(np.prod(shape[2:]))),
                                              (16, 4), (16,)]
    np.testing.assert_allclose(
        top[0].data, fork_forward(x, *(b.data for b in layer.blobs)),
        rtol=1e-12, atol=1e-12)


def test_gradients():
    x = np.random.default_rng(1).standard_normal((4, 2, 3))
    layer, bottom, top = setup_layer(text(3), [x])
    check_gradients(layer, bottom, top)


def test_clipping_bounds_the_gate_derivatives():
    x = np.random.default_rng(2).standard_normal((3, 1, 2)) * 3
    plain, bottom, top = setup_layer(text(2), [x])
    clipped = make_layer(text(2, "clipping_threshold: 0.01"))
    clipped.blobs = plain.blobs
    cb, ct = blobs_from([x]), empty_blobs(1)
    clipped.SetUp(cb, ct)
    clipped.Forward(cb, ct)
    top[0].diff[...] = ct[0].diff[...] = 10.0
    plain.Backward(top, [True], bottom)
    big = np.abs(bottom[0].diff).max()
    clipped.Backward(ct, [True], cb)
    w_i = plain.blobs[0].data
    assert np.abs(cb[0].diff).max() <= 0.01 * np.abs(w_i).sum(axis=0).max()
    assert np.abs(cb[0].diff).max() < big


def test_wrong_input_size_after_setup():
    layer, bottom, top = setup_layer(text(), [np.zeros((2, 1, 3))])
    bottom[0].reshape((2, 1, 4))
    with pytest.raises(KaffeShapeError):
        layer.Forward(bottom, top)


def test_num_output_required():
    layer = make_layer('name: "lstm" type: "Lstm"')
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([np.zeros((2, 1, 3))]), empty_blobs(1))
    check_layer_error(info, "lstm_param.num_output", "0", layer="lstm")
