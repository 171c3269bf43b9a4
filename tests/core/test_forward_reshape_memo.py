"""Layer.Forward skips reshape for SHAPE_ONLY_RESHAPE types while shapes
stay put, and reshapes again as soon as a bottom's shape changes."""
import numpy as np

import kaffe
from kaffe.core.layer import SHAPE_ONLY_RESHAPE

NET = """
layer { name: "data" type: "Input" top: "data"
  input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 3
    weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
"""


def test_reshape_runs_only_when_shapes_change(tmp_path):
    assert {"Convolution", "Pooling", "ReLU"} <= SHAPE_ONLY_RESHAPE
    path = tmp_path / "net.prototxt"
    path.write_text(NET)
    net = kaffe.Net(str(path), kaffe.TEST)
    calls = []
    conv = net.layer_dict["conv"]
    original = conv.reshape

    def counting(bottom, top):
        calls.append(bottom[0].shape)
        original(bottom, top)

    conv.reshape = counting
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8))
    net.blobs["data"].data[...] = x
    first = net.forward()["pool"].copy()
    net.forward()
    assert len(calls) <= 1      # at most once for two forwards
    count = len(calls)
    # A new input shape without net.reshape(): Forward notices it.
    net.blobs["data"].reshape(1, 3, 10, 10)
    net.blobs["data"].data[...] = 1.0
    out = net.forward()["pool"]
    assert len(calls) == count + 1
    assert out.shape == (1, 4, 4, 4)
    # and back: the same numbers as at first
    net.blobs["data"].reshape(2, 3, 8, 8)
    net.blobs["data"].data[...] = x
    np.testing.assert_array_equal(net.forward()["pool"], first)


def test_release_intermediates_keeps_outputs_and_frees_the_rest(tmp_path):
    path = tmp_path / "net.prototxt"
    path.write_text(NET)
    kaffe.set_random_seed(3)
    net = kaffe.Net(str(path), kaffe.TEST)
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(
        np.float32)
    net.blobs["data"].data[...] = x
    expected = net.forward()["pool"].copy()
    assert not net.release_intermediates
    assert net.layer_dict["conv"].workspace_limit is None
    net.release_intermediates = True
    assert (net.layer_dict["conv"].workspace_limit
            == kaffe.core.net.LEAN_WORKSPACE_ELEMENTS)
    for _ in range(2):      # the freed blobs come back for the next pass
        np.testing.assert_array_equal(net.forward()["pool"], expected)
        assert not net.blobs["conv"].data.any()   # freed: zeros again
        np.testing.assert_array_equal(net.blobs["data"].data, x)
    net.release_intermediates = False
    assert net.layer_dict["conv"].workspace_limit is None
    net.forward()
    assert net.blobs["conv"].data.any()


RESIDUAL = """
layer { name: "data" type: "Input" top: "data"
  input_param { shape { dim: 2 dim: 3 dim: 6 dim: 6 } } }
layer { name: "a" type: "Convolution" bottom: "data" top: "a"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1
    weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "b" type: "Convolution" bottom: "a" top: "b"
  convolution_param { num_output: 4 kernel_size: 1
    weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "sum1" type: "Eltwise" bottom: "b" bottom: "a" top: "sum1" }
layer { name: "c" type: "Convolution" bottom: "sum1" top: "c"
  convolution_param { num_output: 4 kernel_size: 1
    weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "sum2" type: "Eltwise" bottom: "sum1" bottom: "c" top: "sum2"
  eltwise_param { operation: MAX } }
layer { name: "twice" type: "Eltwise" bottom: "sum2" bottom: "sum2"
  top: "twice" }
"""


def test_lean_eltwise_computes_into_its_dying_first_bottom(tmp_path):
    """sum1's first bottom b dies with it: sum1 is computed into b's
    memory. sum2's first bottom sum1 is a Split output whose other copy c
    read earlier: reused too. 'twice' reads one blob twice: not reused.
    Values are those of the ordinary forward, bit for bit; turning lean
    off gives every blob its own memory again."""
    path = tmp_path / "residual.prototxt"
    path.write_text(RESIDUAL)
    kaffe.set_random_seed(5)
    net = kaffe.Net(str(path), kaffe.TEST)
    net.blobs["data"].data[...] = np.random.default_rng(2).standard_normal(
        (2, 3, 6, 6))
    expected = net.forward()["twice"].copy()
    net.release_intermediates = True
    reused = {net._layer_names[i]: (top, bottom) for i, entry
              in enumerate(net._reuse_plan) if entry
              for top, bottom in [entry]}
    assert sorted(reused) == ["sum1", "sum2"]
    for _ in range(2):
        np.testing.assert_array_equal(net.forward()["twice"], expected)
    top, bottom = reused["sum1"]
    assert top is net.blobs["sum1"] and bottom is net.blobs["b"]
    net.release_intermediates = False
    net.forward()
    assert not np.shares_memory(net.blobs["sum1"].data, net.blobs["b"].data)
    assert net.blobs["b"].data.any()
    np.testing.assert_array_equal(net.forward()["twice"], expected)
