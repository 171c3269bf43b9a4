"""kaffe's caffe.proto: freshness of the generated module, and compatibility
with Caffe's wire and text formats checked against golden values taken from
Caffe's documented schema (field numbers, defaults, enum values)."""
import filecmp
import importlib.util
import os
import struct

import pytest
from google.protobuf import descriptor_pb2, text_format

from kaffe.proto import caffe_pb2
from kaffe.proto.forks import fork_of

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
GEN_SCRIPT = os.path.join(REPO_ROOT, "scripts", "gen_proto.py")


def _load_gen_script():
    spec = importlib.util.spec_from_file_location("kaffe_gen_proto", GEN_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the committed caffe_pb2.py is what the pinned protoc makes of caffe.proto

def test_generated_module_is_not_stale(tmp_path):
    gen = _load_gen_script()
    found = gen.installed_grpcio_tools_version()
    if found is None:
        pytest.skip("grpcio-tools is not installed (pinned: {}); cannot "
                    "regenerate caffe_pb2.py".format(gen.GRPCIO_TOOLS_VERSION))
    if found != gen.GRPCIO_TOOLS_VERSION:
        pytest.skip("grpcio-tools {} is installed but {} is pinned; output "
                    "would differ".format(found, gen.GRPCIO_TOOLS_VERSION))
    fresh = gen.generate(str(tmp_path))
    committed = os.path.join(gen.PROTO_DIR, gen.OUTPUT_NAME)
    assert filecmp.cmp(fresh, committed, shallow=False), (
        "kaffe/proto/caffe_pb2.py is stale; run: python scripts/gen_proto.py")


# -- wire compatibility: field numbers --------------------------------------

def _number(message, field):
    return message.DESCRIPTOR.fields_by_name[field].number


@pytest.mark.parametrize("message, field, number", [
    (caffe_pb2.NetParameter, "layer", 100),
    (caffe_pb2.NetParameter, "layers", 2),          # legacy V1 layers
    (caffe_pb2.LayerParameter, "convolution_param", 106),
    (caffe_pb2.LayerParameter, "pooling_param", 121),
    (caffe_pb2.LayerParameter, "batch_norm_param", 139),
    (caffe_pb2.LayerParameter, "clip_param", 148),
    (caffe_pb2.LayerParameter, "swish_param", 147),
    (caffe_pb2.LayerParameter, "blobs", 7),
    (caffe_pb2.InnerProductParameter, "num_output", 1),
    (caffe_pb2.ConvolutionParameter, "dilation", 18),
    (caffe_pb2.BlobProto, "shape", 7),
    (caffe_pb2.BlobProto, "data", 5),
    (caffe_pb2.BlobProto, "num", 1),                # legacy 4-d shape
    (caffe_pb2.SolverParameter, "weights", 42),
    (caffe_pb2.V1LayerParameter, "blobs_lr", 7),
    (caffe_pb2.V1LayerParameter, "layer", 1),       # nested V0 layer
    (caffe_pb2.V1LayerParameter, "param", 1001),
    (caffe_pb2.V0LayerParameter, "hdf5_output_param", 1001),
])
def test_field_numbers(message, field, number):
    assert _number(message, field) == number


def test_packed_fields():
    # Packed encoding is part of the wire format for these repeated fields.
    assert caffe_pb2.BlobShape.DESCRIPTOR.fields_by_name["dim"].is_packed
    for name in ("data", "diff", "double_data", "double_diff"):
        assert caffe_pb2.BlobProto.DESCRIPTOR.fields_by_name[name].is_packed
    # ...and not for these (Caffe never marked them packed).
    assert not caffe_pb2.Datum.DESCRIPTOR.fields_by_name["float_data"].is_packed
    assert not caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name[
        "loss_weight"].is_packed


def test_field_labels():
    clip = caffe_pb2.ClipParameter.DESCRIPTOR.fields_by_name
    assert clip["min"].is_required and clip["max"].is_required
    conv = caffe_pb2.ConvolutionParameter.DESCRIPTOR.fields_by_name
    assert conv["kernel_size"].is_repeated      # N-d form
    pool = caffe_pb2.PoolingParameter.DESCRIPTOR.fields_by_name
    assert not pool["kernel_size"].is_repeated  # pooling stays scalar


# -- text compatibility: defaults and enums ----------------------------------

def test_defaults():
    assert caffe_pb2.ConvolutionParameter().bias_term is True
    assert caffe_pb2.ConvolutionParameter().group == 1
    assert caffe_pb2.PoolingParameter().round_mode == \
        caffe_pb2.PoolingParameter.CEIL
    assert caffe_pb2.PoolingParameter().pool == caffe_pb2.PoolingParameter.MAX
    assert caffe_pb2.PoolingParameter().stride == 1
    assert caffe_pb2.BatchNormParameter().moving_average_fraction == \
        pytest.approx(0.999)
    assert caffe_pb2.BatchNormParameter().eps == pytest.approx(1e-5)
    assert caffe_pb2.SolverParameter().momentum2 == pytest.approx(0.999)
    assert caffe_pb2.SolverParameter().type == "SGD"
    assert caffe_pb2.SolverParameter().solver_mode == \
        caffe_pb2.SolverParameter.GPU
    assert caffe_pb2.SolverParameter().random_seed == -1
    assert caffe_pb2.DataParameter().backend == caffe_pb2.DataParameter.LEVELDB
    assert caffe_pb2.FillerParameter().type == "constant"
    assert caffe_pb2.FillerParameter().sparse == -1
    assert caffe_pb2.ParamSpec().lr_mult == 1.0
    assert caffe_pb2.NetState().phase == caffe_pb2.TEST
    assert caffe_pb2.LossParameter().normalization == \
        caffe_pb2.LossParameter.VALID
    assert caffe_pb2.EltwiseParameter().operation == \
        caffe_pb2.EltwiseParameter.SUM
    assert caffe_pb2.LRNParameter().local_size == 5
    assert caffe_pb2.LRNParameter().beta == pytest.approx(0.75)
    assert caffe_pb2.WindowDataParameter().crop_mode == "warp"
    assert caffe_pb2.FlattenParameter().end_axis == -1


def test_enum_values():
    assert caffe_pb2.TRAIN == 0 and caffe_pb2.TEST == 1
    layer_type = caffe_pb2.V1LayerParameter.LayerType
    assert layer_type.Value("CONVOLUTION") == 4
    assert layer_type.Value("DECONVOLUTION") == 39
    assert layer_type.Value("SOFTMAX_LOSS") == 21
    assert layer_type.Value("ABSVAL") == 35
    assert len(layer_type.keys()) == 40
    assert caffe_pb2.ReductionParameter.SUM == 1  # this enum starts at 1
    assert caffe_pb2.HingeLossParameter.L1 == 1
    assert caffe_pb2.FillerParameter.AVERAGE == 2
    assert caffe_pb2.SolverParameter.ADAM == 5
    assert caffe_pb2.ConvolutionParameter.CUDNN == 2


def test_layer_parameter_has_every_layer_param():
    numbers = sorted(f.number for f in caffe_pb2.LayerParameter.DESCRIPTOR.fields
                     if f.name.endswith("_param")
                     and fork_of("LayerParameter", f.name) is None)
    # transform_param (100) through clip_param (148): each number used once.
    assert numbers == list(range(100, 149))


def test_no_extra_top_level_messages():
    fdp = descriptor_pb2.FileDescriptorProto()
    caffe_pb2.DESCRIPTOR.CopyToProto(fdp)
    assert fdp.package == "caffe"
    bvlc = [m for m in fdp.message_type if fork_of(m.name) is None]
    assert len(bvlc) == 63
    assert [e.name for e in fdp.enum_type] == ["Phase"]


# -- text format: a LeNet-style prototxt -------------------------------------

LENET = """
name: "LeNet"
layer {
  name: "mnist"
  type: "Data"
  top: "data"
  top: "label"
  include { phase: TRAIN }
  transform_param { scale: 0.00390625 }
  data_param {
    source: "examples/mnist/mnist_train_lmdb"
    batch_size: 64
    backend: LMDB
  }
}
layer {
  name: "conv1"
  type: "Convolution"
  bottom: "data"
  top: "conv1"
  param { lr_mult: 1 }
  param { lr_mult: 2 }
  convolution_param {
    num_output: 20
    kernel_size: 5
    stride: 1
    weight_filler { type: "xavier" }
    bias_filler { type: "constant" }
  }
}
layer {
  name: "pool1"
  type: "Pooling"
  bottom: "conv1"
  top: "pool1"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 }
}
layer {
  name: "ip1"
  type: "InnerProduct"
  bottom: "pool1"
  top: "ip1"
  inner_product_param { num_output: 500 weight_filler { type: "xavier" } }
}
layer {
  name: "accuracy"
  type: "Accuracy"
  bottom: "ip1"
  bottom: "label"
  top: "accuracy"
  include { phase: TEST }
}
layer {
  name: "loss"
  type: "SoftmaxWithLoss"
  bottom: "ip1"
  bottom: "label"
  top: "loss"
  loss_weight: 1
}
"""


def test_parse_lenet_prototxt():
    net = text_format.Parse(LENET, caffe_pb2.NetParameter())
    assert net.name == "LeNet"
    assert [l.name for l in net.layer] == [
        "mnist", "conv1", "pool1", "ip1", "accuracy", "loss"]
    data, conv, pool, ip, acc, loss = net.layer
    assert data.include[0].phase == caffe_pb2.TRAIN
    assert data.data_param.backend == caffe_pb2.DataParameter.LMDB
    assert data.transform_param.scale == pytest.approx(1 / 256)
    assert [p.lr_mult for p in conv.param] == [1, 2]
    assert conv.param[0].decay_mult == 1.0  # default
    assert list(conv.convolution_param.kernel_size) == [5]
    assert conv.convolution_param.weight_filler.type == "xavier"
    assert conv.convolution_param.bias_term  # default
    assert pool.pooling_param.pool == caffe_pb2.PoolingParameter.MAX
    assert not pool.pooling_param.HasField("round_mode")
    assert ip.inner_product_param.num_output == 500
    assert acc.include[0].phase == caffe_pb2.TEST
    assert list(loss.loss_weight) == [1.0]
    # Round trip through text keeps everything.
    again = text_format.Parse(text_format.MessageToString(net),
                              caffe_pb2.NetParameter())
    assert again == net


def test_parse_legacy_v1_prototxt():
    text = """
    name: "old"
    layers {
      name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1"
      blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0
      convolution_param { num_output: 8 kernel_size: 3 }
    }
    """
    net = text_format.Parse(text, caffe_pb2.NetParameter())
    v1 = net.layers[0]
    assert v1.type == caffe_pb2.V1LayerParameter.CONVOLUTION
    assert list(v1.blobs_lr) == [1, 2]
    assert list(v1.weight_decay) == [1, 0]


# -- binary format: packed floats round trip ---------------------------------

def test_binary_round_trip_with_packed_blob():
    net = caffe_pb2.NetParameter(name="tiny")
    layer = net.layer.add(name="ip", type="InnerProduct")
    layer.inner_product_param.num_output = 2
    blob = layer.blobs.add()
    blob.shape.dim.extend([2, 3])
    values = [0.5, -1.0, 2.25, 3.0, -0.125, 1e-3]
    blob.data.extend(values)

    wire = net.SerializeToString()
    parsed = caffe_pb2.NetParameter.FromString(wire)
    assert parsed == net
    assert list(parsed.layer[0].blobs[0].shape.dim) == [2, 3]
    assert list(parsed.layer[0].blobs[0].data) == pytest.approx(values)

    # BlobProto.data (field 5) is written packed: one length-delimited record
    # (tag 5 << 3 | 2 = 0x2a) holding the little-endian float32 values.
    blob_wire = blob.SerializeToString()
    packed = bytes([0x2a, 4 * len(values)]) + struct.pack(
        "<%df" % len(values), *values)
    assert packed in blob_wire
    # BlobShape.dim (field 1, packed varints): 0x0a, length 2, then 2 and 3.
    assert bytes([0x3a, 4, 0x0a, 2, 2, 3]) in blob_wire


def test_unpacked_floats_are_still_accepted():
    # Parsers must accept both encodings of a packable field; old writers
    # may emit one tag per value (wire type 5, fixed32).
    wire = b"".join(bytes([0x2d]) + struct.pack("<f", v) for v in (1.5, -2.0))
    blob = caffe_pb2.BlobProto.FromString(wire)
    assert list(blob.data) == [1.5, -2.0]
