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
from dataclasses import dataclass, field

import numpy as np

from ..core.net import TEST, TRAIN, Net
from ..proto import caffe_pb2
from .explain_inputs import (DATA_LAYER_TYPES, phase_value,
                             replace_data_layers)
from .explain_text import compact_json, format_text, json_number
from .formulas import (enum_name, is_conv_like, is_deconv, is_inner_product,
                       is_lrn, is_pooling)
from .formulas import formula as layer_formula
from .formulas import macs as layer_macs
from .receptive_field import ReceptiveField, propagate_rf, window_geometry

# The parts live in explain_inputs, explain_text, formulas and
# receptive_field; these names stay importable from here.
__all__ = ["DATA_LAYER_TYPES", "LayerRow", "ReceptiveField", "Report",
           "TEST", "TRAIN", "Totals", "enum_name", "explain", "explain_net",
           "format_text", "is_conv_like", "is_deconv", "is_inner_product",
           "is_lrn", "is_pooling", "phase_value", "replace_data_layers",
           "window_geometry"]


# -- the report model ---------------------------------------------------------
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
                    "jump": None if r.jump is None else [json_number(j)
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
        return compact_json(self.to_dict())

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
    from ..core.net_state import set_net_state
    phase = phase_value(phase)
    param, source = load_net(prototxt)
    set_net_state(param, phase, level, stages, replace_stages=True)
    notes = replace_data_layers(param, source, shapes or {})
    net = Net.from_param(param, source)
    if weights is not None:
        net.copy_from(weights)
    return explain_net(net, data_notes=notes)


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
    total_params = trainable = 0
    total_macs = 0
    activation_bytes = 0
    counted_buffers = {}         # id -> the array owning a counted memory
    for node in net.graph:
        name, layer = node.name, node.layer
        bottoms, tops = list(node.bottoms), list(node.tops)
        bottom_blobs, top_blobs = list(node.bottom_blobs), list(node.top_blobs)
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
        for param in node.params:
            if param.owner is not None:
                shared.append(f"{param.owner[0]}[{param.owner[1]}]")
            else:
                shared.append(None)
                total_params += param.blob.count
                if _lr_mult(layer.layer_param, param.index) != 0:
                    trainable += param.blob.count
        params = sum(b.count for b in layer.blobs)

        macs = layer_macs(layer, bottom_blobs, top_blobs)
        total_macs += macs
        if not formula:
            formula = layer_formula(name, layer, bottom_blobs, top_blobs)

        # Activation memory: a top sharing a bottom's memory costs nothing.
        # Blobs share whole buffers, so the array that owns a top's memory
        # identifies it: one dictionary lookup per top (comparing with every
        # counted buffer made explain quadratic in the number of layers).
        for blob in top_blobs:
            owner = _memory_owner(blob.data)
            if id(owner) in counted_buffers:
                continue
            counted_buffers[id(owner)] = owner
            activation_bytes += blob.count * itemsize

        rfs, unknown = propagate_rf(layer, bottoms, bottom_blobs, tops,
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


def _memory_owner(array):
    """The array that owns ``array``'s memory (the end of its .base chain)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def _lr_mult(layer_param, j):
    if j < len(layer_param.param):
        return layer_param.param[j].lr_mult
    return 1.0
