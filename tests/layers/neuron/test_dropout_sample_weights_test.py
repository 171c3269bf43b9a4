"""Dropout's sample_weights_test (Bayesian SegNet fork): masks in TEST too."""
import numpy as np

from kaffe.core.random import set_random_seed
from kaffe.proto import caffe_pb2
from kaffe.testing.gradient import check_gradients, setup_layer

TEXT = ('name: "drop" type: "Dropout" dropout_param { dropout_ratio: 0.5 '
        'sample_weights_test: true }')


def test_test_phase_samples_like_train():
    x = np.ones((4, 50))
    set_random_seed(3)
    _, _, test_top = setup_layer(TEXT, [x], phase=caffe_pb2.TEST)
    set_random_seed(3)
    _, _, train_top = setup_layer(TEXT, [x], phase=caffe_pb2.TRAIN)
    values = set(np.unique(test_top[0].data))
    assert values == {0.0, 2.0}          # dropped, or kept × 1/(1 − 0.5)
    np.testing.assert_array_equal(test_top[0].data, train_top[0].data)


def test_without_it_test_is_the_identity():
    x = np.random.default_rng(0).standard_normal((3, 4))
    _, _, top = setup_layer(TEXT.replace("sample_weights_test: true", ""),
                            [x], phase=caffe_pb2.TEST)
    np.testing.assert_array_equal(top[0].data, x)


def test_gradients_use_the_mask():
    x = np.random.default_rng(1).standard_normal((3, 5))
    layer, bottom, top = setup_layer(TEXT, [x], phase=caffe_pb2.TEST)
    check_gradients(layer, bottom, top, reseed=7)
