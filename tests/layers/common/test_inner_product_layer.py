"""InnerProduct: shapes, a loop reference, gradients, errors, accumulation."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.proto import caffe_pb2
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, empty_blobs, make_layer,
                                    setup_layer)

check_error = partial(check_layer_error, layer="fc")

FILLERS = """
  weight_filler { type: "gaussian" std: 1 }
  bias_filler { type: "gaussian" std: 1 }"""


def ip(num_output, extra=""):
    return (f'name: "fc" type: "InnerProduct" inner_product_param {{ '
            f'num_output: {num_output} {FILLERS} {extra} }}')


def reference(x, w, b, axis, transpose):
    """y[m, n] = Σ_k x[m, k]·W[n, k] (+ b[n]) with x flattened from ``axis``."""
    lead = x.shape[:axis]
    m_count = int(np.prod(lead))
    x2 = x.reshape(m_count, -1)
    k_count = x2.shape[1]
    n_count = w.shape[1] if transpose else w.shape[0]
    y = np.zeros((m_count, n_count))
    for m in range(m_count):
        for n in range(n_count):
            total = 0.0
            for k in range(k_count):
                total += x2[m, k] * (w[k, n] if transpose else w[n, k])
            y[m, n] = total + (b[n] if b is not None else 0.0)
    return y.reshape(lead + (n_count,))


@pytest.mark.parametrize("axis, transpose, expected, weight", [
    (1, False, (2, 4), (4, 60)),
    (2, False, (2, 3, 4), (4, 20)),
    (-1, False, (2, 3, 4, 4), (4, 5)),
    (1, True, (2, 4), (60, 4)),
])
def test_shapes(axis, transpose, expected, weight):
    x = np.zeros((2, 3, 4, 5))
    layer, _, top = setup_layer(
        ip(4, f"axis: {axis} transpose: {str(transpose).lower()}"), [x])
    assert top[0].shape == expected
    assert layer.blobs[0].shape == weight
    assert layer.blobs[1].shape == (4,)


def test_no_bias_has_one_blob():
    layer, _, top = setup_layer(ip(3, "bias_term: false"), [np.ones((2, 5))])
    assert len(layer.blobs) == 1
    assert top[0].shape == (2, 3)


@pytest.mark.parametrize("axis, transpose, bias", [
    (1, False, True), (2, False, True), (1, True, True), (1, False, False)])
def test_forward_matches_loops(axis, transpose, bias):
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    extra = (f"axis: {axis} transpose: {str(transpose).lower()} "
             f"bias_term: {str(bias).lower()}")
    layer, _, top = setup_layer(ip(5, extra), [x])
    b = layer.blobs[1].data if bias else None
    expected = reference(x, layer.blobs[0].data, b, axis, transpose)
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-12, atol=1e-12)


def test_forward_matches_torch_linear():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal((6, 7))
    layer, _, top = setup_layer(ip(3), [x])
    y = torch.nn.functional.linear(torch.from_numpy(x),
                                   torch.from_numpy(layer.blobs[0].data),
                                   torch.from_numpy(layer.blobs[1].data))
    np.testing.assert_allclose(top[0].data, y.numpy(), rtol=1e-12)


def test_default_fillers_are_zero():
    text = 'name: "fc" type: "InnerProduct" inner_product_param { num_output: 2 }'
    layer, _, top = setup_layer(text, [np.ones((3, 4))])
    assert not layer.blobs[0].data.any() and not layer.blobs[1].data.any()
    assert not top[0].data.any()


def test_blobs_from_the_layer_parameter_are_kept():
    w = np.arange(6.0).reshape(2, 3)
    b = np.array([10.0, 20.0])
    param = caffe_pb2.LayerParameter(name="fc", type="InnerProduct")
    param.inner_product_param.num_output = 2
    for array in (w, b):
        blob = param.blobs.add()
        blob.shape.dim.extend(array.shape)
        blob.double_data.extend(array.ravel())
    from kaffe.core.registry import create_layer
    layer = create_layer(param, dtype=np.float64)
    bottom = blobs_from([np.ones((1, 3))])
    top = empty_blobs(1)
    layer.SetUp(bottom, top)
    layer.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, [[13.0, 32.0]])


@pytest.mark.parametrize("extra, shape", [
    ("", (2, 3, 2)), ("axis: 2", (2, 3, 2)), ("transpose: true", (3, 4)),
    ("bias_term: false", (3, 4)), ("axis: -1", (2, 2, 3))])
def test_gradients(extra, shape):
    x = np.random.default_rng(2).standard_normal(shape)
    layer, bottom, top = setup_layer(ip(3, extra), [x])
    check_gradients(layer, bottom, top)


def test_param_diffs_accumulate_and_bottom_diff_is_overwritten():
    x = np.random.default_rng(3).standard_normal((2, 4))
    layer, bottom, top = setup_layer(ip(3), [x])
    top[0].diff[...] = np.random.default_rng(4).standard_normal((2, 3))
    for blob in layer.blobs:
        blob.diff[...] = 0
    layer.Backward(top, [True], bottom)
    first = [blob.diff.copy() for blob in layer.blobs]
    first_bottom = bottom[0].diff.copy()
    layer.Backward(top, [True], bottom)
    for blob, once in zip(layer.blobs, first):
        np.testing.assert_allclose(blob.diff, 2 * once)
    np.testing.assert_allclose(bottom[0].diff, first_bottom)
    # The loop reference of the weight gradient: dW[n, k] = Σ_m dy[m, n]·x[m, k].
    dy = top[0].diff
    for n in range(3):
        for k in range(4):
            expected = sum(dy[m, n] * x[m, k] for m in range(2))
            assert first[0][n, k] == pytest.approx(expected)


@pytest.mark.parametrize("transpose", [False, True])
def test_large_float32_weight_gradient_accumulates_in_blocks(transpose):
    # Rows of 20 000 floats: the weight gradient goes through the layer's
    # block scratch (64 rows at a time), with 150 rows a ragged last block.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 20000)).astype(np.float32)
    extra = "transpose: true" if transpose else ""
    layer, bottom, top = setup_layer(ip(150, extra), [x], dtype=np.float32)
    dy = rng.standard_normal((3, 150)).astype(np.float32)
    top[0].diff[...] = dy
    start = rng.standard_normal(layer.blobs[0].shape).astype(np.float32)
    layer.blobs[0].diff[...] = start
    layer.Backward(top, [True], bottom)
    product = x.astype(np.float64).T @ dy if transpose else \
        dy.astype(np.float64).T @ x
    np.testing.assert_allclose(layer.blobs[0].diff, start + product,
                               rtol=1e-5, atol=1e-5)


def test_param_propagate_down_false_leaves_param_diffs():
    x = np.ones((2, 4))
    layer, bottom, top = setup_layer(ip(3), [x])
    layer.blobs[0].diff[...] = 7
    layer.blobs[1].diff[...] = 7
    layer.set_param_propagate_down(0, False)
    layer.set_param_propagate_down(1, False)
    top[0].diff[...] = 1
    layer.Backward(top, [True], bottom)
    assert (layer.blobs[0].diff == 7).all() and (layer.blobs[1].diff == 7).all()


def test_num_output_must_be_positive():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(ip(0), [np.ones((2, 3))])
    check_error(info, "inner_product_param.num_output", "0")


def test_axis_out_of_range():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(ip(2, "axis: 3"), [np.ones((2, 3))])
    check_error(info, "inner_product_param.axis", "3")


def test_input_size_must_not_change():
    layer, bottom, top = setup_layer(ip(2), [np.ones((2, 3))])
    bottom[0].reshape((2, 4))
    with pytest.raises(KaffeShapeError) as info:
        layer.Forward(bottom, top)
    check_error(info, "bottom", "'4 from shape (2, 4)'")
    # A new batch size is fine.
    bottom[0].reshape((5, 3))
    layer.Forward(bottom, top)
    assert top[0].shape == (5, 2)


def test_unknown_weight_filler():
    text = ('name: "fc" type: "InnerProduct" inner_product_param '
            '{ num_output: 2 weight_filler { type: "magic" } }')
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(text, [np.ones((2, 3))])
    check_error(info, "inner_product_param.weight_filler.type", "'magic'")


def test_blob_counts():
    layer = make_layer(ip(2))
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs_from([np.ones((2, 3))] * 2), empty_blobs(1))
    check_error(info, "bottom", "'2 bottom blob(s)'")
