#!/usr/bin/env python
"""An independent fuzz driver: mutation styles the built-in harness lacks.

    python scripts/fuzz_unseen.py --cases 2000 --out /tmp/kaffe-unseen
    python scripts/fuzz_unseen.py --minutes 20 --kinds netfield,rewire

Where scripts/fuzz.py mutates the seed corpus of kaffe.testing.fuzz, this
script starts from its own seeds (small nets built from the fork layers --
PriorBox, DetectionOutput, Permute, Normalize, ROIPooling, PSROIPooling,
Proposal, Interp, Upsample, ShuffleChannel, ConvolutionDepthwise, Lstm,
CTCGreedyDecoder, BN, Axpy, ... -- and, when ../shared is there, the real
res10_ssd net and weights) and mutates them by *schema*: any scalar field
of a layer's parameter message, set or not, takes an extreme value (0, -1,
2^31-1, 2^32-1, 2^63-1, nan, inf, 1e38, ...), repeated fields grow to
hundreds of entries, layer types are swapped, bottoms and tops rewired.
Weights files are truncated, bit-flipped and re-encoded with mutated blob
shapes; solver prototxts get extreme values; solver states (binary and
HDF5) and binaryproto means are rewritten with lying shapes.

Kinds: netfield, rewire, weights, solver, solverstate, mean, cli; with
--sweep, every single field of every seed layer takes each extreme value in
turn (a deterministic run of a few thousand cases).

Each case runs in a forked child under RLIMIT_AS (3 GiB) and a timeout
(20 s). A case fails when an exception outside kaffe's error family
escapes, a MemoryError escapes, the CLI prints a traceback or "please
report", the child crashes, or it runs past the timeout. Failures are
grouped by the innermost kaffe source line and kept under OUT/failures.
Exits 1 when anything failed.
"""
import argparse
import collections
import contextlib
import io
import json
import math
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SHARED = os.path.join(os.path.dirname(ROOT), "shared")

import numpy as np  # noqa: E402
from google.protobuf import text_format  # noqa: E402
from google.protobuf.descriptor import FieldDescriptor as FD  # noqa: E402

import kaffe  # noqa: E402
from kaffe.core.errors import KaffeError  # noqa: E402
from kaffe.proto import caffe_pb2  # noqa: E402

GiB = 1 << 30

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


