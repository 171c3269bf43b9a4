"""Seeds and mutators of scripts/fuzz_unseen.py (see its docstring): the
fork-layer seed nets, hostile values per protobuf field type, schema-driven
field mutation, rewiring, byte-level and HDF5 mutation, the single-field sweep.
"""
import os

import numpy as np
from google.protobuf import text_format
from google.protobuf.descriptor import FieldDescriptor as FD

from kaffe.proto import caffe_pb2

INPUT = ('layer {{ name: "{0}" type: "Input" top: "{0}" '
         'input_param {{ shape {{ {1} }} }} }}\n')


def _input(name, *dims):
    return INPUT.format(name, " ".join(f"dim: {d}" for d in dims))


SEEDS = {
    "ssd": _input("data", 1, 3, 4, 4) + _input("image", 1, 3, 16, 16) + """
layer { name: "loc" type: "Convolution" bottom: "data" top: "loc"
  convolution_param { num_output: 12 kernel_size: 3 pad: 1
  weight_filler { type: "xavier" } } }
layer { name: "conf" type: "Convolution" bottom: "data" top: "conf"
  convolution_param { num_output: 6 kernel_size: 3 pad: 1
  weight_filler { type: "xavier" } } }
layer { name: "loc_perm" type: "Permute" bottom: "loc" top: "loc_perm"
  permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "loc_flat" type: "Flatten" bottom: "loc_perm" top: "loc_flat"
  flatten_param { axis: 1 } }
layer { name: "conf_perm" type: "Permute" bottom: "conf" top: "conf_perm"
  permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "conf_flat" type: "Flatten" bottom: "conf_perm"
  top: "conf_flat" flatten_param { axis: 1 } }
layer { name: "conf_r" type: "Reshape" bottom: "conf_flat" top: "conf_r"
  reshape_param { shape { dim: 0 dim: -1 dim: 2 } } }
layer { name: "conf_sm" type: "Softmax" bottom: "conf_r" top: "conf_sm"
  softmax_param { axis: 2 } }
layer { name: "conf_f2" type: "Flatten" bottom: "conf_sm" top: "conf_f2"
  flatten_param { axis: 1 } }
layer { name: "prior" type: "PriorBox" bottom: "data" bottom: "image"
  top: "prior" prior_box_param { min_size: 4 aspect_ratio: 2 flip: true
  clip: false variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 } }
layer { name: "det" type: "DetectionOutput" bottom: "loc_flat"
  bottom: "conf_f2" bottom: "prior" top: "det"
  detection_output_param { num_classes: 2 share_location: true
  background_label_id: 0 nms_param { nms_threshold: 0.45 top_k: 100 }
  code_type: CENTER_SIZE keep_top_k: 50 confidence_threshold: 0.01 } }
""",
    "roi": _input("data", 1, 8, 6, 6) + _input("rois", 2, 5) + """
layer { name: "roi" type: "ROIPooling" bottom: "data" bottom: "rois"
  top: "roi" roi_pooling_param { pooled_w: 2 pooled_h: 2
  spatial_scale: 0.5 } }
layer { name: "ps" type: "PSROIPooling" bottom: "data" bottom: "rois"
  top: "ps" psroi_pooling_param { spatial_scale: 0.5 output_dim: 2
  group_size: 2 } }
layer { name: "norm" type: "Normalize" bottom: "data" top: "norm"
  norm_param { across_spatial: false channel_shared: false
  scale_filler { type: "constant" value: 20 } } }
""",
    "proposal": _input("cls", 1, 8, 4, 4) + _input("bbox", 1, 16, 4, 4)
    + _input("im_info", 1, 3) + """
layer { name: "proposal" type: "Proposal" bottom: "cls" bottom: "bbox"
  bottom: "im_info" top: "rois" proposal_param { ratio: 0.5 ratio: 1
  scale: 8 scale: 16 feat_stride: 16 nms_thresh: 0.7 pre_nms_topn: 50
  post_nms_topn: 10 min_size: 1 } }
""",
    "resize": _input("data", 1, 4, 4, 4) + """
layer { name: "pool" type: "Pooling" bottom: "data" top: "pool" top: "mask"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "up" type: "Upsample" bottom: "pool" bottom: "mask" top: "up"
  upsample_param { scale: 2 } }
layer { name: "interp" type: "Interp" bottom: "data" top: "interp"
  interp_param { zoom_factor: 2 } }
layer { name: "shuffle" type: "ShuffleChannel" bottom: "data" top: "sh"
  shuffle_channel_param { group: 2 } }
layer { name: "dw" type: "ConvolutionDepthwise" bottom: "data" top: "dw"
  convolution_param { num_output: 4 kernel_size: 3 group: 4 pad: 1
  weight_filler { type: "msra" } } }
layer { name: "bn" type: "BN" bottom: "dw" top: "bn"
  bn_param { bn_mode: INFERENCE scale_filler { type: "constant" value: 1 }
  shift_filler { type: "constant" value: 0 } } }
layer { name: "gap" type: "Pooling" bottom: "data" top: "gap"
  pooling_param { pool: AVE global_pooling: true } }
layer { name: "axpy" type: "Axpy" bottom: "gap" bottom: "data"
  bottom: "sh" top: "axpy" }
layer { name: "spp" type: "SPP" bottom: "data" top: "spp"
  spp_param { pyramid_height: 2 } }
layer { name: "lrn" type: "LRN" bottom: "data" top: "lrn"
  lrn_param { local_size: 3 } }
""",
    "seq": _input("x", 5, 1, 6) + """
layer { name: "lstm" type: "Lstm" bottom: "x" top: "h"
  lstm_param { num_output: 4 weight_filler { type: "gaussian" std: 0.1 }
  bias_filler { type: "constant" } } }
layer { name: "rev" type: "Reverse" bottom: "h" top: "rev"
  reverse_param { axis: 0 } }
layer { name: "t" type: "Transpose" bottom: "rev" top: "t"
  transpose_param { dim: 1 dim: 0 dim: 2 } }
layer { name: "ip" type: "InnerProduct" bottom: "rev" top: "logits"
  inner_product_param { num_output: 3 axis: 2
  weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "ctc" type: "CTCGreedyDecoder" bottom: "logits" top: "y"
  ctc_decoder_param { blank_index: 0 ctc_merge_repeated: true } }
layer { name: "tile" type: "Tile" bottom: "x" top: "tile"
  tile_param { axis: 1 tiles: 2 } }
layer { name: "emb_in" type: "Input" top: "ids"
  input_param { shape { dim: 3 } } }
layer { name: "emb" type: "Embed" bottom: "ids" top: "emb"
  embed_param { num_output: 4 input_dim: 5 } }
""",
}

