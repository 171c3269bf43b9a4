"""explain: the layer-by-layer arithmetic of a net, in words and numbers.

:func:`explain_net` reads a built :class:`~kaffe.Net` — the top shapes its
layers computed during setup, the parameter blobs they made, and the geometry
the vision layers parsed (``kernel_shape``, ``stride``, ``pad`` …) — into a
:class:`Report` of plain dataclasses. Nothing here infers a shape on its own:
the formula lines redo the arithmetic with the layer's numbers to *show* it,
and the result they print is the real top's.

:func:`explain` builds the net from a prototxt first. Data layers whose source
cannot be opened here (Data, ImageData, HDF5Data, WindowData, MemoryData, a
bottomless Python layer, or any unregistered bottomless type) become Input
layers, shaped by ``shapes`` or by the layer's own parameters where those
determine the shape (MemoryData; ImageData with crop_size or new_height and
new_width; every label top from the batch size).

Report.to_text() is a table in the manner of torchinfo and Caffe's
summarize.py; Report.to_dict() / to_json() follow this spec::

    {
      "name": str, "phase": "TRAIN" | "TEST",
      "inputs": {blob: [dims]},        # tops of layers without bottoms
      "layers": [{
        "name": str,
        "type": str,                   # the type written in the prototxt
        "bottom": [str], "top": [str],
        "top_shapes": [[int]],         # per top, from the net's own blobs
        "param_shapes": [[int]],       # per parameter blob
        "params": int,                 # elements in the parameter blobs
        "macs": int,                   # multiply-accumulates, one forward
        "formula": str,                # "" when there is nothing to show
        "shared_params": [str | null], # per blob: owner "layer[i]" or null
        "receptive_field": [RF | null] # per top
      }],
      "totals": {
        "params": int,                 # shared blobs counted once
        "trainable_params": int,       # ... those with lr_mult != 0
        "param_bytes": int,
        "macs": int,
        "activation_bytes": int,       # the tops' forward data, each once
        "bytes_per_value": int
      },
      "receptive_field": {blob: RF},   # blobs derived from a spatial input
      "notes": [str]
    }
    RF = {"input": str, "size": [int], "jump": [number] | null,
          "whole_input": bool}

``macs`` counts the multiply-accumulates of the layers that multiply by a
weight matrix, the numbers published for CNNs (ResNet-50's 4.1 G are its
convolutions and classifier): Convolution N·M·(C/g)·Πk·ΠH_out,
Deconvolution N·C·(M/g)·Πk·ΠH_in (each input pixel stamps its
(M/g)·Πk weights), InnerProduct M·K·N; bias additions are not counted.
Every other layer counts 0: those that multiply without a weight matrix
(LRN, Eltwise PROD, pooling, Softmax), the per-element affine layers
(Scale, Bias, BatchNorm, PReLU: one multiply per element at most, ~1 % of a
CNN's total), Embed (a table lookup: it copies rows, it does not multiply),
and RNN/LSTM (their unrolled inner products are not counted yet).

Receptive fields are per spatial axis of the input a blob derives from:
``size`` is how many input pixels one value depends on, ``jump`` how many
input pixels apart neighbouring values are (fractional after Deconvolution;
null once the spatial layout is gone). The rules:

* windows — Convolution, Deconvolution, Pooling, Im2col grow the field by
  their (dilated) kernel and multiply the jump by the stride (Deconvolution
  divides it);
* element-wise — neuron layers (ReLU, PReLU, Dropout …), BatchNorm, Scale,
  Bias, MVN (their per-channel statistics aside), Eltwise, Concat, Split,
  Slice, Crop (bottom[0]; the reference gives only a size), Filter and
  BatchReindex (they pick batch items), Tile along the batch or channel
  axis: the largest field of the bottoms, jump unchanged;
* layout lost — Flatten, Reshape that changes the spatial dims, Tile along
  a spatial axis, Concat along a spatial axis, Embed: the same size, jump
  null;
* whole input — InnerProduct, global pooling, SPP (its top level pools the
  whole map), Reduction and ArgMax over the spatial axes, Softmax over
  channels keeps the field, losses and Accuracy: ``whole_input`` true.

A layer type without a rule stops them (see "notes"). ``whole_input`` is
true when the field covers the entire input (the cases above, or a size at
least the input's extent).
"""
import dataclasses
import difflib
import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional

import numpy as np

from ..core.errors import KaffeConfigError
from ..core.net import Net
from ..proto import caffe_pb2

TRAIN = caffe_pb2.TRAIN
TEST = caffe_pb2.TEST

# Data layers whose sources explain never opens (they become Input layers).
DATA_LAYER_TYPES = ("Data", "ImageData", "HDF5Data", "WindowData",
                    "MemoryData")
# ... of them, those whose second top is a label of shape (batch,).
_LABELLED = ("Data", "ImageData", "WindowData", "MemoryData")


# -- the report model ---------------------------------------------------------
@dataclass
class ReceptiveField:
    """The part of an input that one value of a blob depends on, per axis."""
    input: str
    size: tuple
    jump: Optional[tuple]       # None: the blob has no spatial layout any more
    whole_input: bool
    extent: tuple = ()          # the input's spatial shape (not in the JSON)