# -- cases ---------------------------------------------------------------------
class Context:
    def __init__(self, out, rng):
        self.out = out
        self.seed_dir = os.path.join(out, "seeds")
        os.makedirs(self.seed_dir, exist_ok=True)
        self.train_net = self._write("train_net.prototxt", TRAIN_NET)
        self.solvers = {}
        self.states = []
        self.weights = []
        for name, text in SEEDS.items():
            path = self._write(f"{name}.prototxt", text)
            net = kaffe.Net(path, kaffe.TEST)
            net.forward()
            w = os.path.join(self.seed_dir, f"{name}.caffemodel")
            net.save(w)
            net.save_hdf5(w + ".h5")
            self.weights.append((path, w))
        for t in SOLVER_TYPES:
            prefix = os.path.join(self.seed_dir, f"snap_{t}")
            fmt = "HDF5" if t in ("Adam", "RMSProp") else "BINARYPROTO"
            text = SOLVER.format(net=self.train_net, prefix=prefix, type=t) + \
                f"snapshot_format: {fmt}\n"
            if t in ("AdaGrad", "RMSProp"):
                text = text.replace("momentum: 0.9\n", "")
            if t == "AdaDelta":
                text = text.replace("momentum: 0.9", "momentum: 0.95")
            if t == "RMSProp":
                text += "rms_decay: 0.98\n"
            spath = self._write(f"solver_{t}.prototxt", text)
            self.solvers[t] = spath
            with contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):
                solver = kaffe.get_solver(spath)
                solver.step(2)
            for f in os.listdir(self.seed_dir):
                if f.startswith(f"snap_{t}") and "solverstate" in f:
                    self.states.append((spath, os.path.join(self.seed_dir, f)))
        mean = caffe_pb2.BlobProto()
        mean.shape.dim.extend([1, 3, 4, 4])
        mean.data.extend([0.5] * 48)
        self.mean = os.path.join(self.seed_dir, "mean.binaryproto")
        with open(self.mean, "wb") as f:
            f.write(mean.SerializeToString())
        self.classify_net = self._write("classify.prototxt", _input(
            "data", 1, 3, 4, 4) + 'layer { name: "ip" type: "InnerProduct" '
            'bottom: "data" top: "prob" inner_product_param { num_output: 2 '
            'weight_filler { type: "xavier" } } }\n')
        kaffe.Net(self.classify_net, kaffe.TEST).save(
            self.classify_net + ".caffemodel")
        self.images = os.path.join(self.seed_dir, "images.npy")
        np.save(self.images, np.random.RandomState(0).uniform(
            0, 1, (2, 6, 6, 3)).astype(np.float32))
        self.image = os.path.join(self.seed_dir, "image.png")
        from PIL import Image
        Image.fromarray(np.random.RandomState(1).randint(
            0, 255, (20, 24, 3), dtype=np.uint8)).save(self.image)
        res10 = os.path.join(SHARED, "models", "res10_ssd")
        self.res10 = None
        if os.path.exists(os.path.join(res10, "deploy.prototxt")):
            self.res10 = (os.path.join(res10, "deploy.prototxt"),
                          os.path.join(res10,
                                       "res10_300x300_ssd_iter_140000.caffemodel"))

    def _write(self, name, text):
        path = os.path.join(self.seed_dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _fill_inputs(net, rng):
    npr = np.random.RandomState(rng.randrange(2**31))
    for name in net.inputs:
        blob = net.blobs[name]
        blob.data[...] = npr.uniform(-1, 8, blob.data.shape)


def make_case(kind, rng, ctx, case_dir):
    """Write the mutant; return a description of what to run."""
    os.makedirs(case_dir, exist_ok=True)
    mutant = os.path.join(case_dir, "mutant")
    if kind in ("netfield", "rewire", "cli"):
        name = rng.choice(sorted(SEEDS))
        text = SEEDS[name]
        if kind == "rewire" or (kind == "cli" and rng.random() < 0.3):
            text = mutate_rewire(rng, text)
        else:
            text = mutate_net_fields(rng, text)
        with open(mutant + ".prototxt", "w") as f:
            f.write(text)
        if kind == "cli":
            cmd = rng.choice(["explain", "draw", "doctor", "test", "export",
                              "time", "detect"] if name == "ssd" else
                             ["explain", "draw", "doctor", "test", "export",
                              "time"])
            return {"action": "cli", "cmd": cmd,
                    "path": mutant + ".prototxt",
                    "weights": dict((os.path.basename(n), w) for n, w
                                    in ctx.weights)[f"{name}.prototxt"],
                    "image": ctx.image}
        return {"action": "net", "path": mutant + ".prototxt",
                "fill": rng.randrange(2**31)}
    if kind == "weights":
        if ctx.res10 and rng.random() < 0.1:
            net_path, w = ctx.res10
        else:
            net_path, w = rng.choice(ctx.weights)
        if rng.random() < 0.25 and not w.startswith(SHARED):
            dst = mutant + ".caffemodel.h5"
            shutil.copy(w + ".h5", dst)
            _mutate_h5(rng, dst)
            return {"action": "weights", "net": net_path, "path": dst,
                    "cli": rng.random() < 0.3}
        data = _read(w)
        if rng.random() < 0.5:
            data = mutate_bytes(rng, data)
        else:
            msg = caffe_pb2.NetParameter.FromString(data)
            mutate_message(rng, msg)
            data = msg.SerializeToString()
        with open(mutant + ".caffemodel", "wb") as f:
            f.write(data)
        return {"action": "weights", "net": net_path,
                "path": mutant + ".caffemodel",
                "cli": rng.random() < 0.3}
    if kind == "solver":
        t = rng.choice(SOLVER_TYPES)
        msg = text_format.Parse(_read(ctx.solvers[t]).decode(),
                                caffe_pb2.SolverParameter())
        fields = [(m, f) for m, f in _scalar_fields(msg)
                  if f.name not in ("net", "train_net", "test_net",
                                    "snapshot_prefix", "net_param")]
        mutate_fields(rng, fields, rng.choice([1, 2, 3]))
        msg.max_iter = min(max(msg.max_iter, 0), 4) if rng.random() < 0.9 \
            else msg.max_iter
        msg.snapshot_prefix = os.path.join(case_dir, "snap")
        with open(mutant + ".prototxt", "w") as f:
            f.write(text_format.MessageToString(msg))
        return {"action": "solver", "path": mutant + ".prototxt",
                "cli": rng.random() < 0.3}
    if kind == "solverstate":
        spath, state = rng.choice(ctx.states)
        if state.endswith(".h5"):
            import h5py
            dst = mutant + ".solverstate.h5"
            shutil.copy(state, dst)
            _mutate_h5(rng, dst)
        else:
            data = _read(state)
            if rng.random() < 0.5:
                data = mutate_bytes(rng, data)
            else:
                msg = caffe_pb2.SolverState.FromString(data)
                mutate_message(rng, msg)
                msg.learned_net = state.replace(".solverstate", ".caffemodel")
                data = msg.SerializeToString()
            dst = mutant + ".solverstate"
            with open(dst, "wb") as f:
                f.write(data)
        return {"action": "state", "solver": spath, "path": dst,
                "cli": rng.random() < 0.3}
    if kind == "mean":
        msg = caffe_pb2.BlobProto.FromString(_read(ctx.mean))
        if rng.random() < 0.3:
            data = mutate_bytes(rng, msg.SerializeToString())
        else:
            mutate_message(rng, msg)
            data = msg.SerializeToString()
        with open(mutant + ".binaryproto", "wb") as f:
            f.write(data)
        return {"action": "mean", "path": mutant + ".binaryproto",
                "cli": rng.random() < 0.5, "net": ctx.classify_net,
                "images": ctx.images}
    raise ValueError(kind)


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


def run_case(case, scratch, rng):
    """(outcome, detail) of one case, in this (child) process."""
    if case["action"] == "solver":
        # a valid solver asking for a long run is slow by the user's choice
        from kaffe.testing.fuzz.runner import long_by_design
        if long_by_design(case["path"]):
            return "long", ""
    if case.get("cli") or case["action"] == "cli":
        from kaffe.tools.cli import main
        argv = _argv(case, scratch)
        err = io.StringIO()
        try:
            with contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(err):
                status = main(argv)
        except SystemExit as e:
            status = e.code
        except MemoryError as e:
            return "memory", _place(e)
        except BaseException as e:  # noqa: BLE001
            return "traceback", _place(e)
        text = err.getvalue()
        if "Traceback (most recent call last)" in text:
            return "traceback", text.strip().splitlines()[-1][:200]
        if "please report" in text or "ran out of memory" in text:
            return "internal", text.strip().splitlines()[-1][:200]
        return ("ok" if status in (0, None) else "kaffe"), f"exit {status}"
    try:
        _api(case, rng)
    except KaffeError as e:
        return "kaffe", type(e).__name__
    except MemoryError as e:
        return "memory", _place(e)
    except Exception as e:  # noqa: BLE001
        return "foreign", _place(e)
    return "ok", ""


def _argv(case, scratch):
    a = case["action"]
    if a == "cli":
        p = case["path"]
        return {"explain": ["explain", p],
                "draw": ["draw", p, os.path.join(scratch, "o.dot")],
                "doctor": ["doctor", "--model", p],
                "test": ["test", "--model", p, "--weights", case["weights"],
                         "--iterations", "1"],
                "export": ["export", p, case["weights"], "-o",
                           os.path.join(scratch, "o.onnx")],
                "detect": ["detect", p, case["weights"], case["image"],
                           "--threshold", "0"],
                "time": ["time", "--model", p, "--iterations", "1"],
                }[case["cmd"]]
    if a == "weights":
        return ["test", "--model", case["net"], "--weights", case["path"],
                "--iterations", "1"]
    if a == "solver":
        return ["train", "--solver", case["path"]]
    if a == "state":
        return ["train", "--solver", case["solver"], "--snapshot",
                case["path"]]
    if a == "mean":
        return ["classify", "--model_def", case["net"],
                "--pretrained_model", case["net"] + ".caffemodel",
                "--mean_file",
                case["path"], "--images_dim", "4,4", "--center_only",
                case["images"], os.path.join(scratch, "out.npy")]
    raise ValueError(a)


def _api(case, rng):
    a = case["action"]
    with contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        if a == "net":
            from kaffe.viz.explain import explain
            explain(case["path"])
            net = kaffe.Net(case["path"], kaffe.TEST)
            _fill_inputs(net, rng)
            net.forward()
            net2 = kaffe.Net(case["path"], kaffe.TRAIN)
            _fill_inputs(net2, rng)
            net2.forward()
            net2.backward()
        elif a == "weights":
            net = kaffe.Net(case["net"], kaffe.TEST, weights=case["path"])
            if "res10" not in case["net"]:
                net.forward()
        elif a == "solver":
            solver = kaffe.get_solver(case["path"])
            solver.step(2)
            solver.snapshot()
        elif a == "state":
            solver = kaffe.get_solver(case["solver"])
            solver.restore(case["path"])
            solver.step(1)
        elif a == "mean":
            from kaffe.proto.io import read_blobproto
            mean = kaffe.io.blobproto_to_array(read_blobproto(case["path"]))
            t = kaffe.io.Transformer({"data": (1, 3, 4, 4)})
            t.set_mean("data", mean[0] if mean.ndim == 4 and len(mean) else mean)


def _place(exc):
    frames = traceback.extract_tb(exc.__traceback__)
    where = None
    for frame in frames:
        if f"{os.sep}kaffe{os.sep}" in frame.filename:
            where = frame
    if where is None and frames:
        where = frames[-1]
    name = type(exc).__name__
    if where is None:
        return f"{name}: {str(exc)[:80]}"
    short = where.filename.split(f"{os.sep}kaffe{os.sep}")[-1]
    return f"{short}:{where.lineno} ({name}: {str(exc)[:80]})"


def fork_case(case, scratch, seed, timeout, address_space):
    """Run ``case`` in a forked child; (outcome, detail, seconds)."""
    r, w = os.pipe()
    start = time.time()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.close(r)
            import resource
            if address_space:
                resource.setrlimit(resource.RLIMIT_AS,
                                   (address_space, address_space))
            os.makedirs(scratch, exist_ok=True)
            os.chdir(scratch)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            outcome = run_case(case, scratch, random.Random(seed))
            os.write(w, json.dumps(outcome).encode())
        except BaseException as e:  # noqa: BLE001
            try:
                os.write(w, json.dumps(["foreign", "driver: " + repr(e)[:150]]
                                       ).encode())
            except BaseException:  # noqa: BLE001
                pass
        os._exit(0)
    os.close(w)
    deadline = start + timeout
    status = None
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.01)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(r)
        return "hang", f"over {timeout:.0f} s", time.time() - start
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    if os.WIFSIGNALED(status) or not data:
        return "crash", f"status {status}", time.time() - start
    outcome, detail = json.loads(data)
    return outcome, detail, time.time() - start


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


