"""LSTM: shapes, loop reference, carried state, gradients, torch, errors."""
from functools import partial

import numpy as np
import pytest
from google.protobuf import text_format

import kaffe
from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.core.registry import create_layer
from kaffe.proto import caffe_pb2
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, empty_blobs,
                                    layer_param, make_layer, setup_layer)

check_error = partial(check_layer_error, layer="lstm")

FILLERS = ('weight_filler { type: "gaussian" std: 0.5 } '
           'bias_filler { type: "gaussian" std: 0.5 }')


def lstm(num_output=3, extra=""):
    return (f'name: "lstm" type: "LSTM" recurrent_param {{ '
            f'num_output: {num_output} {FILLERS} {extra} }}')


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def reference(x, cont, w_xc, b_c, w_hc, h0=None, c0=None, x_static=None,
              w_static=None):
    """Caffe's LSTM one stream, one timestep and one unit at a time.

    gates = W_hc·(cont_t·h_{t−1}) + W_xc·x_t + b_c [+ W_xc_static·x_static],
    blocks of H in the order i, f, o, g;
    c_t = cont_t·σ(f)·c_{t−1} + σ(i)·tanh(g);  h_t = σ(o)·tanh(c_t).
    Returns (h, c), both (T, N, H).
    """
    steps, streams = cont.shape
    hidden = w_hc.shape[1]
    x = x.reshape(steps, streams, -1)
    h = np.zeros((steps, streams, hidden))
    c = np.zeros((steps, streams, hidden))
    for n in range(streams):
        h_prev = np.zeros(hidden) if h0 is None else h0[0, n]
        c_prev = np.zeros(hidden) if c0 is None else c0[0, n]
        for t in range(steps):
            a = w_hc @ (cont[t, n] * h_prev) + w_xc @ x[t, n] + b_c
            if x_static is not None:
                a = a + w_static @ x_static[n].ravel()
            for d in range(hidden):
                i = sigmoid(a[d])
                f = sigmoid(a[hidden + d])
                o = sigmoid(a[2 * hidden + d])
                g = np.tanh(a[3 * hidden + d])
                c[t, n, d] = cont[t, n] * f * c_prev[d] + i * g
                h[t, n, d] = o * np.tanh(c[t, n, d])
            h_prev, c_prev = h[t, n], c[t, n]
    return h, c


def inputs(steps=4, streams=2, features=(3,), seed=0):
    """x (T, N, …) and a cont with a fresh start at t = 0 and resets later."""
    x = np.random.default_rng(seed).standard_normal((steps, streams)
                                                    + features)
    cont = np.ones((steps, streams))
    cont[0] = 0
    cont[min(2, steps - 1), 0] = 0
    return x, cont


@pytest.mark.parametrize("x_shape, static_shape, expose, blob_shapes", [
    ((4, 2, 3), None, False, [(12, 3), (12,), (12, 3)]),
    ((3, 5, 2, 3), None, True, [(12, 6), (12,), (12, 3)]),
    ((2, 3, 4), (3, 2, 2), False, [(12, 4), (12,), (12, 4), (12, 3)]),
])
def test_shapes(x_shape, static_shape, expose, blob_shapes):
    steps, streams = x_shape[:2]
    bottoms = [np.zeros(x_shape), np.zeros((steps, streams))]
    if static_shape:
        bottoms.append(np.zeros(static_shape))
    if expose:
        bottoms += [np.zeros((1, streams, 3))] * 2
    extra = "expose_hidden: true" if expose else ""
    layer, _, top = setup_layer(lstm(3, extra), bottoms, 3 if expose else 1)
    assert top[0].shape == (steps, streams, 3)
    assert [t.shape for t in top[1:]] == [(1, streams, 3)] * (2 * expose)
    assert [b.shape for b in layer.blobs] == blob_shapes
    names = ["W_xc", "b_c"] + ["W_xc_static"] * bool(static_shape) + ["W_hc"]
    assert layer.param_names == names


@pytest.mark.parametrize("static, expose", [
    (False, False), (True, False), (False, True), (True, True)])
