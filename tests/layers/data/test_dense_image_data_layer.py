"""DenseImageData (SegNet fork): image + label-image pairs, labels keep
their values, nearest-neighbour label resize, list errors."""
import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeFormatError
from kaffe.data.image import resize_bilinear
from kaffe.layers.data.dense_image_data import resize_nearest
from kaffe.testing.gradient import empty_blobs, make_layer

Image = pytest.importorskip("PIL.Image", reason="Pillow (kaffe[data]) not "
                                                "installed")


def make_pairs(folder, n, size=(5, 7)):
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(n):
        rgb = rng.integers(0, 256, size + (3,), dtype=np.uint8)
        label = rng.integers(0, 12, size, dtype=np.uint8)
        Image.fromarray(rgb).save(folder / f"img{i}.png")
        Image.fromarray(label).save(folder / f"lab{i}.png")
        pairs.append((rgb, label))
    return pairs


def dense(source, params="", transform=""):
    layer = make_layer(
        f'name: "dense" type: "DenseImageData" top: "data" top: "label" '
        f'dense_image_data_param {{ source: "{source}" {params} }} '
        f'transform_param {{ {transform} }}', dtype=np.float32)
    top = empty_blobs(2, np.float32)
    layer.SetUp([], top)
    return layer, top


@pytest.fixture
def listed(tmp_path):
    pairs = make_pairs(tmp_path, 3)
    listing = tmp_path / "train.txt"
    listing.write_text("img0.png lab0.png\nimg1.png   lab1.png img2.png\n"
                       "lab2.png\n")
    return pairs, str(listing), str(tmp_path) + "/"


def test_reads_pairs_labels_untransformed_and_loops(listed):
    pairs, listing, root = listed
    layer, top = dense(listing, f'root_folder: "{root}" batch_size: 2',
                       "mean_value: 100 scale: 0.5")
    assert top[0].shape == (2, 3, 5, 7) and top[1].shape == (2, 1, 5, 7)
    layer.Forward([], top)
    bgr = pairs[0][0][..., ::-1].transpose(2, 0, 1).astype(np.float32)
    np.testing.assert_array_equal(top[0].data[0], (bgr - 100) * 0.5)
    np.testing.assert_array_equal(top[1].data[1, 0], pairs[1][1])
    layer.Forward([], top)
    np.testing.assert_array_equal(top[1].data[0, 0], pairs[2][1])
    np.testing.assert_array_equal(top[1].data[1, 0], pairs[0][1])
    layer.close()


def test_resize_bilinear_image_nearest_label(listed):
    pairs, listing, root = listed
    layer, top = dense(listing, f'root_folder: "{root}" batch_size: 1 '
                                'new_height: 9 new_width: 4')
    layer.Forward([], top)
    rgb, label = pairs[0]
    np.testing.assert_array_equal(
        top[0].data[0], resize_bilinear(rgb[..., ::-1], 9, 4)
        .transpose(2, 0, 1))
    np.testing.assert_array_equal(top[1].data[0, 0],
                                  resize_nearest(label[..., None], 9, 4)[..., 0])
    assert set(np.unique(top[1].data)) <= set(np.unique(label))
    layer.close()


def test_nearest_matches_opencv():
    cv = pytest.importorskip("cv2")
    image = np.random.default_rng(1).integers(0, 255, (7, 10, 1), np.uint8)
    for h, w in ((3, 4), (15, 21), (7, 10), (11, 6)):
        np.testing.assert_array_equal(
            resize_nearest(image, h, w)[..., 0],
            cv.resize(image, (w, h), interpolation=cv.INTER_NEAREST))


def test_odd_token_count_names_the_line(tmp_path):
    listing = tmp_path / "bad.txt"
    listing.write_text("a.png b.png\nc.png\n")
    with pytest.raises(KaffeFormatError) as info:
        dense(str(listing), "batch_size: 1")
    assert info.value.line == 2 and "c.png" in str(info.value)


@pytest.mark.parametrize("params, transform, field", [
    ("batch_size: 1 mirror: true", "", "dense_image_data_param.mirror"),
    ("batch_size: 1", "crop_size: 3", "transform_param.crop_size"),
    ("batch_size: 1 new_height: 3", "", "dense_image_data_param.new_height"),
    ("batch_size: 0", "", "dense_image_data_param.batch_size")])
def test_config_errors(listed, params, transform, field):
    _, listing, root = listed
    with pytest.raises(KaffeConfigError) as info:
        dense(listing, f'root_folder: "{root}" {params}', transform)
    assert info.value.field == field and "layer 'dense'" in str(info.value)
