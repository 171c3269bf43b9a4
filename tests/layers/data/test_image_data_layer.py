"""ImageData: list file parsing (last space), root_folder, BGR, resize,
grey, shuffle, looping, and list-file errors with file:line."""
import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeFormatError
from kaffe.core.random import set_random_seed
from kaffe.data.image import resize_bilinear
from kaffe.proto import caffe_pb2
from kaffe.testing.gradient import empty_blobs, make_layer

Image = pytest.importorskip("PIL.Image", reason="Pillow (kaffe[data]) not "
                                                "installed")


def make_images(folder, n, size=(4, 6)):
    """n PNGs named 'img <i>.png' (with a space); returns their RGB arrays."""
    rng = np.random.default_rng(0)
    arrays = []
    for i in range(n):
        rgb = rng.integers(0, 256, size + (3,), dtype=np.uint8)
        Image.fromarray(rgb).save(folder / f"img {i}.png")
        arrays.append(rgb)
    return arrays


def image_data(source, params="", transform="", phase=caffe_pb2.TEST):
    layer = make_layer(
        f'name: "images" type: "ImageData" top: "data" top: "label" '
        f'image_data_param {{ source: "{source}" {params} }} '
        f'transform_param {{ {transform} }}', phase, dtype=np.float32)
    top = empty_blobs(2, np.float32)
    layer.SetUp([], top)
    return layer, top


@pytest.fixture
def listed(tmp_path):
    arrays = make_images(tmp_path, 3)
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"img {i}.png {5 + i}\n" for i in range(3)))
    return arrays, str(listing), str(tmp_path) + "/"


def test_reads_bgr_with_labels_and_loops(listed):
    arrays, listing, root = listed
    layer, top = image_data(listing, f'root_folder: "{root}" batch_size: 2')
    assert top[0].shape == (2, 3, 4, 6) and top[1].shape == (2,)
    layer.Forward([], top)
    assert top[1].data.tolist() == [5, 6]
    np.testing.assert_array_equal(top[0].data[0],
                                  arrays[0][..., ::-1].transpose(2, 0, 1))
    layer.Forward([], top)
    assert top[1].data.tolist() == [7, 5]
    layer.close()


def test_resize_and_grey(listed):
    arrays, listing, root = listed
    layer, top = image_data(listing, f'root_folder: "{root}" batch_size: 1 '
                                     f'new_height: 3 new_width: 5 '
                                     f'is_color: false')
    assert top[0].shape == (1, 1, 3, 5)
    layer.Forward([], top)
    r, g, b = (arrays[0][..., i].astype(int) for i in range(3))
    grey = ((9797 * r + 19234 * g + 3737 * b) >> 15).astype(np.uint8)
    np.testing.assert_array_equal(top[0].data[0, 0],
                                  resize_bilinear(grey, 3, 5))
    layer.close()


def test_shuffle_is_seeded(listed):
    _, listing, root = listed

    def labels(seed):
        set_random_seed(seed)
        layer, top = image_data(listing, f'root_folder: "{root}" '
                                         f'batch_size: 6 shuffle: true')
        layer.Forward([], top)
        layer.close()
        return top[1].data.tolist()

    first = labels(1)
    assert first == labels(1)
    # Each pass is a permutation of the list, reshuffled between passes.
    assert sorted(first[:3]) == sorted(first[3:]) == [5, 6, 7]


def test_batch_of_mixed_sizes_needs_a_crop(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((5, 6, 3), np.uint8)).save(tmp_path / "b.png")
    listing = tmp_path / "list.txt"
    listing.write_text("a.png 0\nb.png 1\n")
    root = f'root_folder: "{tmp_path}/" batch_size: 2'
    layer, top = image_data(listing, root)
    with pytest.raises(Exception, match=r"list\.txt:2"):
        layer.Forward([], top)
    layer.close()
    layer, top = image_data(listing, root, "crop_size: 3")
    layer.Forward([], top)
    assert top[0].shape == (2, 3, 3, 3)
    layer.close()


def test_bad_list_lines_name_file_and_line(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("a.png 1\n\nb.png x\n")
    with pytest.raises(KaffeFormatError) as info:
        image_data(listing, "batch_size: 1")
    assert f"{listing}:3:" in str(info.value)
    assert "layer 'images' (ImageData)" in str(info.value)
    listing.write_text("nolabel\n")
    with pytest.raises(KaffeFormatError, match="list.txt:1: .*path label"):
        image_data(listing, "batch_size: 1")


def test_missing_image_names_the_list_line(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("\nmissing.png 1\n")
    with pytest.raises(KaffeFormatError, match=r"list\.txt:2: .*missing\.png"):
        image_data(listing, "batch_size: 1")


def test_config_errors(tmp_path, listed):
    _, listing, root = listed
    with pytest.raises(KaffeConfigError, match="new_width must be set"):
        image_data(listing, "new_height: 3")
    with pytest.raises(KaffeFormatError, match="not found"):
        image_data(tmp_path / "none.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(KaffeConfigError, match="lists no images"):
        image_data(empty)
    with pytest.raises(KaffeConfigError, match="rand_skip"):
        set_random_seed(0)
        image_data(listing, f'root_folder: "{root}" rand_skip: 1000000')
