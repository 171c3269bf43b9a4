"""The model of ``kaffe viz``'s HTML report: what each layer computes.

:func:`build_report` builds a net from a prototxt (as :func:`kaffe.viz.explain.
explain` does: data sources are never opened), runs it forward on each input
— the user's images, or a deterministic synthetic pattern — and collects, per
layer, plain dataclasses that :mod:`kaffe.viz.render` turns into one HTML file:

* the :class:`~kaffe.viz.explain.LayerRow` of ``kaffe explain`` (shapes,
  parameters, MACs, the formula line, receptive field and jump);
* :class:`FilterGrid`: Convolution filters as ``num_output`` rows of
  ``C_in/group`` tiles (Deconvolution: ``C_in`` rows of ``num_output/group``
  tiles), first-layer 3-channel filters as colour tiles; InnerProduct weights
  as a heat map;
* :class:`MapView` per top and input: every channel's feature map (paged),
  the colour scale, :class:`Stats` and a :class:`Histogram`;
* :class:`ParamView` per parameter blob: statistics and a histogram;
* the geometry a reader needs to go from one value back to the input: the
  receptive field (size and jump from explain; the *start*, which explain
  does not track, computed here from the same layer attributes) and the
  window each value reads in the previous layer's output (:class:`Window`);
* :class:`Graph`: the net laid out in layered rows (no Graphviz).

Everything that becomes a picture is a :class:`Picture` (PNG bytes, written
by the small encoder :func:`encode_png`, no Pillow needed). A size
:class:`Budget` keeps pages of nets with hundreds of layers light: feature
maps larger than ``max_map_side`` are downsampled by block means, a layer
shows as many channels as its share of the pixel budget allows, filter grids
and heat maps are capped — and every such cut is written into the ``notes``
of the picture concerned, which the page shows.

Colour scale of maps and filters (one for the whole page): white is 0, red
positive, blue negative, saturating at ±``scale`` (the 99.9th percentile of
|value| over the layer's values for that input); the colour follows
√(|value|/scale), so that values a hundred times smaller than the largest
still show (a quarter of the scale is half-way along the colour bar); NaN
and ±Inf are green.
"""
import math
import os
import struct
import zlib
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional

import numpy as np

from ..core.errors import KaffeConfigError, KaffeShapeError
from .explain import (TEST, enum_name, explain_net, is_conv_like, is_deconv,
                      is_inner_product, is_lrn, is_pooling, replace_data_layers,
                      window_geometry)

# Palette indices of the one-channel pictures (see the module docstring).
ZERO_INDEX = 126            # value 0; 0 … 252 are values −scale … +scale
LEVELS = 126                # steps from 0 to ±scale
NAN_INDEX = 253             # NaN, +Inf, −Inf
GAP_INDEX = 254             # the gaps between tiles
GROUP_INDEX = 255           # the separators between groups of a filter grid
NAN_COLOUR = (0, 200, 83)
GAP_COLOUR = (206, 211, 219)
GROUP_COLOUR = (128, 138, 156)
# Diverging anchors (t from −1 to 1): ColorBrewer's RdBu with white at 0.
_ANCHORS = [(-1.0, (5, 48, 97)), (-0.6, (33, 102, 172)),
            (-0.3, (146, 197, 222)), (0.0, (255, 255, 255)),
            (0.3, (244, 165, 130)), (0.6, (178, 24, 43)),
            (1.0, (103, 0, 31))]


# -- the model ----------------------------------------------------------------
@dataclass
class Picture:
    """An encoded image: ``png`` bytes of ``width`` × ``height`` pixels."""
    png: bytes
    width: int
    height: int
    mime: str = "image/png"


@dataclass
class Stats:
    """Statistics of a set of values (min … std over the finite ones)."""
    count: int
    min: float
    max: float
    mean: float
    std: float
    zero_fraction: float        # exact zeros / count
    nan_count: int
    inf_count: int


@dataclass
class Histogram:
    """Bin counts of the finite values; ``zeros_left_out`` exact zeros were
    not binned (when they are a large share, e.g. after a ReLU, they would
    flatten every other bar; the page says so)."""
    counts: list
    edges: list                 # len(counts) + 1 bin edges
    zeros_left_out: int = 0


@dataclass
class MapView:
    """One top of one layer, for one input, as pictures.

    ``kind`` is "maps" (C channels of H×W, drawn as tiles of ``tile`` pixels
    after downsampling by ``factor``, ``per_page`` tiles in ``cols`` columns
    per page), "vector" (K values drawn as a strip of cells, ``cols`` per
    row) or "scalar" (``values`` holds the one value).
    """
    blob: str
    shape: tuple                # the top's shape in the forward pass
    kind: str
    channels: int = 0           # C (maps) or K (vector)
    shown: int = 0              # how many channels / values are drawn
    map_size: tuple = ()        # (H, W) before downsampling
    tile: tuple = ()            # (h, w) of a tile in the pictures
    factor: int = 1             # downsampling factor (1: none)
    cols: int = 0
    per_page: int = 0
    gap: int = 1
    pages: list = field(default_factory=list)        # [Picture]
    scale: float = 1.0          # colours saturate at ±scale
    stats: Optional[Stats] = None
    histogram: Optional[Histogram] = None
    values: list = field(default_factory=list)       # [(index, value)]
    values_are_top: bool = False  # values = the largest, not all in order
    notes: list = field(default_factory=list)


@dataclass
class GroupSpan:
    """The rows of a grouped filter grid that share input channels.

    Half-open ranges: rows [rows[0], rows[1]) read channels
    [channels[0], channels[1]) of the bottom (Deconvolution: rows are input
    channels and ``channels`` the output channels they feed).
    """
    index: int
    rows: tuple
    channels: tuple


@dataclass
class FilterGrid:
    """The weights of a Convolution, Deconvolution or InnerProduct layer.

    ``kind`` "grid": ``rows`` × ``cols`` tiles of ``tile`` pixels (of which
    ``shown_rows`` × ``shown_cols`` are drawn), ``gap`` pixels apart, with
    ``group_gap`` pixels between the groups; when a row is one tile
    (``cols`` 1: one input channel, or depthwise), ``wrap`` rows share a
    line of the picture. "colour": one RGB tile per filter (its 3 input
    channels), ``wrap`` tiles per line; "heatmap": the weight matrix, one
    pixel per ``factor`` × ``factor`` block of weights.
    """
    kind: str
    param_shape: tuple
    rows: int
    cols: int
    tile: tuple
    shown_rows: int
    shown_cols: int
    picture: Picture
    scale: float
    row_word: str               # "filter", "input channel", "output"
    col_word: str
    gap: int = 1
    group_gap: int = 0
    factor: int = 1
    col_factor: int = 1
    wrap: int = 1
    groups: list = field(default_factory=list)       # [GroupSpan]
    channel_order: str = ""     # colour tiles: which net channel is R, G, B
    notes: list = field(default_factory=list)


@dataclass
class ParamView:
    """One parameter blob: its role, shape, statistics and histogram."""
    name: str
    shape: tuple
    stats: Stats
    histogram: Histogram


@dataclass
class Field:
    """Where the values of a top come from in the input blob ``input``.

    The value at spatial position (y, x) depends on input rows
    ``start[0] + y·jump[0]`` … that + ``size[0]`` − 1 (columns likewise);
    ``start`` may be negative (padding). ``size`` and ``jump`` are explain's;
    ``whole`` means every input pixel.
    """
    input: str
    size: tuple
    jump: Optional[tuple]
    start: Optional[tuple]
    whole: bool
    extent: tuple


@dataclass
class Window:
    """Which values of the previous layer's output one top value reads.

    ``kind``: "window" (a kernel window, ``kernel``/``stride``/``pad``/
    ``dilation``; ``deconv`` for the transposed case), "same" (the value at
    the same position), "whole" (all of it), or "none" (unknown).
    ``channels``: "all" (every channel of bottom 0), "group" (the
    ``group_channels`` channels of the value's group), "same" (only its own
    channel), "near" (channels c − ``half`` … c + ``half``: LRN), or "concat"
    (bottom k gives ``concat_sizes[k]`` channels). ``sources``: per bottom,
    the (layer index, top index) whose output it is (None for a net input
    that no layer shows).
    """
    kind: str
    sources: list
    channels: str = "all"
    kernel: tuple = ()
    stride: tuple = ()
    pad: tuple = ()
    dilation: tuple = ()
    deconv: bool = False
    group_channels: int = 0
    out_per_group: int = 0
    half: int = 0
    concat_sizes: list = field(default_factory=list)


