"""HDF5 weights in Caffe's layout: data/<layer>/<j> (+ diff/...), detected by content."""
import logging
import sys

import numpy as np
import pytest

import kaffe
from kaffe.core.errors import KaffeError, KaffeFormatError, KaffeShapeError
from kaffe.proto import caffe_pb2, hdf5
from kaffe.proto.io import parse_text

h5py = pytest.importorskip("h5py", reason="h5py (kaffe[hdf5], test extra) not installed")

NET = """
name: "small"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 2 dim: 3 dim: 6 dim: 6 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3
                            weight_filler { type: "gaussian" std: 0.5 }
                            bias_filler { type: "gaussian" std: 0.5 } } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "ip" type: "InnerProduct" bottom: "conv" top: "ip"
        inner_product_param { num_output: 5 bias_term: false
                              weight_filler { type: "gaussian" std: 0.5 } } }
"""

# ip2 shares ip1's weight (and not its bias): Caffe writes the weight once.
SHARED = """
name: "shared"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 4 } } }
layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
        param { name: "w" } param { name: "b1" }
        inner_product_param { num_output: 4 weight_filler { type: "gaussian" }
                              bias_filler { type: "gaussian" } } }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
        param { name: "w" } param { name: "b2" }
        inner_product_param { num_output: 4 weight_filler { type: "gaussian" }
                              bias_filler { type: "gaussian" } } }
"""


def make_net(text=NET, seed=None, dtype=np.float32):
    if seed is not None:
        kaffe.set_random_seed(seed)
    param = parse_text(text, caffe_pb2.NetParameter())
    return kaffe.Net(param, kaffe.TEST, dtype=dtype)


def params_of(net):
    return {name: [b.data.copy() for b in blobs] for name, blobs in net.params.items()}


def assert_same_params(a, b):
    pa, pb = params_of(a), params_of(b)
    assert pa.keys() == pb.keys()
    for name in pa:
        for x, y in zip(pa[name], pb[name]):
            np.testing.assert_array_equal(x, y, err_msg=name)


def test_round_trip_in_caffes_layout(tmp_path):
    net = make_net(seed=3)
    path = tmp_path / "small.caffemodel.h5"
    net.save_hdf5(str(path))
    with h5py.File(path, "r") as f:
        assert list(f) == ["data"]
        # Every layer has a group, an empty one without parameters.
        assert sorted(f["data"]) == ["conv", "data", "ip", "relu"]
        assert len(f["data/relu"]) == 0 and len(f["data/data"]) == 0
        assert sorted(f["data/conv"]) == ["0", "1"]
        assert f["data/conv/0"].shape == (4, 3, 3, 3)
        assert f["data/conv/0"].dtype == np.float32
        assert f["data/conv/1"].shape == (4,)
        np.testing.assert_array_equal(f["data/ip/0"][()], net.params["ip"][0].data)
    fresh = make_net(seed=99)
    fresh.load_hdf5(str(path))
    assert_same_params(net, fresh)
    # copy_from finds HDF5 by content, whatever the file is called.
    renamed = tmp_path / "weights.caffemodel"
    renamed.write_bytes(path.read_bytes())
    other = make_net(seed=5)
    other.copy_from(str(renamed))
    assert_same_params(net, other)
    assert_same_params(net, kaffe.Net(_write(tmp_path, NET), kaffe.TEST,
                                      weights=str(renamed)))


def test_write_diff_and_double_nets(tmp_path):
    net = make_net(seed=4, dtype=np.float64)
    for blobs in net.params.values():
        for blob in blobs:
            blob.diff[...] = np.arange(blob.count).reshape(blob.shape) * 0.5
    path = tmp_path / "d.h5"
    net.save_hdf5(str(path), write_diff=True)
    with h5py.File(path, "r") as f:
        assert sorted(f) == ["data", "diff"]
        assert f["data/conv/0"].dtype == np.float64
        np.testing.assert_array_equal(f["diff/conv/0"][()],
                                      net.params["conv"][0].diff)
    single = make_net(seed=1)
    single.copy_from(str(path))
    np.testing.assert_array_equal(single.params["ip"][0].data,
                                  net.params["ip"][0].data.astype(np.float32))
    # The diff group is not read back.
    assert not any(b.has_diff for blobs in single.params.values() for b in blobs)