def test_forward_matches_loops(static, expose):
    rng = np.random.default_rng(1)
    x, cont = inputs(steps=5, streams=3, features=(2, 2))
    bottoms = [x, cont]
    x_static = rng.standard_normal((3, 4)) if static else None
    if static:
        bottoms.append(x_static)
    h0 = c0 = None
    if expose:
        cont[0, 1] = 1      # stream 1 continues from the given state
        h0, c0 = rng.standard_normal((2, 1, 3, 3))
        bottoms += [h0, c0]
    layer, _, top = setup_layer(
        lstm(3, "expose_hidden: true" if expose else ""), bottoms,
        3 if expose else 1)
    w = [b.data for b in layer.blobs]
    w_static = w.pop(2) if static else None
    h, c = reference(x, cont, *w, h0=h0, c0=c0, x_static=x_static,
                     w_static=w_static)
    np.testing.assert_allclose(top[0].data, h, rtol=1e-12, atol=1e-12)
    if expose:
        np.testing.assert_allclose(top[1].data[0], h[-1], rtol=1e-12)
        np.testing.assert_allclose(top[2].data[0], c[-1], rtol=1e-12)


def test_forward_float32_close_to_float64():
    x, cont = inputs(seed=2)
    layer, bottom, top = setup_layer(lstm(4), [x, cont])
    layer32 = make_layer(lstm(4), dtype=np.float32)
    bottom32 = blobs_from([x, cont], dtype=np.float32)
    top32 = empty_blobs(1, dtype=np.float32)
    layer32.SetUp(bottom32, top32)
    for ours, theirs in zip(layer32.blobs, layer.blobs):
        ours.data[...] = theirs.data
    layer32.Forward(bottom32, top32)
    assert top32[0].data.dtype == np.float32
    np.testing.assert_allclose(top32[0].data, top[0].data, atol=1e-6)


def test_hidden_state_carries_over_between_forwards():
    """Without expose_hidden, each forward starts from the previous final
    state (zeros at first); cont = 0 at t = 0 ignores it."""
    x, cont = inputs(steps=6, streams=2)
    whole, _, top = setup_layer(lstm(3), [x, cont])
    half = make_layer(lstm(3))
    bottom = blobs_from([x[:3], cont[:3]])
    half_top = empty_blobs(1)
    half.SetUp(bottom, half_top)
    for ours, theirs in zip(half.blobs, whole.blobs):
        ours.data[...] = theirs.data
    half.Forward(bottom, half_top)
    np.testing.assert_allclose(half_top[0].data, top[0].data[:3], rtol=1e-12)
    bottom[0].data[...] = x[3:]
    bottom[1].data[...] = cont[3:]
    half.Forward(bottom, half_top)
    np.testing.assert_allclose(half_top[0].data, top[0].data[3:], rtol=1e-12)
    # cont = 0 at the start of a batch: a fresh sequence, same as from zeros.
    bottom[1].data[0] = 0
    half.Forward(bottom, half_top)
    w = [b.data for b in whole.blobs]
    np.testing.assert_allclose(half_top[0].data,
                               reference(x[3:], bottom[1].data, *w)[0],
                               rtol=1e-12)
    # reset() zeroes the carried state: cont = 1 then continues from zeros.
    half.reset()
    bottom[1].data[...] = 1
    half.Forward(bottom, half_top)
    np.testing.assert_allclose(half_top[0].data,
                               reference(x[3:], bottom[1].data, *w)[0],
                               rtol=1e-12)


def test_batch_size_may_change_and_the_state_buffer_is_reused():
    """T is fixed, N may change. The carried state lives in a blob, as in
    Caffe: a smaller N reads the first N·H values of the old (1, N, H) state,
    a larger one than ever before starts from fresh zeros."""
    x, cont = inputs(steps=3, streams=3)
    layer, bottom, top = setup_layer(lstm(2), [x, cont])
    w = [b.data for b in layer.blobs]
    h, c = reference(x, cont, *w)
    ones = np.ones((3, 2))
    bottom[0].reshape((3, 2, 3))
    bottom[1].reshape((3, 2))
    bottom[0].data[...] = x[:, :2]
    bottom[1].data[...] = ones
    layer.Forward(bottom, top)
    assert top[0].shape == (3, 2, 2)
    expected = reference(x[:, :2], ones, *w, h0=h[-1:, :2], c0=c[-1:, :2])[0]
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-12)
    bigger = np.random.default_rng(9).standard_normal((3, 4, 3))
    bottom[0].reshape(bigger.shape)
    bottom[1].reshape((3, 4))
    bottom[0].data[...] = bigger
    bottom[1].data[...] = 1
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data,
                               reference(bigger, np.ones((3, 4)), *w)[0],
                               rtol=1e-12)


