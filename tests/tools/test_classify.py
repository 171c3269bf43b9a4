"""kaffe classify (pycaffe's python/classify.py) end to end: an image, a
folder, a .npy; .npy and .binaryproto means; clear errors for Caffe's
default example paths, --gpu and bad flags."""
import numpy as np
import pytest

import kaffe
from kaffe import io
from kaffe.classifier import Classifier
from kaffe.proto import caffe_pb2
from kaffe.tools import cli

Image = pytest.importorskip("PIL.Image")

NET = """
name: "tiny"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 10 dim: 3 dim: 6 dim: 6 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 2 kernel_size: 3
          weight_filler { type: "gaussian" std: 0.1 }
          bias_filler { type: "constant" value: 0.1 } } }
layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc"
        inner_product_param { num_output: 3
          weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


@pytest.fixture
def setup(tmp_path):
    proto = tmp_path / "deploy.prototxt"
    proto.write_text(NET)
    kaffe.set_random_seed(7)
    weights = str(tmp_path / "tiny.caffemodel")
    kaffe.Net(str(proto), kaffe.TEST).save(weights)
    rng = np.random.default_rng(0)
    images = tmp_path / "images"
    images.mkdir()
    for name in ("b.png", "a.png"):
        pixels = (rng.random((9, 11, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(str(images / name))
    mean = np.empty((3, 8, 8))
    mean[:] = np.array([100.0, 110.0, 120.0])[:, None, None]
    np.save(str(tmp_path / "mean.npy"), mean)
    return tmp_path, ["--model_def", str(proto), "--pretrained_model",
                      weights, "--images_dim", "8,8"]


def expected(tmp_path, inputs, center_only=False, mean=True,
             channel_swap=(2, 1, 0)):
    clf = Classifier(str(tmp_path / "deploy.prototxt"),
                     str(tmp_path / "tiny.caffemodel"), image_dims=(8, 8),
                     mean=np.load(str(tmp_path / "mean.npy")) if mean
                     else None, raw_scale=255.0, channel_swap=channel_swap)
    return clf.predict(inputs, not center_only)


def test_one_image(setup, capsys):
    tmp_path, flags = setup
    image = str(tmp_path / "images" / "a.png")
    out = str(tmp_path / "out.npy")
    assert cli.main(["classify", image, out, "--mean_file",
                     str(tmp_path / "mean.npy")] + flags) == 0
    predictions = np.load(out)
    assert predictions.shape == (1, 3)
    np.testing.assert_allclose(
        predictions, expected(tmp_path, [io.load_image(image)]),
        rtol=1e-6)
    err = capsys.readouterr().err
    assert "Classifying 1 inputs." in err and "Saving results into" in err


def test_folder_center_only_and_binaryproto_mean(setup):
    tmp_path, flags = setup
    blob = caffe_pb2.BlobProto(num=1, channels=3, height=8, width=8)
    blob.data.extend(np.load(str(tmp_path / "mean.npy")).ravel().tolist())
    (tmp_path / "mean.binaryproto").write_bytes(blob.SerializeToString())
    out = str(tmp_path / "out.npy")
    assert cli.main(["classify", str(tmp_path / "images"), out, "--ext", "png",
                     "--center_only", "--mean_file",
                     str(tmp_path / "mean.binaryproto")] + flags) == 0
    files = sorted((tmp_path / "images").glob("*.png"))
    inputs = [io.load_image(str(f)) for f in files]
    np.testing.assert_allclose(np.load(out),
                               expected(tmp_path, inputs, center_only=True),
                               rtol=1e-6)


def test_npy_input_without_mean_or_swap(setup):
    tmp_path, flags = setup
    batch = np.random.default_rng(1).random((3, 8, 8, 3)).astype(np.float32)
    np.save(str(tmp_path / "batch.npy"), batch)
    out = str(tmp_path / "out.npy")
    assert cli.main(["classify", str(tmp_path / "batch.npy"), out,
                     "--mean_file", "", "--channel_swap", ""] + flags) == 0
    np.testing.assert_allclose(
        np.load(out),
        expected(tmp_path, batch, mean=False, channel_swap=None), rtol=1e-6)


def test_default_caffe_paths_fail_clearly(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save("x.png")
    assert cli.main(["classify", "x.png", "out.npy"]) == 2
    err = capsys.readouterr().err
    assert "python/caffe/imagenet/ilsvrc_2012_mean.npy" in err
    assert "Caffe checkout" in err and "--mean_file" in err
    assert cli.main(["classify", "x.png", "out.npy", "--mean_file", ""]) == 2
    err = capsys.readouterr().err
    assert "models/bvlc_reference_caffenet/deploy.prototxt" in err
    assert "--model_def" in err and "Traceback" not in err


def test_gpu_is_refused(setup, capsys):
    tmp_path, flags = setup
    assert cli.main(["classify", str(tmp_path / "images"), "o.npy", "--gpu",
                     "--mean_file", ""] + flags) == 2
    assert "GPU" in capsys.readouterr().err


def test_bad_flags_and_empty_folder(setup, capsys):
    tmp_path, flags = setup
    assert cli.main(["classify", str(tmp_path / "images"), "o.npy",
                     "--mean_file", ""] + flags + ["--images_dim", "8"]) == 2
    assert "--images_dim" in capsys.readouterr().err
    assert cli.main(["classify", str(tmp_path / "images"), "o.npy",
                     "--mean_file", ""] + flags) == 2      # no *.jpg there
    assert "--ext" in capsys.readouterr().err
