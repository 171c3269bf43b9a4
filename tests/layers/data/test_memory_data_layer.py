"""MemoryData: set_input_arrays (untransformed, pycaffe's checks), the
transformed Datum/Mat feeds, wrap-around, and the label reshape."""
import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.data.datum import array_to_datum
from kaffe.testing.gradient import empty_blobs, make_layer


def memory_data(params="batch_size: 2 channels: 1 height: 2 width: 3",
                transform=""):
    layer = make_layer(f'name: "mem" type: "MemoryData" top: "data" '
                       f'top: "label" memory_data_param {{ {params} }} '
                       f'{transform}', dtype=np.float32)
    top = empty_blobs(2, np.float32)
    layer.SetUp([], top)
    return layer, top


def test_serves_batches_in_order_and_wraps():
    layer, top = memory_data()
    assert top[0].shape == (2, 1, 2, 3) and top[1].shape == (2,)
    data = np.arange(4 * 6, dtype=np.float32).reshape(4, 1, 2, 3)
    labels = np.array([1, 2, 3, 4], dtype=np.float32)
    layer.set_input_arrays(data, labels)
    layer.Forward([], top)
    np.testing.assert_array_equal(top[0].data, data[:2])
    assert top[1].shape == (2, 1, 1, 1)       # Caffe's forward reshape
    assert top[1].data.ravel().tolist() == [1, 2]
    layer.Forward([], top)
    layer.Forward([], top)
    assert top[1].data.ravel().tolist() == [1, 2]


def test_set_input_arrays_does_not_transform():
    layer, top = memory_data(transform="transform_param { scale: 10 }")
    data = np.ones((2, 1, 2, 3), dtype=np.float32)
    layer.set_input_arrays(data, np.zeros(2, dtype=np.float32))
    layer.Forward([], top)
    assert top[0].data.max() == 1


def test_add_datum_vector_transforms():
    layer, top = memory_data(
        "batch_size: 1 channels: 1 height: 2 width: 2",
        "transform_param { scale: 0.5 mean_value: 1 crop_size: 2 }")
    datums = [array_to_datum(np.full((1, 3, 3), 9, np.uint8), label=4),
              array_to_datum(np.full((1, 3, 3), 5, np.uint8), label=6)]
    layer.add_datum_vector(datums)
    layer.Forward([], top)
    np.testing.assert_array_equal(top[0].data, np.full((1, 1, 2, 2), 4))
    assert top[1].data.ravel().tolist() == [4]
    with pytest.raises(KaffeConfigError, match="consumed"):
        layer.add_datum_vector(datums)
    layer.Forward([], top)
    layer.add_datum_vector(datums)             # consumed: allowed again


def test_add_mat_vector_takes_bgr_images():
    layer, top = memory_data("batch_size: 1 channels: 3 height: 1 width: 2")
    image = np.array([[[1, 2, 3], [4, 5, 6]]], dtype=np.uint8)  # H W C
    layer.add_mat_vector([image], [7])
    layer.Forward([], top)
    np.testing.assert_array_equal(top[0].data[0, :, 0, :],
                                  [[1, 4], [2, 5], [3, 6]])


def test_input_checks():
    layer, top = memory_data()
    good = np.zeros((2, 1, 2, 3), dtype=np.float32)
    labels = np.zeros(2, dtype=np.float32)
    with pytest.raises(KaffeConfigError, match="needs to be fed"):
        layer.Forward([], top)
    for data, match in [
            (good.astype(np.float64), "float32"),
            (np.zeros((2, 1, 3, 2), np.float32), "wrong height"),
            (np.zeros((2, 6), np.float32), "4-d"),
            (np.zeros((2, 1, 2, 6), np.float32)[..., ::2], "C contiguous"),
            (np.zeros((3, 1, 2, 3), np.float32), "same first dimension")]:
        with pytest.raises(KaffeShapeError, match=match):
            layer.set_input_arrays(data, labels)
    with pytest.raises(KaffeShapeError, match="multiple of batch size"):
        layer.set_input_arrays(np.zeros((3, 1, 2, 3), np.float32),
                               np.zeros(3, np.float32))
    with pytest.raises(KaffeShapeError, match="labels array must be float32"):
        layer.set_input_arrays(good, np.zeros(2, dtype=np.int64))
    with pytest.raises(KaffeConfigError, match="memory_data_param.height"):
        memory_data("batch_size: 2 channels: 1 width: 3")
