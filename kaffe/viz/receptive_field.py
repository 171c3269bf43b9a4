"""Receptive fields: which input pixels one value of a blob depends on.

Per spatial axis of the input a blob derives from, ``size`` (how many input
pixels) and ``jump`` (how far apart neighbouring values are, in input
pixels); the rules per kind of layer are in :mod:`kaffe.viz.explain`'s
docstring. Sliding-window layers are read through the geometry they publish.
"""
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

from ..ops.geometry import ConvGeometry, PoolGeometry
from ..proto import caffe_pb2
from .formulas import enum_name, is_inner_product, is_lrn, is_pooling


@dataclass
class ReceptiveField:
    """The part of an input that one value of a blob depends on, per axis."""
    input: str
    size: tuple
    jump: Optional[tuple]       # None: the blob has no spatial layout any more
    whole_input: bool
    extent: tuple = ()          # the input's spatial shape (not in the JSON)


def propagate_rf(layer, bottoms, bottom_blobs, tops, top_blobs, blob_rf):
    """(receptive field per top, whether no rule covers this layer)."""
    kind = layer.type
    if not bottoms:
        if kind == "Parameter":          # a learned blob, not an input
            return [None] * len(tops), False
        out = []
        for name, blob in zip(tops, top_blobs):
            spatial = blob.shape[2:]
            out.append(ReceptiveField(name, (1,) * len(spatial),
                                      (1,) * len(spatial), False,
                                      tuple(spatial)) if spatial else None)
        return out, False
    known = [blob_rf.get(b) for b in bottoms]
    present = [r for r in known if r is not None]
    if not present:
        return [None] * len(tops), False
    from ..layers.loss.loss import LossLayer
    from ..layers.neuron.neuron import NeuronLayer
    n = len(tops)

    window = window_geometry(layer)
    if window is not None:
        if is_pooling(layer) and layer.geometry.global_pooling:
            return [_whole(present[0])] * n, False
        out = [None if r is None else _window_rf(window, r)
               for r in known[:n]]
        unknown = any(o is None and r is not None for o, r in zip(out, known))
        return out, unknown
    rule = getattr(layer, "receptive_field_rule", None)
    if rule is not None:
        # A layer may publish its rule: "elementwise" (same position),
        # "whole" (the whole input), "no_layout" (values no longer laid out
        # like the input) or "none" (depends on no input value).
        merged = _merge(present)
        return [{"elementwise": merged, "whole": _whole(merged),
                 "no_layout": _no_layout(merged), "none": None}[rule]] * n, \
            False
    if is_inner_product(layer) or isinstance(layer, LossLayer) or kind in (
            "Accuracy", "SoftmaxWithLoss", "SPP"):
        return [_whole(_merge(present))] * n, False
    if is_lrn(layer):
        region = enum_name(layer.norm_region, caffe_pb2.LRNParameter.NormRegion)
        if region == "ACROSS_CHANNELS":
            return [_merge(present)] * n, False
        r = present[0]
        if r.jump is None or len(r.size) != 2:
            return [r] * n, False
        return [_grow(r, (layer.size,) * 2, (1, 1), (1, 1), False)], False
    first = bottom_blobs[0]
    if kind in ("Flatten", "Embed"):
        return [_no_layout(present[0])] * n, False
    if kind == "Reshape":
        same = top_blobs[0].shape[2:] == first.shape[2:]
        return [present[0] if same else _no_layout(present[0])] * n, False
    if kind in ("Crop", "Filter", "BatchReindex"):
        # bottom[0] holds the values; the others give a size, a selection
        # or indices.
        return [known[0]] * n, False
    if kind == "Tile":
        axis = _axis(layer.layer_param.tile_param.axis, first)
        r = _merge(present)
        return [r if axis < 2 else _no_layout(r)] * n, False
    if kind == "Concat":
        p = layer.layer_param.concat_param
        axis = _axis(p.concat_dim if p.HasField("concat_dim") else p.axis,
                     first)
        r = _merge(present)
        return [r if axis < 2 else _no_layout(r)] * n, False
    if kind == "Reduction":
        axis = _axis(layer.layer_param.reduction_param.axis, first)
        return [_reduced(present[0], axis, first)] * n, False
    if kind == "ArgMax":
        p = layer.layer_param.argmax_param
        if not p.HasField("axis"):
            return [_whole(present[0])] * n, False
        axis = _axis(p.axis, first)
        r = present[0]
        return [r if axis < 2 else _reduced(r, axis, first, axis + 1)] * n, \
            False
    if kind == "Softmax":
        axis = _axis(layer.layer_param.softmax_param.axis, first)
        if axis < 2 or present[0].jump is None:
            return [_merge(present)] * n, False
        return [None] * n, True
    if isinstance(layer, NeuronLayer) or kind in _ELEMENTWISE:
        return [_merge(present)] * n, False
    return [None] * n, True