@dataclass
class TopView:
    """A top of a layer: its field in the input and its pictures per input."""
    name: str
    shape: tuple
    field: Optional[Field]
    maps: list = field(default_factory=list)         # [MapView], one per run


@dataclass
class LayerView:
    """Everything the page shows about one layer."""
    index: int
    name: str
    type: str
    row: object                 # kaffe.viz.explain.LayerRow
    family: str                 # conv, pool, ip, neuron, norm, data, loss …
    summary: str                # "5×5 /1 · 20" (the graph's second line)
    hidden: bool = False        # Split layers Caffe inserted itself
    tops: list = field(default_factory=list)         # [TopView]
    params: list = field(default_factory=list)       # [ParamView]
    filters: Optional[FilterGrid] = None
    window: Optional[Window] = None
    # per bottom: (layer index, top index) of the output it reads (Caffe's
    # own Split layers looked through), None for a net input without layer
    bottom_sources: list = field(default_factory=list)
    notes: list = field(default_factory=list)


@dataclass
class InputRun:
    """One forward pass: which input, and the input as the net saw it."""
    label: str                  # the image file's name, or "synthetic"
    synthetic: bool
    blob: str                   # the input blob that received it
    picture: Optional[Picture]
    size: tuple                 # (H, W) of the picture
    notes: list = field(default_factory=list)
    # per net output blob: (name, [(index, value)], the largest only?)
    outputs: list = field(default_factory=list)


@dataclass
class GraphNode:
    """A box of the graph: a layer and the in-place layers that follow it."""
    id: int
    layers: list                # layer indices (first: the producer)
    x: float
    y: float
    width: float
    height: float
    dummy: bool = False         # a bend point of a long edge


@dataclass
class GraphEdge:
    source: int                 # node ids
    target: int
    blob: str
    points: list                # [(x, y)], from the source to the target


@dataclass
class Graph:
    nodes: list
    edges: list
    width: float
    height: float


@dataclass
class Budget:
    """Limits that keep the page light (see the module docstring).

    ``map_pixels`` is spread over the layers and inputs: each layer gets the
    pixels left divided by the layers left, so what small layers do not use
    goes to later ones.
    """
    map_pixels: int = 9_000_000
    max_map_side: int = 64
    min_map_side: int = 28
    min_channels: int = 8
    max_channels: int = 1024
    filter_pixels: int = 65_536
    max_filter_cols: int = 64
    max_filter_rows: int = 256
    max_heatmap: tuple = (256, 512)      # rows, columns
    max_vector: int = 4096


@dataclass
class Preprocess:
    """How an image becomes the input blob (kaffe.io.Transformer's steps)."""
    mean: Optional[np.ndarray] = None
    raw_scale: Optional[float] = None
    channel_swap: Optional[tuple] = None
    input_scale: Optional[float] = None

    def describe(self):
        parts = []
        if self.channel_swap is not None:
            parts.append("channel swap " + ",".join(
                str(c) for c in self.channel_swap))
        if self.raw_scale is not None:
            parts.append(f"× {self.raw_scale:g}")
        if self.mean is not None:
            mean = np.asarray(self.mean)
            parts.append("− mean " + (
                "(" + ", ".join(f"{v:g}" for v in mean.ravel()) + ")"
                if mean.size <= 4 else f"image {_shape_text(mean.shape)}"))
        if self.input_scale is not None:
            parts.append(f"× {self.input_scale:g}")
        return ", ".join(parts)


@dataclass
class VizReport:
    """The whole page: the explain report, layers, inputs and graph."""
    title: str
    source: str                 # the prototxt path
    weights: Optional[str]
    explain: object             # kaffe.viz.explain.Report
    layers: list                # [LayerView]
    runs: list                  # [InputRun]
    graph: Graph
    budget: Budget
    image_input: Optional[str]  # the blob that receives images
    notes: list = field(default_factory=list)


# -- building -----------------------------------------------------------------
def build_report(prototxt, phase=TEST, weights=None, shapes=None, images=(),
                 preprocess=None, budget=None, level=0, stages=()):
    """Build the net of ``prototxt``, run it and describe every layer.

    Args:
        prototxt: path of the net definition.
        phase: kaffe.TRAIN / kaffe.TEST (or "TRAIN" / "TEST").
        weights: optional .caffemodel.
        shapes: {blob: (N, C, H, W)} for data-layer tops (as ``kaffe
            explain --shape``).
        images: image file paths; each is one forward pass (none: one pass
            on a synthetic pattern).
        preprocess: a :class:`Preprocess` for the images (and the pattern).
        budget: a :class:`Budget`.

    Returns:
        a :class:`VizReport`.
    """
    from ..core.net import Net
    from ..proto.io import load_net
    from .explain import phase_value
    phase = phase_value(phase)
    param, source = load_net(prototxt)
    param.state.phase = phase
    param.state.level = level
    del param.state.stage[:]
    param.state.stage.extend(stages)
    transforms = _data_transforms(param)
    data_notes = replace_data_layers(param, source, shapes or {})
    net = Net.from_param(param, source)
    if weights is not None:
        net.copy_from(weights)
    notes = []
    for layer_name, text in transforms:
        notes.append(f"Data layer '{layer_name}' had transform_param "
                     f"{text}; kaffe viz does not apply it: pass the "
                     "matching --mean / --raw-scale / --input-scale flags.")
    report = report_from_net(net, images=images, preprocess=preprocess,
                             budget=budget, data_notes=data_notes,
                             source=os.fspath(prototxt), weights=weights)
    report.notes[:0] = notes
    return report


def _data_transforms(param):
    """[(layer name, its transform_param as text)] of the net's data layers."""
    out = []
    for layer in param.layer:
        if layer.HasField("transform_param"):
            t = layer.transform_param
            parts = []
            if t.scale != 1:
                parts.append(f"scale {t.scale:g}")
            if len(t.mean_value):
                parts.append("mean_value " + ",".join(
                    f"{v:g}" for v in t.mean_value))
            if t.mean_file:
                parts.append(f"mean_file {t.mean_file}")
            if t.crop_size:
                parts.append(f"crop_size {t.crop_size}")
            if parts:
                out.append((layer.name, ", ".join(parts)))
    return out


def report_from_net(net, images=(), preprocess=None, budget=None,
                    data_notes=None, source="", weights=None, arrays=None):
    """Describe a built net (see :func:`build_report`).

    Args:
        images: image paths (loaded with kaffe.io.load_image).
        arrays: instead of images, a list of {input blob: array} (each
            array one input's values, without the batch axis), one per run.
    """
    preprocess = preprocess or Preprocess()
    budget = budget or Budget()
    explained = explain_net(net, data_notes=data_notes)
    notes = []
    image_input = _image_input(net)
    batch_note = _to_batch_one(net)
    if batch_note:
        notes.append(batch_note)
    runs_inputs = _run_inputs(net, image_input, images, arrays, preprocess,
                              notes)
    layers = _layer_views(net, explained, budget, preprocess, image_input)
    if weights is None:
        notes.append("No --weights: the parameters are the fillers' initial "
                     "values (random or constant), so filters look like "
                     "noise and activations mean little; pass --weights "
                     "W.caffemodel for a trained net.")
    if image_input and net.blobs[image_input].shape[1] == 3:
        notes.append(_channel_order_note(preprocess))

    plans = _map_plans(net, layers, budget, len(runs_inputs))
    runs = []
    for values, label, synthetic, run_notes in runs_inputs:
        run = _forward(net, values, layers, plans, preprocess, image_input,
                       label, synthetic, run_notes)
        run.notes.extend(_first_non_finite(layers, len(runs)))
        runs.append(run)
    graph = layout_graph(layers)
    title = explained.name or os.path.splitext(
        os.path.basename(source))[0] or "net"
    return VizReport(title=title, source=source, weights=weights,
                     explain=explained, layers=layers, runs=runs,
                     graph=graph, budget=budget, image_input=image_input,
                     notes=notes + list(explained.notes))


