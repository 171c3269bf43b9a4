"""Coordinate maps between NetSpec tops, and Crop layers from them (FCN).

pycaffe's ``caffe.coord_map``. A spatial layer maps input coordinates to
output coordinates affinely along its spatial axes: ``out = a * in + b``. A
map is the triple ``(axis, a, b)``: ``axis`` is the first spatial axis the
layer acts on (None for point-wise layers, which map any axis identically),
``a`` the scale and ``b`` the shift, per spatial axis (NumPy arrays).

* Convolution, Pooling, Im2col (kernel k, stride s, pad p, dilation d, with
  the effective kernel k' = (k - 1) d + 1): ``a = 1/s``,
  ``b = (p - (k' - 1)/2) / s``;
* Deconvolution: ``a = s``, ``b = (k' - 1)/2 - p``;
* Crop (axis c, offset o): axis c - 1, ``a = 1``, ``b = -o``;
* the point-wise layers of :data:`PASS_THROUGH_LAYERS`: ``(None, 1, 0)``.

:func:`coord_map_from_to` composes maps along the NetSpec graph from one top
back to a common ancestor and forward to another; :func:`crop` turns the
result into the Crop layer that aligns one top with another, as FCN's
``crop(n.upscore, n.data)``. The maps read the layers' NetSpec keyword
arguments (``Function.params``), so they work before any net is built.
"""
import numpy as np

from .core.errors import KaffeConfigError
from .net_spec import layers as L

PASS_THROUGH_LAYERS = ["AbsVal", "BatchNorm", "Bias", "BNLL", "Dropout",
                       "Eltwise", "ELU", "Log", "LRN", "Exp", "MVN", "Power",
                       "ReLU", "PReLU", "Scale", "Sigmoid", "Split", "TanH",
                       "Threshold"]

_LEGACY_FIELDS = {"pad_h", "pad_w", "kernel_h", "kernel_w", "stride_h",
                  "stride_w"}


class UndefinedMapException(Exception):
    """A layer type without a coordinate map (the graph walk stops there)."""


class AxisMismatchException(KaffeConfigError):
    """Two maps act on different first spatial axes and cannot compose."""


class UnconnectedTopsError(KaffeConfigError, RuntimeError):
    """No chain of spatial layers links the two tops.

    Also a RuntimeError, the class pycaffe raised.
    """


class CropError(KaffeConfigError, AssertionError):
    """The tops cannot be aligned by a Crop layer (scale mismatch, negative
    or fractional offset) or use fields the maps do not read.

    Also an AssertionError, the class pycaffe's checks raised.
    """


def _layer_params(fn, field):
    """The keyword arguments holding ``field``'s values: the explicit
    ``field=dict(...)`` if given, else the layer's own keywords."""
    params = fn.params.get(field, fn.params)
    legacy = _LEGACY_FIELDS & (set(params) | set(fn.params))
    if legacy:
        raise CropError(
            "cannot be mapped: coordinate maps do not read the legacy _h/_w "
            "fields", layer_type=fn.type_name,
            received=", ".join(sorted(legacy)),
            fix="give kernel_size, stride and pad as lists instead "
                "(kernel_size=[kh, kw])")
    return params


def conv_params(fn):
    """(axis, stride, effective kernel size, pad) of a Convolution,
    Deconvolution, Im2col or Pooling layer, as arrays (one per spatial axis
    when given per axis)."""
    field = "pooling_param" if fn.type_name == "Pooling" else \
        "convolution_param"
    params = _layer_params(fn, field)
    if "kernel_size" not in params:
        raise KaffeConfigError(
            "needs kernel_size among its keyword arguments to be mapped",
            layer_type=fn.type_name, field="kernel_size",
            fix=f"pass kernel_size to L.{fn.type_name}(...) or in {field}")
    axis = params.get("axis", 1)
    kernel = np.array(params["kernel_size"], ndmin=1)
    dilation = np.array(params.get("dilation", 1), ndmin=1)
    return (axis, np.array(params.get("stride", 1), ndmin=1),
            (kernel - 1) * dilation + 1,
            np.array(params.get("pad", 0), ndmin=1))


def crop_params(fn):
    """(axis, offset) of a Crop layer, with Caffe's defaults (axis 2)."""
    params = fn.params.get("crop_param", fn.params)
    return params.get("axis", 2), np.array(params.get("offset", 0), ndmin=1)


def coord_map(fn):
    """The map (axis, a, b) of one layer (a NetSpec Function)."""
    if fn.type_name in ("Convolution", "Pooling", "Im2col"):
        axis, stride, kernel, pad = conv_params(fn)
        return axis, 1 / stride, (pad - (kernel - 1) / 2) / stride
    if fn.type_name == "Deconvolution":
        axis, stride, kernel, pad = conv_params(fn)
        return axis, stride, (kernel - 1) / 2 - pad
    if fn.type_name in PASS_THROUGH_LAYERS:
        return None, 1, 0
    if fn.type_name == "Crop":
        axis, offset = crop_params(fn)
        # The map's axis is the last axis before the cropped ones.
        return axis - 1, 1, -offset
    raise UndefinedMapException(fn.type_name)


