"""The fork additions to caffe.proto: BVLC's schema is untouched by them,
they use the forks' own numbers (or the documented replacement where two
claim one number), and fork fields round-trip in text and binary form."""
import hashlib
import struct

import pytest
from google.protobuf import descriptor_pb2, text_format

from kaffe.core.errors import KaffeFormatError
from kaffe.proto import caffe_pb2, io
from kaffe.proto.forks import FORK_FIELDS, FORK_MESSAGES, FORKS, fork_of

# sha256 of BVLC's FileDescriptorProto as kaffe's caffe.proto held it before
# any fork addition (deterministic serialization).
BVLC_DESCRIPTOR_SHA256 = (
    "d8c7b6fbd6633747a6c143dd87ca906f15df2489d4c4b2c990b204c40eabde0c")


def _without_forks():
    fdp = descriptor_pb2.FileDescriptorProto.FromString(
        caffe_pb2.DESCRIPTOR.serialized_pb)
    kept = [m for m in fdp.message_type if m.name not in FORK_MESSAGES]
    del fdp.message_type[:]
    fdp.message_type.extend(kept)
    for message in fdp.message_type:
        fields = [f for f in message.field
                  if (message.name, f.name) not in FORK_FIELDS]
        del message.field[:]
        message.field.extend(fields)
    return fdp


def test_removing_the_fork_additions_gives_bvlcs_schema_byte_for_byte():
    fdp = _without_forks()
    digest = hashlib.sha256(fdp.SerializeToString(deterministic=True))
    assert digest.hexdigest() == BVLC_DESCRIPTOR_SHA256


def test_the_index_lists_exactly_what_the_schema_adds():
    names = set(caffe_pb2.DESCRIPTOR.message_types_by_name)
    assert set(FORK_MESSAGES) <= names
    for (message, field), (fork, number, _) in FORK_FIELDS.items():
        assert fork in FORKS
        descriptor = caffe_pb2.DESCRIPTOR.message_types_by_name[message]
        assert descriptor.fields_by_name[field].number == number


def test_no_number_is_used_twice():
    for descriptor in caffe_pb2.DESCRIPTOR.message_types_by_name.values():
        numbers = [f.number for f in descriptor.fields]
        assert len(numbers) == len(set(numbers)), descriptor.name


@pytest.mark.parametrize("field, number", [
    ("prior_box_param", 203), ("detection_output_param", 204),
    ("permute_param", 202), ("norm_param", 206),
    ("multibox_loss_param", 201), ("annotated_data_param", 200),
    ("roi_pooling_param", 8266711), ("psroi_pooling_param", 10002),
    ("shuffle_channel_param", 164), ("bn_param", 45),
    ("ctc_decoder_param", 158), ("reverse_param", 160),
    ("transpose_param", 8266710),
])
def test_the_forks_own_numbers(field, number):
    field_desc = caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name[field]
    assert field_desc.number == number


def test_fork_defaults_are_the_forks():
    assert caffe_pb2.PriorBoxParameter().flip is True
    assert caffe_pb2.PriorBoxParameter().clip is False
    assert caffe_pb2.PriorBoxParameter().offset == pytest.approx(0.5)
    assert caffe_pb2.DetectionOutputParameter().keep_top_k == -1
    assert caffe_pb2.DetectionOutputParameter().code_type == \
        caffe_pb2.PriorBoxParameter.CORNER
    assert caffe_pb2.DetectionOutputParameter().normalized_bbox is True
    assert caffe_pb2.NonMaximumSuppressionParameter().nms_threshold == \
        pytest.approx(0.3)
    assert caffe_pb2.NonMaximumSuppressionParameter().eta == 1.0
    assert caffe_pb2.NormalizeParameter().eps == pytest.approx(1e-10)
    assert caffe_pb2.NormalizeParameter().across_spatial is True
    assert caffe_pb2.ProposalParameter().nms_thresh == pytest.approx(0.7)
    assert caffe_pb2.PoolingParameter().ceil_mode is True
    assert caffe_pb2.UpsampleParameter().scale == 2
    assert caffe_pb2.InterpParameter().zoom_factor == 1
    assert caffe_pb2.ShuffleChannelParameter().group == 1
    assert caffe_pb2.CTCDecoderParameter().ctc_merge_repeated is True
    assert caffe_pb2.PriorBoxParameter.CORNER_SIZE == 3


