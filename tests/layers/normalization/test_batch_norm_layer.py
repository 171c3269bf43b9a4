"""BatchNorm: batch and global statistics, the running sums, gradients in
both modes, in place, the lr_mult 0 param specs, errors."""
from functools import partial

import numpy as np
import pytest
from google.protobuf import text_format

import kaffe
from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.core.registry import create_layer
from kaffe.proto import caffe_pb2
from kaffe.testing.gradient import (blobs_from, check_backward_overwrites,
                                    check_gradients, check_layer_error,
                                    empty_blobs, layer_param, make_layer,
                                    setup_in_place, setup_layer)

TRAIN, TEST = caffe_pb2.TRAIN, caffe_pb2.TEST
check_error = partial(check_layer_error, layer="bn")


def bn(param=""):
    return f'name: "bn" type: "BatchNorm" top: "bn" batch_norm_param {{ {param} }}'


def batch_stats(x):
    """Per-channel mean and biased variance over every axis but 1 (loops)."""
    c = x.shape[1]
    mean, var = np.zeros(c), np.zeros(c)
    for k in range(c):
        values = [x[index] for index in np.ndindex(x.shape) if index[1] == k]
        mean[k] = sum(values) / len(values)
        var[k] = sum((v - mean[k]) ** 2 for v in values) / len(values)
    return mean, var


def normalized(x, mean, var, eps):
    y = np.empty_like(x)
    for index in np.ndindex(x.shape):
        c = index[1]
        y[index] = (x[index] - mean[c]) / np.sqrt(var[c] + eps)
    return y


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4), (2, 3, 2, 2), (2, 3, 2, 1, 2)])
def test_shapes_and_blobs(shape):
    layer, _, top = setup_layer(bn(), [np.ones(shape)], phase=TRAIN)
    assert top[0].shape == shape
    assert [b.shape for b in layer.blobs] == [(3,), (3,), (1,)]


def test_blobs_start_at_zero():
    layer = make_layer(bn())
    layer.SetUp(blobs_from([np.ones((2, 3))]), empty_blobs(1))
    assert all(not b.data.any() for b in layer.blobs)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5), (2, 2, 3, 2)])
def test_training_forward_uses_batch_statistics(shape):
    x = np.random.default_rng(0).standard_normal(shape) * 3 + 1
    layer, _, top = setup_layer(bn("eps: 0.01"), [x], phase=TRAIN)
    mean, var = batch_stats(x)
    eps = np.float32(0.01).item()
    np.testing.assert_allclose(top[0].data, normalized(x, mean, var, eps),
                               rtol=1e-12, atol=1e-12)


def test_running_sums_after_two_batches():
    rng = np.random.default_rng(1)
    x1, x2 = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    layer, bottom, top = setup_layer(bn("moving_average_fraction: 0.5"), [x1],
                                     phase=TRAIN)
    m = 8  # elements per channel
    mean1, var1 = batch_stats(x1)
    np.testing.assert_allclose(layer.blobs[2].data, [1.0])
    np.testing.assert_allclose(layer.blobs[0].data, mean1)
    np.testing.assert_allclose(layer.blobs[1].data, var1 * m / (m - 1))
    bottom[0].data[...] = x2
    layer.Forward(bottom, top)
    mean2, var2 = batch_stats(x2)
    np.testing.assert_allclose(layer.blobs[2].data, [0.5 * 1 + 1])
    np.testing.assert_allclose(layer.blobs[0].data, mean2 + 0.5 * mean1)
    np.testing.assert_allclose(layer.blobs[1].data,
                               var2 * m / (m - 1) + 0.5 * var1 * m / (m - 1))


def test_float32_training_forward():
    x = np.random.default_rng(13).standard_normal((4, 3, 5)) * 2 + 3
    layer, _, top = setup_layer(bn(), [x], phase=TRAIN, dtype=np.float32)
    assert top[0].data.dtype == np.float32
    mean, var = batch_stats(x)
    eps = np.float32(1e-5).item()
    np.testing.assert_allclose(top[0].data, normalized(x, mean, var, eps),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.blobs[1].data, var * 20 / 19, rtol=1e-5)


def test_single_element_per_channel_has_no_bias_correction():
    # m = 1: Caffe uses the factor 1 instead of m / (m − 1).
    layer, _, top = setup_layer(bn(), [np.array([[2.0, -1.0]])], phase=TRAIN)
    assert np.isfinite(layer.blobs[1].data).all()
    np.testing.assert_array_equal(layer.blobs[1].data, [0.0, 0.0])
    np.testing.assert_array_equal(top[0].data, [[0.0, 0.0]])