TRAIN_NET = _input("data", 2, 3, 5, 5) + _input("label", 2) + """
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 3
  weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" }
layer { name: "sc" type: "Scale" bottom: "conv" top: "conv"
  scale_param { bias_term: true } }
layer { name: "prelu" type: "PReLU" bottom: "conv" top: "conv" }
layer { name: "ip" type: "InnerProduct" bottom: "conv" top: "ip"
  inner_product_param { num_output: 3
  weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label"
  top: "loss" }
"""

SOLVER = """net: "{net}"
base_lr: 0.01
lr_policy: "step"
gamma: 0.5
stepsize: 2
momentum: 0.9
weight_decay: 0.0005
max_iter: 3
display: 1
snapshot: 2
snapshot_prefix: "{prefix}"
type: "{type}"
"""

SOLVER_TYPES = ["SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam"]


# -- extreme values ------------------------------------------------------------
INTS = [0, -1, 1, 2, 3, 7, 255, 65536, 2**31 - 1, -2**31, 2**32 - 1,
        2**63 - 1, -2**63, 2**64 - 1, 10**6, 10**9]
FLOATS = [0.0, -0.0, -1.0, 1e-45, 1e38, -1e38, 3.4e38, float("nan"),
          float("inf"), float("-inf"), 0.5, 1e-30, 1e9, 2.0**31]
LIMITS = {FD.TYPE_INT32: (-2**31, 2**31 - 1), FD.TYPE_SINT32: (-2**31, 2**31 - 1),
          FD.TYPE_SFIXED32: (-2**31, 2**31 - 1),
          FD.TYPE_UINT32: (0, 2**32 - 1), FD.TYPE_FIXED32: (0, 2**32 - 1),
          FD.TYPE_INT64: (-2**63, 2**63 - 1), FD.TYPE_SINT64: (-2**63, 2**63 - 1),
          FD.TYPE_SFIXED64: (-2**63, 2**63 - 1),
          FD.TYPE_UINT64: (0, 2**64 - 1), FD.TYPE_FIXED64: (0, 2**64 - 1)}
STRINGS = ["", "x", "../../../../etc/passwd", "\u00ff" * 3, "a" * 5000,
           "constant", "gaussian", "xavier", "msra", "bilinear", "uniform",
           "positive_unitball", "SGD", "Adam", "nope", "/dev/zero"]