@pytest.mark.parametrize("static", [False, True])
def test_gradients(static):
    x, cont = inputs(steps=4, streams=2, features=(2,))
    bottoms = [x, cont]
    if static:
        bottoms.append(np.random.default_rng(3).standard_normal((2, 3)))
    layer, bottom, top = setup_layer(lstm(3), bottoms)
    check_gradients(layer, bottom, top, check_bottom=[0, 2] if static else [0])


def test_gradients_with_exposed_hidden_state():
    rng = np.random.default_rng(4)
    x, cont = inputs(steps=3, streams=2, features=(2,))
    cont[0, 1] = 1
    h0, c0 = rng.standard_normal((2, 1, 2, 3))
    layer, bottom, top = setup_layer(
        lstm(3, "expose_hidden: true"),
        [x, cont, rng.standard_normal((2, 2)), h0, c0], 3)
    check_gradients(layer, bottom, top, check_bottom=[0, 2], check_top=[0])


def test_exposed_states_pass_no_gradient():
    """Caffe's inner net shares only the data of h_0/c_0 and h_T/c_T: the
    initial-state bottoms get a zero diff although they change the output,
    and the final-state tops' diffs are ignored."""
    rng = np.random.default_rng(5)
    x, cont = inputs(steps=3, streams=2)
    cont[0] = 1
    h0, c0 = rng.standard_normal((2, 1, 2, 3))
    layer, bottom, top = setup_layer(lstm(3, "expose_hidden: true"),
                                     [x, cont, h0, c0], 3)
    before = top[0].data.copy()
    bottom[2].data[...] += 0.1
    layer.Forward(bottom, top)
    assert not np.allclose(top[0].data, before)
    top[0].diff[...] = rng.standard_normal(top[0].shape)
    bottom[2].diff[...] = bottom[3].diff[...] = 9
    layer.Backward(top, [True, False, True, True], bottom)
    assert not bottom[2].diff.any() and not bottom[3].diff.any()
    dx = bottom[0].diff.copy()
    top[1].diff[...] = top[2].diff[...] = 100
    layer.Backward(top, [True, False, True, True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, dx)


def test_param_diffs_accumulate_and_bottom_diff_is_overwritten():
    x, cont = inputs()
    layer, bottom, top = setup_layer(lstm(3), [x, cont])
    top[0].diff[...] = np.random.default_rng(6).standard_normal(top[0].shape)
    for blob in layer.blobs:
        blob.diff[...] = 0
    layer.Backward(top, [True, False], bottom)
    first = [blob.diff.copy() for blob in layer.blobs]
    dx = bottom[0].diff.copy()
    layer.Backward(top, [True, False], bottom)
    for blob, once in zip(layer.blobs, first):
        np.testing.assert_allclose(blob.diff, 2 * once)
    np.testing.assert_allclose(bottom[0].diff, dx)
    assert all(once.any() for once in first)


def test_param_propagate_down_false_leaves_param_diffs():
    x, cont = inputs()
    layer, bottom, top = setup_layer(lstm(3), [x, cont])
    for i, blob in enumerate(layer.blobs):
        blob.diff[...] = 7
        layer.set_param_propagate_down(i, False)
    top[0].diff[...] = 1
    bottom[0].diff[...] = 5
    layer.Backward(top, [False, False], bottom)
    assert all((blob.diff == 7).all() for blob in layer.blobs)
    assert (bottom[0].diff == 5).all()


def _torch_blocks(w, hidden):
    """Caffe's gate blocks i, f, o, g → torch's i, f, g, o."""
    return w.reshape((4, hidden) + w.shape[1:])[[0, 1, 3, 2]].reshape(w.shape)


def test_matches_torch_lstm_forward_and_gradients():
    torch = pytest.importorskip("torch")
    steps, streams, features, hidden = 5, 3, 4, 6
    x = np.random.default_rng(7).standard_normal((steps, streams, features))
    cont = np.ones((steps, streams))
    cont[0] = 0
    layer, bottom, top = setup_layer(lstm(hidden), [x, cont])
    w_xc, b_c, w_hc = (b.data for b in layer.blobs)
    net = torch.nn.LSTM(features, hidden, dtype=torch.float64)
    with torch.no_grad():
        net.weight_ih_l0.copy_(torch.from_numpy(_torch_blocks(w_xc, hidden)))
        net.weight_hh_l0.copy_(torch.from_numpy(_torch_blocks(w_hc, hidden)))
        net.bias_ih_l0.copy_(torch.from_numpy(_torch_blocks(b_c, hidden)))
        net.bias_hh_l0.zero_()
    xt = torch.from_numpy(x.copy()).requires_grad_()
    out, _ = net(xt)
    np.testing.assert_allclose(top[0].data, out.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    weights = np.random.default_rng(8).standard_normal(top[0].shape)
    (out * torch.from_numpy(weights)).sum().backward()
    top[0].diff[...] = weights
    for blob in layer.blobs:
        blob.diff[...] = 0
    layer.Backward(top, [True, False], bottom)
    np.testing.assert_allclose(bottom[0].diff, xt.grad.numpy(), rtol=1e-9,
                               atol=1e-12)
    for blob, grad in zip(layer.blobs, (net.weight_ih_l0.grad,
                                        net.bias_ih_l0.grad,
                                        net.weight_hh_l0.grad)):
        np.testing.assert_allclose(_torch_blocks(blob.diff, hidden),
                                   grad.numpy(), rtol=1e-9, atol=1e-12)


def test_in_a_net_with_force_backward():
    """cont never gets a gradient, even under force_backward."""
    text = """
    force_backward: true
    layer { name: "in" type: "Input" top: "x" top: "cont" top: "target"
      input_param { shape { dim: 3 dim: 2 dim: 4 } shape { dim: 3 dim: 2 }
                    shape { dim: 3 dim: 2 dim: 5 } } }
    layer { name: "lstm" type: "LSTM" bottom: "x" bottom: "cont" top: "h"
      recurrent_param { num_output: 5
        weight_filler { type: "uniform" min: -0.3 max: 0.3 } } }
    layer { name: "loss" type: "EuclideanLoss" bottom: "h" bottom: "target"
      top: "loss" }
    """
    param = text_format.Parse(text, caffe_pb2.NetParameter())
    param.state.phase = caffe_pb2.TRAIN
    net = kaffe.Net.from_param(param, dtype=np.float64)
    x, cont = inputs(steps=3, streams=2, features=(4,))
    net.blobs["x"].data[...] = x
    net.blobs["cont"].data[...] = cont
    net.blobs["cont"].diff[...] = 3
    net.forward()
    net.backward()
    assert net.blobs["x"].diff.any()
    assert (net.blobs["cont"].diff == 3).all()
    assert net.layer_dict["lstm"].blobs[2].diff.any()


def test_blobs_from_the_layer_parameter_are_kept():
    param = layer_param(lstm(2))
    w_xc, b_c, w_hc = np.full((8, 3), 0.1), np.arange(8.0), np.full((8, 2), -1)
    for array in (w_xc, b_c, w_hc):
        blob = param.blobs.add()
        blob.shape.dim.extend(array.shape)
        blob.double_data.extend(array.ravel())
    layer = create_layer(param, dtype=np.float64)
    x, cont = inputs()
    bottom, top = blobs_from([x, cont]), empty_blobs(1)
    layer.SetUp(bottom, top)
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data,
                               reference(x, cont, w_xc, b_c, w_hc)[0],
                               rtol=1e-12)


def test_loaded_blobs_must_have_the_right_shapes():
    param = layer_param(lstm(2))
    for shape in ((8, 3), (8,)):
        param.blobs.add().shape.dim.extend(shape)
        param.blobs[-1].double_data.extend(np.zeros(np.prod(shape)))
    layer = create_layer(param, dtype=np.float64)
    with pytest.raises(KaffeShapeError) as info:
        layer.SetUp(blobs_from(inputs()), empty_blobs(1))
    check_error(info, "blobs", "((8, 3), (8,))")


def test_default_fillers_give_zero_weights_and_output():
    text = 'name: "lstm" type: "LSTM" recurrent_param { num_output: 2 }'
    layer, _, top = setup_layer(text, list(inputs()))
    assert not any(blob.data.any() for blob in layer.blobs)
    assert not top[0].data.any()


# -- errors ----------------------------------------------------------------
def test_num_output_is_required():
    text = f'name: "lstm" type: "LSTM" recurrent_param {{ {FILLERS} }}'
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(text, list(inputs()))
    check_error(info, "recurrent_param.num_output", "0")


@pytest.mark.parametrize("extra, count, received", [
    ("", 1, "'1 bottom blob(s)'"),
    ("", 4, "'4 bottom blob(s)'"),
    ("expose_hidden: true", 3, "'3 bottom blob(s)'"),
    ("expose_hidden: true", 6, "'6 bottom blob(s)'"),
])
def test_bottom_count(extra, count, received):
    layer = make_layer(lstm(3, extra))
    bottoms = blobs_from([np.zeros((2, 2, 3))] * count)
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(bottoms, empty_blobs(3 if extra else 1))
    check_error(info, "bottom", received)


def test_top_count_with_expose_hidden():
    layer = make_layer(lstm(3, "expose_hidden: true"))
    x, cont = inputs()
    state = np.zeros((1, 2, 3))
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([x, cont, state, state]), empty_blobs(1))
    check_error(info, "top", "'1 top blob(s)'")


