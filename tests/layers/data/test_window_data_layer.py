"""WindowData: the R-CNN window file, fg/bg sampling, warp with context
padding and clipping (hand-computed geometry), mirror, mean, scale."""
import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError, KaffeFormatError
from kaffe.core.random import set_random_seed
from kaffe.data.image import resize_bilinear
from kaffe.proto import caffe_pb2
from kaffe.proto.io import write_binary
from kaffe.testing.gradient import empty_blobs, make_layer

Image = pytest.importorskip("PIL.Image", reason="Pillow (kaffe[data]) not "
                                                "installed")

RGB = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
BGR = RGB[..., ::-1]


def window_file(tmp_path, fg_box, bg_box=(0, 0, 29, 19), fg_label=3):
    Image.fromarray(RGB).save(tmp_path / "im.png")
    text = (f"# 0\nim.png\n3\n20\n30\n2\n"
            f"{fg_label} 0.9 {' '.join(map(str, fg_box))}\n"
            f"7 0.1 {' '.join(map(str, bg_box))}\n")
    path = tmp_path / "windows.txt"
    path.write_text(text)
    return str(path)


def window_data(source, root, params="", transform="crop_size: 8",
                phase=caffe_pb2.TRAIN):
    layer = make_layer(
        f'name: "win" type: "WindowData" top: "data" top: "label" '
        f'window_data_param {{ source: "{source}" root_folder: "{root}/" '
        f'batch_size: 2 fg_fraction: 0.5 {params} }} '
        f'transform_param {{ {transform} }}', phase, dtype=np.float32)
    top = empty_blobs(2, np.float32)
    layer.SetUp([], top)
    return layer, top


def chw(image):
    return image.transpose(2, 0, 1).astype(np.float32)


def test_warp_background_then_foreground(tmp_path):
    source = window_file(tmp_path, (10, 5, 17, 12))
    layer, top = window_data(source, tmp_path)
    assert top[0].shape == (2, 3, 8, 8) and top[1].shape == (2,)
    layer.Forward([], top)
    # Item 0 is the background window (label forced to 0), item 1 the
    # foreground one, each warped to 8×8.
    assert top[1].data.tolist() == [0, 3]
    np.testing.assert_array_equal(top[0].data[0],
                                  chw(resize_bilinear(BGR, 8, 8)))
    np.testing.assert_array_equal(
        top[0].data[1], chw(resize_bilinear(BGR[5:13, 10:18], 8, 8)))
    layer.close()


def test_context_pad_expands_the_window(tmp_path):
    # 4×4 window at x 10..13, y 5..8; crop 8, context_pad 2: context_scale
    # 8 / (8 - 4) = 2, centre (12, 7), half 2 → x 8..16, y 3..11 (9×9),
    # warped to round(9 · 8/9) = 8.
    source = window_file(tmp_path, (10, 5, 13, 8))
    layer, top = window_data(source, tmp_path, "context_pad: 2")
    layer.Forward([], top)
    np.testing.assert_array_equal(
        top[0].data[1], chw(resize_bilinear(BGR[3:12, 8:17], 8, 8)))
    layer.close()


def test_context_clipped_at_the_border_is_zero_padded(tmp_path):
    # Window 0..3: the 9×9 context box is x, y -2..6, clipped to 0..6 (7×7),
    # warped to round(7 · 8/9) = 6, placed after round(2 · 8/9) = 2 zero
    # rows and columns.
    source = window_file(tmp_path, (0, 0, 3, 3))
    layer, top = window_data(source, tmp_path, "context_pad: 2")
    layer.Forward([], top)
    expected = np.zeros((3, 8, 8), np.float32)
    expected[:, 2:, 2:] = chw(resize_bilinear(BGR[0:7, 0:7], 6, 6))
    np.testing.assert_array_equal(top[0].data[1], expected)
    layer.close()