SSD_TAIL = """
name: "ssd-tail"
layer {
  name: "conv4_3_norm" type: "Normalize" bottom: "conv4_3" top: "conv4_3_norm"
  norm_param { across_spatial: false scale_filler { type: "constant" value: 20 }
               channel_shared: false }
}
layer {
  name: "perm" type: "Permute" bottom: "loc" top: "perm"
  permute_param { order: 0 order: 2 order: 3 order: 1 }
}
layer {
  name: "prior" type: "PriorBox" bottom: "conv4_3_norm" bottom: "data"
  top: "prior"
  prior_box_param { min_size: 30.0 max_size: 60.0 aspect_ratio: 2 flip: true
    clip: false variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2
    step: 8 offset: 0.5 }
}
layer {
  name: "detection_out" type: "DetectionOutput"
  bottom: "mbox_loc" bottom: "mbox_conf_flatten" bottom: "mbox_priorbox"
  top: "detection_out"
  include { phase: TEST }
  detection_output_param { num_classes: 21 share_location: true
    background_label_id: 0
    nms_param { nms_threshold: 0.45 top_k: 400 eta: 1.0 }
    save_output_param { label_map_file: "labelmap_voc.prototxt" }
    code_type: CENTER_SIZE keep_top_k: 200 confidence_threshold: 0.01 }
}
layer {
  name: "mbox_loss" type: "MultiBoxLoss"
  bottom: "mbox_loc" bottom: "mbox_conf" bottom: "mbox_priorbox"
  bottom: "label" top: "mbox_loss"
  multibox_loss_param { loc_loss_type: SMOOTH_L1 conf_loss_type: SOFTMAX
    num_classes: 21 match_type: PER_PREDICTION mining_type: MAX_NEGATIVE }
}
layer {
  name: "data" type: "AnnotatedData" top: "data" top: "label"
  transform_param { mirror: true mean_value: 104
    resize_param { prob: 1 resize_mode: WARP height: 300 width: 300
                   interp_mode: LINEAR interp_mode: AREA }
    emit_constraint { emit_type: CENTER }
    distort_param { brightness_prob: 0.5 brightness_delta: 32 }
    expand_param { prob: 0.5 max_expand_ratio: 4.0 } }
  annotated_data_param { batch_sampler { sampler { min_scale: 0.3 }
      sample_constraint { min_jaccard_overlap: 0.1 } max_sample: 1
      max_trials: 50 }
    label_map_file: "labelmap_voc.prototxt" }
}
"""

OTHER_FORKS = """
layer { name: "roi" type: "ROIPooling" bottom: "conv5" bottom: "rois"
  top: "pool5" roi_pooling_param { pooled_w: 7 pooled_h: 7
  spatial_scale: 0.0625 } }
layer { name: "ps" type: "PSROIPooling" bottom: "x" bottom: "rois" top: "ps"
  psroi_pooling_param { spatial_scale: 0.0625 output_dim: 21
  group_size: 7 } }
layer { name: "proposal" type: "Proposal" bottom: "a" bottom: "b"
  bottom: "im_info" top: "rois" proposal_param { ratio: 0.5 ratio: 1
  scale: 8 scale: 16 feat_stride: 16 nms_thresh: 0.7 } }
layer { name: "up" type: "Upsample" bottom: "x" bottom: "mask" top: "up"
  upsample_param { scale: 2 upsample_h: 45 upsample_w: 60 } }
layer { name: "bn" type: "BN" bottom: "x" top: "x"
  bn_param { bn_mode: INFERENCE scale_filler { type: "constant" value: 1 }
  shift_filler { type: "constant" value: 0 } } }
layer { name: "d" type: "DenseImageData" top: "data" top: "label"
  dense_image_data_param { source: "train.txt" batch_size: 4
  shuffle: true } }
layer { name: "interp" type: "Interp" bottom: "x" top: "y"
  interp_param { zoom_factor: 8 pad_beg: 0 pad_end: 0 } }
layer { name: "shuffle" type: "ShuffleChannel" bottom: "x" top: "y"
  shuffle_channel_param { group: 3 } }
layer { name: "pool" type: "Pooling" bottom: "x" top: "y"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 ceil_mode: false } }
layer { name: "lstm" type: "Lstm" bottom: "x" top: "y"
  lstm_param { num_output: 100 weight_filler { type: "gaussian" } } }
layer { name: "rev" type: "Reverse" bottom: "x" top: "y"
  reverse_param { axis: 0 } }
layer { name: "t" type: "Transpose" bottom: "x" top: "y"
  transpose_param { dim: 3 dim: 0 dim: 2 dim: 1 } }
layer { name: "ctc" type: "CTCGreedyDecoder" bottom: "x" top: "y"
  ctc_decoder_param { blank_index: 0 ctc_merge_repeated: true } }
"""


@pytest.mark.parametrize("text", [SSD_TAIL, OTHER_FORKS],
                         ids=["ssd", "other-forks"])
def test_fork_prototxt_round_trips_in_text_and_binary(text):
    net = io.parse_text(text, caffe_pb2.NetParameter(), "fork.prototxt")
    again = text_format.Parse(text_format.MessageToString(net),
                              caffe_pb2.NetParameter())
    assert again == net
    wire = caffe_pb2.NetParameter.FromString(net.SerializeToString())
    assert wire == net