# Layers whose top values depend on the bottom values at the same position.
_ELEMENTWISE = ("Split", "Eltwise", "Silence", "Dropout", "BatchNorm",
                "Scale", "Bias", "MVN", "Slice", "PReLU",
                # fork layers: SegNet's BN, ShuffleNet's channel shuffle,
                # SENet's Axpy (a per-channel scale and a sum)
                "BN", "ShuffleChannel", "Axpy")


def _axis(axis, blob):
    """A possibly negative axis of ``blob`` as a non-negative index."""
    return axis + blob.num_axes if axis < 0 else axis


def _no_layout(r):
    """The same field, without a spatial layout any more."""
    return ReceptiveField(r.input, r.size, None, r.whole_input, r.extent)


def _reduced(r, axis, blob, stop=None):
    """The field after reducing ``blob``'s axes axis … stop − 1 (all from
    axis on by default): whole along the reduced spatial axes."""
    stop = blob.num_axes if stop is None else stop
    if axis <= 2 and stop >= blob.num_axes:
        return _whole(r)
    if r.jump is None or len(r.size) != blob.num_axes - 2:
        return _no_layout(r)
    size = tuple(
        (r.extent[a] if a < len(r.extent) else s) if axis <= a + 2 < stop
        else s for a, s in enumerate(r.size))
    return ReceptiveField(r.input, size, None, r.whole_input, r.extent)


def _whole(r):
    return ReceptiveField(r.input, tuple(r.extent or r.size), None, True,
                          r.extent)


def _merge(rfs):
    """The field of a value that combines values with fields ``rfs``."""
    first = rfs[0]
    same = [r for r in rfs if len(r.size) == len(first.size)]
    size = tuple(max(r.size[a] for r in same) for a in range(len(first.size)))
    jumps = [r.jump for r in same if r.jump is not None]
    jump = (tuple(max(j[a] for j in jumps) for a in range(len(first.size)))
            if len(jumps) == len(same) else None)
    whole = any(r.whole_input for r in same)
    return ReceptiveField(first.input, size, jump, whole, first.extent)


def window_geometry(layer):
    """(kernel, stride, dilation, transposed) of a sliding-window layer —
    one that publishes a geometry: Convolution, Deconvolution, Pooling,
    Im2col; None for other layers."""
    g = layer.geometry
    if isinstance(g, ConvGeometry):
        return g.kernel, g.stride, g.dilation, g.deconv
    if isinstance(g, PoolGeometry):
        return g.kernel, g.stride, (1,) * len(g.kernel), False
    return None


def _window_rf(window, r):
    k, s, d, transposed = window
    if r.jump is None and r.whole_input:
        return r
    if r.jump is None or len(r.size) != len(k):
        return None
    return _grow(r, k, s, d, transposed)


def _grow(r, k, s, d, transposed):
    size, jump = [], []
    for a in range(len(r.size)):
        reach = d[a] * (k[a] - 1)
        if transposed:
            # An output pixel of a transposed convolution sums the stamps of
            # at most ⌊d(k−1)/s⌋+1 neighbouring input pixels.
            size.append(r.size[a] + (reach // s[a]) * r.jump[a])
            jump.append(Fraction(r.jump[a]) / s[a])
        else:
            size.append(r.size[a] + reach * r.jump[a])
            jump.append(r.jump[a] * s[a])
    size = tuple(math.ceil(x) for x in size)
    jump = tuple(int(j) if Fraction(j).denominator == 1 else Fraction(j)
                 for j in jump)
    whole = r.whole_input or (len(r.extent) == len(size) and all(
        a >= e for a, e in zip(size, r.extent)))
    return ReceptiveField(r.input, size, jump, whole, r.extent)