def extreme(rng, field):
    """A hostile value that fits ``field``'s protobuf type."""
    t = field.type
    if t in LIMITS:
        lo, hi = LIMITS[t]
        v = rng.choice(INTS + [rng.randint(-50, 50)])
        return min(max(v, lo), hi)
    if t in (FD.TYPE_FLOAT, FD.TYPE_DOUBLE):
        return rng.choice(FLOATS + [rng.uniform(-10, 10)])
    if t == FD.TYPE_BOOL:
        return rng.random() < 0.5
    if t == FD.TYPE_ENUM:
        values = [v.number for v in field.enum_type.values]
        return rng.choice(values)
    if t == FD.TYPE_STRING:
        return rng.choice(STRINGS)
    if t == FD.TYPE_BYTES:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(20)))
    return None


def _scalar_fields(msg, depth=0):
    """(message, field) pairs reachable in ``msg`` (set sub-messages and every
    field of them, set or not)."""
    out = []
    for field in msg.DESCRIPTOR.fields:
        if field.type == FD.TYPE_MESSAGE:
            if depth > 3:
                continue
            if field.is_repeated:
                for sub in getattr(msg, field.name):
                    out.extend(_scalar_fields(sub, depth + 1))
            elif msg.HasField(field.name):
                out.extend(_scalar_fields(getattr(msg, field.name), depth + 1))
        else:
            out.append((msg, field))
    return out


def _param_fields(layer):
    """Fields of the parameter message(s) ``layer`` uses, plus the set ones."""
    out = []
    for field in layer.DESCRIPTOR.fields:
        if field.type != FD.TYPE_MESSAGE or not field.name.endswith("_param"):
            continue
        if layer.HasField(field.name):
            out.extend(_scalar_fields(getattr(layer, field.name)))
    return out


def mutate_fields(rng, msg_fields, n):
    for _ in range(n):
        if not msg_fields:
            return
        msg, field = rng.choice(msg_fields)
        if field.is_repeated:
            seq = getattr(msg, field.name)
            style = rng.randrange(4)
            if style == 0:
                del seq[:]
            elif style == 1:
                v = extreme(rng, field)
                seq.extend([v] * rng.choice([1, 5, 40, 300, 5000]))
            elif style == 2 and len(seq):
                seq[rng.randrange(len(seq))] = extreme(rng, field)
            else:
                seq.append(extreme(rng, field))
        else:
            try:
                setattr(msg, field.name, extreme(rng, field))
            except (ValueError, TypeError):
                pass


def mutate_net_fields(rng, text):
    net = text_format.Parse(text, caffe_pb2.NetParameter())
    layer = rng.choice(list(net.layer))
    if rng.random() < 0.3:
        # wake a parameter message the layer does not set
        params = [f for f in layer.DESCRIPTOR.fields
                  if f.name.endswith("_param") and f.type == FD.TYPE_MESSAGE]
        getattr(layer, rng.choice(params).name).SetInParent()
    fields = _param_fields(layer)
    if rng.random() < 0.2:
        fields += _scalar_fields(layer)
    mutate_fields(rng, fields, rng.choice([1, 1, 2, 3]))
    return text_format.MessageToString(net)


def mutate_rewire(rng, text):
    from kaffe.core.registry import layer_type_list
    net = text_format.Parse(text, caffe_pb2.NetParameter())
    layers = list(net.layer)
    blobs = sorted({t for layer in layers for t in layer.top})
    for _ in range(rng.choice([1, 2])):
        layer = rng.choice(layers)
        style = rng.randrange(6)
        if style == 0:
            layer.type = rng.choice(layer_type_list())
        elif style == 1 and len(layer.bottom):
            layer.bottom[rng.randrange(len(layer.bottom))] = rng.choice(blobs)
        elif style == 2:
            layer.bottom.append(rng.choice(blobs))
        elif style == 3 and len(layer.bottom):
            del layer.bottom[rng.randrange(len(layer.bottom))]
        elif style == 4:
            layer.top.append(rng.choice(blobs + ["fresh"]))
        else:
            # move the layer elsewhere in the order
            i = layers.index(layer)
            j = rng.randrange(len(layers))
            layers.insert(j, layers.pop(i))
            del net.layer[:]
            net.layer.extend(layers)
    return text_format.MessageToString(net)


def mutate_bytes(rng, data):
    data = bytearray(data)
    style = rng.randrange(4)
    if style == 0 and data:
        del data[rng.randrange(len(data)):]
    elif style == 1:
        for _ in range(rng.choice([1, 2, 8, 64])):
            if data:
                i = rng.randrange(len(data))
                data[i] ^= 1 << rng.randrange(8)
    elif style == 2 and data:
        i = rng.randrange(len(data))
        data[i:i] = bytes([rng.randrange(256)]) * rng.choice([1, 5, 100])
    else:
        for _ in range(rng.choice([1, 4])):
            if data:
                data[rng.randrange(len(data))] = rng.choice([0, 0xff, 0x7f, 0x80])
    return bytes(data)