def test_file_written_by_h5py_in_caffes_layout(tmp_path, caplog):
    """What Caffe's ToHDF5 produces: float datasets per blob, extra layers
    (a training net's loss, data) and integer datasets (H5T_INTEGER is read)."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    ip = np.arange(5 * 64, dtype=np.int32).reshape(5, 64)
    path = tmp_path / "caffe_iter_100.caffemodel.h5"
    with h5py.File(path, "w") as f:
        f.create_group("data/mnist")
        f.create_dataset("data/conv/0", data=w)
        f.create_dataset("data/conv/1", data=b)
        f.create_dataset("data/ip/0", data=ip)
        f.create_group("data/loss")
        f.create_dataset("diff/conv/0", data=np.zeros_like(w))
    net = make_net(seed=2)
    with caplog.at_level(logging.INFO, logger="kaffe"):
        net.copy_from(str(path))
    np.testing.assert_array_equal(net.params["conv"][0].data, w)
    np.testing.assert_array_equal(net.params["conv"][1].data, b)
    np.testing.assert_array_equal(net.params["ip"][0].data, ip.astype(np.float32))
    assert "Ignoring source layer loss" in caplog.text
    assert "Ignoring source layer mnist" in caplog.text


def test_signature_after_a_user_block_and_binary_named_h5(tmp_path):
    net = make_net(seed=6)
    path = tmp_path / "userblock.bin"
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, blobs in net.params.items():
            for j, blob in enumerate(blobs):
                f.create_dataset(f"data/{name}/{j}", data=blob.data)
    assert hdf5.is_hdf5(str(path))
    fresh = make_net(seed=7)
    fresh.copy_from(str(path))
    assert_same_params(net, fresh)
    binary = tmp_path / "looks_like.caffemodel.h5"
    net.save(str(binary))
    assert not hdf5.is_hdf5(str(binary))
    fresh = make_net(seed=8)
    fresh.copy_from(str(binary))
    assert_same_params(net, fresh)
    assert not hdf5.is_hdf5(str(tmp_path / "missing"))


def test_shared_params_written_once_and_loaded(tmp_path):
    net = make_net(SHARED, seed=1)
    assert net.param_owners == [-1, -1, 0, -1]
    path = tmp_path / "shared.h5"
    net.save_hdf5(str(path), write_diff=True)
    with h5py.File(path, "r") as f:
        assert sorted(f["data/ip1"]) == ["0", "1"]
        assert sorted(f["data/ip2"]) == ["1"]          # the shared weight is the owner's
        assert sorted(f["diff/ip2"]) == ["0", "1"]     # diffs regardless of sharing
    fresh = make_net(SHARED, seed=2)
    fresh.load_hdf5(str(path))
    assert_same_params(net, fresh)
    assert fresh.params["ip2"][0].data is not None
    np.testing.assert_array_equal(fresh.params["ip2"][0].data, net.params["ip1"][0].data)


def _write(tmp_path, text, name="net.prototxt"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _caffe_file(tmp_path, layers, name="w.h5"):
    path = tmp_path / name
    with h5py.File(path, "w") as f:
        f.create_group("data")
        for key, value in layers.items():
            if value is None:
                f.create_group(f"data/{key}")
            else:
                f.create_dataset(f"data/{key}", data=value)
    return str(path)


def test_shape_mismatch_is_the_binary_error(tmp_path):
    net = make_net(seed=1)
    bad = {"conv/0": np.zeros((4, 3, 5, 5), np.float32), "conv/1": np.zeros(4, np.float32)}
    with pytest.raises(KaffeShapeError) as h5_error:
        net.copy_from(_caffe_file(tmp_path, bad))
    # The same net and file in binary form give the same message.
    param = caffe_pb2.NetParameter()
    layer = param.layer.add(name="conv", type="Convolution")
    layer.blobs.add().shape.dim.extend([4, 3, 5, 5])
    layer.blobs[0].data.extend([0.0] * 300)
    layer.blobs.add().shape.dim.append(4)
    layer.blobs[1].data.extend([0.0] * 4)
    binary = tmp_path / "w.caffemodel"
    binary.write_bytes(param.SerializeToString())
    with pytest.raises(KaffeShapeError) as binary_error:
        net.copy_from(str(binary))
    message = str(h5_error.value)
    assert message == str(binary_error.value).replace(str(binary), str(tmp_path / "w.h5"))
    assert "layer 'conv' (Convolution): cannot copy param 0 weights: shape mismatch" in message
    assert "received '4 3 5 5 (300) in the file', expected 4 3 3 3 (108) in the net" in message


def test_blob_count_errors(tmp_path):
    net = make_net(seed=1)
    three = {"ip/0": np.zeros((5, 64), np.float32), "ip/1": np.zeros(5, np.float32),
             "ip/2": np.zeros(5, np.float32)}
    with pytest.raises(KaffeShapeError, match="number of parameter blobs"):
        net.copy_from(_caffe_file(tmp_path, three, "three.h5"))
    # A missing dataset is only fine for a shared parameter.
    with pytest.raises(KaffeShapeError, match="has no dataset for param 1"):
        net.copy_from(_caffe_file(tmp_path, {"conv/0": np.zeros((4, 3, 3, 3), np.float32)},
                                  "missing.h5"))
    shared = make_net(SHARED, seed=1)
    only_owner = {"ip1/0": np.ones((4, 4), np.float32), "ip1/1": np.ones(4, np.float32),
                  "ip2/1": np.ones(4, np.float32)}
    shared.copy_from(_caffe_file(tmp_path, only_owner, "owner.h5"))
    np.testing.assert_array_equal(shared.params["ip2"][0].data, np.ones((4, 4)))


def test_format_errors(tmp_path):
    net = make_net(seed=1)
    path = tmp_path / "nodata.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("weights", data=np.zeros(3))
    with pytest.raises(KaffeFormatError, match="no 'data' group"):
        net.copy_from(str(path))
    strings = {"ip/0": np.array([b"abc"] * 5)}
    with pytest.raises(KaffeFormatError, match="unsupported datatype at data/ip/0"):
        net.copy_from(_caffe_file(tmp_path, strings, "strings.h5"))
    nested = tmp_path / "nested.h5"
    with h5py.File(nested, "w") as f:
        f.create_group("data/ip/0")
    with pytest.raises(KaffeFormatError, match="group at data/ip/0"):
        net.copy_from(str(nested))
    text = tmp_path / "not.h5"
    text.write_text("hello")
    with pytest.raises(KaffeFormatError, match="cannot be opened as an HDF5 file"):
        net.load_hdf5(str(text))
    with pytest.raises(KaffeFormatError, match="not found"):
        net.load_hdf5(str(tmp_path / "absent.h5"))


def test_slash_in_layer_names_round_trips(tmp_path):
    # GoogLeNet's "conv1/7x7_s2"; MobileNet's "conv1" beside "conv1/scale"
    # (HDF5 stores the second inside the first's group).
    text = NET.replace('"conv"', '"conv1/3x3"').replace('"ip"', '"loss3/classifier"')
    text += """
