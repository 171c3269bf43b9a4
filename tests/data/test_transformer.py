"""DataTransformer against hand-computed results for every option."""
import numpy as np
import pytest
from google.protobuf import text_format

from kaffe.core.errors import KaffeConfigError, KaffeShapeError
from kaffe.core.random import set_random_seed
from kaffe.data.datum import array_to_datum
from kaffe.data.transformer import DataTransformer
from kaffe.proto import caffe_pb2
from kaffe.proto.io import write_binary

TRAIN, TEST = caffe_pb2.TRAIN, caffe_pb2.TEST

# One channel, 4×5, values 0..19.
X = np.arange(20, dtype=np.uint8).reshape(1, 4, 5)


def transformer(text="", phase=TEST):
    param = text_format.Parse(text, caffe_pb2.TransformationParameter())
    return DataTransformer(param, phase)


def run(t, array, out_shape=None):
    shape = out_shape or t.infer_shape(array)[1:]
    out = np.zeros(shape, dtype=np.float32)
    t.transform(array, out)
    return out


def write_mean(path, values, shape):
    blob = caffe_pb2.BlobProto(num=1, channels=shape[0], height=shape[1],
                               width=shape[2])
    blob.data.extend(np.asarray(values, np.float32).ravel().tolist())
    write_binary(blob, path)
    return str(path)


def test_identity_and_scale():
    np.testing.assert_array_equal(run(transformer(), X), X)
    np.testing.assert_array_equal(run(transformer("scale: 0.5"), X), X * 0.5)


def test_mean_value_subtracted_before_scaling():
    out = run(transformer("scale: 0.5 mean_value: 4"), X)
    np.testing.assert_array_equal(out, (X.astype(np.float32) - 4) * 0.5)
    three = np.stack([X[0], X[0], X[0]])
    out = run(transformer("mean_value: 1 mean_value: 2 mean_value: 3"), three)
    np.testing.assert_array_equal(out[:, 0, 0], [-1, -2, -3])
    # One value is used for every channel.
    out = run(transformer("mean_value: 1"), three)
    np.testing.assert_array_equal(out[:, 0, 0], [-1, -1, -1])


def test_mean_file_indexed_at_the_test_crop_offset(tmp_path):
    mean = write_mean(tmp_path / "mean.binaryproto", X.astype(np.float32) * 2,
                      (1, 4, 5))
    t = transformer(f'mean_file: "{mean}" crop_size: 2 scale: 0.5')
    # TEST crop: the centre, h_off = (4 - 2) // 2 = 1, w_off = (5 - 2) // 2
    # = 1 → pixels 6 7 / 11 12, minus the mean at the same place (12 14 /
    # 22 24), times 0.5.
    np.testing.assert_array_equal(run(t, X), [[[-3, -3.5], [-5.5, -6]]])


def test_center_crop_in_test_phase():
    out = run(transformer("crop_size: 3"), X)
    # h_off = (4 - 3) // 2 = 0, w_off = (5 - 3) // 2 = 1.
    np.testing.assert_array_equal(out, X[:, 0:3, 1:4])


def test_seeded_random_crop_and_mirror_in_train():
    set_random_seed(42)
    t = transformer("crop_size: 2 mirror: true", TRAIN)
    outs = [run(t, X) for _ in range(40)]
    # The draws, replayed: the transformer's generator is seeded from kaffe's
    # RNG; per example it draws the mirror coin, then h_off, then w_off.
    set_random_seed(42)
    from kaffe.core.random import rng
    replay = np.random.default_rng(int(rng().integers(0, 2**63)))
    for out in outs:
        mirror = replay.integers(2)
        h, w = replay.integers(4 - 2 + 1), replay.integers(5 - 2 + 1)
        expected = X[:, h:h + 2, w:w + 2]
        np.testing.assert_array_equal(
            out, expected[:, :, ::-1] if mirror else expected)
    # Every offset and both flips occur.
    assert len({o.tobytes() for o in outs}) > 12


def test_mirror_applies_in_test_too():
    set_random_seed(3)
    t = transformer("mirror: true", TEST)
    outs = {run(t, X).tobytes() for _ in range(30)}
    assert outs == {X.astype(np.float32).tobytes(),
                    X[:, :, ::-1].astype(np.float32).tobytes()}


def test_no_generator_without_random_options():
    assert transformer("crop_size: 2", TEST).generator is None
    assert transformer("crop_size: 2", TRAIN).generator is not None


def test_float_data_datums():
    values = np.linspace(0, 1, 20, dtype=np.float32).reshape(1, 4, 5)
    t = transformer("scale: 2 mean_value: 0.5")
    array = t.datum_array(array_to_datum(values))
    np.testing.assert_allclose(run(t, array), (values - 0.5) * 2)


def test_a_bigger_example_is_cropped_into_the_batch_shape():
    t = transformer("crop_size: 2")
    big = np.zeros((1, 6, 6), np.uint8)
    assert run(t, big, (1, 2, 2)).shape == (1, 2, 2)


def test_errors(tmp_path):
    mean = write_mean(tmp_path / "m.binaryproto", np.zeros(20), (1, 4, 5))
    with pytest.raises(KaffeConfigError, match="mean_value"):
        transformer(f'mean_file: "{mean}" mean_value: 1')
    with pytest.raises(KaffeShapeError, match="crop_size is larger"):
        run(transformer("crop_size: 5"), X)
    small = write_mean(tmp_path / "s.binaryproto", np.zeros(4), (1, 2, 2))
    with pytest.raises(KaffeShapeError, match="mean_file does not have"):
        run(transformer(f'mean_file: "{small}"'), X)
    three = np.zeros((3, 4, 5), np.uint8)
    with pytest.raises(KaffeConfigError, match="once per channel"):
        run(transformer("mean_value: 1 mean_value: 2"), three)
    with pytest.raises(KaffeShapeError, match="does not fit the batch"):
        run(transformer(), three, (3, 4, 4))
    with pytest.raises(Exception, match="not found"):
        transformer(f'mean_file: "{tmp_path / "none"}"')
    both = transformer("force_color: true force_gray: true")
    with pytest.raises(KaffeConfigError, match="force_color"):
        both.datum_array(caffe_pb2.Datum(data=b"x", encoded=True))


@pytest.mark.parametrize("text", [
    "resize_param { height: 300 width: 300 }", "crop_h: 10",
    "distort_param { brightness_prob: 0.5 }", "expand_param { prob: 0.5 }"])
def test_ssd_augmentation_fields_are_refused_by_name(text):
    param = text_format.Parse(text, caffe_pb2.TransformationParameter())
    with pytest.raises(KaffeConfigError, match="SSD's training-time"):
        DataTransformer(param)
