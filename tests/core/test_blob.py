import numpy as np
import pytest

from kaffe.core.blob import Blob
from kaffe.core.errors import KaffeShapeError
from kaffe.proto import caffe_pb2


def test_shape_count_and_legacy_accessors():
    blob = Blob((2, 3, 4, 5))
    assert blob.shape == (2, 3, 4, 5)
    assert blob.count == 120
    assert (blob.num, blob.channels, blob.height, blob.width) == (2, 3, 4, 5)
    assert blob.count_axes(1) == 60
    assert blob.count_axes(1, 3) == 12
    assert blob.shape_string() == "2 3 4 5 (120)"
    assert blob.data.dtype == np.float32


def test_legacy_accessors_pad_missing_axes_with_one():
    blob = Blob((7, 3))
    assert (blob.num, blob.channels, blob.height, blob.width) == (7, 3, 1, 1)
    assert Blob(()).shape_string() == "(1)"


def test_legacy_accessors_refuse_five_axes():
    with pytest.raises(KaffeShapeError, match="legacy"):
        Blob((1, 2, 3, 4, 5)).num


def test_reshape_keeps_buffer_while_it_fits():
    blob = Blob((4, 5))
    blob.data[...] = np.arange(20).reshape(4, 5)
    buffer = blob.data.base
    blob.reshape(2, 5)
    assert blob.data.base is buffer
    np.testing.assert_array_equal(blob.data.ravel(), np.arange(10))
    blob.reshape((5, 5))
    assert blob.count == 25
    np.testing.assert_array_equal(blob.data, 0)


def test_diff_is_lazy():
    blob = Blob((3, 3))
    blob.data[...] = 1
    assert not blob.has_diff
    blob.diff[...] = 2
    assert blob.has_diff


def test_negative_dimension_is_refused():
    with pytest.raises(KaffeShapeError, match="negative"):
        Blob((2, -1))


def test_share_data_and_diff():
    a, b = Blob((2, 3)), Blob((6,))
    b.share_data(a)
    b.share_diff(a)
    a.data[...] = 5
    a.diff[...] = 7
    np.testing.assert_array_equal(b.data, 5)
    np.testing.assert_array_equal(b.diff, 7)
    with pytest.raises(KaffeShapeError):
        Blob((4,)).share_data(a)


def test_update_subtracts_diff():
    blob = Blob((3,))
    blob.data[...] = [1, 2, 3]
    blob.diff[...] = [0.5, 0.5, 0.5]
    blob.update()
    np.testing.assert_allclose(blob.data, [0.5, 1.5, 2.5])


def test_proto_round_trip_float_and_double():
    blob = Blob((2, 3))
    blob.data[...] = np.arange(6).reshape(2, 3)
    blob.diff[...] = -1
    proto = blob.to_proto(write_diff=True)
    assert list(proto.shape.dim) == [2, 3] and len(proto.diff) == 6
    other = Blob()
    other.from_proto(caffe_pb2.BlobProto.FromString(proto.SerializeToString()))
    np.testing.assert_array_equal(other.data, blob.data)
    np.testing.assert_array_equal(other.diff, blob.diff)
    double = Blob((2,), dtype=np.float64)
    double.data[...] = [1e-300, 2.5]
    dproto = double.to_proto()
    assert len(dproto.double_data) == 2 and len(dproto.data) == 0
    back = Blob(dtype=np.float64)
    back.from_proto(dproto)
    assert back.data[0] == 1e-300


def test_legacy_4d_proto_loads_right_aligned():
    proto = caffe_pb2.BlobProto(num=1, channels=1, height=3, width=4)
    proto.data.extend(range(12))
    ip_weight = Blob((3, 4))
    assert ip_weight.shape_equals_proto(proto)
    ip_weight.from_proto(proto, reshape=False)
    np.testing.assert_array_equal(ip_weight.data.ravel(), np.arange(12))
    bias = caffe_pb2.BlobProto(num=1, channels=1, height=1, width=5)
    bias.data.extend([1] * 5)
    assert Blob((5,)).shape_equals_proto(bias)
    assert not Blob((5, 1)).shape_equals_proto(bias)
    loaded = Blob()
    loaded.from_proto(proto)
    assert loaded.shape == (1, 1, 3, 4)


def test_proto_with_wrong_value_count_is_refused():
    proto = caffe_pb2.BlobProto()
    proto.shape.dim.extend([2, 2])
    proto.data.extend([1, 2, 3])
    with pytest.raises(KaffeShapeError, match="3 data values"):
        Blob().from_proto(proto)