def test_square_mode(tmp_path):
    # 8 wide, 4 high → a square of half-size 4 around the centre (14, 7):
    # x 10..18, y 3..11 (context_pad 0, scale 1).
    source = window_file(tmp_path, (10, 5, 17, 8))
    layer, top = window_data(source, tmp_path, 'crop_mode: "square"')
    layer.Forward([], top)
    np.testing.assert_array_equal(
        top[0].data[1], chw(resize_bilinear(BGR[3:12, 10:19], 8, 8)))
    layer.close()


def test_seeded_mirror(tmp_path):
    source = window_file(tmp_path, (10, 5, 17, 12))
    plain = chw(resize_bilinear(BGR[5:13, 10:18], 8, 8))

    def run(seed):
        set_random_seed(seed)
        layer, top = window_data(source, tmp_path,
                                 transform="crop_size: 8 mirror: true")
        out = []
        for _ in range(8):
            layer.Forward([], top)
            out.append(top[0].data[1].copy())
        layer.close()
        return out

    first = run(5)
    flips = [np.array_equal(o, plain[:, :, ::-1]) for o in first]
    assert all(f or np.array_equal(o, plain) for f, o in zip(flips, first))
    assert any(flips) and not all(flips)
    np.testing.assert_array_equal(first, run(5))


def test_mean_value_and_window_scale(tmp_path):
    source = window_file(tmp_path, (10, 5, 17, 12))
    # Caffe scales by window_data_param.scale; transform_param.scale is
    # not read by this layer.
    layer, top = window_data(
        source, tmp_path, "scale: 0.5",
        "crop_size: 8 scale: 100 mean_value: 1 mean_value: 2 mean_value: 3")
    layer.Forward([], top)
    expected = (chw(resize_bilinear(BGR[5:13, 10:18], 8, 8))
                - np.array([1, 2, 3], np.float32)[:, None, None]) * 0.5
    np.testing.assert_array_equal(top[0].data[1], expected)
    layer.close()


def test_mean_file_is_read_from_its_centre(tmp_path):
    source = window_file(tmp_path, (10, 5, 17, 12))
    mean = np.arange(3 * 10 * 10, dtype=np.float32).reshape(3, 10, 10)
    blob = caffe_pb2.BlobProto(num=1, channels=3, height=10, width=10)
    blob.data.extend(mean.ravel().tolist())
    write_binary(blob, tmp_path / "mean.binaryproto")
    layer, top = window_data(source, tmp_path, "cache_images: true",
                             f'crop_size: 8 mean_file: '
                             f'"{tmp_path}/mean.binaryproto"')
    layer.Forward([], top)
    # mean_off = (10 - 8) / 2 = 1 on both axes.
    expected = chw(resize_bilinear(BGR[5:13, 10:18], 8, 8)) \
        - mean[:, 1:9, 1:9]
    np.testing.assert_array_equal(top[0].data[1], expected)
    layer.close()


def test_errors(tmp_path):
    source = window_file(tmp_path, (10, 5, 17, 12))
    with pytest.raises(KaffeConfigError, match="crop_size must be > 0"):
        window_data(source, tmp_path, transform="")
    bad = window_file(tmp_path, (10, 5, 17, 12), fg_label=0)
    with pytest.raises(KaffeFormatError, match=r"windows\.txt:7: .*class"):
        window_data(bad, tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(KaffeFormatError, match="empty"):
        window_data(str(empty), tmp_path)
    broken = tmp_path / "broken.txt"
    broken.write_text("0 im.png 3 20 30 0\n")
    with pytest.raises(KaffeFormatError, match="does not start with '#'"):
        window_data(str(broken), tmp_path)
    missing = tmp_path / "missing.txt"
    missing.write_text("# 0\nnope.png 3 20 30 2\n3 0.9 0 0 4 4\n"
                       "1 0.1 0 0 4 4\n")
    layer, top = window_data(str(missing), tmp_path)
    with pytest.raises(KaffeFormatError, match=r"missing\.txt:2: .*nope"):
        layer.Forward([], top)
    layer.close()