@dataclass
class LayerRow:
    """One layer of the report (see the module docstring for the fields)."""
    name: str
    type: str
    bottom: list
    top: list
    top_shapes: list
    param_shapes: list
    params: int
    macs: int
    formula: str = ""
    shared_params: list = field(default_factory=list)
    receptive_field: list = field(default_factory=list)


@dataclass
class Totals:
    params: int
    trainable_params: int
    param_bytes: int
    macs: int
    activation_bytes: int
    bytes_per_value: int


@dataclass
class Report:
    """What :func:`explain_net` returns; render with to_text() or to_json()."""
    name: str
    phase: str
    inputs: dict
    layers: list
    totals: Totals
    receptive_field: dict
    notes: list = field(default_factory=list)

    def to_dict(self):
        """The report as JSON-ready dicts and lists (the spec above)."""
        def rf(r):
            if r is None:
                return None
            return {"input": r.input, "size": list(r.size),
                    "jump": None if r.jump is None else [_json_number(j)
                                                         for j in r.jump],
                    "whole_input": r.whole_input}
        layers = []
        for row in self.layers:
            layers.append({
                "name": row.name, "type": row.type,
                "bottom": list(row.bottom), "top": list(row.top),
                "top_shapes": [list(s) for s in row.top_shapes],
                "param_shapes": [list(s) for s in row.param_shapes],
                "params": row.params, "macs": row.macs,
                "formula": row.formula,
                "shared_params": list(row.shared_params),
                "receptive_field": [rf(r) for r in row.receptive_field],
            })
        return {
            "name": self.name, "phase": self.phase,
            "inputs": {k: list(v) for k, v in self.inputs.items()},
            "layers": layers,
            "totals": dataclasses.asdict(self.totals),
            "receptive_field": {k: rf(v) for k, v in
                                self.receptive_field.items()},
            "notes": list(self.notes),
        }

    def to_json(self):
        """JSON text: indented, with lists of numbers kept on one line."""
        return _compact_json(self.to_dict())

    def to_text(self):
        return format_text(self)


# -- building a net from a prototxt -------------------------------------------
def explain(prototxt, phase=TEST, weights=None, shapes=None, level=0,
            stages=()):
    """Build the net of ``prototxt`` and explain it.

    Args:
        prototxt: path of the net definition (or a caffe_pb2.NetParameter).
        phase: kaffe.TRAIN / kaffe.TEST (or "TRAIN" / "TEST").
        weights: optional .caffemodel to load (checks that it fits the net).
        shapes: {blob: (N, C, H, W)} for the tops of data layers that cannot
            be opened here, or to override Input shapes (CLI ``--shape``).
        level, stages: the NetState's level and stages, which select layers
            through their include/exclude rules as the phase does.

    Returns:
        a :class:`Report`.
    """
    from ..proto.io import load_net
    phase = phase_value(phase)
    param, source = load_net(prototxt)
    param.state.phase = phase
    param.state.level = level
    del param.state.stage[:]
    param.state.stage.extend(stages)
    notes = replace_data_layers(param, source, shapes or {})
    net = Net.from_param(param, source)
    if weights is not None:
        net.copy_from(weights)
    return explain_net(net, data_notes=notes)


def phase_value(phase):
    if isinstance(phase, str):
        try:
            return caffe_pb2.Phase.Value(phase.upper())
        except ValueError:
            raise KaffeConfigError("is not a phase", field="phase",
                                   received=phase,
                                   expected="TRAIN or TEST") from None
    if phase not in (TRAIN, TEST):
        raise KaffeConfigError("is not a phase", field="phase",
                               received=phase, expected="TRAIN or TEST")
    return phase


def replace_data_layers(param, source, shapes):
    """Turn unopenable data layers of ``param`` into Input layers, in place.

    Only layers that the net's phase includes are touched. Input layers take
    their shape from ``shapes`` when it names their tops.

    Returns:
        {layer name: note saying where the shapes came from, or
        (note, original type) for a replaced data layer}.

    Raises:
        KaffeConfigError naming the layer, its line, the top that needs a
        shape and the ``--shape`` flag to pass.
    """
    from ..core.net import layer_included
    shapes = {name: _check_shape(name, shape)
              for name, shape in shapes.items()}
    path = source.path if source is not None else None
    chosen = []                 # (layer, line) of the inputs to shape
    seen = {}
    for layer in param.layer:
        occurrence = seen.get(layer.name, 0)
        seen[layer.name] = occurrence + 1
        if not layer_included(param.state, layer):
            continue
        # A Python layer (with or without bottoms) is never built here:
        # that would import its module, which runs the module's code.
        if layer.type in ("Input", "Python") or _is_unopenable_data(layer):
            line = source.line(layer.name, occurrence) if source else None
            chosen.append((layer, line))
    tops = [t for layer, _ in chosen for t in layer.top]
    unknown = [name for name in shapes if name not in tops]
    if unknown:
        close = difflib.get_close_matches(unknown[0], tops, n=1)
        raise KaffeConfigError(
            f"names blob '{unknown[0]}', which is not a top of an input or "
            "data layer of this net in this phase", file=path, field="--shape",
            expected=("one of " + ", ".join(tops)) if tops else None,
            fix=(f"did you mean '{close[0]}'?" if close else
                 "--shape only sets the shapes of the net's input blobs"))
    notes = {}                  # layer name -> note (one phase: names unique)
    for layer, line in chosen:
        if layer.type == "Input":
            note = _reshape_input(layer, shapes, path, line)
            if note:
                notes[layer.name] = note
        else:
            notes[layer.name] = _to_input(layer, shapes, path, line)
    return notes