def _first_non_finite(layers, run):
    """A note naming the first layer whose output holds NaN or Inf."""
    for view in layers:
        for top in view.tops:
            if run < len(top.maps) and top.maps[run].stats is not None:
                s = top.maps[run].stats
                if s.nan_count or s.inf_count:
                    return [f"NaN or Inf first appear in the output of layer "
                            f"'{view.name}' ({view.type}): {s.nan_count:,} "
                            f"NaN, {s.inf_count:,} Inf in '{top.name}'. "
                            "Everything after it inherits them."]
    return []


def _channel_order_note(preprocess):
    swap = preprocess.channel_swap
    if swap is None:
        return ("Colour: the net's channels 0, 1, 2 are shown as red, green, "
                "blue (no --channel-swap). Caffe models trained on images "
                "read with OpenCV expect BGR: for them pass --channel-swap "
                "2,1,0 (and usually --raw-scale 255 and a --mean).")
    return ("Colour: the image's R, G, B went to net channels " + ", ".join(
        str(list(swap).index(c)) for c in range(3)) + " (--channel-swap "
        + ",".join(str(c) for c in swap) + "); pictures of the input and of "
        "first-layer filters swap them back, so they show true colours.")


def _image_input(net):
    """The first net input with 4 axes and 1 or 3 channels (or None)."""
    for name in net.inputs:
        shape = net.blobs[name].shape
        if len(shape) == 4 and shape[1] in (1, 3):
            return name
    return None


def _to_batch_one(net):
    """Reshape the inputs to batch 1 (the pictures show one input)."""
    shapes = {name: net.blobs[name].shape for name in net.inputs}
    if all(len(s) == 0 or s[0] == 1 for s in shapes.values()):
        return ""
    try:
        for name, shape in shapes.items():
            if len(shape):
                net.blobs[name].reshape((1,) + tuple(shape[1:]))
        net.reshape()
    except (ValueError, IndexError):
        for name, shape in shapes.items():
            net.blobs[name].reshape(shape)
        net.reshape()
        return ("The net could not run with batch 1, so it ran with its "
                "own batch; the pictures show batch item 0.")
    batch = max(s[0] for s in shapes.values() if len(s))
    return (f"The net's batch is {batch}; the pictures and statistics are "
            "for one input (the net ran with batch 1); the shapes in the "
            "tables are the net's own.")


# -- inputs -------------------------------------------------------------------
def synthetic_image(height, width, channels):
    """A deterministic H×W×C test pattern in [0, 1] (float32).

    Grey: a bright ring and a diagonal stroke on black (digit-like). Colour:
    a soft diagonal gradient with a red disc, a green square, blue stripes
    and a white ring.
    """
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    v, u = (y + 0.5) / height, (x + 0.5) / width
    soft = 1.5 / max(height, width)

    def inside(d):              # anti-aliased step: 1 inside, 0 outside
        return np.clip(0.5 - d / soft, 0, 1)

    ring = inside(np.abs(np.hypot(v - 0.42, u - 0.38) - 0.2) - 0.05)
    stroke = inside(np.abs((v - 0.1) - (u - 0.45) * 1.6) / 1.9 - 0.045) * (
        (v > 0.15) & (v < 0.9))
    if channels == 1:
        return np.maximum(ring, stroke)[:, :, None].astype(np.float32)
    img = np.empty((height, width, 3))
    img[..., 0] = 0.25 + 0.45 * u
    img[..., 1] = 0.35 + 0.3 * v
    img[..., 2] = 0.75 - 0.4 * u * v
    disc = inside(np.hypot(v - 0.3, u - 0.28) - 0.16)[..., None]
    img = img * (1 - disc) + disc * np.array([0.9, 0.1, 0.1])
    square = inside(np.maximum(np.abs(v - 0.68), np.abs(u - 0.3)) - 0.13)[
        ..., None]
    img = img * (1 - square) + square * np.array([0.1, 0.75, 0.2])
    stripes = ((np.floor(u * 12) % 2 == 0) & (u > 0.55) & (v > 0.55)
               & (v < 0.92))[..., None] * 1.0
    img = img * (1 - stripes) + stripes * np.array([0.1, 0.2, 0.85])
    ring = ring[..., None] * ((u > 0.5) & (v < 0.5))[..., None]
    img = img * (1 - ring) + ring
    return np.clip(img, 0, 1).astype(np.float32)


def _run_inputs(net, image_input, images, arrays, preprocess, notes):
    """[(values {input: array, no batch axis}, label, synthetic, notes)]."""
    runs = []
    if arrays:
        for i, values in enumerate(arrays):
            runs.append((_complete_inputs(net, dict(values)),
                         f"input {i + 1}", False, []))
        return runs
    if images and image_input is None:
        shapes = ", ".join(f"{n} {_shape_text(net.blobs[n].shape)}"
                           for n in net.inputs) or "none"
        raise KaffeConfigError(
            "needs a net input of shape (N, 1 or 3, H, W) for the images",
            field="--image", received=f"the net's inputs: {shapes}",
            fix="leave out --image (a synthetic input is used), or set the "
                "input's shape with --shape")
    for path in images:
        from ..io import load_image
        channels = net.blobs[image_input].shape[1]
        image = load_image(path, color=channels == 3)
        value = _preprocess(net, image_input, image, preprocess)
        h0, w0 = image.shape[:2]
        run_notes = []
        h, w = net.blobs[image_input].shape[2:]
        if (h0, w0) != (h, w):
            run_notes.append(f"{os.path.basename(path)} is {w0}×{h0}; resized "
                             f"to {w}×{h} (bilinear) for '{image_input}'.")
        runs.append((_complete_inputs(net, {image_input: value}),
                     os.path.basename(path), False, run_notes))
    if not runs:
        values = {}
        run_notes = []
        if image_input is not None:
            c, h, w = net.blobs[image_input].shape[1:]
            values[image_input] = _preprocess(
                net, image_input, synthetic_image(h, w, c), preprocess)
            steps = preprocess.describe()
            run_notes.append(
                "Synthetic input: no --image was given, so the net ran on a "
                "deterministic test pattern (" + (
                    "a ring and a stroke" if c == 1 else
                    "a gradient, a disc, a square, stripes and a ring")
                + ", values in [0, 1]" + (f", then {steps}" if steps else "")
                + "). Pass --image FILE to see a real picture.")
        runs.append((_complete_inputs(net, values), "synthetic",
                     True, run_notes))
        notes.extend(_synthetic_others(net, image_input))
    return runs


def _synthetic_others(net, image_input):
    others = [n for n in net.inputs if n != image_input]
    if not others:
        return []
    return ["Inputs other than the image (" + ", ".join(others) + ") hold "
            "zeros when they have one axis (labels), else deterministic "
            "normal noise (seed 0)."]


def _complete_inputs(net, values):
    """Every net input gets a value: labels zeros, others seeded noise."""
    rng = np.random.default_rng(0)
    out = {}
    for name in net.inputs:
        shape = net.blobs[name].shape
        if name in values:
            value = np.asarray(values[name], dtype=np.float32)
            expected = tuple(shape[1:])
            if value.shape != expected:
                raise KaffeShapeError(
                    f"input '{name}' needs values of shape {expected} (one "
                    "batch item)", received=value.shape)
            out[name] = value
        elif len(shape) <= 1:
            out[name] = np.zeros(shape[1:], np.float32)
        else:
            out[name] = rng.standard_normal(shape[1:]).astype(np.float32)
    return out


