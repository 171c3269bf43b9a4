"""Eltwise: SUM (coeff), PROD, MAX (tie rule); gradients; errors."""
from functools import partial

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.testing.gradient import (blobs_from, check_gradients,
                                    check_layer_error, empty_blobs, make_layer,
                                    setup_layer)

check_error = partial(check_layer_error, layer="elt")


def eltwise_text(param=""):
    return f'name: "elt" type: "Eltwise" eltwise_param {{ {param} }}'


def random_inputs(n, shape=(2, 3, 2), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for _ in range(n)]


def reference(arrays, op, coeffs=None):
    """The element-wise loop; MAX records the winning bottom per element."""
    out = np.zeros(arrays[0].shape)
    winner = np.zeros(arrays[0].shape, dtype=int)
    coeffs = coeffs or [1.0] * len(arrays)
    for index in np.ndindex(*out.shape):
        values = [a[index] for a in arrays]
        if op == "SUM":
            out[index] = sum(c * v for c, v in zip(coeffs, values))
        elif op == "PROD":
            product = 1.0
            for v in values:
                product *= v
            out[index] = product
        else:
            # bottom 0 wins only when strictly greater than bottom 1 ...
            best, arg = (values[0], 0) if values[0] > values[1] else (values[1], 1)
            # ... and every later bottom must be strictly greater to take over.
            for i, v in enumerate(values[2:], start=2):
                if v > best:
                    best, arg = v, i
            out[index] = best
            winner[index] = arg
    return out, winner


@pytest.mark.parametrize("n, shape", [(2, (2, 3)), (3, (2, 3, 4, 5)),
                                      (4, (7,))])
def test_top_has_bottom_shape(n, shape):
    _, _, top = setup_layer(eltwise_text(), [np.zeros(shape)] * n)
    assert top[0].shape == shape


@pytest.mark.parametrize("param, op, coeffs", [
    ("", "SUM", None),
    ("operation: SUM coeff: 1 coeff: -2 coeff: 0.5", "SUM", [1, -2, 0.5]),
    ("operation: PROD", "PROD", None),
    ("operation: MAX", "MAX", None)])
def test_forward_matches_loops(param, op, coeffs):
    arrays = random_inputs(3)
    _, _, top = setup_layer(eltwise_text(param), arrays)
    expected, _ = reference(arrays, op, coeffs)
    np.testing.assert_allclose(top[0].data, expected, rtol=1e-12)


def test_max_ties():
    # Column 0: b0 == b1 → bottom 1 wins. Column 1: b2 == the best so far
    # → not strictly greater, bottom 1 keeps it. Column 2: b0 > b1 and b2
    # only ties b0 → bottom 0. Column 3: b2 strictly greater → bottom 2.
    b0 = np.array([[1.0, 0.0, 5.0, 1.0]])
    b1 = np.array([[1.0, 3.0, 4.0, 1.0]])
    b2 = np.array([[0.0, 3.0, 5.0, 2.0]])
    layer, bottom, top = setup_layer(eltwise_text("operation: MAX"),
                                     [b0, b1, b2])
    expected, winner = reference([b0, b1, b2], "MAX")
    np.testing.assert_array_equal(winner, [[1, 1, 0, 2]])
    np.testing.assert_array_equal(top[0].data, expected)
    top[0].diff[...] = [[10.0, 20.0, 30.0, 40.0]]
    layer.Backward(top, [True, True, True], bottom)
    for i in range(3):
        np.testing.assert_array_equal(
            bottom[i].diff, np.where(winner == i, top[0].diff, 0.0))


def test_max_accepts_and_ignores_coeff():
    # Caffe only refuses coefficients for PROD; MAX ignores them.
    arrays = random_inputs(2)
    _, _, top = setup_layer(
        eltwise_text("operation: MAX coeff: 2 coeff: 3"), arrays)
    np.testing.assert_array_equal(top[0].data, reference(arrays, "MAX")[0])


@pytest.mark.parametrize("param", [
    "", "coeff: 0.5 coeff: -1.5 coeff: 2", "operation: PROD",
    "operation: PROD stable_prod_grad: false"])
def test_gradients(param):
    arrays = random_inputs(3)
    if "PROD" in param:
        # Keep away from 0 so that the unstable top / bottom form is exact.
        arrays = [np.sign(a) * (0.5 + np.abs(a)) for a in arrays]
    layer, bottom, top = setup_layer(eltwise_text(param), arrays)
    check_gradients(layer, bottom, top)


