"""Dropout: inverted dropout in TRAIN (seeded), identity in TEST."""
import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError
from kaffe.core.random import set_random_seed
from kaffe.proto import caffe_pb2
from kaffe.testing.gradient import (check_gradients, check_layer_error,
                                    setup_in_place, setup_layer)

TRAIN, TEST = caffe_pb2.TRAIN, caffe_pb2.TEST


def dropout_text(ratio=None):
    param = (f"dropout_param {{ dropout_ratio: {ratio} }}"
             if ratio is not None else "")
    return f'name: "drop" type: "Dropout" {param}'


def train_forward(x, ratio, seed):
    set_random_seed(seed)
    return setup_layer(dropout_text(ratio), [x], phase=TRAIN)


@pytest.mark.parametrize("shape, phase", [((2, 3), TRAIN), ((2, 3, 4, 5), TEST),
                                          ((7,), TRAIN)])
def test_top_has_bottom_shape(shape, phase):
    _, _, top = setup_layer(dropout_text(), [np.ones(shape)], phase=phase)
    assert top[0].shape == shape


@pytest.mark.parametrize("ratio", [None, 0.2, 0.8])
def test_train_keeps_or_scales_each_value(ratio):
    r = float(np.float32(0.5 if ratio is None else ratio))  # a float field
    x = np.random.default_rng(0).uniform(1, 2, size=(100, 100))
    layer, bottom, top = train_forward(x, ratio, seed=3)
    y = top[0].data
    kept = 0
    for index in np.ndindex(*x.shape):
        if y[index] != 0:
            assert y[index] == pytest.approx(x[index] / (1 - r), rel=1e-12)
            kept += 1
    # Bernoulli(1 − r) keeps: within 5 standard deviations of the mean.
    n = x.size
    assert abs(kept - n * (1 - r)) < 5 * np.sqrt(n * r * (1 - r))
    # Backward reuses the mask: dx = dy / (1 − r) where kept, 0 elsewhere.
    top[0].diff[...] = 1.0
    layer.Backward(top, [True], bottom)
    for index in np.ndindex(*x.shape):
        expected = 1 / (1 - r) if y[index] != 0 else 0.0
        assert bottom[0].diff[index] == pytest.approx(expected, rel=1e-12)


def test_train_preserves_the_mean():
    _, _, top = train_forward(np.ones(100000), 0.3, seed=4)
    assert top[0].data.mean() == pytest.approx(1.0, abs=0.02)


def test_seed_makes_the_mask_repeatable():
    x = np.ones((20, 20))
    a = train_forward(x, 0.5, seed=7)[2][0].data.copy()
    b = train_forward(x, 0.5, seed=7)[2][0].data.copy()
    c = train_forward(x, 0.5, seed=8)[2][0].data.copy()
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_each_train_forward_draws_a_new_mask():
    layer, bottom, top = train_forward(np.ones((20, 20)), 0.5, seed=9)
    first = top[0].data.copy()
    layer.Forward(bottom, top)
    assert (top[0].data != first).any()


def test_ratio_zero_is_identity_in_train():
    x = np.random.default_rng(1).standard_normal((3, 4))
    _, _, top = train_forward(x, 0.0, seed=1)
    np.testing.assert_array_equal(top[0].data, x)


def test_test_phase_is_identity():
    x = np.random.default_rng(2).standard_normal((3, 4))
    layer, bottom, top = setup_layer(dropout_text(0.7), [x], phase=TEST)
    np.testing.assert_array_equal(top[0].data, x)
    top[0].diff[...] = 3.0
    layer.Backward(top, [True], bottom)
    assert (bottom[0].diff == 3.0).all()
    in_place, bottom, top = setup_in_place(dropout_text(0.7), [x], TEST)
    in_place.Forward(bottom, top)
    np.testing.assert_array_equal(top[0].data, x)


@pytest.mark.parametrize("phase", [TRAIN, TEST])
def test_gradients(phase):
    x = np.random.default_rng(3).standard_normal((4, 5))
    set_random_seed(11)
    layer, bottom, top = setup_layer(dropout_text(0.3), [x], phase=phase)
    check_gradients(layer, bottom, top, reseed=11)


@pytest.mark.parametrize("phase", [TRAIN, TEST])
def test_in_place(phase):
    x = np.random.default_rng(4).standard_normal((4, 5))
    layer, bottom, top = setup_in_place(dropout_text(0.3), [x], phase)
    check_gradients(layer, bottom, top, reseed=12)


@pytest.mark.parametrize("ratio", [1.0, -0.5, 1.5])
def test_ratio_must_be_a_fraction(ratio):
    with pytest.raises(KaffeConfigError) as info:
        setup_layer(dropout_text(ratio), [np.ones(3)], phase=TRAIN)
    check_layer_error(info, "dropout_param.dropout_ratio", ratio,
                      layer="drop")


# -- Fast/Faster R-CNN's scale_train: false (rbgirshick/caffe-fast-rcnn) ---

SCALE_AT_TEST = ('name: "drop" type: "Dropout" dropout_param { '
                 'dropout_ratio: 0.25 scale_train: false }')


def test_scale_train_false_scales_at_test_time():
    x = np.random.default_rng(5).standard_normal((3, 4))
    _, _, top = setup_layer(SCALE_AT_TEST, [x], phase=TEST)
    np.testing.assert_allclose(top[0].data, x * 0.75)
    layer, bottom, top = setup_in_place(SCALE_AT_TEST, [x], TEST)
    layer.Forward(bottom, top)
    np.testing.assert_allclose(top[0].data, x * 0.75)


def test_scale_train_false_keeps_values_unscaled_in_train():
    x = np.random.default_rng(6).uniform(1, 2, (50, 40))
    set_random_seed(3)
    _, _, top = setup_layer(SCALE_AT_TEST, [x], phase=TRAIN)
    kept = top[0].data != 0
    np.testing.assert_array_equal(top[0].data[kept], x[kept])
    assert 0.6 < kept.mean() < 0.9


@pytest.mark.parametrize("phase", [TRAIN, TEST])
def test_scale_train_false_gradients(phase):
    x = np.random.default_rng(7).standard_normal((4, 5))
    set_random_seed(13)
    layer, bottom, top = setup_layer(SCALE_AT_TEST, [x], phase=phase)
    check_gradients(layer, bottom, top, reseed=13)