def _is_unopenable_data(layer):
    if len(layer.bottom) or not len(layer.top):
        return False
    if layer.type in DATA_LAYER_TYPES or layer.type == "Python":
        return True
    from ..core.registry import layer_class, layer_type_list
    if layer_class(layer.type) is not None:
        return False
    # An unregistered type without bottoms is a data layer of some fork,
    # unless it looks like a misspelt known type (the net then says so).
    return layer.type.endswith("Data") or not difflib.get_close_matches(
        layer.type, layer_type_list(), n=1, cutoff=0.6)


def _check_shape(name, shape):
    try:
        dims = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        dims = None
    if not dims or any(d <= 0 for d in dims):
        raise KaffeConfigError(
            "must be a tuple of positive dimensions",
            field=f"shape of '{name}'", received=shape,
            expected="e.g. (64, 1, 28, 28)")
    return dims


def _reshape_input(layer, shapes, path, line):
    given = [shapes.get(top) for top in layer.top]
    declared = list(layer.input_param.shape)
    if len(declared) not in (0, 1, len(layer.top)):
        return ""               # the Input layer itself refuses this
    if not any(given):
        if not declared and len(layer.top):  # (no tops: the net refuses it)
            raise _needs_shape(layer, layer.top[0], None, path, line,
                               "its input_param has no shape")
        return ""
    new_shapes = []
    for i, top in enumerate(layer.top):
        if given[i] is not None:
            new_shapes.append(given[i])
        elif declared:
            new_shapes.append(tuple(declared[0 if len(declared) == 1
                                             else i].dim))
        else:
            raise _needs_shape(layer, top, None, path, line,
                               "its input_param has no shape")
    del layer.input_param.shape[:]
    for shape in new_shapes:
        layer.input_param.shape.add().dim.extend(shape)
    return "shapes from --shape: " + ", ".join(
        f"{top} {_shape_text(s)}" for top, s, g in
        zip(layer.top, new_shapes, given) if g is not None)


def _to_input(layer, shapes, path, line):
    """Replace data ``layer`` by an Input layer with the same name and tops."""
    derived, batch = _shapes_from_params(layer)
    first = shapes.get(layer.top[0])
    if first is not None:
        batch = first[0]
    result, origin = [], []
    for i, top in enumerate(layer.top):
        if top in shapes:
            result.append(shapes[top])
            origin.append("--shape")
        elif i < len(derived) and derived[i] is not None:
            shape = derived[i]
            if i == 1 and batch:
                shape = (batch,)
            result.append(shape)
            origin.append(_param_name(layer))
        elif i == 1 and batch and layer.type in _LABELLED:
            result.append((batch,))
            origin.append("the batch size")
        else:
            raise _needs_shape(layer, top, batch, path, line, None)
    kind, tops = layer.type, list(layer.top)
    original = caffe_pb2.LayerParameter()
    original.CopyFrom(layer)
    # Same name, tops and rules (the net filters it again), no data source.
    replacement = caffe_pb2.LayerParameter(
        name=layer.name, type="Input", top=tops, include=layer.include,
        exclude=layer.exclude)
    if layer.HasField("phase"):
        replacement.phase = layer.phase
    for shape in result:
        replacement.input_param.shape.add().dim.extend(shape)
    layer.CopyFrom(replacement)
    parts = ", ".join(f"{top} {_shape_text(s)} from {o}"
                      for top, s, o in zip(tops, result, origin))
    if kind == "Python":
        return (f"Python layer {layer_python_module(original)} not run "
                f"(module '{original.python_param.module}' not imported); "
                f"stands in as an Input layer: {parts}", kind)
    return (f"{kind} source not opened here; stands in as an Input layer: "
            f"{parts}", kind)


def layer_python_module(layer):
    """'module.Layer' that a Python layer's python_param names."""
    p = layer.python_param
    return f"{p.module}.{p.layer}" if p.layer else p.module


def _param_name(layer):
    return {"MemoryData": "memory_data_param", "ImageData":
            "image_data_param"}.get(layer.type, "the layer's parameters")


def _shapes_from_params(layer):
    """([shape per top], batch size or 0), as the layer's fields fix them."""
    crop = layer.transform_param.crop_size
    if layer.type == "MemoryData":
        p = layer.memory_data_param
        dims = (p.batch_size, p.channels, p.height, p.width)
        if all(dims):
            return [dims, (p.batch_size,)], p.batch_size
        return [], p.batch_size
    if layer.type == "ImageData":
        p = layer.image_data_param
        channels = 3 if p.is_color else 1
        if crop:
            return [(p.batch_size, channels, crop, crop)], p.batch_size
        if p.new_height and p.new_width:
            return [(p.batch_size, channels, p.new_height, p.new_width)], \
                p.batch_size
        return [], p.batch_size
    for field_name in ("data_param", "window_data_param", "hdf5_data_param"):
        if layer.HasField(field_name):
            return [], getattr(layer, field_name).batch_size
    return [], 0


