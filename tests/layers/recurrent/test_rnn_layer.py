"""RNN: shapes, loop reference, carried state, gradients, torch, errors."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, empty_blobs, make_layer,
                                    setup_layer)

check_error = partial(check_layer_error, layer="rnn")

FILLERS = ('weight_filler { type: "gaussian" std: 0.5 } '
           'bias_filler { type: "gaussian" std: 0.5 }')


def rnn(num_output=3, extra=""):
    return (f'name: "rnn" type: "RNN" recurrent_param {{ '
            f'num_output: {num_output} {FILLERS} {extra} }}')


def reference(x, cont, w_xh, b_h, w_hh, w_ho, b_o, h0=None, x_static=None,
              w_static=None):
    """Caffe's RNN one stream and one timestep at a time:
    h_t = tanh(W_hh·(cont_t·h_{t−1}) + W_xh·x_t + b_h
              [+ W_xh_static·x_static]),
    o_t = tanh(W_ho·h_t + b_o). Returns (o, h), both (T, N, H)."""
    steps, streams = cont.shape
    hidden = w_hh.shape[0]
    x = x.reshape(steps, streams, -1)
    h = np.zeros((steps, streams, hidden))
    o = np.zeros((steps, streams, hidden))
    for n in range(streams):
        h_prev = np.zeros(hidden) if h0 is None else h0[0, n]
        for t in range(steps):
            a = w_hh @ (cont[t, n] * h_prev) + w_xh @ x[t, n] + b_h
            if x_static is not None:
                a = a + w_static @ x_static[n].ravel()
            h[t, n] = np.tanh(a)
            o[t, n] = np.tanh(w_ho @ h[t, n] + b_o)
            h_prev = h[t, n]
    return o, h


def inputs(steps=4, streams=2, features=(3,), seed=0):
    x = np.random.default_rng(seed).standard_normal((steps, streams)
                                                    + features)
    cont = np.ones((steps, streams))
    cont[0] = 0
    cont[min(2, steps - 1), 1] = 0
    return x, cont


@pytest.mark.parametrize("x_shape, static_shape, expose, blob_shapes", [
    ((4, 2, 3), None, False, [(5, 3), (5,), (5, 5), (5, 5), (5,)]),
    ((3, 1, 2, 2), None, True, [(5, 4), (5,), (5, 5), (5, 5), (5,)]),
    ((2, 3, 4), (3, 6), False, [(5, 4), (5,), (5, 6), (5, 5), (5, 5), (5,)]),
])
def test_shapes(x_shape, static_shape, expose, blob_shapes):
    steps, streams = x_shape[:2]
    bottoms = [np.zeros(x_shape), np.zeros((steps, streams))]
    if static_shape:
        bottoms.append(np.zeros(static_shape))
    if expose:
        bottoms.append(np.zeros((1, streams, 5)))
    extra = "expose_hidden: true" if expose else ""
    layer, _, top = setup_layer(rnn(5, extra), bottoms, 2 if expose else 1)
    assert top[0].shape == (steps, streams, 5)
    assert [t.shape for t in top[1:]] == [(1, streams, 5)] * expose
    assert [b.shape for b in layer.blobs] == blob_shapes
    assert layer.param_names == (["W_xh", "b_h"]
                                 + ["W_xh_static"] * bool(static_shape)
                                 + ["W_hh", "W_ho", "b_o"])


@pytest.mark.parametrize("static, expose", [
    (False, False), (True, False), (False, True), (True, True)])
def test_forward_matches_loops(static, expose):
    rng = np.random.default_rng(1)
    x, cont = inputs(steps=5, streams=3, features=(2, 2))
    bottoms = [x, cont]
    x_static = rng.standard_normal((3, 2, 2)) if static else None
    if static:
        bottoms.append(x_static)
    h0 = None
    if expose:
        cont[0, 2] = 1
        h0 = rng.standard_normal((1, 3, 4))
        bottoms.append(h0)
    layer, _, top = setup_layer(
        rnn(4, "expose_hidden: true" if expose else ""), bottoms,
        2 if expose else 1)
    w = [b.data for b in layer.blobs]
    w_static = w.pop(2) if static else None
    o, h = reference(x, cont, *w, h0=h0, x_static=x_static,
                     w_static=w_static)
    np.testing.assert_allclose(top[0].data, o, rtol=1e-12, atol=1e-12)
    if expose:
        np.testing.assert_allclose(top[1].data[0], h[-1], rtol=1e-12)


def test_hidden_state_carries_over_between_forwards():
    x, cont = inputs(steps=4, streams=2)
    whole, _, top = setup_layer(rnn(3), [x, cont])
    half = make_layer(rnn(3))
    bottom, half_top = blobs_from([x[:2], cont[:2]]), empty_blobs(1)
    half.SetUp(bottom, half_top)
    for ours, theirs in zip(half.blobs, whole.blobs):
        ours.data[...] = theirs.data
    for start in (0, 2):
        bottom[0].data[...] = x[start:start + 2]
        bottom[1].data[...] = cont[start:start + 2]
        half.Forward(bottom, half_top)
        np.testing.assert_allclose(half_top[0].data,
                                   top[0].data[start:start + 2], rtol=1e-12)


@pytest.mark.parametrize("static", [False, True])
def test_gradients(static):
    x, cont = inputs(steps=4, streams=2, features=(2,))
    bottoms = [x, cont]
    if static:
        bottoms.append(np.random.default_rng(2).standard_normal((2, 3)))
    layer, bottom, top = setup_layer(rnn(3), bottoms)
    check_gradients(layer, bottom, top, check_bottom=[0, 2] if static else [0])


def test_gradients_with_exposed_hidden_state():
    rng = np.random.default_rng(3)
    x, cont = inputs(steps=3, streams=2, features=(2,))
    cont[0] = 1
    layer, bottom, top = setup_layer(
        rnn(3, "expose_hidden: true"),
        [x, cont, rng.standard_normal((2, 2)),
         rng.standard_normal((1, 2, 3))], 2)
    check_gradients(layer, bottom, top, check_bottom=[0, 2], check_top=[0])
    # As in Caffe, the exposed initial state receives no gradient.
    bottom[3].diff[...] = 4
    layer.Backward(top, [True, False, True, True], bottom)
    assert not bottom[3].diff.any()


def test_param_diffs_accumulate_and_bottom_diff_is_overwritten():
    x, cont = inputs()
    layer, bottom, top = setup_layer(rnn(3), [x, cont])
    top[0].diff[...] = np.random.default_rng(4).standard_normal(top[0].shape)
    for blob in layer.blobs:
        blob.diff[...] = 0
    layer.Backward(top, [True, False], bottom)
    first = [blob.diff.copy() for blob in layer.blobs]
    dx = bottom[0].diff.copy()
    layer.Backward(top, [True, False], bottom)
    for blob, once in zip(layer.blobs, first):
        np.testing.assert_allclose(blob.diff, 2 * once)
    np.testing.assert_allclose(bottom[0].diff, dx)


def test_matches_torch_rnn_forward_and_gradients():
    torch = pytest.importorskip("torch")
    steps, streams, features, hidden = 5, 3, 4, 6
    x = np.random.default_rng(5).standard_normal((steps, streams, features))
    cont = np.ones((steps, streams))
    cont[0] = 0
    layer, bottom, top = setup_layer(rnn(hidden), [x, cont])
    w_xh, b_h, w_hh, w_ho, b_o = (torch.from_numpy(b.data.copy())
                                  for b in layer.blobs)
    net = torch.nn.RNN(features, hidden, dtype=torch.float64)
    with torch.no_grad():
        net.weight_ih_l0.copy_(w_xh)
        net.weight_hh_l0.copy_(w_hh)
        net.bias_ih_l0.copy_(b_h)
        net.bias_hh_l0.zero_()
    w_ho.requires_grad_()
    b_o.requires_grad_()
    xt = torch.from_numpy(x.copy()).requires_grad_()
    out = torch.tanh(net(xt)[0] @ w_ho.T + b_o)
    np.testing.assert_allclose(top[0].data, out.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    weights = np.random.default_rng(6).standard_normal(top[0].shape)
    (out * torch.from_numpy(weights)).sum().backward()
    top[0].diff[...] = weights
    for blob in layer.blobs:
        blob.diff[...] = 0
    layer.Backward(top, [True, False], bottom)
    np.testing.assert_allclose(bottom[0].diff, xt.grad.numpy(), rtol=1e-9,
                               atol=1e-12)
    expected = (net.weight_ih_l0.grad, net.bias_ih_l0.grad,
                net.weight_hh_l0.grad, w_ho.grad, b_o.grad)
    for blob, grad in zip(layer.blobs, expected):
        np.testing.assert_allclose(blob.diff, grad.numpy(), rtol=1e-9,
                                   atol=1e-12)


# -- errors ----------------------------------------------------------------
def test_num_output_is_required():
    text = 'name: "rnn" type: "RNN" recurrent_param { expose_hidden: false }'
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(text, list(inputs()))
    check_error(info, "recurrent_param.num_output", "0")


@pytest.mark.parametrize("extra, count", [
    ("", 1), ("", 4), ("expose_hidden: true", 2), ("expose_hidden: true", 5)])
def test_bottom_count(extra, count):
    layer = make_layer(rnn(3, extra))
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([np.zeros((2, 2, 3))] * count),
                    empty_blobs(2 if extra else 1))
    check_error(info, "bottom", f"'{count} bottom blob(s)'")


def test_cont_must_be_t_by_n():
    x, _ = inputs(steps=4, streams=2)
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(rnn(3), [x, np.zeros((2, 4))])
    check_error(info, "bottom[1] (cont)", "(2, 4)")


def test_x_static_shape():
    x, cont = inputs(steps=4, streams=2)
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(rnn(3), [x, cont, np.zeros((5, 4))])
    check_error(info, "bottom[2] (x_static)", "(5, 4)")


def test_exposed_state_shape():
    x, cont = inputs(steps=4, streams=2)
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(rnn(3, "expose_hidden: true"),
                    [x, cont, np.zeros((1, 2, 4))], 2)
    check_error(info, "bottom[2] (h_0)", "(1, 2, 4)")


def test_timesteps_are_fixed_after_setup():
    layer, bottom, top = setup_layer(rnn(3), list(inputs(steps=4)))
    bottom[0].reshape((3, 2, 3))
    bottom[1].reshape((3, 2))
    with pytest.raises(KaffeShapeError) as info:
        layer.Forward(bottom, top)
    check_error(info, "bottom[0] (x)", "(3, 2, 3)")


def test_no_gradient_to_cont():
    layer, bottom, top = setup_layer(rnn(3), list(inputs()))
    assert not layer.allow_force_backward(1)
    with pytest.raises(KaffeConfigError) as info:
        layer.Backward(top, [False, True], bottom)
    check_error(info, "propagate_down", "'true for bottom[1]'")