def test_max_gradients_with_separated_inputs():
    # A permutation of well-spaced values: no two bottoms are within 2·eps.
    rng = np.random.default_rng(5)
    values = rng.permutation(3 * 12).reshape(3, 2, 3, 2) * 0.1
    layer, bottom, top = setup_layer(eltwise_text("operation: MAX"),
                                     list(values))
    check_gradients(layer, bottom, top)


def test_sum_in_place():
    arrays = random_inputs(2)
    layer = make_layer(eltwise_text("coeff: 2 coeff: -1"))
    bottom = blobs_from(arrays)
    top = [bottom[0]]
    layer.SetUp(bottom, top)
    layer.Forward(bottom, top)
    np.testing.assert_allclose(bottom[0].data, 2 * arrays[0] - arrays[1])
    top[0].diff[...] = 1.0
    layer.Backward(top, [True, True], bottom)
    assert (bottom[1].diff == -1).all() and (bottom[0].diff == 2).all()


def float32_forward(param, arrays, top_index=None, needs_backward=True):
    """Forward in float32 into a new top, or in place on bottom[top_index]."""
    layer = make_layer(eltwise_text(param), dtype=np.float32)
    layer.needs_backward = needs_backward
    bottom = blobs_from(arrays, np.float32)
    top = ([bottom[top_index]] if top_index is not None
           else empty_blobs(1, np.float32))
    layer.SetUp(bottom, top)
    layer.Forward(bottom, top)
    return layer, top[0].data


@pytest.mark.parametrize("param, formula", [
    ("", lambda x: x[0] + x[1] + x[2]),
    ("coeff: 1 coeff: -2 coeff: 0.5",
     lambda x: x[0] + np.float32(-2) * x[1] + np.float32(0.5) * x[2]),
    ("coeff: 0.1 coeff: 1 coeff: 1",
     lambda x: np.float32(0.1) * x[0] + x[1] + x[2])])
@pytest.mark.parametrize("top_index", [None, 0, 1, 2])
def test_float32_sum_adds_bottom_by_bottom(param, formula, top_index):
    # Caffe's roundings, whether the top is new or one of the bottoms.
    arrays = [a.astype(np.float32) for a in random_inputs(3, (4, 5))]
    _, y = float32_forward(param, arrays, top_index)
    np.testing.assert_array_equal(y.view(np.uint32),
                                  formula(arrays).view(np.uint32))


@pytest.mark.parametrize("top_index", [None, 0, 1])
def test_max_in_place(top_index):
    arrays = random_inputs(3)
    _, y = float32_forward("operation: MAX", arrays, top_index)
    expected, _ = reference([a.astype(np.float32) for a in arrays], "MAX")
    np.testing.assert_array_equal(y, expected.astype(np.float32))


def test_max_without_backward_keeps_no_argmax():
    arrays = random_inputs(3)
    trained, y = float32_forward("operation: MAX", arrays)
    deployed, y_deployed = float32_forward("operation: MAX", arrays,
                                           needs_backward=False)
    assert trained.argmax is not None and deployed.argmax is None
    np.testing.assert_array_equal(y_deployed, y)


def test_propagate_down_false_leaves_diff():
    layer, bottom, top = setup_layer(eltwise_text(), random_inputs(2))
    bottom[0].diff[...] = 9
    top[0].diff[...] = 1
    layer.Backward(top, [False, True], bottom)
    assert (bottom[0].diff == 9).all() and (bottom[1].diff == 1).all()


def test_one_coeff_per_bottom():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(eltwise_text("coeff: 1"), random_inputs(2))
    check_error(info, "eltwise_param.coeff", "'1 coeffs'")


def test_no_coeff_with_prod():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(eltwise_text("operation: PROD coeff: 1 coeff: 1"),
                    random_inputs(2))
    check_error(info, "eltwise_param.coeff", "'PROD'")


def test_shapes_must_match():
    with pytest.raises(KaffeShapeError) as info:
        setup_layer(eltwise_text(), [np.zeros((2, 3)), np.zeros((3, 2))])
    check_error(info, "bottom", "(3, 2)")


def test_needs_two_bottoms():
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(eltwise_text(), [np.zeros((2, 3))])
    check_error(info, "bottom", "'1 bottom blob(s)'")