def _preprocess(net, blob, image, preprocess):
    """kaffe.io.Transformer with ``preprocess``'s settings, for one image."""
    from ..io import Transformer
    t = Transformer({blob: net.blobs[blob].shape})
    t.set_transpose(blob, (2, 0, 1))
    if preprocess.channel_swap is not None:
        channels = net.blobs[blob].shape[1]
        if sorted(preprocess.channel_swap) != list(range(channels)):
            raise KaffeConfigError(
                "must be a permutation of the input's channels",
                field="--channel-swap",
                received=",".join(str(c) for c in preprocess.channel_swap),
                expected=f"{channels} indices, e.g. "
                         + ",".join(str(c) for c in
                                    reversed(range(channels))))
        t.set_channel_swap(blob, preprocess.channel_swap)
    if preprocess.raw_scale is not None:
        t.set_raw_scale(blob, preprocess.raw_scale)
    if preprocess.mean is not None:
        t.set_mean(blob, preprocess.mean)
    if preprocess.input_scale is not None:
        t.set_input_scale(blob, preprocess.input_scale)
    return t.preprocess(blob, image)


# -- the layers ---------------------------------------------------------------
_FAMILIES = {
    "Convolution": "conv", "Deconvolution": "conv", "Im2col": "conv",
    "Pooling": "pool", "SPP": "pool", "InnerProduct": "ip", "Embed": "ip",
    "LRN": "norm", "BatchNorm": "norm", "Scale": "norm", "Bias": "norm",
    "MVN": "norm", "Softmax": "out", "Accuracy": "out", "ArgMax": "out",
    "Eltwise": "merge", "Concat": "merge", "Slice": "merge", "Split": "merge",
    "Crop": "merge", "Input": "data", "Parameter": "data",
}


def _family(layer, kind):
    from ..layers.loss.loss import LossLayer
    from ..layers.neuron.neuron import NeuronLayer
    if kind in _FAMILIES:
        return _FAMILIES[kind]
    if isinstance(layer, LossLayer) or kind.endswith("Loss"):
        return "out"
    if isinstance(layer, NeuronLayer):
        return "neuron"
    if kind.endswith("Data"):
        return "data"
    return "other"


def _is_auto_split(name, kind, tops):
    """A Split layer Caffe's insert_splits added (not the user's)."""
    return kind == "Split" and name.endswith("_split") and all(
        t.startswith(name + "_") for t in tops)


def _summary(layer, kind):
    """The key numbers of a layer in a few characters: '5×5 /2 · 64'."""
    if is_conv_like(layer):
        k, s, p = layer.kernel_shape, layer.stride, layer.pad
        text = "×".join(str(v) for v in k)
        if any(v != 1 for v in s):
            text += " /" + _uniform_text(s)
        if any(p):
            text += " pad " + _uniform_text(p)
        text += f" · {layer.num_output}"
        if layer.group > 1:
            text += f" · group {layer.group}"
        return text
    if is_pooling(layer):
        method = enum_name(layer.method, _pool_enum())
        if layer.global_pooling:
            return f"global {method}"
        text = f"{method} " + "×".join(str(v) for v in layer.kernel_shape)
        if any(v != 1 for v in layer.stride):
            text += " /" + _uniform_text(layer.stride)
        return text
    if is_inner_product(layer):
        return f"→ {layer.num_output}"
    if kind == "Eltwise":
        from ..proto import caffe_pb2
        return caffe_pb2.EltwiseParameter.EltwiseOp.Name(
            layer.layer_param.eltwise_param.operation)
    if is_lrn(layer):
        return f"size {layer.size}"
    return ""


def _pool_enum():
    from ..proto import caffe_pb2
    return caffe_pb2.PoolingParameter.PoolMethod


def _uniform_text(values):
    return str(values[0]) if len(set(values)) == 1 else "×".join(
        str(v) for v in values)


def _layer_views(net, explained, budget, preprocess, image_input):
    views = []
    writer = {}                 # blob -> (layer, top index) that last wrote it
    centres = {}                # blob -> centre of value 0's field (per axis)
    for name in net.inputs:
        writer[name] = None
    for index, (row, layer) in enumerate(zip(explained.layers, net.layers)):
        kind = row.type
        hidden = _is_auto_split(row.name, kind, row.top)
        sources = [writer.get(b) for b in row.bottom]
        view = LayerView(index=index, name=row.name, type=kind, row=row,
                         family=_family(layer, kind),
                         summary=_summary(layer, kind), hidden=hidden,
                         bottom_sources=sources)
        bottom_centres = [centres.get(b) for b in row.bottom]
        for t, top in enumerate(row.top):
            r = row.receptive_field[t] if t < len(row.receptive_field) \
                else None
            centre = _top_centre(layer, row, bottom_centres, r)
            if centre is not None:
                centres[top] = centre
            else:
                centres.pop(top, None)
            view.tops.append(TopView(
                name=top, shape=tuple(row.top_shapes[t]),
                field=_field(r, centre)))
        if not hidden:
            view.window = _window(layer, row, sources, net)
            view.params = _param_views(layer)
            view.filters = _filters(layer, budget, preprocess,
                                    image_input, row)
        for t, top in enumerate(row.top):
            writer[top] = writer.get(row.bottom[0]) if hidden else (index, t)
        views.append(view)
    return views


def _top_centre(layer, row, bottom_centres, r):
    """Centre of the field of the top's value at position 0, per axis.

    Caffe's windows: a convolution or pooling output at position y reads
    bottom positions y·s − p … y·s − p + d·(k − 1), so its centre is the
    bottom's centre at y·s − p + d·(k − 1)/2; a deconvolution output at y
    sums the inputs i with i·s − p + d·t = y, centred at
    (y + p − d·(k − 1)/2)/s. Positions become input coordinates through the
    bottom's jump (explain's). Layers that keep positions keep the centre;
    Crop shifts it by its offsets. After a strided Deconvolution the field
    is an average: neighbouring outputs sum different numbers of stamps,
    so a rectangle may be a pixel wider than the exact set.
    """
    if r is None or r.jump is None:
        return None
    if not row.bottom:
        return tuple(0.0 for _ in r.size)
    window = window_geometry(layer)
    base = next((c for c in bottom_centres if c is not None), None)
    if base is None:
        return None
    if window is not None and len(base) == len(window[0]):
        k, s, d, transposed = window
        pad = _pad_of(layer)
        if pad is None:
            return None
        jump = _bottom_jump(r, s, transposed)
        out = []
        for a in range(len(k)):
            reach = d[a] * (k[a] - 1) / 2
            if transposed:
                out.append(base[a] + jump[a] * (pad[a] - reach) / s[a])
            else:
                out.append(base[a] + jump[a] * (reach - pad[a]))
        return tuple(out)
    if is_lrn(layer) or len(base) != len(r.size):
        return base if len(base) == len(r.size) else None
    offsets = getattr(layer, "offsets", None)
    if row.type == "Crop" and offsets is not None:
        spatial = offsets[-len(base):]
        return tuple(c + float(j) * o for c, j, o in zip(base, r.jump,
                                                          spatial))
    return base


def _pad_of(layer):
    pad = getattr(layer, "pad", None)
    if pad is None:
        geometry = getattr(layer, "geometry", None)
        pad = getattr(geometry, "pad", None)
    return tuple(pad) if pad is not None else None


def _bottom_jump(r, stride, transposed):
    """The bottom's jump, from the top's (explain multiplies by the stride;
    a deconvolution divides)."""
    return tuple(float(j) * s if transposed else float(j) / s
                 for j, s in zip(r.jump, stride))


def _field(r, centre):
    if r is None:
        return None
    if r.jump is None or centre is None:
        return Field(r.input, tuple(r.size), None, None, r.whole_input,
                     tuple(r.extent))
    start = tuple(c - (s - 1) / 2 for c, s in zip(centre, r.size))
    return Field(r.input, tuple(r.size), tuple(float(j) for j in r.jump),
                 start, r.whole_input, tuple(r.extent))


def field_rect(field_, rows, cols):
    """The input rectangle seen by the values at rows × cols of a top.

    Args:
        field_: a :class:`Field` with a start.
        rows, cols: inclusive (first, last) positions in the top.

    Returns:
        ((top, left), (bottom, right)) inclusive input coordinates, not
        clipped to the input (may be negative or past its edge).
    """
    (y0, y1), (x0, x1) = rows, cols
    sy, sx = field_.start
    jy, jx = field_.jump
    hy, hx = field_.size
    top = math.floor(sy + y0 * jy + 1e-9)
    left = math.floor(sx + x0 * jx + 1e-9)
    bottom = math.ceil(sy + y1 * jy + hy - 1 - 1e-9)
    right = math.ceil(sx + x1 * jx + hx - 1 - 1e-9)
    return (top, left), (bottom, right)


