"""AbsVal: loop reference, sign(0) = 0, gradients, in-place refusal."""
import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError
from kaffe.testing.gradient import (blobs_from, check_backward_overwrites,
                                    check_gradients, check_layer_error,
                                    make_layer, setup_layer)

ABSVAL = 'name: "abs" type: "AbsVal"'


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4, 5), (7,)])
def test_top_has_bottom_shape(shape):
    _, _, top = setup_layer(ABSVAL, [np.zeros(shape)])
    assert top[0].shape == shape


def test_forward_matches_loops():
    x = np.random.default_rng(0).standard_normal((3, 4))
    x[0, 0] = 0.0
    _, _, top = setup_layer(ABSVAL, [x])
    for index in np.ndindex(*x.shape):
        assert top[0].data[index] == abs(x[index])


def test_backward_is_sign_times_dy_with_sign_of_zero_and_nan_zero():
    # Caffe's caffe_cpu_sign is (0 < x) − (x < 0): 0 at 0 and for NaN.
    x = np.array([-2.0, 0.0, 3.0, np.nan])
    layer, bottom, top = setup_layer(ABSVAL, [x])
    top[0].diff[...] = [5.0, 5.0, -5.0, 5.0]
    check_backward_overwrites(layer, bottom, top)
    layer.Backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, [-5.0, 0.0, -5.0, 0.0])


def test_gradients():
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    layer, bottom, top = setup_layer(ABSVAL, [x])
    check_gradients(layer, bottom, top, kink=(0, 1e-3))


def test_refuses_in_place():
    layer = make_layer(ABSVAL + ' bottom: "x" top: "x"')
    blobs = blobs_from([np.ones((2, 3))])
    with pytest.raises(KaffeConfigError) as info:
        layer.SetUp(blobs, blobs)
    check_layer_error(info, "top", "'x'", layer="abs")
    assert "in place" in str(info.value)
