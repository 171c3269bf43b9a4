"""Minimal reproducers of what the independent driver (scripts/fuzz_unseen.py)
found: each was a memory blow-up or an internal error; each must now be a
kaffe error or, for a valid file, a normal result."""
import os

import pytest

import kaffe
from kaffe.core.errors import KaffeError
from kaffe.memory import set_max_bytes
from kaffe.tools.cli import main

TINY = ('layer { name: "d" type: "Input" top: "d" '
        'input_param { shape { dim: 1 dim: 2 } } }\n'
        'layer { name: "ip" type: "InnerProduct" bottom: "d" top: "ip" '
        'inner_product_param { num_output: 2 } }\n')

SSD = """
layer { name: "data" type: "Input" top: "data"
  input_param { shape { dim: 1 dim: 8 dim: 4 dim: 4 } } }
layer { name: "image" type: "Input" top: "image"
  input_param { shape { dim: 1 dim: 3 dim: 16 dim: 16 } } }
layer { name: "loc" type: "Convolution" bottom: "data" top: "loc"
  convolution_param { num_output: 12 kernel_size: 3 pad: 1
  weight_filler { type: "xavier" } } }
layer { name: "conf" type: "Convolution" bottom: "data" top: "conf"
  convolution_param { num_output: 6 kernel_size: 3 pad: 1
  weight_filler { type: "xavier" } } }
layer { name: "loc_perm" type: "Permute" bottom: "loc" top: "loc_perm"
  permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "loc_flat" type: "Flatten" bottom: "loc_perm" top: "loc_flat" }
layer { name: "conf_perm" type: "Permute" bottom: "conf" top: "conf_perm"
  permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "conf_flat" type: "Flatten" bottom: "conf_perm"
  top: "conf_flat" }
layer { name: "prior" type: "PriorBox" bottom: "data" bottom: "image"
  top: "prior" prior_box_param { min_size: 4 aspect_ratio: 2 flip: true
  variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 } }
layer { name: "det" type: "DetectionOutput" bottom: "loc_flat"
  bottom: "conf_flat" bottom: "prior" top: "det"
  detection_output_param { num_classes: 2 share_location: true
  background_label_id: 0 nms_param { nms_threshold: 0.45 top_k: 100 }
  code_type: CENTER_SIZE keep_top_k: 50 confidence_threshold: 0.01 } }
"""

no_dev_zero = pytest.mark.skipif(not os.path.exists("/dev/zero"),
                                 reason="needs /dev/zero")


@pytest.fixture
def small_ceiling():
    set_max_bytes(100 << 20)
    yield
    set_max_bytes(None)


@no_dev_zero
def test_weights_from_dev_zero_are_refused_not_read_forever(
        tmp_path, small_ceiling):
    # A solver's `weights: "/dev/zero"` read the endless device into memory.
    path = tmp_path / "net.prototxt"
    path.write_text(TINY)
    with pytest.raises(KaffeError, match=r"/dev/zero.*not a regular file"):
        kaffe.Net(str(path), kaffe.TEST, weights="/dev/zero")