FAILURES = ("foreign", "memory", "traceback", "internal", "hang", "crash")
KINDS = ["netfield", "rewire", "cli", "weights", "solver", "solverstate",
         "mean"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--memory-gib", type=float, default=3.0)
    parser.add_argument("--out", default=None)
    parser.add_argument("--sweep", action="store_true",
                        help="run every single-field extreme value of every "
                             "seed layer instead of random cases")
    args = parser.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="kaffe-unseen-")
    os.makedirs(out, exist_ok=True)
    rng = random.Random(args.seed)
    with contextlib.redirect_stdout(io.StringIO()):
        ctx = Context(out, rng)
    kinds = args.kinds.split(",")
    counts = collections.Counter()
    places = collections.defaultdict(list)
    start = time.time()
    print(f"fuzzing into {out}", flush=True)
    if args.sweep:
        kinds = ["sweep"]
        sweep = sweep_cases(out)
    for i in range(args.cases):
        if args.minutes and time.time() - start > args.minutes * 60:
            break
        if args.sweep:
            kind = "sweep"
            try:
                case_dir, case = next(sweep)
            except StopIteration:
                break
        else:
            kind = kinds[i % len(kinds)]
            case_dir = os.path.join(out, "cases", str(i))
            try:
                case = make_case(kind, rng, ctx, case_dir)
            except Exception:  # noqa: BLE001 (a mutant the driver can't write)
                counts[(kind, "skipped")] += 1
                if os.environ.get("FUZZ_DEBUG"):
                    traceback.print_exc()
                shutil.rmtree(case_dir, ignore_errors=True)
                continue
        outcome, detail, secs = fork_case(case, os.path.join(case_dir, "s"),
                                          rng.randrange(2**31), args.timeout,
                                          int(args.memory_gib * GiB))
        counts[(kind, outcome)] += 1
        if outcome in FAILURES:
            keep = os.path.join(out, "failures", f"{i}-{kind}-{outcome}")
            shutil.rmtree(os.path.join(case_dir, "s"), ignore_errors=True)
            shutil.move(case_dir, keep)
            with open(os.path.join(keep, "case.json"), "w") as f:
                json.dump(case, f)
            first = detail not in places
            places[detail].append(keep)
            if first:
                print(f"[{i}] {kind} {outcome}: {detail} ({secs:.1f}s) {keep}",
                      flush=True)
        else:
            shutil.rmtree(case_dir, ignore_errors=True)
    print("\noutcomes per kind:")
    for kind in kinds:
        row = {o: n for (k, o), n in sorted(counts.items()) if k == kind}
        print(f"  {kind:12s} {row}")
    print(f"{len(places)} distinct failure places")
    for detail, cases in sorted(places.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(cases):4d}  {detail}  e.g. {cases[0]}")
    return 1 if places else 0


if __name__ == "__main__":
    sys.exit(main())
