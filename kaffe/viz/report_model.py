"""The model of ``kaffe viz``'s report: plain dataclasses, and the palette.

:mod:`kaffe.viz.report` fills them in and :mod:`kaffe.viz.render` turns them
into HTML; the palette indices and colours of the one-channel pictures are
described in :mod:`kaffe.viz.report`'s docstring.
"""
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional

import numpy as np


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
                if mean.size <= 4 else f"image {paren_shape_text(mean.shape)}"))
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
    training: object = None     # kaffe.viz.training.TrainingStats or None



# -- small helpers ------------------------------------------------------------
def paren_shape_text(shape):
    """(1, 20, 24, 24) → '(1, 20, 24, 24)'."""
    return "(" + ", ".join(str(d) for d in shape) + ")"


def shape_text(shape):
    """(1, 20, 24, 24) → '1×20×24×24'."""
    return "×".join(str(d) for d in shape) if len(shape) else "scalar"


def fraction_text(x):
    x = Fraction(x).limit_denominator(64)
    return str(x.numerator) if x.denominator == 1 else \
        f"{x.numerator}/{x.denominator}"