def mutate_message(rng, msg):
    """Set extreme values anywhere in a parsed message (weights, states)."""
    fields = _scalar_fields(msg)
    if rng.random() < 0.5:
        fields = [(m, f) for m, f in fields
                  if f.name in ("dim", "num", "channels", "height", "width",
                                "iter", "current_step", "learned_net",
                                "minimum_graph_size")] or fields
        mutate_fields(rng, fields, rng.choice([1, 2]))
    else:
        mutate_fields(rng, fields, rng.choice([1, 2, 4]))


def _mutate_h5(rng, path):
    import h5py
    with h5py.File(path, "r+") as f:
        names = []
        f.visit(names.append)
        datasets = [n for n in names if isinstance(f[n], h5py.Dataset)]
        style = rng.randrange(6)
        if style == 0 and datasets:
            del f[rng.choice(datasets)]
        elif style == 1 and datasets:
            n = rng.choice(datasets)
            del f[n]
            shape = rng.choice([(0,), (3, 0, 2), (2**20, 2**20),
                                (7,), (1,) * 40, ()])
            if shape == (2**20, 2**20):
                f.create_dataset(n, shape=shape, dtype="f4", chunks=(1, 16))
            else:
                f.create_dataset(n, data=np.ones(shape, "f4"))
        elif style == 2 and datasets:
            n = rng.choice(datasets)
            v = f[n][()]
            del f[n]
            f.create_dataset(n, data=np.asarray(v).astype(
                rng.choice(["S3", "i8", "f8", "u1", "c8", "?"])))
        elif style == 3 and datasets:
            n = rng.choice(datasets)
            del f[n]
            f.create_group(n)
        elif style == 4:
            n = rng.choice(datasets or ["iter"])
            if n in f:
                del f[n]
            f.create_dataset(n, data=rng.choice(INTS + FLOATS))
        else:
            f.attrs["junk"] = "x"
            key = rng.choice(["iter", "current_step", "learned_net"])
            if key in f:
                del f[key]
            f[key] = rng.choice([-1, 2**62, b"\xff\xfe", "../nope.h5",
                                 float("nan"), np.array([1, 2])])
    if rng.random() < 0.2:
        with open(path, "r+b") as f:
            data = f.read()
            f.seek(0)
            f.write(mutate_bytes(rng, data))
            f.truncate()


SWEEP_INTS = [0, -1, 2**31 - 1, -2**31, 2**32 - 1, 2**63 - 1, 100000]
SWEEP_FLOATS = [0.0, -1.0, float("nan"), float("inf"), float("-inf"),
                1e38, 1e-45]


def sweep_cases(out):
    """Every (seed net, layer, parameter field, extreme value), one at a
    time: a deterministic complement to the random kinds."""
    n = 0
    for name, text in sorted(SEEDS.items()):
        base = text_format.Parse(text, caffe_pb2.NetParameter())
        for li, layer in enumerate(base.layer):
            for msg, field in _param_fields(layer):
                path = _field_path(layer, msg)
                if path is None:    # inside a repeated message: not swept
                    continue
                if field.type in LIMITS:
                    lo, hi = LIMITS[field.type]
                    values = sorted({min(max(v, lo), hi)
                                     for v in SWEEP_INTS})
                elif field.type in (FD.TYPE_FLOAT, FD.TYPE_DOUBLE):
                    values = SWEEP_FLOATS
                elif field.type == FD.TYPE_ENUM:
                    values = [v.number for v in field.enum_type.values]
                elif field.type == FD.TYPE_BOOL:
                    values = [True, False]
                else:
                    continue
                for value in values:
                    net = caffe_pb2.NetParameter()
                    net.CopyFrom(base)
                    target = net.layer[li]
                    for part in path:
                        target = getattr(target, part)
                    if field.is_repeated:
                        getattr(target, field.name).append(value)
                    else:
                        setattr(target, field.name, value)
                    case_dir = os.path.join(out, "cases", f"sweep{n}")
                    os.makedirs(case_dir, exist_ok=True)
                    mutant = os.path.join(case_dir, "mutant.prototxt")
                    with open(mutant, "w") as f:
                        f.write(text_format.MessageToString(net))
                    yield case_dir, {"action": "net", "path": mutant,
                                     "what": f"{name}/{layer.name}/"
                                             f"{'.'.join(path)}."
                                             f"{field.name}={value}"}
                    n += 1


def _field_path(layer, msg):
    """Attribute names leading from ``layer`` to its sub-message ``msg``."""
    def walk(m, trail):
        if m is msg:
            return trail
        for field, value in m.ListFields():
            if field.type == FD.TYPE_MESSAGE and not field.is_repeated:
                found = walk(value, trail + [field.name])
                if found is not None:
                    return found
        return None
    return walk(layer, [])