layer { name: "loss3" type: "Scale" bottom: "ip" top: "s" scale_param { bias_term: true } }
layer { name: "loss3/scale" type: "Scale" bottom: "s" top: "s2"
        scale_param { filler { type: "gaussian" } } }
"""
    text = text.replace('bottom: "ip"', 'bottom: "loss3/classifier"')
    if "Scale" not in kaffe.layer_type_list():
        pytest.skip("Scale not registered yet")
    net = make_net(text, seed=9)
    path = tmp_path / "googlenet_like.h5"
    net.save_hdf5(str(path))
    with h5py.File(path, "r") as f:
        assert sorted(f["data/loss3"]) == ["0", "1", "classifier", "scale"]
    fresh = make_net(text, seed=10)
    fresh.copy_from(str(path))
    assert_same_params(net, fresh)


def test_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    net = make_net(seed=1)
    path = tmp_path / "w.h5"
    path.write_bytes(b"old")

    def fail(*args):
        raise RuntimeError("disk full")
    monkeypatch.setattr(hdf5, "_write_groups", fail)
    with pytest.raises(RuntimeError):
        net.save_hdf5(str(path))
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["w.h5"]


def test_missing_h5py_says_how_to_install(tmp_path, monkeypatch):
    net = make_net(seed=1)
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(KaffeError, match=r"pip install kaffe\[hdf5\]"):
        net.save_hdf5(str(tmp_path / "w.h5"))
    # Binary weights still load without it.
    net.save(str(tmp_path / "w.caffemodel"))
    net.copy_from(str(tmp_path / "w.caffemodel"))