def test_global_statistics_divide_by_the_scale_factor():
    x = np.random.default_rng(2).standard_normal((2, 3, 2))
    layer = make_layer(bn("use_global_stats: true eps: 0.1"))
    bottom, top = blobs_from([x]), empty_blobs(1)
    layer.SetUp(bottom, top)
    mean_sum, var_sum = np.array([1.0, -2.0, 0.5]), np.array([2.0, 0.4, 1.0])
    layer.blobs[0].data[...] = mean_sum
    layer.blobs[1].data[...] = var_sum
    layer.blobs[2].data[...] = 4.0
    layer.Forward(bottom, top)
    eps = np.float32(0.1).item()
    expected = normalized(x, mean_sum * (1 / 4.0), var_sum * (1 / 4.0), eps)
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-12)
    # The statistics are only read.
    np.testing.assert_array_equal(layer.blobs[0].data, mean_sum)
    np.testing.assert_array_equal(layer.blobs[2].data, [4.0])


def test_zero_scale_factor_means_zero_statistics():
    x = np.random.default_rng(3).standard_normal((2, 2))
    layer, _, top = setup_layer(bn(), [x], phase=TEST)
    eps = np.float32(1e-5).item()
    np.testing.assert_allclose(top[0].data, x / np.sqrt(eps))


@pytest.mark.parametrize("phase, param, uses_global", [
    (TRAIN, "", False), (TEST, "", True),
    (TRAIN, "use_global_stats: true", True),
    (TEST, "use_global_stats: false", False)])
def test_use_global_stats_defaults_to_the_phase(phase, param, uses_global):
    x = np.random.default_rng(4).standard_normal((3, 2))
    layer, _, _ = setup_layer(bn(param), [x], phase=phase)
    assert layer.use_global_stats == uses_global
    assert layer.blobs[2].data[0] == (0.0 if uses_global else 1.0)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 3), (2, 2, 2, 3)])
def test_gradients_with_batch_statistics(shape):
    x = np.random.default_rng(5).standard_normal(shape)
    layer, bottom, top = setup_layer(bn(), [x], phase=TRAIN)
    check_gradients(layer, bottom, top, check_params=False)


def test_gradients_with_global_statistics():
    x = np.random.default_rng(6).standard_normal((2, 3, 2))
    layer, bottom, top = setup_layer(bn(), [x], phase=TEST)
    layer.blobs[0].data[...] = [0.3, -1.0, 2.0]
    layer.blobs[1].data[...] = [1.0, 0.5, 3.0]
    layer.blobs[2].data[...] = 2.0
    check_gradients(layer, bottom, top, check_params=False)
    # Global statistics are constants: dx = dy / sqrt(var + eps).
    top[0].diff[...] = 1.0
    layer.Backward(top, [True], bottom)
    eps = np.float32(1e-5).item()
    std = np.sqrt(np.array([1.0, 0.5, 3.0]) / 2 + eps)
    np.testing.assert_allclose(bottom[0].diff,
                               np.broadcast_to((1 / std)[None, :, None], x.shape))


def test_matches_torch_batch_norm():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(7).standard_normal((3, 4, 2, 2))
    dy = np.random.default_rng(8).standard_normal(x.shape)
    layer, bottom, top = setup_layer(bn("eps: 0.001"), [x], phase=TRAIN)
    top[0].diff[...] = dy
    layer.Backward(top, [True], bottom)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.batch_norm(tx, None, None, training=True,
                                        eps=np.float32(0.001).item())
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(top[0].data, ty.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(bottom[0].diff, tx.grad.numpy(), rtol=1e-8,
                               atol=1e-10)


@pytest.mark.parametrize("phase", [TRAIN, TEST])
def test_in_place(phase):
    x = np.random.default_rng(9).standard_normal((3, 2, 2))
    _, _, expected = setup_layer(bn(), [x], phase=phase)
    layer, bottom, top = setup_in_place(bn(), [x], phase=phase)
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data, expected[0].data)
    layer, bottom, top = setup_in_place(bn(), [x], phase=phase)
    check_gradients(layer, bottom, top, check_params=False)


def test_backward_uses_the_normalized_output_cached_at_forward():
    # A later in-place layer may overwrite the top data; Caffe keeps x_norm.
    x = np.random.default_rng(10).standard_normal((4, 2))
    layer, bottom, top = setup_layer(bn(), [x], phase=TRAIN)
    top[0].diff[...] = np.random.default_rng(11).standard_normal(x.shape)
    layer.Backward(top, [True], bottom)
    expected = bottom[0].diff.copy()
    top[0].data[...] = 0
    layer.Backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, expected)


