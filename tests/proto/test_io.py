"""File I/O: prototxt errors with locations, binary files of any size, atomic writes."""
import os

import numpy as np
import pytest

from kaffe.core.errors import KaffeFormatError
from kaffe.proto import caffe_pb2
from kaffe.proto.io import (NetSource, atomic_write, parse_text, read_binary,
                            read_blobproto, read_text, top_level_block_lines,
                            write_binary, write_text)


def test_syntax_error_names_file_line_and_column(tmp_path):
    path = tmp_path / "bad.prototxt"
    path.write_text('name: "x"\nlayer {\n  name: "a"\n  type: "ReLU"\n  botom: "b"\n}\n')
    with pytest.raises(KaffeFormatError) as info:
        read_text(str(path), caffe_pb2.NetParameter)
    err = info.value
    assert (err.line, err.column) == (5, 3)
    assert str(err).startswith(f"{path}:5:3:")
    assert 'no field named "botom"' in str(err)
    assert "did you mean bottom?" in str(err)


def test_bad_enum_value_lists_the_choices():
    with pytest.raises(KaffeFormatError) as info:
        parse_text("pooling_param { pool: MAXIMUM }", caffe_pb2.LayerParameter(),
                   "net.prototxt")
    assert "net.prototxt:1:" in str(info.value)
    assert "MAX, AVE, STOCHASTIC" in str(info.value)


def test_missing_file_and_binary_as_text(tmp_path):
    with pytest.raises(KaffeFormatError, match="not found"):
        read_text(str(tmp_path / "nope.prototxt"), caffe_pb2.NetParameter)
    weights = tmp_path / "w.caffemodel"
    weights.write_bytes(b"\x0a\x03abc\xff\xfe\x00")
    with pytest.raises(KaffeFormatError, match="not a text prototxt"):
        read_text(str(weights), caffe_pb2.NetParameter)


def test_truncated_binary_is_a_format_error(tmp_path):
    param = caffe_pb2.NetParameter(name="n")
    blob = param.layer.add(name="l").blobs.add()
    blob.data.extend(range(100))
    data = param.SerializeToString()
    path = tmp_path / "cut.caffemodel"
    path.write_bytes(data[:-7])
    with pytest.raises(KaffeFormatError, match="not a valid binary"):
        read_binary(str(path), caffe_pb2.NetParameter)


def test_text_and_binary_round_trips(tmp_path):
    param = caffe_pb2.NetParameter(name="round")
    layer = param.layer.add(name="c", type="Convolution", bottom=["x"], top=["y"])
    layer.convolution_param.num_output = 4
    layer.convolution_param.kernel_size.append(3)
    layer.param.add(lr_mult=1, decay_mult=0)
    blob = layer.blobs.add()
    blob.shape.dim.extend([2, 2])
    blob.data.extend([0.5, -1.25, 3.0, 1e-8])
    write_text(param, str(tmp_path / "n.prototxt"))
    write_binary(param, str(tmp_path / "n.caffemodel"))
    assert read_text(str(tmp_path / "n.prototxt"), caffe_pb2.NetParameter) == param
    assert read_binary(str(tmp_path / "n.caffemodel"), caffe_pb2.NetParameter) == param


def test_files_over_64_mib_load(tmp_path):
    # 17M floats = 68 MB, above protobuf's classic 64 MiB default limit.
    values = np.linspace(-1, 1, 17_000_000, dtype=np.float32)
    param = caffe_pb2.NetParameter(name="big")
    blob = param.layer.add(name="huge").blobs.add()
    blob.shape.dim.append(values.size)
    blob.data.extend(values.tolist())
    path = tmp_path / "big.caffemodel"
    write_binary(param, str(path))
    assert os.path.getsize(path) > 64 * 2 ** 20
    loaded = read_binary(str(path), caffe_pb2.NetParameter)
    np.testing.assert_array_equal(np.asarray(loaded.layer[0].blobs[0].data), values)


def test_binaryproto_mean(tmp_path):
    mean = caffe_pb2.BlobProto(num=1, channels=3, height=2, width=2)
    mean.data.extend(range(12))
    path = tmp_path / "mean.binaryproto"
    write_binary(mean, str(path))
    assert list(read_blobproto(str(path)).data) == list(range(12))


def test_atomic_write_leaves_no_partial_file(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")

    atomic_write(str(path), b"new contents")
    assert path.read_bytes() == b"new contents"
    with pytest.raises(TypeError):
        atomic_write(str(path), object())
    assert path.read_bytes() == b"new contents"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_layer_lines_skip_comments_strings_and_nesting():
    text = (
        '# layer { in a comment }\n'
        'name: "layer {"\n'
        'layer {\n'
        '  name: "a"  # layer {\n'
        '  include { phase: TRAIN }\n'
        '}\n'
        'layers: <\n'
        '  layer { name: "v0" }\n'
        '>\n'
        'layer\n'
        '{ name: "b" }\n')
    assert top_level_block_lines(text, ("layer", "layers")) == [3, 7, 10]
    source = NetSource.from_text(text, "n.prototxt", ["a", "v0", "a"])
    assert source.line("a") == 3 and source.line("a", 1) == 10
    assert source.line("v0") == 7 and source.line("zzz") is None


def test_atomic_write_gives_new_files_the_usual_mode(tmp_path):
    umask = os.umask(0o022)
    try:
        atomic_write(str(tmp_path / "new.bin"), b"x")
        assert os.stat(tmp_path / "new.bin").st_mode & 0o777 == 0o644
        target = tmp_path / "kept.bin"
        target.write_bytes(b"old")
        os.chmod(target, 0o600)
        atomic_write(str(target), b"new")
        assert os.stat(target).st_mode & 0o777 == 0o600
    finally:
        os.umask(umask)


def test_one_position_reader_for_nets_and_solvers():
    from kaffe.proto.positions import top_level_field_lines
    from kaffe.solvers.solver_io import SolverSource
    text = ('net: "a.prototxt"  # base_lr: 9\n'
            'base_lr: 0.01\n'
            'test_iter: 5\n'
            'test_state { stage: "x" }\n'
            'test_iter: 7\n'
            'layer {\n  name: "l"\n}\n')
    assert top_level_field_lines(text) == {
        "net": [1], "base_lr": [2], "test_iter": [3, 5], "test_state": [4],
        "layer": [6]}
    source = SolverSource("s.prototxt", text)
    assert source.line("test_iter", 1) == 5
    assert source.where("momentum", "base_lr") == {"file": "s.prototxt",
                                                   "line": 2}
    assert top_level_block_lines(text, ("layer", "layers")) == [6]