def compose(base_map, next_map):
    """The map of ``next_map`` applied after ``base_map``.

    Scales multiply; the further shift is scaled by the base's scale.
    """
    ax1, a1, b1 = base_map
    ax2, a2, b2 = next_map
    if ax1 is None:
        axis = ax2
    elif ax2 is None or ax1 == ax2:
        axis = ax1
    else:
        raise AxisMismatchException(
            "cannot compose coordinate maps acting on different axes",
            received=f"axis {ax1} and axis {ax2}",
            fix="map between tops whose spatial layers share their axis")
    return axis, a1 * a2, a1 * b2 + b1


def inverse(coord_map):
    """The map undoing ``coord_map`` (output back to input)."""
    axis, a, b = coord_map
    return axis, 1 / a, -b / a


def _mapped_bottoms(top):
    """The bottoms a walk from ``top`` follows: all of them, except that a
    Crop layer's second bottom only gives the reference size."""
    bottoms = top.fn.inputs
    if top.fn.type_name == "Crop":
        bottoms = bottoms[:1]
    return bottoms


def _walk_back(start):
    """{top: map from that top to ``start``} for every top reached through
    mappable layers."""
    maps = {start: (None, 1, 0)}
    frontier = [start]
    while frontier:
        top = frontier.pop()
        try:
            layer_map = coord_map(top.fn)
        except UndefinedMapException:
            continue
        for bottom in _mapped_bottoms(top):
            maps[bottom] = compose(maps[top], layer_map)
            frontier.append(bottom)
    return maps


def coord_map_from_to(top_from, top_to):
    """The map (axis, a, b) from the coordinates of ``top_from`` to those of
    ``top_to``.

    Walks back from both tops through mappable layers to a common ancestor,
    composing maps on the way, then inverts the ``top_from`` half.

    Raises:
        UnconnectedTopsError (also a RuntimeError) when no common ancestor is
        reached through spatial layers.
    """
    from_maps = _walk_back(top_from)
    to_maps = {top_to: (None, 1, 0)}
    frontier = [top_to]
    while frontier:
        top = frontier.pop()
        if top in from_maps:
            return compose(to_maps[top], inverse(from_maps[top]))
        try:
            layer_map = coord_map(top.fn)
        except UndefinedMapException:
            continue
        for bottom in _mapped_bottoms(top):
            to_maps[bottom] = compose(to_maps[top], layer_map)
            frontier.append(bottom)
    raise UnconnectedTopsError(
        f"cannot map coordinates from a {top_from.fn.type_name} top to a "
        f"{top_to.fn.type_name} top: no common input is reached through "
        "spatial layers", expected="tops connected by Convolution, "
        "Deconvolution, Pooling, Crop or point-wise layers",
        fix="crop tops that derive from the same input; layers such as "
            "InnerProduct have no coordinate map")


def crop(top_from, top_to):
    """A Crop layer (a NetSpec Top) cropping ``top_from`` to ``top_to``.

    The axis and offsets come from :func:`coord_map_from_to`; the map must be
    a pure integer shift towards the inside of ``top_from``.

    Raises:
        CropError (also an AssertionError) when the scales differ, or the
        offset would be negative or fractional.
    """
    axis, a, b = coord_map_from_to(top_from, top_to)
    a, b = np.asarray(a), np.asarray(b)
    if not (a == 1).all():
        raise CropError(
            "cannot crop: the tops have different scales (a scale mismatch "
            "on crop)", received=f"scale {a.tolist()}", expected="1",
            fix="make the upsampling undo the downsampling exactly (e.g. a "
                "Deconvolution stride equal to the total pooling stride)")
    if not (b <= 0).all():
        raise CropError(
            "cannot crop a negative offset: the top to crop is smaller than "
            "the reference", received=f"offset {(-b).tolist()}",
            expected="offsets >= 0",
            fix="crop the larger top to the smaller one (reduce the padding "
                "of the upsampling layer)")
    if not (np.round(b) == b).all():
        raise CropError(
            "cannot crop a fractional (noninteger) offset",
            received=f"offset {(-b).tolist()}", expected="whole pixels",
            fix="choose kernel sizes, strides and pads that align the "
                "tops on whole pixels")
    offsets = [int(v) for v in -np.round(b).astype(int)]
    if axis is None:    # only point-wise layers between: crop H, W by 0
        axis = 1
    # +1: Crop's axis is the first cropped axis, the map's the one before.
    return L.Crop(top_from, top_to,
                  crop_param=dict(axis=axis + 1, offset=offsets))
