"""kaffe.fold: BatchNorm and Scale folded into the layer before them, for
inference; the folded net computes the same outputs up to rounding."""
import os

import numpy as np
import pytest

import kaffe
from kaffe.fold import fold_batchnorm, foldable_chains

NET = """
name: "foldme"
layer { name: "data" type: "Input" top: "data"
  input_param { shape { dim: 2 dim: 4 dim: 9 dim: 9 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 6 kernel_size: 3 pad: 1 group: 2
    bias_term: false weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "sc1" type: "Scale" bottom: "conv1" top: "conv1"
  scale_param { bias_term: true } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2"
  convolution_param { num_output: 5 kernel_size: 3 stride: 2
    weight_filler { type: "gaussian" std: 0.3 }
    bias_filler { type: "gaussian" std: 0.5 } } }
layer { name: "bn2" type: "BatchNorm" bottom: "conv2" top: "bn2" }
layer { name: "sc2" type: "Scale" bottom: "bn2" top: "sc2" }
layer { name: "conv3" type: "Convolution" bottom: "sc2" top: "conv3"
  convolution_param { num_output: 4 kernel_size: 1
    weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "split_use" type: "ReLU" bottom: "conv3" top: "side" }
layer { name: "bn3" type: "BatchNorm" bottom: "conv3" top: "bn3" }
layer { name: "fc" type: "InnerProduct" bottom: "bn3" top: "fc"
  inner_product_param { num_output: 3 transpose: true
    weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "bnfc" type: "BatchNorm" bottom: "fc" top: "fc" }
"""


def _net(tmp_path, dtype, text=NET):
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    kaffe.set_random_seed(4)
    net = kaffe.Net(str(path), kaffe.TEST, dtype=dtype)
    rng = np.random.default_rng(0)
    for name, blobs in net.params.items():
        layer = net.layer_dict[name]
        if layer.type == "BatchNorm":
            channels = blobs[0].data.size
            blobs[0].data[...] = rng.standard_normal(channels) * 3
            blobs[1].data[...] = rng.random(channels) * 4 + 0.1
            blobs[2].data[...] = 2.0
        elif layer.type == "Scale":
            for b in blobs:
                b.data[...] = rng.standard_normal(b.data.shape)
    net.blobs["data"].data[...] = rng.standard_normal((2, 4, 9, 9))
    return net


def test_chains_follow_the_rules(tmp_path):
    net = _net(tmp_path, np.float32)
    # conv3's top is also read by another layer before bn3: not folded.
    assert foldable_chains(net) == {"conv1": ["bn1", "sc1"],
                                    "conv2": ["bn2", "sc2"],
                                    "fc": ["bnfc"]}


@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12),
                                              (np.float32, 2e-6)])
def test_folded_net_computes_the_same_outputs(tmp_path, dtype, tolerance):
    net = _net(tmp_path, dtype)
    before = {k: v.data.copy() for k, b in net.params.items()
              for k, v in [(k, b[0])]}
    expected = {k: v.copy() for k, v in net.forward().items()}
    expected_side = net.blobs["side"].data.copy()
    folded = fold_batchnorm(net)
    types = [node.type for node in folded.graph]
    assert types.count("BatchNorm") == 1        # bn3 stays
    assert "Scale" not in types
    assert len(folded.params["conv1"]) == 2     # a bias now
    folded.blobs["data"].data[...] = net.blobs["data"].data
    out = folded.forward()
    assert sorted(out) == sorted(expected)
    for name, value in expected.items():
        scale = np.abs(value).max()
        np.testing.assert_allclose(out[name], value, rtol=0,
                                   atol=tolerance * scale)
    np.testing.assert_allclose(folded.blobs["side"].data, expected_side,
                               rtol=0, atol=tolerance
                               * np.abs(expected_side).max())
    for name, value in before.items():          # the original is untouched
        np.testing.assert_array_equal(net.params[name][0].data, value)


def test_batch_statistics_and_shared_weights_are_not_folded(tmp_path):
    text = NET.replace('name: "bn1" type: "BatchNorm" bottom: "conv1" '
                       'top: "conv1" }',
                       'name: "bn1" type: "BatchNorm" bottom: "conv1" '
                       'top: "conv1" batch_norm_param { use_global_stats: '
                       'false } }')
    text = text.replace('bottom: "conv1" top: "conv2"',
                        'bottom: "conv1" top: "conv2" param { name: "w2" }')
    net = _net(tmp_path, np.float32, text)
    assert foldable_chains(net) == {"fc": ["bnfc"]}


def test_folded_inputs_keep_the_current_shape(tmp_path):
    net = _net(tmp_path, np.float32)
    net.blobs["data"].reshape(5, 4, 9, 9)
    net.reshape()
    folded = fold_batchnorm(net)
    assert folded.blobs["data"].shape == (5, 4, 9, 9)


SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared",
                      "models", "open_nsfw")


@pytest.mark.skipif(not os.path.isdir(SHARED),
                    reason="../shared/models/open_nsfw is not present")
def test_open_nsfw_folds_every_batchnorm_and_scale():
    net = kaffe.Net(os.path.join(SHARED, "deploy.prototxt"), kaffe.TEST,
                    weights=os.path.join(SHARED,
                                         "resnet_50_1by2_nsfw.caffemodel"))
    x = np.random.default_rng(2).random(net.blobs["data"].shape) * 100
    net.blobs["data"].data[...] = x
    expected = net.forward()["prob"].copy()
    folded = fold_batchnorm(net)
    types = [node.type for node in folded.graph]
    assert "BatchNorm" not in types and "Scale" not in types
    folded.blobs["data"].data[...] = x
    np.testing.assert_allclose(folded.forward()["prob"], expected,
                               atol=1e-5)