def float32_forward(param, phase, x, *, in_place, needs_backward=True):
    layer = make_layer(bn(param), phase, np.float32)
    layer.needs_backward = needs_backward
    bottom = blobs_from([x], np.float32)
    top = list(bottom) if in_place else empty_blobs(1, np.float32)
    layer.SetUp(bottom, top)
    if layer.use_global_stats:
        # Nonzero statistics to normalise with.
        layer.blobs[0].data[...] = [0.5, -1.0, 2.0]
        layer.blobs[1].data[...] = [3.0, 0.25, 1.0]
        layer.blobs[2].data[...] = 0.7
    layer.Forward(bottom, top)
    return layer, top[0].data


@pytest.mark.parametrize("phase", [TRAIN, TEST])
def test_float32_forward_is_caffes_two_steps(phase):
    # (x − mean) then / sqrt(var + eps), each rounded to float32, in place
    # or not, whether backward will run or not.
    x = (np.random.default_rng(14).standard_normal((2, 3, 4, 5)) * 3
         ).astype(np.float32)
    layer, y = float32_forward("", phase, x, in_place=False)
    if layer.use_global_stats:
        inverse = np.float32(1) / layer.blobs[2].data[0]
        mean = (layer.blobs[0].data * inverse).reshape(1, 3, 1, 1)
        var = (layer.blobs[1].data * inverse).reshape(1, 3, 1, 1)
    else:
        mean = x.mean(axis=(0, 2, 3), keepdims=True, dtype=np.float32)
        var = ((x - mean) ** 2).mean(axis=(0, 2, 3), keepdims=True)
    expected = (x - mean) / np.sqrt(var + np.float32(1e-5))
    if layer.use_global_stats:
        np.testing.assert_array_equal(y.view(np.uint32),
                                      expected.view(np.uint32))
    else:  # NumPy's float32 mean sums in its own order
        np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)
    for in_place in (False, True):
        for needs_backward in (False, True):
            _, again = float32_forward("", phase, x, in_place=in_place,
                                       needs_backward=needs_backward)
            np.testing.assert_array_equal(again.view(np.uint32),
                                          y.view(np.uint32))


@pytest.mark.parametrize("phase, needs_backward, keeps", [
    (TRAIN, True, True), (TRAIN, False, False),
    (TEST, True, False), (TEST, False, False)])
def test_keeps_the_normalized_output_only_for_a_batch_backward(
        phase, needs_backward, keeps):
    # Only the batch-statistics backward reads x_norm (global statistics:
    # dx = dy / std); a deploy net never runs backward.
    x = np.random.default_rng(15).standard_normal((2, 3, 4)).astype(np.float32)
    layer, _ = float32_forward("", phase, x, in_place=True,
                               needs_backward=needs_backward)
    assert (layer.x_norm is not None) == keeps


def test_bottom_diff_is_overwritten_and_respects_propagate_down():
    x = np.random.default_rng(12).standard_normal((3, 2))
    layer, bottom, top = setup_layer(bn(), [x], phase=TRAIN)
    top[0].diff[...] = 1.5
    check_backward_overwrites(layer, bottom, top)


def test_adds_lr_mult_zero_param_specs():
    layer, _, _ = setup_layer(bn(), [np.ones((2, 3))])
    assert [p.lr_mult for p in layer.layer_param.param] == [0, 0, 0]
    assert [p.lr_mult for p in layer.to_proto().param] == [0, 0, 0]
    text = bn() + " param { lr_mult: 0 decay_mult: 0 }"
    layer, _, _ = setup_layer(text, [np.ones((2, 3))])
    assert [(p.lr_mult, p.decay_mult) for p in layer.layer_param.param] == [
        (0, 0), (0, 1), (0, 1)]


def test_nonzero_lr_mult_is_refused():
    text = bn() + " param { lr_mult: 0 } param { lr_mult: 1 }"
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(text, [np.ones((2, 3))])
    check_error(info, "param[1].lr_mult", "1.0")


def test_in_a_net_the_statistics_get_no_learning_rate():
    # As in Caffe the layer edits its own copy of its parameter: the net still
    # sees no param specs (lr_mult 1) when it decides what needs backward,
    # and the layer's specs (lr_mult 0) when it registers the parameters.
    net_param = caffe_pb2.NetParameter()
    text_format.Parse("""
      layer { name: "data" type: "Input" top: "data"
              input_param { shape { dim: 4 dim: 3 } } }
      layer { name: "bn" type: "BatchNorm" bottom: "data" top: "bn" }
      layer { name: "ip" type: "InnerProduct" bottom: "bn" top: "ip"
              inner_product_param { num_output: 2 } loss_weight: 1 }
    """, net_param)
    net_param.state.phase = TRAIN
    net = kaffe.Net.from_param(net_param)
    assert net.params_lr[:3] == [0, 0, 0]
    assert net.layer_need_backward[1]
    assert net.bottom_need_backward[2] == [True]