@no_dev_zero
def test_explain_of_dev_zero_is_a_kaffe_error(small_ceiling, capsys):
    assert main(["explain", "/dev/zero"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kaffe: error: /dev/zero") and "Traceback" not in err


def test_stream_over_caffes_limit_is_refused(tmp_path, monkeypatch):
    from kaffe.proto import io as proto_io
    monkeypatch.setattr(proto_io, "_STREAM_LIMIT", 10)
    monkeypatch.setattr(proto_io, "_CHUNK", 4)
    read, write = os.pipe()
    os.write(write, b"x" * 32)
    os.close(write)
    try:
        with pytest.raises(KaffeError, match="at most 10 bytes"):
            proto_io._read_bytes(f"/proc/self/fd/{read}", "net prototxt")
    finally:
        os.close(read)


def test_pipe_under_the_limits_still_reads(tmp_path):
    from kaffe.proto import io as proto_io
    read, write = os.pipe()
    os.write(write, TINY.encode())
    os.close(write)
    try:
        assert proto_io._read_bytes(f"/proc/self/fd/{read}",
                                    "net prototxt") == TINY.encode()
    finally:
        os.close(read)


def test_doctor_model_with_detection_output_of_varying_size(tmp_path, capsys):
    # DetectionOutput keeps a number of boxes that follows the input: the two
    # doctor passes gave outputs of different shapes (internal ValueError).
    path = tmp_path / "ssd.prototxt"
    path.write_text(SSD)
    assert main(["doctor", "--model", str(path)]) == 0
    err = capsys.readouterr().err
    assert "internal error" not in err and "Traceback" not in err


TRAIN = ('layer { name: "d" type: "Input" top: "d" '
         'input_param { shape { dim: 2 dim: 3 } } }\n'
         'layer { name: "l" type: "Input" top: "l" '
         'input_param { shape { dim: 2 } } }\n'
         'layer { name: "ip" type: "InnerProduct" bottom: "d" top: "ip" '
         'inner_product_param { num_output: 2 } }\n'
         'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" '
         'bottom: "l" top: "loss" }\n')


@pytest.mark.parametrize("fmt", ["BINARYPROTO", "HDF5"])
def test_snapshot_past_caffes_int_iter_is_a_kaffe_error(tmp_path, fmt):
    # A state claiming iter 2^31 - 1 resumed and stepped once: the snapshot
    # leaked protobuf's ValueError ("Value out of range") after writing the
    # weights. Now the counters are checked before anything is written.
    if fmt == "HDF5":
        pytest.importorskip("h5py")
    from kaffe.solvers.solver_io import INT32_MAX
    (tmp_path / "net.prototxt").write_text(TRAIN)
    solver_path = tmp_path / "solver.prototxt"
    solver_path.write_text(
        f'net: "{tmp_path / "net.prototxt"}"\nbase_lr: 0.01\n'
        f'lr_policy: "fixed"\nmax_iter: 1\nsnapshot: 1\n'
        f'snapshot_format: {fmt}\nsnapshot_prefix: "{tmp_path / "s"}"\n')
    solver = kaffe.get_solver(str(solver_path))
    state = solver.solver_state()
    state.iter = INT32_MAX
    path = tmp_path / "big.solverstate"
    path.write_bytes(state.SerializeToString())
    solver.restore(str(path))
    assert solver.iter == INT32_MAX
    with pytest.raises(KaffeError, match=r"iter does not fit in a solver "
                       r"state; received 2147483648"):
        solver.step(1)
    assert not [f for f in os.listdir(tmp_path) if f.startswith("s_iter")]


def test_weights_shape_mismatch_with_thousands_of_huge_axes(tmp_path):
    # A blob of 5,002 axes of 2^31 - 1: the mismatch message's element count
    # overflowed Python's int-to-text limit (internal ValueError).
    path = tmp_path / "net.prototxt"
    path.write_text(TINY)
    net = kaffe.Net(str(path), kaffe.TEST)
    param = net.to_proto()
    blob = [layer for layer in param.layer if layer.name == "ip"][0].blobs[0]
    blob.shape.dim.extend([2**31 - 1] * 5000)
    weights = tmp_path / "w.caffemodel"
    weights.write_bytes(param.SerializeToString())
    with pytest.raises(KaffeError, match=r"\.\.\. \(5002 axes\) "
                       r"\(about 2\^\d+\) in the file"):
        net.copy_from(str(weights))


def test_kaffe_test_logs_a_bounded_number_of_values(tmp_path, monkeypatch,
                                                    capsys):
    # An output of half a million values was logged value by value, twice:
    # minutes of output (a hang under a 20 s budget).
    from kaffe.tools import test as test_tool
    monkeypatch.setattr(test_tool, "MAX_LOGGED", 3)
    path = tmp_path / "net.prototxt"
    path.write_text('layer { name: "d" type: "Input" top: "d" '
                    'input_param { shape { dim: 1 dim: 8 } } }\n')
    weights = tmp_path / "w.caffemodel"
    kaffe.Net(str(path), kaffe.TEST).save(str(weights))
    assert main(["test", "--model", str(path), "--weights", str(weights),
                 "--iterations", "2"]) == 0
    err = capsys.readouterr().err
    assert err.count("Batch 0, d = ") == 3
    assert "Batch 1, d: 5 more values not shown" in err
    assert err.count("] d = ") == 3
    assert "] d: 5 more values not shown" in err


@pytest.mark.parametrize("field,value", [
    ("aspect_ratio", "-inf"), ("aspect_ratio", "-2"), ("aspect_ratio", "0"),
    ("aspect_ratio", "inf"), ("min_size", "inf"), ("max_size", "inf")])
def test_prior_box_refuses_non_finite_or_negative_sizes(tmp_path, field,
                                                        value):
    # aspect_ratio -inf: math domain error in the square root; 0: division
    # by zero when flipped; min_size inf: OverflowError converting to int.
    text = SSD.replace("min_size: 4 aspect_ratio: 2",
                       "min_size: 4 aspect_ratio: 2 " + f"{field}: {value}")
    path = tmp_path / "ssd.prototxt"
    path.write_text(text)
    with pytest.raises(KaffeError, match=rf"layer 'prior' \(PriorBox\): "
                       rf"prior_box_param\.{field} must be a positive finite"):
        kaffe.Net(str(path), kaffe.TEST)


def test_gaussian_filler_with_negative_zero_std(tmp_path):
    # std: -0.0 passed the `std >= 0` check, then NumPy's normal() raised
    # ValueError("scale < 0"). A zero std fills the mean.
    path = tmp_path / "net.prototxt"
    path.write_text(
        'layer { name: "d" type: "Input" top: "d" '
        'input_param { shape { dim: 1 dim: 2 } } }\n'
        'layer { name: "ip" type: "InnerProduct" bottom: "d" top: "ip" '
        'inner_product_param { num_output: 2 weight_filler { '
        'type: "gaussian" mean: 0.5 std: -0.0 } } }\n')
    net = kaffe.Net(str(path), kaffe.TEST)
    assert (net.params["ip"][0].data == 0.5).all()


def test_ctc_decoder_indicators_with_extra_axes(tmp_path):
    # Indicators (T, N, 4) passed the (T, N) check on their first two axes,
    # then reshaping them to (T, N) raised ValueError in forward.
    path = tmp_path / "net.prototxt"
    path.write_text(
        'layer { name: "x" type: "Input" top: "x" top: "c" input_param { '
        'shape { dim: 5 dim: 1 dim: 3 } shape { dim: 5 dim: 1 dim: 4 } } }\n'
        'layer { name: "ctc" type: "CTCGreedyDecoder" bottom: "x" '
        'bottom: "c" top: "y" }\n')
    with pytest.raises(KaffeError, match=r"layer 'ctc' \(CTCGreedyDecoder\)"
                       r".*received \(5, 1, 4\), expected \(5, 1\)"):
        kaffe.Net(str(path), kaffe.TEST).forward()
