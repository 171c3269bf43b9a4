import math

import numpy as np
import pytest

from kaffe.core.blob import Blob
from kaffe.core.errors import KaffeConfigError
from kaffe.core.filler import fill
from kaffe.core.random import set_random_seed
from kaffe.proto import caffe_pb2

F = caffe_pb2.FillerParameter


def filled(shape, **kwargs):
    set_random_seed(3)
    blob = Blob(shape, dtype=np.float64)
    fill(blob, F(**kwargs))
    return blob.data


def test_constant_and_default_is_zero():
    np.testing.assert_array_equal(filled((3, 4), type="constant", value=2.5),
                                  2.5)
    np.testing.assert_array_equal(filled((3, 4)), 0.0)


def test_uniform_range():
    values = filled((1000,), type="uniform", min=-2, max=3)
    assert values.min() >= -2 and values.max() <= 3
    assert abs(values.mean() - 0.5) < 0.2


def test_gaussian_moments_and_sparse():
    values = filled((200, 50), type="gaussian", mean=1.0, std=0.5)
    assert abs(values.mean() - 1.0) < 0.02 and abs(values.std() - 0.5) < 0.02
    sparse = filled((200, 50), type="gaussian", std=1.0, sparse=40)
    # Kept with probability sparse / shape[0] = 0.2.
    assert abs((sparse != 0).mean() - 0.2) < 0.02


def test_positive_unitball_rows_sum_to_one():
    values = filled((6, 2, 3), type="positive_unitball")
    np.testing.assert_allclose(values.reshape(6, -1).sum(axis=1), 1.0)
    assert (values >= 0).all()


@pytest.mark.parametrize("norm", [F.FAN_IN, F.FAN_OUT, F.AVERAGE])
def test_xavier_bounds(norm):
    # Shape (400, 2, 3, 3): fan_in = count / 400 = 18, fan_out = count / 2 = 3600.
    n = {F.FAN_IN: 18, F.FAN_OUT: 3600, F.AVERAGE: (18 + 3600) / 2}[norm]
    values = filled((400, 2, 3, 3), type="xavier", variance_norm=norm)
    assert np.abs(values).max() <= math.sqrt(3.0 / n)
    assert np.abs(values).max() == pytest.approx(math.sqrt(3.0 / n), rel=0.02)


def test_msra_std():
    values = filled((300, 20, 3, 3), type="msra")
    assert values.std() == pytest.approx(math.sqrt(2.0 / 180), rel=0.03)


def test_bilinear_kernel_values():
    values = filled((2, 1, 4, 4), type="bilinear")
    # K = 4: f = 2, c = 3/4; weights (1 - |x/2 - 3/4|) = 0.25, 0.75, 0.75, 0.25.
    ramp = np.array([0.25, 0.75, 0.75, 0.25])
    np.testing.assert_allclose(values[1, 0], np.outer(ramp, ramp))
    odd = filled((1, 1, 3, 3), type="bilinear")
    ramp3 = np.array([0.5, 1.0, 0.5])
    np.testing.assert_allclose(odd[0, 0], np.outer(ramp3, ramp3))


def test_errors():
    with pytest.raises(KaffeConfigError, match="not a known filler type.*'gausian'"):
        filled((2,), type="gausian")
    with pytest.raises(KaffeConfigError, match="sparse"):
        filled((2, 2), type="uniform", sparse=1)
    with pytest.raises(KaffeConfigError, match="square"):
        filled((1, 1, 3, 4), type="bilinear")


def test_seed_makes_fills_repeatable():
    a = filled((10,), type="gaussian")
    b = filled((10,), type="gaussian")
    np.testing.assert_array_equal(a, b)