def test_fork_values_survive_binary():
    net = io.parse_text(SSD_TAIL + OTHER_FORKS, caffe_pb2.NetParameter())
    wire = caffe_pb2.NetParameter.FromString(net.SerializeToString())
    layers = {layer.name: layer for layer in wire.layer}
    prior = layers["prior"].prior_box_param
    assert list(prior.min_size) == [30.0] and list(prior.aspect_ratio) == [2]
    assert list(prior.variance) == pytest.approx([0.1, 0.1, 0.2, 0.2])
    det = layers["detection_out"].detection_output_param
    assert det.nms_param.top_k == 400
    assert det.code_type == caffe_pb2.PriorBoxParameter.CENTER_SIZE
    assert list(layers["perm"].permute_param.order) == [0, 2, 3, 1]
    assert layers["roi"].roi_pooling_param.spatial_scale == 0.0625
    assert layers["pool"].pooling_param.HasField("ceil_mode")
    assert layers["pool"].pooling_param.ceil_mode is False
    assert layers["bn"].bn_param.bn_mode == caffe_pb2.BNParameter.INFERENCE
    assert layers["data"].transform_param.resize_param.height == 300


def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _tag(number, wire_type):
    return _varint((number << 3) | wire_type)


def _length_delimited(number, payload):
    return _tag(number, 2) + _varint(len(payload)) + payload


def test_ssd_binary_numbers_parse_as_ssd_fields():
    # A layer as the SSD fork writes it: prior_box_param under 203 holding
    # min_size (field 1, float 30.0).
    payload = _tag(1, 5) + struct.pack("<f", 30.0)
    layer = caffe_pb2.LayerParameter.FromString(
        _length_delimited(203, payload))
    assert list(layer.prior_box_param.min_size) == [30.0]


@pytest.mark.parametrize("number, payload", [
    (137, _tag(1, 0) + b"\x02" + _tag(6, 0) + b"\x2d"),   # SegNet upsample
    (138, _tag(1, 2) + b"\x03abc"),                        # SegNet dense data
    (143, _tag(3, 0) + b"\x08"),                           # DeepLab interp
    (8266711, _tag(1, 0) + b"\x64" + _tag(2, 5) + b"\0\0\0\0"),  # OCR lstm
])
def test_binaries_of_forks_that_lost_a_number_still_parse(number, payload):
    # These forks put their field under a number BVLC (or another fork)
    # owns; the bytes must still load without error (kaffe takes layer
    # settings from the prototxt and only blobs from a caffemodel).
    blob = caffe_pb2.BlobProto(data=[1.0, 2.0])
    data = (_length_delimited(1, b"up") + _length_delimited(number, payload)
            + _length_delimited(7, blob.SerializeToString()))
    layer = caffe_pb2.LayerParameter.FromString(data)
    assert layer.name == "up"
    assert list(layer.blobs[0].data) == [1.0, 2.0]


def test_unknown_field_error_names_the_known_forks(tmp_path):
    path = tmp_path / "net.prototxt"
    path.write_text('layer {\n  name: "x"\n  anchor_param { }\n}\n')
    with pytest.raises(KaffeFormatError) as err:
        io.read_text(str(path), caffe_pb2.NetParameter)
    message = str(err.value)
    assert "net.prototxt:3" in message
    assert 'no field named "anchor_param"' in message
    for name in ("SSD", "Fast/Faster R-CNN", "R-FCN", "SegNet",
                 "DeepLab/PSPNet", "ShuffleNet", "CRNN-style OCR"):
        assert name in message


def test_fork_of():
    assert fork_of("PriorBoxParameter") == "ssd"
    assert fork_of("LayerParameter", "roi_pooling_param") == "fast-rcnn"
    assert fork_of("PoolingParameter", "ceil_mode") == "pr3057"
    assert fork_of("PoolingParameter", "round_mode") is None
    assert fork_of("ConvolutionParameter") is None


def test_a_real_ssd_caffemodel_reads_its_fork_fields():
    import os
    path = os.path.join(os.path.dirname(__file__), "..", "..", "..",
                        "shared", "models", "res10_ssd",
                        "res10_300x300_ssd_iter_140000.caffemodel")
    if not os.path.isfile(path):
        pytest.skip("../shared/models/res10_ssd is not here")
    with open(path, "rb") as f:
        net = caffe_pb2.NetParameter.FromString(f.read())
    layers = {}
    for layer in net.layer:                 # the first layer of each type
        layers.setdefault(layer.type, layer)
    # Written by the SSD fork: its training layers are in the file too.
    prior = layers["PriorBox"].prior_box_param
    assert list(prior.min_size) == [30] and prior.step == 8
    loss = layers["MultiBoxLoss"].multibox_loss_param          # number 201
    assert loss.num_classes == 2
    assert loss.code_type == caffe_pb2.PriorBoxParameter.CENTER_SIZE
    data = layers["AnnotatedData"]
    assert data.transform_param.resize_param.height == 300
    assert len(data.annotated_data_param.batch_sampler) > 0
    assert layers["Normalize"].norm_param.channel_shared is False