def test_needs_two_axes():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(bn(), [np.ones(4)])
    check_error(info, "bottom", "(4)")


def test_needs_a_channel():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(bn(), [np.ones((2, 0))])
    check_error(info, "bottom", "(2, 0)")


def test_channels_must_not_change():
    layer, bottom, top = setup_layer(bn(), [np.ones((2, 3))])
    bottom[0].reshape((2, 4))
    with pytest.raises(KaffeShapeError) as info:
        layer.Forward(bottom, top)
    check_error(info, "bottom", "(2, 4)")
    bottom[0].reshape((5, 3, 2))
    layer.Forward(bottom, top)
    assert top[0].shape == (5, 3, 2)


def stored(arrays):
    param = layer_param(bn())
    for array in arrays:
        blob = param.blobs.add()
        blob.shape.dim.extend(np.shape(array))
        blob.double_data.extend(np.ravel(array))
    return create_layer(param, dtype=np.float64)


def test_stored_blobs_are_used():
    layer = stored([[2.0, 4.0], [8.0, 8.0], [2.0]])
    bottom, top = blobs_from([np.array([[1.0, 2.0]])]), empty_blobs(1)
    layer.SetUp(bottom, top)
    layer.Forward(bottom, top)
    eps = np.float32(1e-5).item()
    np.testing.assert_allclose(top[0].data, [[0.0, 0.0]], atol=1e-12)
    bottom[0].data[...] = [[3.0, 4.0]]
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data, [[2 / np.sqrt(4 + eps)] * 2])


def test_stored_blobs_must_be_three():
    layer = stored([[0.0, 0.0], [1.0, 1.0]])
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([np.ones((2, 2))]), empty_blobs(1))
    check_error(info, "blobs", "2")


def test_stored_blobs_must_cover_the_channels():
    layer = stored([[0.0], [1.0, 1.0], [1.0]])
    with pytest.raises(KaffeShapeError) as info:
        layer.SetUp(blobs_from([np.ones((2, 2))]), empty_blobs(1))
    check_error(info, "blobs[0]", "(1)")


RESNET_BLOCK = """
  layer { name: "data" type: "Input" top: "data"
          input_param { shape { dim: 2 dim: 4 dim: 9 dim: 9 } } }
  layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
          convolution_param { num_output: 4 kernel_size: 3 pad: 1
                              weight_filler { type: "gaussian" } } }
  layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" }
  layer { name: "scale1" type: "Scale" bottom: "conv1" top: "conv1"
          scale_param { bias_term: true filler { type: "gaussian" }
                        bias_filler { type: "gaussian" } } }
  layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
  layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
          pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
  layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
          convolution_param { num_output: 4 kernel_size: 1
                              weight_filler { type: "gaussian" } } }
  layer { name: "sum" type: "Eltwise" bottom: "pool1" bottom: "conv2"
          top: "sum" }
"""


def resnet_block(force_backward):
    net_param = caffe_pb2.NetParameter()
    text_format.Parse(RESNET_BLOCK, net_param)
    net_param.force_backward = force_backward
    net_param.state.phase = TEST
    return kaffe.Net.from_param(net_param, dtype=np.float32)


def test_a_deploy_net_keeps_no_backward_state_and_computes_the_same():
    deployed, trained = resnet_block(False), resnet_block(True)
    rng = np.random.default_rng(16)
    for name, blobs in deployed.params.items():
        for blob, twin in zip(blobs, trained.params[name]):
            blob.data[...] = rng.uniform(0.5, 1.5, blob.shape)
            twin.data[...] = blob.data
    x = rng.standard_normal((2, 4, 9, 9))
    for net in (deployed, trained):
        net.blobs["data"].data[...] = x
        net.forward()
    np.testing.assert_array_equal(deployed.blobs["sum"].data.view(np.uint32),
                                  trained.blobs["sum"].data.view(np.uint32))
    kept = {"x_norm", "saved_input", "mask"}
    assert not any(getattr(layer, attribute, None) is not None
                   for layer in deployed.layers for attribute in kept)
    # With backward to come, Scale keeps its in-place input and Pooling its
    # mask (BatchNorm with global statistics needs neither).
    layers = trained.layer_dict
    assert layers["scale1"].saved_input is not None
    assert layers["pool1"].mask is not None
    assert layers["bn1"].x_norm is None