def _needs_shape(layer, top, batch, path, line, why):
    example = f"{batch or 'N'},C,H,W"
    if why is None:
        if layer.type in DATA_LAYER_TYPES:
            why = (f"kaffe does not open {layer.type} sources to work out "
                   "shapes")
        elif layer.type == "Python":
            why = ("inspection does not import its module "
                   f"'{layer.python_param.module}' to work out shapes, since "
                   "importing a module runs its code")
        else:
            why = f"'{layer.type}' is not a layer type kaffe knows"
    flag = f"--shape {top}={example}"
    python = f"shapes={{'{top}': ({example.replace(',', ', ')})}}"
    return KaffeConfigError(
        f"top '{top}' needs a shape ({why})", file=path, line=line,
        layer=layer.name, layer_type=layer.type,
        fix=f"pass {flag} (in Python: {python}) with the blob's real "
            "dimensions")


# -- reading a built net ------------------------------------------------------
def explain_net(net, data_notes=None):
    """Explain a built :class:`~kaffe.Net` layer by layer.

    Args:
        net: the net, after construction (its blobs have their shapes).
        data_notes: {layer name: note or (note, original type)} from
            :func:`replace_data_layers`.
    """
    data_notes = data_notes or {}
    itemsize = net.dtype.itemsize
    rows = []
    blob_rf = {}
    notes = []
    inputs = {}
    param_index = 0
    owners = net.param_owners
    param_place = []                 # net param index -> "layer[i]"
    total_params = trainable = 0
    total_macs = 0
    activation_bytes = 0
    counted_buffers = []
    for name, layer in zip(net._layer_names, net.layers):
        bottoms = list(net.bottom_names[name])
        tops = list(net.top_names[name])
        bottom_blobs = [net.blobs[b] for b in bottoms]
        top_blobs = [net.blobs[t] for t in tops]
        row_type = layer.layer_param.type or layer.type
        formula = ""
        note = data_notes.get(name)
        if isinstance(note, tuple):
            note, row_type = note
        if note:
            formula = f"{name}: {note}"
        if not bottoms:
            for t, blob in zip(tops, top_blobs):
                inputs[t] = blob.shape

        # Parameters (shared blobs belong to their owner for the totals).
        shared = []
        for j, blob in enumerate(layer.blobs):
            param_place.append(f"{name}[{j}]")
            owner = owners[param_index] if param_index < len(owners) else -1
            if owner >= 0:
                shared.append(param_place[owner])
            else:
                shared.append(None)
                total_params += blob.count
                if _lr_mult(layer.layer_param, j) != 0:
                    trainable += blob.count
            param_index += 1
        params = sum(b.count for b in layer.blobs)

        macs = _macs(layer, bottom_blobs, top_blobs)
        total_macs += macs
        if not formula:
            formula = _formula(name, layer, bottom_blobs, top_blobs)

        # Activation memory: a top sharing a bottom's memory costs nothing.
        for blob in top_blobs:
            data = blob.data
            if any(np.may_share_memory(data, b) for b in counted_buffers):
                continue
            counted_buffers.append(data)
            activation_bytes += blob.count * itemsize

        rfs, unknown = _propagate_rf(layer, bottoms, bottom_blobs, tops,
                                     top_blobs, blob_rf)
        if unknown:
            notes.append(f"receptive fields stop at layer '{name}' "
                         f"({row_type}): explain has no rule for this type")
        for t, r in zip(tops, rfs):
            if r is not None:
                blob_rf[t] = r
            else:
                blob_rf.pop(t, None)

        rows.append(LayerRow(
            name=name, type=row_type, bottom=bottoms, top=tops,
            top_shapes=[b.shape for b in top_blobs],
            param_shapes=[b.shape for b in layer.blobs], params=params,
            macs=macs, formula=formula, shared_params=shared,
            receptive_field=rfs))
    totals = Totals(params=total_params, trainable_params=trainable,
                    param_bytes=total_params * itemsize, macs=total_macs,
                    activation_bytes=activation_bytes,
                    bytes_per_value=itemsize)
    return Report(name=net.name, phase=caffe_pb2.Phase.Name(net.phase),
                  inputs=inputs, layers=rows, totals=totals,
                  receptive_field=blob_rf, notes=notes)


def _lr_mult(layer_param, j):
    if j < len(layer_param.param):
        return layer_param.param[j].lr_mult
    return 1.0


# -- which kind of layer is it: by the attributes its setup exposes -----------
def is_pooling(layer):
    return hasattr(layer, "method") and hasattr(layer, "kernel_shape")


def is_conv_like(layer):
    return (hasattr(layer, "kernel_shape") and hasattr(layer, "group")
            and hasattr(layer, "num_output"))


def is_deconv(layer):
    return bool(getattr(layer, "reverse_dimensions", False)) or \
        layer.type == "Deconvolution"


def is_inner_product(layer):
    return layer.type == "InnerProduct" or (
        hasattr(layer, "K") and hasattr(layer, "num_output"))


def is_lrn(layer):
    return hasattr(layer, "norm_region") and hasattr(layer, "alpha")


def enum_name(value, enum):
    """An enum attribute as its name ("MAX"), whether given as str or int."""
    return value if isinstance(value, str) else enum.Name(value)