@pytest.mark.parametrize("cont_shape", [(4, 3), (2, 4), (4, 2, 1), (8,)])
def test_cont_must_be_t_by_n(cont_shape):
    x, _ = inputs(steps=4, streams=2)
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(lstm(3), [x, np.zeros(cont_shape)])
    check_error(info, "bottom[1] (cont)", str(cont_shape).replace(",)", ")"))


def test_x_needs_three_axes():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(lstm(3), [np.zeros((4, 2)), np.zeros((4, 2))])
    check_error(info, "bottom[0] (x)", "(4, 2)")


@pytest.mark.parametrize("shape", [(3, 4), (2, 5), (2,)])
def test_x_static_shape(shape):
    x, cont = inputs(steps=4, streams=2)
    layer, bottom, top = setup_layer(lstm(3), [x, cont, np.zeros((2, 4))])
    bottom[2].reshape(shape)
    with pytest.raises(KaffeShapeError) as info:
        layer.Forward(bottom, top)
    check_error(info, "bottom[2] (x_static)", str(shape).replace(",)", ")"))


def test_x_static_n_checked_at_setup():
    x, cont = inputs(steps=4, streams=2)
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(lstm(3), [x, cont, np.zeros((3, 4))])
    check_error(info, "bottom[2] (x_static)", "(3, 4)")