def _window(layer, row, sources, net):
    if not row.bottom:
        return None
    geometry = window_geometry(layer)
    rf = [r for r in row.receptive_field if r is not None]
    if geometry is not None:
        k, s, d, transposed = geometry
        if is_pooling(layer) and layer.global_pooling:
            return Window("whole", sources, channels="same")
        pad = _pad_of(layer) or (0,) * len(k)
        if is_conv_like(layer):
            if transposed:
                channels = "group"
                return Window("window", sources, channels, tuple(k),
                              tuple(s), pad, tuple(d), True,
                              group_channels=layer.channels // layer.group,
                              out_per_group=layer.num_output // layer.group)
            return Window("window", sources,
                          "all" if layer.group == 1 else "group", tuple(k),
                          tuple(s), pad, tuple(d), False,
                          group_channels=layer.channels // layer.group,
                          out_per_group=layer.num_output // layer.group)
        return Window("window", sources, "same", tuple(k), tuple(s), pad,
                      tuple(d))
    if is_inner_product(layer) or (rf and rf[0].whole_input and
                                    rf[0].jump is None):
        return Window("whole", sources)
    if is_lrn(layer):
        region = enum_name(layer.norm_region, _lrn_enum())
        if region == "ACROSS_CHANNELS":
            return Window("same", sources, "near",
                          half=(layer.size - 1) // 2)
        n = layer.size
        return Window("window", sources, "same", (n, n), (1, 1),
                      ((n - 1) // 2,) * 2, (1, 1))
    if not rf or rf[0].jump is None:
        return Window("none", sources)
    if row.type == "Concat" and getattr(layer, "axis", 1) == 1:
        return Window("same", sources, "concat", concat_sizes=[
            net.blobs[b].shape[1] for b in row.bottom])
    offsets = getattr(layer, "offsets", None)
    if row.type == "Crop" and offsets is not None:
        spatial = tuple(offsets[2:])
        return Window("window", sources[:1], "same", (1,) * len(spatial),
                      (1,) * len(spatial), tuple(-o for o in spatial),
                      (1,) * len(spatial))
    return Window("same", sources, "same")


def _lrn_enum():
    from ..proto import caffe_pb2
    return caffe_pb2.LRNParameter.NormRegion


# -- parameters and filters ---------------------------------------------------
def _param_names(layer, kind, count):
    if kind in ("Convolution", "Deconvolution", "InnerProduct", "Embed") or \
            is_conv_like(layer) or is_inner_product(layer):
        names = ["weights", "bias"]
    elif kind == "BatchNorm":
        names = ["running mean (÷ factor)", "running variance (÷ factor)",
                 "moving-average factor"]
    elif kind == "Scale":
        names = ["scale", "bias"]
    elif kind == "PReLU":
        names = ["slopes"]
    else:
        names = []
    return [names[i] if i < len(names) else f"blob {i}"
            for i in range(count)]


def _param_views(layer):
    names = _param_names(layer, layer.layer_param.type or layer.type,
                         len(layer.blobs))
    return [ParamView(name, tuple(blob.shape), *stats_and_histogram(
        np.asarray(blob.data))) for name, blob in zip(names, layer.blobs)]


def _filters(layer, budget, preprocess, image_input, row):
    if not layer.blobs:
        return None
    weights = np.asarray(layer.blobs[0].data, dtype=np.float64)
    if is_conv_like(layer) and weights.ndim == 4:
        colour = (weights.shape[1] == 3 and not is_deconv(layer)
                  and layer.group == 1 and row.bottom
                  and row.bottom[0] == image_input)
        if colour:
            return colour_filters(weights, preprocess.channel_swap, budget)
        return filter_grid(weights, layer.group, is_deconv(layer), budget)
    if is_inner_product(layer) and weights.ndim == 2:
        if getattr(layer, "transpose", False):
            weights = weights.T
        return weight_heatmap(weights, budget)
    return None


def filter_grid(weights, group=1, deconv=False, budget=None):
    """Convolution weights (M, C/g, kh, kw) as M rows of C/g tiles.

    Deconvolution weights (C, M/g, kh, kw): C rows (input channels) of M/g
    tiles (the output channels each one stamps). Rows of one group are
    together; ``group_gap`` pixels separate the groups.
    """
    budget = budget or Budget()
    rows, cols, kh, kw = weights.shape
    gap = 1 if kh * kw > 1 else 0
    group_gap = 1 if group > 1 else 0
    shown_cols = min(cols, budget.max_filter_cols if kh * kw > 1
                     else 4 * budget.max_filter_cols)
    cell = (kh + gap) * (kw + gap)
    shown_rows = min(rows, budget.max_filter_rows,
                     max(1, budget.filter_pixels // (shown_cols * cell)))
    scale = _robust_scale(weights)
    per_group = rows // group
    spans = []
    in_per_group = cols
    for g in range(group):
        spans.append(GroupSpan(g, (g * per_group, (g + 1) * per_group),
                               (g * in_per_group, (g + 1) * in_per_group)))
    codes = quantize(weights[:shown_rows, :shown_cols], scale)
    if cols == 1:
        # One tile per row: lay the rows out as a grid, `wrap` per line.
        gap = 1
        wrap = min(shown_rows, max(1, math.ceil(math.sqrt(shown_rows * 2))))
        lines = math.ceil(shown_rows / wrap)
        pixels = np.full((lines * (kh + gap) - gap, wrap * (kw + gap) - gap),
                         GAP_INDEX, np.uint8)
        for r in range(shown_rows):
            line, c = divmod(r, wrap)
            pixels[line * (kh + gap):line * (kh + gap) + kh,
                   c * (kw + gap):c * (kw + gap) + kw] = codes[r, 0]
        group_gap = 0
    else:
        wrap = 1
        seps = [s.rows[0] for s in spans[1:] if s.rows[0] < shown_rows]
        height = shown_rows * (kh + gap) - gap + len(seps) * group_gap
        width = shown_cols * (kw + gap) - gap
        pixels = np.full((max(height, 1), max(width, 1)), GAP_INDEX,
                         np.uint8)
        y = 0
        for r in range(shown_rows):
            if r in seps:
                pixels[y - gap:y - gap + group_gap + gap, :] = GROUP_INDEX
                y += group_gap
            for c in range(shown_cols):
                x = c * (kw + gap)
                pixels[y:y + kh, x:x + kw] = codes[r, c]
            y += kh + gap
    row_word, col_word = (("input channel", "output channel") if deconv
                          else ("filter", "input channel"))
    notes = []
    if shown_rows < rows or shown_cols < cols:
        notes.append(
            f"Showing {row_word}s 0–{shown_rows - 1} of {rows}"
            + (f" and {col_word}s 0–{shown_cols - 1} of {cols}"
               if shown_cols < cols else "") + " (size budget).")
    picture = Picture(encode_png(pixels, palette()), pixels.shape[1],
                      pixels.shape[0])
    return FilterGrid("grid", tuple(weights.shape), rows, cols, (kh, kw),
                      shown_rows, shown_cols, picture, scale, row_word,
                      col_word, gap=gap, group_gap=group_gap, wrap=wrap,
                      groups=spans if group > 1 else [], notes=notes)


def colour_filters(weights, channel_swap=None, budget=None):
    """First-layer filters on a 3-channel image: one RGB tile per filter.

    Net channel i holds image channel ``channel_swap[i]`` (kaffe.io's
    Transformer), so the tile's red is the net channel that holds red.
    Grey is 0; each filter's colours scale with the layer's largest |w|.
    """
    budget = budget or Budget()
    m, _, kh, kw = weights.shape
    swap = list(channel_swap) if channel_swap is not None else [0, 1, 2]
    rgb_from_net = [swap.index(c) for c in range(3)]
    rgb = weights[:, rgb_from_net].transpose(0, 2, 3, 1)   # M, kh, kw, 3
    scale = _robust_scale(rgb, 99.5)
    cell = (kh + 1) * (kw + 1)
    shown = min(m, max(1, budget.filter_pixels // cell))
    cols = min(shown, max(1, math.ceil(math.sqrt(shown * 2))))
    rows_n = math.ceil(shown / cols)
    pixels = np.empty((rows_n * (kh + 1) - 1, cols * (kw + 1) - 1, 3),
                      np.uint8)
    pixels[:] = GAP_COLOUR
    tiles = np.clip(np.nan_to_num(0.5 + rgb / (2 * scale), nan=0.5), 0, 1)
    tiles = np.rint(tiles * 255).astype(np.uint8)
    for i in range(shown):
        r, c = divmod(i, cols)
        pixels[r * (kh + 1):r * (kh + 1) + kh,
               c * (kw + 1):c * (kw + 1) + kw] = tiles[i]
    notes = [] if shown == m else [
        f"Showing filters 0–{shown - 1} of {m} (size budget)."]
    order = ("R, G, B = net channels " + ", ".join(
        str(i) for i in rgb_from_net))
    return FilterGrid("colour", tuple(weights.shape), m, 3, (kh, kw), shown,
                      3, Picture(encode_png(pixels), pixels.shape[1],
                                    pixels.shape[0]),
                      scale, "filter", "input channel", wrap=cols,
                      channel_order=order, notes=notes)


def weight_heatmap(weights, budget=None):
    """An InnerProduct weight matrix (outputs × inputs) as a heat map.

    A matrix larger than ``budget.max_heatmap`` is downsampled by block
    means, each axis by its own factor (``factor`` rows × ``col_factor``
    columns per pixel); a matrix of at most 64 rows may be twice as wide.
    """
    budget = budget or Budget()
    rows, cols = weights.shape
    max_rows, max_cols = budget.max_heatmap
    if rows <= 64:
        max_cols *= 2
    fy = max(1, math.ceil(rows / max_rows))
    fx = max(1, math.ceil(cols / max_cols))
    small = block_mean(weights, fy, fx)
    scale = _robust_scale(weights)
    codes = quantize(small, scale)
    notes = []
    if fy * fx > 1:
        notes.append(f"Downsampled: each pixel is the mean of a {fy}×{fx} "
                     f"block of weights ({rows}×{cols} → {small.shape[0]}×"
                     f"{small.shape[1]}); the colour scale is the full "
                     "matrix's.")
    return FilterGrid("heatmap", (rows, cols), rows, cols, (1, 1),
                      small.shape[0], small.shape[1],
                      Picture(encode_png(codes, palette()), codes.shape[1],
                              codes.shape[0]),
                      scale, "output", "input", gap=0, factor=fy,
                      col_factor=fx, notes=notes)


# -- feature maps -------------------------------------------------------------
@dataclass
class _Plan:
    """How one top is drawn (fixed before the forward passes)."""
    kind: str
    channels: int = 0
    shown: int = 0
    factor: int = 1
    tile: tuple = ()
    cols: int = 0
    per_page: int = 0
    notes: list = field(default_factory=list)


def _map_plans(net, layers, budget, runs):
    """{(layer index, top index): _Plan}, sharing budget.map_pixels.

    Max–min fair shares: the pixels are split evenly, and a top that needs
    less than its share (all its channels at up to max_map_side) gives the
    rest to the others.
    """
    tops = []
    for view in layers:
        if view.hidden:
            continue
        for t, top in enumerate(view.tops):
            shape = net.blobs[top.name].shape
            full = plan_maps(shape, float("inf"), budget)
            tops.append((view.index, t, shape, full.shown * _tile_area(full)))
    pixels_left = budget.map_pixels / max(1, runs)
    shares = {}
    by_need = sorted(tops, key=lambda x: x[3])
    for i, (index, t, _, need) in enumerate(by_need):
        share = max(0.0, pixels_left) / (len(by_need) - i)
        shares[index, t] = min(need, share) if need <= share else share
        pixels_left -= shares[index, t]
    return {(index, t): plan_maps(shape, shares[index, t], budget)
            for index, t, shape, _ in tops}


def _tile_area(plan):
    if plan.kind != "maps":
        return 1 if plan.kind == "vector" else 0
    return (plan.tile[0] + 1) * (plan.tile[1] + 1)


def plan_maps(shape, share, budget):
    """How to draw a top of ``shape`` (batch 1) within ``share`` pixels.

    Maps larger than ``max_map_side`` are downsampled; when not every
    channel fits, the maps are downsampled further (down to tiles of
    ``min_map_side``) before channels are left out.
    """
    shape = tuple(shape)
    spatial = shape[2:] if len(shape) >= 3 else ()
    if len(shape) == 4 and shape[2] * shape[3] > 1:
        c, h, w = shape[1:]
        c_cap = min(c, budget.max_channels)
        factor = max(1, math.ceil(max(h, w) / budget.max_map_side))
        floor_side = min(math.ceil(max(h, w) / factor), budget.min_map_side)
        notes = []
        while True:
            th, tw = math.ceil(h / factor), math.ceil(w / factor)
            fits = int(min(share, 1e15) // ((th + 1) * (tw + 1)))
            smaller = math.ceil(max(h, w) / (factor + 1))
            if fits >= c_cap or smaller < floor_side or \
                    math.ceil(max(h, w) / (factor + 1)) == max(th, tw):
                break
            factor += 1
        shown = max(min(c, budget.min_channels), min(c_cap, fits))
        if factor > 1:
            notes.append(f"Downsampled ×{factor}: each pixel is the mean of "
                         f"a {factor}×{factor} block ({h}×{w} → {th}×{tw}); "
                         "a click still maps to the full-size positions.")
        if shown < c:
            notes.append(f"Showing channels 0–{shown - 1} of {c} (size "
                         "budget).")
        per_page = 64 if th * tw >= 144 else 256
        per_page = min(per_page, shown)
        cols = max(1, math.ceil(math.sqrt(per_page * tw / th *
                                          (1.0 if th * tw >= 144 else 1.5))))
        cols = min(cols, per_page)
        return _Plan("maps", c, shown, factor, (th, tw), cols, per_page,
                     notes)
    count = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    if len(shape) <= 1 or (count == 1 and not spatial):
        return _Plan("scalar", 1, 1)
    shown = min(count, budget.max_vector)
    notes = []
    if len(shape) > 2 and not (len(shape) == 4 and shape[2] * shape[3] == 1):
        notes.append(f"Shown flattened: {_shape_text(shape[1:])} → {count} "
                     "values.")
    if shown < count:
        notes.append(f"Showing values 0–{shown - 1} of {count} (size "
                     "budget).")
    cols = min(shown, 64 if shown > 256 else 32 if shown > 32 else shown)
    return _Plan("vector", count, shown, 1, (1, 1), cols, shown, notes)


def _forward(net, values, layers, plans, preprocess, image_input, label,
             synthetic, notes):
    """Run the net once; fill every top's MapView for this run."""
    for name, value in values.items():
        net.blobs[name].data[...] = value[None] if \
            net.blobs[name].data.ndim == value.ndim + 1 else value
    by_index = {v.index: v for v in layers}

    def capture(i):
        view = by_index[i]
        if view.hidden:
            return
        for t, top in enumerate(view.tops):
            data = np.asarray(net.blobs[top.name].data)
            top.maps.append(draw_maps(top.name, data[0] if data.ndim else
                                      data, plans[i, t]))

    net.after_forward(capture)
    try:
        # Overflow and 0/0 become Inf and NaN in the pictures and the
        # statistics (and a note saying where they start), not warnings.
        with np.errstate(all="ignore"):
            net.forward()
    finally:
        net.remove_hook(capture)
    picture, size = None, ()
    if image_input is not None:
        data = np.asarray(net.blobs[image_input].data[0])
        picture = input_picture(data, preprocess.channel_swap)
        size = data.shape[1:]
    outputs = []
    for name in net.outputs:
        data = np.asarray(net.blobs[name].data, dtype=np.float64)
        values, top = _vector_values(data[0].ravel() if data.ndim else
                                     data.ravel())
        outputs.append((name, values, top))
    return InputRun(label=label, synthetic=synthetic, blob=image_input or "",
                    picture=picture, size=tuple(size), notes=notes,
                    outputs=outputs)


def draw_maps(blob, data, plan):
    """A :class:`MapView` of one batch item's ``data`` drawn as ``plan``."""
    data = np.asarray(data, dtype=np.float64)
    stats, histogram = stats_and_histogram(data)
    scale = _robust_scale(data)
    view = MapView(blob=blob, shape=(1,) + tuple(data.shape), kind=plan.kind,
                   channels=plan.channels, shown=plan.shown,
                   map_size=tuple(data.shape[1:3]) if plan.kind == "maps"
                   else (), tile=plan.tile, factor=plan.factor,
                   cols=plan.cols, per_page=plan.per_page, scale=scale,
                   stats=stats, histogram=histogram, notes=list(plan.notes))
    if plan.kind == "scalar":
        view.values = [(0, float(data.ravel()[0]) if data.size else
                        float("nan"))]
        return view
    if plan.kind == "vector":
        flat = data.ravel()
        view.values, view.values_are_top = _vector_values(flat)
        codes = quantize(flat[:plan.shown], scale)
        rows = math.ceil(plan.shown / plan.cols)
        strip = np.full(rows * plan.cols, GAP_INDEX, np.uint8)
        strip[:plan.shown] = codes
        strip = strip.reshape(rows, plan.cols)
        view.pages = [Picture(encode_png(strip, palette()), plan.cols, rows)]
        view.gap = 0
        return view
    maps = block_mean(data[:plan.shown], plan.factor)
    th, tw = plan.tile
    codes = quantize(maps, scale)
    for start in range(0, plan.shown, plan.per_page):
        chunk = codes[start:start + plan.per_page]
        n = len(chunk)
        cols = min(plan.cols, n)
        rows = math.ceil(n / cols)
        page = np.full((rows * (th + 1) - 1, cols * (tw + 1) - 1), GAP_INDEX,
                       np.uint8)
        for i in range(n):
            r, c = divmod(i, cols)
            page[r * (th + 1):r * (th + 1) + th,
                 c * (tw + 1):c * (tw + 1) + tw] = chunk[i]
        view.pages.append(Picture(encode_png(page, palette()), page.shape[1],
                                  page.shape[0]))
    return view


def _vector_values(flat):
    finite = np.where(np.isfinite(flat), flat, -np.inf)
    if flat.size <= 10:
        return [(i, float(v)) for i, v in enumerate(flat)], False
    order = np.argsort(-finite, kind="stable")[:5]
    return [(int(i), float(flat[i])) for i in order], True


def input_picture(data, channel_swap=None):
    """The input blob (C, H, W) as the net sees it, min–max scaled to 8 bits:
    colour for 3 channels (net channels swapped back to R, G, B), else the
    first channel in grey."""
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 3:
        return None
    if data.shape[0] == 3:
        swap = list(channel_swap) if channel_swap is not None else [0, 1, 2]
        image = data[[swap.index(c) for c in range(3)]].transpose(1, 2, 0)
    else:
        image = data[0]
    finite = image[np.isfinite(image)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else \
        (0.0, 1.0)
    span = hi - lo or 1.0
    pixels = np.rint(np.clip(np.nan_to_num((image - lo) / span), 0, 1) * 255)
    pixels = pixels.astype(np.uint8)
    return Picture(encode_png(pixels), pixels.shape[1], pixels.shape[0])


# -- numbers ------------------------------------------------------------------
def stats_and_histogram(values, bins=40):
    """(:class:`Stats`, :class:`Histogram`) of an array's values.

    Exact zeros are left out of the histogram when they are more than 20 %
    of the values (the histogram says how many).
    """
    flat = np.asarray(values, dtype=np.float64).ravel()
    finite = flat[np.isfinite(flat)]
    nans = int(np.isnan(flat).sum())
    infs = int(np.isinf(flat).sum())
    zeros = int(np.count_nonzero(finite == 0))
    if finite.size:
        stats = Stats(int(flat.size), float(finite.min()),
                      float(finite.max()), float(finite.mean()),
                      float(finite.std()), zeros / flat.size, nans, infs)
    else:
        nan = float("nan")
        stats = Stats(int(flat.size), nan, nan, nan, nan,
                      zeros / flat.size if flat.size else 0.0, nans, infs)
    left_out = 0
    binned = finite
    if flat.size and zeros / flat.size > 0.2 and zeros < finite.size:
        binned = finite[finite != 0]
        left_out = zeros
    if binned.size:
        lo, hi = float(binned.min()), float(binned.max())
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        counts, edges = np.histogram(binned, bins=bins, range=(lo, hi))
    else:
        counts, edges = np.zeros(bins, np.int64), np.linspace(0, 1, bins + 1)
    return stats, Histogram([int(c) for c in counts],
                            [float(e) for e in edges], left_out)


def _robust_scale(values, percentile=99.9):
    """Where the colours saturate: the 99.9th percentile of |value| (the
    largest |value| when that is 0), 1 for all-zero values."""
    flat = np.abs(np.asarray(values, dtype=np.float64).ravel())
    flat = flat[np.isfinite(flat)]
    if not flat.size:
        return 1.0
    scale = float(np.percentile(flat, percentile))
    if scale <= 0:
        scale = float(flat.max())
    return scale if scale > 0 else 1.0


def quantize(values, scale):
    """Values → palette indices: 0 → ZERO_INDEX, ±scale → ZERO_INDEX ±
    LEVELS (clipped beyond), in between by √(|value|/scale); non-finite →
    NAN_INDEX."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    t = np.clip(np.where(finite, values, 0) / scale, -1, 1)
    t = np.sign(t) * np.sqrt(np.abs(t))
    codes = (ZERO_INDEX + np.rint(t * LEVELS)).astype(np.uint8)
    codes[~finite] = NAN_INDEX
    return codes


def value_of_index(index, scale):
    """The value a palette index stands for (inverse of :func:`quantize`)."""
    t = (index - ZERO_INDEX) / LEVELS
    return math.copysign(t * t, t) * scale


def palette():
    """The 256 RGB colours of the one-channel pictures (a list of tuples)."""
    colours = []
    for i in range(256):
        if i <= 2 * LEVELS:
            colours.append(colour_of((i - ZERO_INDEX) / LEVELS))
        elif i == NAN_INDEX:
            colours.append(NAN_COLOUR)
        elif i == GAP_INDEX:
            colours.append(GAP_COLOUR)
        else:
            colours.append(GROUP_COLOUR)
    return colours


def colour_of(t):
    """The diverging colour for t in [−1, 1] (white at 0)."""
    for (t0, c0), (t1, c1) in zip(_ANCHORS, _ANCHORS[1:]):
        if t <= t1:
            u = (t - t0) / (t1 - t0)
            return tuple(int(round(a + (b - a) * u)) for a, b in zip(c0, c1))
    return _ANCHORS[-1][1]


def block_mean(values, factor, col_factor=None):
    """Mean over factor × col_factor (default factor) blocks of the last
    two axes (the last block of each axis may be smaller)."""
    values = np.asarray(values, dtype=np.float64)
    fx = factor if col_factor is None else col_factor
    if factor <= 1 and fx <= 1:
        return values
    h, w = values.shape[-2:]
    ry, rx = np.arange(0, h, factor), np.arange(0, w, fx)
    sums = np.add.reduceat(np.add.reduceat(values, ry, axis=-2), rx, axis=-1)
    ny = np.minimum(ry + factor, h) - ry
    nx = np.minimum(rx + fx, w) - rx
    return sums / (ny[:, None] * nx[None, :])


# -- PNG ----------------------------------------------------------------------
def encode_png(pixels, palette_colours=None):
    """A minimal PNG encoder (zlib only).

    Args:
        pixels: uint8 (H, W) — palette indices when ``palette_colours`` is
            given, else grey — or (H, W, 3) RGB.
        palette_colours: up to 256 (r, g, b) tuples.

    Returns:
        the PNG file's bytes. Grey and RGB rows use the Sub filter (smaller
        for photos); palette rows none (PNG's advice).
    """
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = pixels.shape[:2]
    if pixels.ndim == 3:
        colour_type, channels = 2, pixels.shape[2]
    else:
        colour_type, channels = (3 if palette_colours is not None else 0), 1
    rows = pixels.reshape(h, w * channels)
    if colour_type == 3:
        filtered = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1)
    else:
        sub = rows.copy()
        sub[:, channels:] = rows[:, channels:] - rows[:, :-channels]
        filtered = np.concatenate([np.ones((h, 1), np.uint8), sub], axis=1)

    def chunk(kind, data):
        body = kind + data
        return (struct.pack(">I", len(data)) + body
                + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF))

    out = [b"\x89PNG\r\n\x1a\n",
           chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0,
                                      0))]
    if colour_type == 3:
        out.append(chunk(b"PLTE", bytes(v for c in palette_colours
                                        for v in c)))
    out.append(chunk(b"IDAT", zlib.compress(filtered.tobytes(), 9)))
    out.append(chunk(b"IEND", b""))
    return b"".join(out)


# -- the graph ----------------------------------------------------------------
NODE_WIDTH = 236
DUMMY_WIDTH = 14
LINE_HEIGHT = 15
RANK_GAP = 34
NODE_GAP = 26
MARGIN = 16


def node_lines(layers, node_layers):
    """How many text lines a node has: name, type · summary, the in-place
    layers (three per line), one per top shape."""
    extra = len(node_layers) - 1
    tops = max(1, len(layers[node_layers[-1]].tops))
    return 2 + math.ceil(extra / 3) + tops


def layout_graph(layers):
    """Lay the visible layers out in layered rows (a small Sugiyama).

    A node is a layer plus the in-place layers that follow it on the same
    blob before anything else reads it (conv → BatchNorm → Scale → ReLU is
    one box). Ranks are longest paths from the inputs; edges longer than one
    rank bend through dummy nodes; rows are ordered by barycentres (two
    sweeps each way) and x positions follow the real predecessors, so a long
    chain stays straight and its skip connections run beside it.
    """
    nodes = []                  # [[layer indices]]
    node_of_blob = {}           # blob -> node index holding its last version
    read = set()                # blobs read since their node was made
    alias = {}                  # auto-split top -> the blob it copies
    edges = set()
    for view in layers:
        if view.hidden:
            for top in view.row.top:
                alias[top] = alias.get(view.row.bottom[0],
                                       view.row.bottom[0])
            continue
        bottoms = [alias.get(b, b) for b in view.row.bottom]
        tops = list(view.row.top)
        in_place = (len(tops) == 1 and bottoms == tops
                    and tops[0] in node_of_blob and tops[0] not in read)
        if in_place:
            node = node_of_blob[tops[0]]
            nodes[node].append(view.index)
            continue
        node = len(nodes)
        nodes.append([view.index])
        for b in bottoms:
            if b in node_of_blob and node_of_blob[b] != node:
                edges.add((node_of_blob[b], node, b))
                read.add(b)
        for t in tops:
            node_of_blob[t] = node
            read.discard(t)
    by_index = {v.index: v for v in layers}
    n = len(nodes)
    preds = [[] for _ in range(n)]
    for s, t, _ in sorted(edges):
        preds[t].append(s)
    rank = [0] * n
    for i in range(n):
        rank[i] = max((rank[p] + 1 for p in preds[i]), default=0)
    # Dummy nodes for long edges.
    heights = [node_lines(by_index, group) * LINE_HEIGHT + 10
               for group in nodes]
    all_rank = list(rank)
    widths = [NODE_WIDTH] * n
    chains = []                 # (source, target, blob, [node ids])
    succ = [[] for _ in range(n)]
    pred_all = [[] for _ in range(n)]

    def add_dummy(r):
        all_rank.append(r)
        widths.append(DUMMY_WIDTH)
        heights.append(0)
        succ.append([])
        pred_all.append([])
        return len(all_rank) - 1

    for s, t, blob in sorted(edges):
        path = [s]
        for r in range(rank[s] + 1, rank[t]):
            path.append(add_dummy(r))
        path.append(t)
        for a, b in zip(path, path[1:]):
            succ[a].append(b)
            pred_all[b].append(a)
        chains.append((s, t, blob, path))
    total = len(all_rank)
    ranks = [[] for _ in range(max(all_rank, default=0) + 1)]
    for i in range(total):
        ranks[all_rank[i]].append(i)
    pos = {i: k for row in ranks for k, i in enumerate(row)}
    for sweep in range(4):
        down = sweep % 2 == 0
        order = ranks[1:] if down else ranks[-2::-1]
        for row in order:
            def key(i):
                near = pred_all[i] if down else succ[i]
                if not near:
                    return pos[i]
                return sum(pos[j] for j in near) / len(near)
            row.sort(key=lambda i: (key(i), pos[i]))
            for k, i in enumerate(row):
                pos[i] = k
    # x: each node wants the mean x of its real predecessors (a dummy, its
    # predecessor's). In each row the node that heads the longest chain of
    # real layers gets its wish; the others line up beside it, in order,
    # as close to theirs as they can without overlapping.
    chain = [0] * total
    for i in range(total - 1, -1, -1):
        chain[i] = (1 if i < n else 0) + max((chain[j] for j in succ[i]),
                                             default=0)
    x = [0.0] * total
    for row in ranks:
        wanted = []
        for i in row:
            near = pred_all[i]
            real = [j for j in near if j < n] or near
            wanted.append(sum(x[j] for j in real) / len(real) if real
                          else None)
        anchor = max(range(len(row)), key=lambda k: (row[k] < n,
                                                     chain[row[k]], -k))
        x[row[anchor]] = wanted[anchor] if wanted[anchor] is not None else 0
        for k in range(anchor + 1, len(row)):
            i, prev = row[k], row[k - 1]
            least = x[prev] + widths[prev] / 2 + NODE_GAP + widths[i] / 2
            x[i] = max(least, wanted[k]) if wanted[k] is not None else least
        for k in range(anchor - 1, -1, -1):
            i, nxt = row[k], row[k + 1]
            most = x[nxt] - widths[nxt] / 2 - NODE_GAP - widths[i] / 2
            x[i] = min(most, wanted[k]) if wanted[k] is not None else most
    left = min((x[i] - widths[i] / 2 for i in range(total)), default=0)
    for i in range(total):
        x[i] += MARGIN - left
    row_height = [max((heights[i] for i in row), default=0) for row in ranks]
    y_top = []
    y = MARGIN
    for h in row_height:
        y_top.append(y)
        y += max(h, 12) + RANK_GAP
    graph_nodes = []
    for i in range(total):
        top = y_top[all_rank[i]]
        graph_nodes.append(GraphNode(
            id=i, layers=nodes[i] if i < n else [], x=x[i] - widths[i] / 2,
            y=top, width=widths[i], height=heights[i] if i < n else
            row_height[all_rank[i]], dummy=i >= n))
    graph_edges = []
    for s, t, blob, path in chains:
        points = [(x[s], y_top[rank[s]] + heights[s])]
        for d in path[1:-1]:
            node = graph_nodes[d]
            points.append((x[d], node.y))
            points.append((x[d], node.y + node.height))
        points.append((x[t], y_top[rank[t]]))
        graph_edges.append(GraphEdge(s, t, blob, points))
    width = max((x[i] + widths[i] / 2 for i in range(total)),
                default=0) + MARGIN
    return Graph(graph_nodes, graph_edges, width, y - RANK_GAP + MARGIN)


# -- small helpers ------------------------------------------------------------
def _shape_text(shape):
    return "(" + ", ".join(str(d) for d in shape) + ")"


def shape_text(shape):
    """(1, 20, 24, 24) → '1×20×24×24'."""
    return "×".join(str(d) for d in shape) if len(shape) else "scalar"


def fraction_text(x):
    x = Fraction(x).limit_denominator(64)
    return str(x.numerator) if x.denominator == 1 else \
        f"{x.numerator}/{x.denominator}"