# -- multiply-accumulates -----------------------------------------------------
def _macs(layer, bottoms, tops):
    if is_conv_like(layer) and layer.blobs:
        weights = layer.blobs[0].count
        n_sp = layer.num_spatial_axes
        total = 0
        for bottom, top in zip(bottoms, tops):
            spatial = bottom.shape if is_deconv(layer) else top.shape
            outer = math.prod(top.shape[:top.num_axes - n_sp - 1])
            total += outer * weights * math.prod(spatial[len(spatial) - n_sp:])
        return total
    if is_inner_product(layer) and layer.blobs and tops:
        rows = tops[0].count // layer.num_output if layer.num_output else 0
        return rows * layer.blobs[0].count
    return 0


# -- formula lines ------------------------------------------------------------
def _formula(name, layer, bottoms, tops):
    if not bottoms or not tops:
        return ""
    if is_pooling(layer):
        return _pooling_formula(name, layer, bottoms[0], tops[0])
    if is_conv_like(layer):
        if is_deconv(layer):
            return _deconv_formula(name, layer, bottoms, tops)
        return _conv_formula(name, layer, bottoms, tops)
    if is_inner_product(layer):
        return _ip_formula(name, layer, bottoms[0], tops[0])
    if is_lrn(layer):
        return _lrn_formula(name, layer, tops[0])
    kind = layer.type
    if kind == "Concat":
        return _concat_formula(name, layer, bottoms, tops[0])
    if kind == "Eltwise":
        return _eltwise_formula(name, layer, bottoms, tops[0])
    if kind == "Flatten":
        return (f"{name}: {_shape_text(bottoms[0].shape)} → "
                f"{_shape_text(tops[0].shape)}, the same values re-indexed "
                "(no copy)")
    return ""


def _axis_names(n):
    return {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}.get(
        n, tuple(f"S{i}" for i in range(n)))


def _dims(values):
    return "×".join(str(v) for v in values)


def _uniform(values):
    """'2' for (2, 2), '2×1' for (2, 1)."""
    return str(values[0]) if len(set(values)) == 1 else _dims(values)


def _per_axis_lines(names, terms, results):
    """'H_out = … = 8' (plus 'W_out = …' when W's arithmetic differs)."""
    parts = [f"{names[0]}_out = {terms[0]} = {results[0]}"]
    for axis in range(1, len(names)):
        if terms[axis] != terms[0]:
            parts.append(
                f"{names[axis]}_out = {terms[axis]} = {results[axis]}")
    return "; ".join(parts)


def _group_text(group, n_out, n_in, out_word, in_word, verb="see"):
    """'group 2: filters 0–127 see input channels 0–47, filters 128–255 see
    48–95' (the first two groups and the last when there are more than 3)."""
    per_out, per_in = n_out // group, n_in // group

    def span(start, size):
        return str(start) if size == 1 else f"{start}–{start + size - 1}"

    pieces = []
    for g in range(group):
        if group > 3 and 1 < g < group - 1:
            if g == 2:
                pieces.append("…")
            continue
        head = (f"{out_word if per_out > 1 else out_word[:-1]} "
                f"{span(g * per_out, per_out)} "
                f"{verb if per_out > 1 else verb + 's'} ")
        if g == 0:
            head += f"{in_word if per_in > 1 else in_word[:-1]} "
        pieces.append(head + span(g * per_in, per_in))
    text = f"group {group}: " + ", ".join(pieces)
    if group == n_in and group == n_out:
        text += " (depthwise: one filter per channel)"
    return text