def test_exposed_state_shape():
    x, cont = inputs(steps=4, streams=2)
    good, bad = np.zeros((1, 2, 3)), np.zeros((2, 3))
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(lstm(3, "expose_hidden: true"), [x, cont, good, bad], 3)
    check_error(info, "bottom[3] (c_0)", "(2, 3)")


def test_timesteps_are_fixed_after_setup():
    x, cont = inputs(steps=4, streams=2)
    layer, bottom, top = setup_layer(lstm(3), [x, cont])
    bottom[0].reshape((5, 2, 3))
    bottom[1].reshape((5, 2))
    with pytest.raises(KaffeShapeError) as info:
        layer.Forward(bottom, top)
    check_error(info, "bottom[0] (x)", "(5, 2, 3)")


def test_feature_size_is_fixed_after_setup():
    x, cont = inputs(steps=4, streams=2)
    layer, bottom, top = setup_layer(lstm(3), [x, cont])
    bottom[0].reshape((4, 2, 4))
    with pytest.raises(KaffeShapeError) as info:
        layer.Forward(bottom, top)
    check_error(info, "bottom[0] (x)", "(4, 2, 4)")


def test_no_gradient_to_cont():
    layer, bottom, top = setup_layer(lstm(3), list(inputs()))
    assert not layer.allow_force_backward(1)
    assert layer.allow_force_backward(0)
    with pytest.raises(KaffeConfigError) as info:
        layer.Backward(top, [True, True], bottom)
    check_error(info, "propagate_down", "'true for bottom[1]'")