def _conv_formula(name, layer, bottoms, tops):
    bottom, top = bottoms[0], tops[0]
    n_sp = layer.num_spatial_axes
    k, s, p, d = layer.kernel_shape, layer.stride, layer.pad, layer.dilation
    cg = layer.channels // layer.group
    sizes_in = bottom.shape[bottom.num_axes - n_sp:]
    sizes_out = top.shape[top.num_axes - n_sp:]
    text = f"{name}: {layer.num_output} filters, each {cg}×{_dims(k)}"
    if cg > 1:
        text += f" (one {_dims(k)} slice per input channel, summed)"
    if layer.bias_term:
        text += " + bias"
    text += f" → {_shape_text(top.shape)}"
    if len(bottoms) > 1:
        text += f" (the same filters for each of the {len(bottoms)} inputs)"
    terms, results = [], []
    for a in range(n_sp):
        numerator = sizes_in[a] + 2 * p[a] - d[a] * (k[a] - 1) - 1
        term = f"({sizes_in[a]} + 2·{p[a]} − {d[a]}·({k[a]}−1) − 1)/{s[a]}"
        if numerator % s[a]:
            term = f"⌊{term}⌋"
        terms.append(term + " + 1")
        results.append(_checked(numerator // s[a] + 1, sizes_out[a]))
    text += "; " + _per_axis_lines(_axis_names(n_sp), terms, results)
    if any(x > 1 for x in d):
        span = tuple(dd * (kk - 1) + 1 for kk, dd in zip(k, d))
        apart = _uniform(d)
        text += (f"; dilation {apart}: the {_dims(k)} taps are {apart} "
                 f"apart, spanning {_dims(span)}")
    if layer.group > 1:
        text += "; " + _group_text(layer.group, layer.num_output,
                                   layer.channels, "filters",
                                   "input channels")
    return text


def _deconv_formula(name, layer, bottoms, tops):
    bottom, top = bottoms[0], tops[0]
    n_sp = layer.num_spatial_axes
    k, s, p, d = layer.kernel_shape, layer.stride, layer.pad, layer.dilation
    og = layer.num_output // layer.group
    sizes_in = bottom.shape[bottom.num_axes - n_sp:]
    sizes_out = top.shape[top.num_axes - n_sp:]
    text = (f"{name}: {layer.num_output} output channels; every input pixel "
            f"adds its value × its channel's {og}×{_dims(k)} weights (a "
            f"stamp) to the output, stamps {_uniform(s)} apart, overlaps "
            "summed")
    if layer.bias_term:
        text += " + bias"
    text += f" → {_shape_text(top.shape)}"
    terms, results = [], []
    for a in range(n_sp):
        terms.append(f"{s[a]}·({sizes_in[a]} − 1) + {d[a]}·({k[a]}−1) + 1 "
                     f"− 2·{p[a]}")
        results.append(_checked(
            s[a] * (sizes_in[a] - 1) + d[a] * (k[a] - 1) + 1 - 2 * p[a],
            sizes_out[a]))
    text += "; " + _per_axis_lines(_axis_names(n_sp), terms, results)
    if layer.group > 1:
        text += "; " + _group_text(layer.group, layer.channels,
                                   layer.num_output, "input channels",
                                   "outputs", verb="feed")
    return text


def _pooling_formula(name, layer, bottom, top):
    method = enum_name(layer.method, caffe_pb2.PoolingParameter.PoolMethod)
    mode = enum_name(layer.round_mode, caffe_pb2.PoolingParameter.RoundMode)
    k, s, p = layer.kernel_shape, layer.stride, layer.pad
    sizes_in = bottom.shape[2:]
    sizes_out = top.shape[2:]
    what = {"MAX": "max", "AVE": "average", "STOCHASTIC": "stochastic pick"}
    if layer.global_pooling:
        how = {"MAX": "the max", "AVE": "the average",
               "STOCHASTIC": "a stochastic pick"}[method]
        return (f"{name}: global {method} pooling: one value per channel, "
                f"{how} of its whole {_dims(sizes_in)} map → "
                f"{_shape_text(top.shape)}")
    text = f"{name}: {what[method]} of each {_dims(k)} window"
    if method == "STOCHASTIC":
        text += (" (TRAIN: a value drawn with probability ∝ its size; TEST: "
                 "the probability-weighted average)")
    text += f" in each channel, stride {_uniform(s)}"
    if any(p):
        text += f", pad {_uniform(p)}"
        if method == "AVE":
            text += " (padded cells count in the divisor)"
        elif method == "MAX":
            text += " (padding never wins)"
    text += f" → {_shape_text(top.shape)}"
    bracket = {"CEIL": ("⌈", "⌉"), "FLOOR": ("⌊", "⌋")}[mode]
    other = "FLOOR" if mode == "CEIL" else "CEIL"
    names = ("H", "W")
    terms, results, alternatives = [], [], []
    for a in range(2):
        out, clipped = _pooled_size(sizes_in[a], k[a], s[a], p[a], any(p),
                                    mode)
        term = (f"{bracket[0]}({sizes_in[a]} + 2·{p[a]} − {k[a]})/{s[a]}"
                f"{bracket[1]} + 1")
        if clipped:
            term += (f" = {out + 1} − 1 (clip rule: ({out + 1}−1)·{s[a]} = "
                     f"{out * s[a]} ≥ {sizes_in[a]} + {p[a]}, so the last "
                     "window would start in the padding; Caffe drops it)")
        terms.append(term)
        results.append(_checked(out, sizes_out[a]))
        alt, _ = _pooled_size(sizes_in[a], k[a], s[a], p[a], any(p), other)
        if alt != out and (a == 0 or terms[a] != terms[0]):
            alternatives.append(f"{names[a]}_out = {alt}")
    text += "; " + _per_axis_lines(names, terms, results)
    if alternatives:
        text += (f" (round_mode {other} would give "
                 + ", ".join(alternatives) + ")")
    return text


def _pooled_size(size, k, s, p, any_pad, mode):
    """Caffe's pooled size and whether the clip rule removed a window."""
    rounding = math.ceil if mode == "CEIL" else math.floor
    out = int(rounding((size + 2 * p - k) / s)) + 1
    if any_pad and (out - 1) * s >= size + p:
        return out - 1, True
    return out, False


def _ip_formula(name, layer, bottom, top):
    axis = top.num_axes - 1
    flat = bottom.shape[axis:]
    text = (f"{name}: {layer.num_output} outputs, each a weighted sum of all "
            f"{layer.K} inputs")
    if len(flat) > 1:
        text += f" ({_dims(flat)} flattened)"
    if layer.bias_term:
        text += " + bias"
    text += f" → {_shape_text(top.shape)}"
    if axis > 1:
        text += (f"; done for each of the {_dims(bottom.shape[:axis])} "
                 f"positions of axes 0–{axis - 1}")
    if layer.transpose:
        text += f"; weights stored transposed ({layer.K}×{layer.num_output})"
    return text


def _lrn_formula(name, layer, top):
    region = enum_name(layer.norm_region, caffe_pb2.LRNParameter.NormRegion)
    n, alpha, beta, k = layer.size, layer.alpha, layer.beta, layer.k
    half = (n - 1) // 2
    if region == "ACROSS_CHANNELS":
        return (f"{name}: y = x·({_num(k)} + {_num(alpha)}/{n}·Σx²)^−"
                f"{_num(beta)}, Σ over the {n} channels c−{half}…c+{half} at "
                f"the same pixel (zeros past the first and last channel) → "
                f"{_shape_text(top.shape)}")
    text = (f"{name}: y = x·(1 + {_num(alpha)}/{n * n}·Σx²)^−{_num(beta)}, "
            f"Σ over the {n}×{n} window around the pixel in its own channel "
            f"(zero padding {half}) → {_shape_text(top.shape)}")
    if k != 1:
        text += f"; k = {_num(k)} is ignored within a channel (Caffe uses 1)"
    return text


def _concat_formula(name, layer, bottoms, top):
    axis = getattr(layer, "axis", 1)
    word = {0: "batch", 1: "channels"}.get(axis, f"axis {axis}")
    sizes = " + ".join(str(b.shape[axis]) for b in bottoms)
    return f"{name}: {word} {sizes} = {top.shape[axis]} → " \
           f"{_shape_text(top.shape)}"


def _eltwise_formula(name, layer, bottoms, top):
    p = layer.layer_param.eltwise_param
    op = caffe_pb2.EltwiseParameter.EltwiseOp.Name(p.operation)
    letters = [chr(ord("a") + i) if i < 26 else f"x{i}"
               for i in range(len(bottoms))]
    if op == "SUM" and len(p.coeff) and any(c != 1 for c in p.coeff):
        expr = " ".join(("+ " if c >= 0 else "− ") + f"{_num(abs(c))}·{x}"
                        for c, x in zip(p.coeff, letters)).lstrip("+ ")
    else:
        sep = {"SUM": " + ", "PROD": "·", "MAX": ", "}[op]
        expr = sep.join(letters)
        if op == "MAX":
            expr = f"max({expr})"
    return (f"{name}: y = {expr} element by element, with "
            + ", ".join(f"{x} = {b}" for x, b in
                        zip(letters, layer.layer_param.bottom))
            + f" → {_shape_text(top.shape)}")


def _checked(computed, actual):
    """The layer's own result; flags a formula that disagrees with it."""
    if computed == actual:
        return str(actual)
    return f"{actual} (the formula gives {computed}: please report this)"


# -- receptive fields ---------------------------------------------------------
def _propagate_rf(layer, bottoms, bottom_blobs, tops, top_blobs, blob_rf):
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
        if is_pooling(layer) and layer.global_pooling:
            return [_whole(present[0])] * n, False
        out = [None if r is None else _window_rf(window, r)
               for r in known[:n]]
        unknown = any(o is None and r is not None for o, r in zip(out, known))
        return out, unknown
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
                "Scale", "Bias", "MVN", "Slice", "PReLU")


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
    """(kernel, stride, dilation, transposed) of a sliding-window layer:
    Convolution, Deconvolution, Pooling, Im2col; None for other layers."""
    if is_conv_like(layer) or is_pooling(layer):
        n_sp = len(layer.kernel_shape)
        return (layer.kernel_shape, layer.stride,
                getattr(layer, "dilation", (1,) * n_sp),
                is_conv_like(layer) and is_deconv(layer))
    geometry = getattr(layer, "geometry", None)
    if layer.type == "Im2col" and geometry is not None:
        return (geometry.kernel_shape, geometry.stride, geometry.dilation,
                False)
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


def _compact_json(value, indent=0):
    pad = "  " * (indent + 1)
    flat = json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict) and value and (len(flat) > 80 or any(
            isinstance(v, dict) or (isinstance(v, list) and any(
                isinstance(x, (dict, list)) for x in v))
            for v in value.values())):
        items = [f"{pad}{json.dumps(k)}: {_compact_json(v, indent + 1)}"
                 for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
    if isinstance(value, list) and value and any(
            isinstance(v, dict) for v in value):
        items = [pad + _compact_json(v, indent + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + "  " * indent + "]"
    return flat


# -- text ---------------------------------------------------------------------
def _shape_text(shape):
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _num(x):
    """A float parameter as written in a prototxt: 0.0001, 0.75, 1."""
    return f"{float(x):.6g}"


def _json_number(x):
    if isinstance(x, Fraction):
        return int(x) if x.denominator == 1 else float(x)
    return x


def _rf_text(r):
    if r is None:
        return "—", "—"
    size = "whole input" if r.whole_input else _dims(
        _fmt_fraction(v) for v in r.size)
    if r.jump is None:
        jump = "—"
    elif len(set(r.jump)) == 1:
        jump = _fmt_fraction(r.jump[0])
    else:
        jump = _dims(_fmt_fraction(j) for j in r.jump)
    return size, jump


def _fmt_fraction(x):
    if isinstance(x, Fraction) and x.denominator != 1:
        return f"{x.numerator}/{x.denominator}"
    return str(int(x))


def _bytes_text(n):
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def _count_text(n):
    for unit, scale in (("G", 10 ** 9), ("M", 10 ** 6), ("k", 10 ** 3)):
        if n >= scale:
            return f"{n:,} ({n / scale:.2f} {unit})"
    return f"{n:,}"


# Column widths of the text table: longer layer names, and lines of the
# Bottom → Top column longer than their column, push the rest of their row
# onto the next line (the columns stay aligned); a Bottom → Top that does not
# fit on one line is broken into one line per bottom, then "→ top". A
# layer's numbers stay on its first line; with several tops, each top's
# shape and field are on the line of its name.
_NAME_WIDTH = 36
_IO_WIDTH = 44
_IO_MAX_WIDTH = 56


def _io_lines(row, width):
    """The Bottom → Top cell as lines, and the line each top is on."""
    if row.top and row.top == row.bottom:
        return [f"{t} (in place)" for t in row.top], list(range(len(row.top)))
    tops = [f"{t} (in place)" if t in row.bottom else t for t in row.top]
    tops = tops or [""]
    arrow = ", ".join(row.bottom) + " → " if row.bottom else "→ "
    if len(arrow) + len(tops[0]) <= width:
        lines = [arrow + tops[0]] + [" " * len(arrow) + t for t in tops[1:]]
        return lines, list(range(len(row.top)))
    lines = [b + "," for b in row.bottom[:-1]] + row.bottom[-1:]
    first = len(lines)
    lines += ["→ " + tops[0]] + ["  " + t for t in tops[1:]]
    return lines, [first + i for i in range(len(row.top))]


def format_text(report):
    """The report as an aligned table with formula lines and totals."""
    header = ["Layer", "Type", "Bottom → Top", "Top shape", "Param shapes",
              "Params", "MACs", "RF", "Jump"]
    right = {5, 6}
    longest_blob = max((len(b) + 2 for row in report.layers
                        for b in row.bottom + row.top), default=0)
    io_width = min(_IO_MAX_WIDTH, max(_IO_WIDTH, longest_blob))
    table = []          # (cells, formula or None)
    for row in report.layers:
        ios, top_line = _io_lines(row, io_width)
        params = " ".join(_shape_text(s) for s in row.param_shapes)
        if any(row.shared_params):
            params += " shared"
        shapes = [_shape_text(s) for s in row.top_shapes]
        rfs = [_rf_text(r) for r in row.receptive_field]
        height = max(len(ios), 1)
        cells = [["", "", io, "", "", "", "", "", ""] for io in ios] or \
            [[""] * len(header)]
        cells[0][:2] = [row.name, row.type]
        cells[0][4:7] = [params, f"{row.params:,}", f"{row.macs:,}"]
        if len(row.top) == 1:
            top_line = [0]          # one top: the whole row on its first line
        for t, k in enumerate(top_line[:height]):
            if t < len(shapes):
                cells[k][3] = shapes[t]
            if t < len(rfs):
                cells[k][7:9] = list(rfs[t])
        table.extend((c, None) for c in cells)
        if row.formula:
            table.append((None, row.formula))
    widths = [len(h) for h in header]
    for cells, _ in table:
        if cells:
            for i, cell in enumerate(cells):
                widths[i] = max(widths[i], len(cell))
    widths[0] = min(widths[0], _NAME_WIDTH)
    widths[2] = min(widths[2], io_width)
    starts = [sum(widths[:i]) + 2 * i for i in range(len(widths))]

    def line(cells):
        done, out = [], ""
        for i, (cell, width) in enumerate(zip(cells, widths)):
            if not cell:
                continue
            if out and len(out) + 2 > starts[i]:
                done.append(out.rstrip())      # spill: the row goes on below
                out = ""
            out = out.ljust(starts[i])
            out += cell.rjust(width) if i in right else cell
        return "\n".join(done + [out.rstrip()])

    rule_width = len(line(header))
    lines = []
    phase = report.phase
    inputs = ", ".join(f"{k} {_shape_text(v)}" for k, v in
                       report.inputs.items())
    title = f"Net '{report.name}'" if report.name else "Net (unnamed)"
    lines.append(f"{title} ({phase})" +
                 (f", inputs: {inputs}" if inputs else ""))
    lines.append("=" * rule_width)
    lines.append(line(header))
    lines.append("=" * rule_width)
    for cells, formula in table:
        lines.append(line(cells) if cells else "    " + formula)
    lines.append("=" * rule_width)
    t = report.totals
    per_value = f"{t.bytes_per_value * 8}-bit values"
    trainable = ("all trainable" if t.trainable_params == t.params
                 else f"{t.trainable_params:,} trainable")
    lines.append(f"Params: {_count_text(t.params)}, {trainable}; "
                 f"{_bytes_text(t.param_bytes)} as {per_value}")
    lines.append(f"MACs (multiply-accumulates) per forward pass: "
                 f"{_count_text(t.macs)}")
    lines.append(f"Activation memory: {_bytes_text(t.activation_bytes)} "
                 "(every top's data once; in-place and shared tops are free; "
                 "training adds as much again for the gradients)")
    lines.append("RF = receptive field: the input pixels one value depends "
                 "on (per axis); Jump = input pixels between neighbouring "
                 "values")
    for note in report.notes:
        lines.append("Note: " + note)
    return "\n".join(lines)
