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

import numpy as np

from ..core.errors import KaffeConfigError, KaffeShapeError
from .explain import (TEST, enum_name, explain_net, is_conv_like, is_deconv,
                      is_inner_product, is_lrn, is_pooling,
                      replace_data_layers, window_geometry)
from .feature_maps import (draw_maps, forward_and_draw, input_picture,
                           map_plans, plan_maps)
from .graph_layout import (DUMMY_WIDTH, LINE_HEIGHT, MARGIN, NODE_GAP,
                           NODE_WIDTH, RANK_GAP, layout_graph, node_lines)
from .pictures import (block_mean, colour_filters, colour_of, encode_png,
                       filter_grid, palette, quantize, stats_and_histogram,
                       value_of_index, weight_heatmap)
from .report_model import (GAP_COLOUR, GAP_INDEX, GROUP_COLOUR, GROUP_INDEX,
                           LEVELS, NAN_COLOUR, NAN_INDEX, ZERO_INDEX, Budget,
                           Field, FilterGrid, Graph, GraphEdge, GraphNode,
                           GroupSpan, Histogram, InputRun, LayerView, MapView,
                           ParamView, Picture, Preprocess, Stats, TopView,
                           VizReport, Window, fraction_text, paren_shape_text,
                           shape_text)

# The model, pictures, feature maps and graph layout live in report_model,
# pictures, feature_maps and graph_layout; their names stay importable here.
__all__ = ["VizReport", "build_report", "report_from_net", "field_rect",
           "synthetic_image", "Budget", "DUMMY_WIDTH", "Field", "FilterGrid",
           "GAP_COLOUR", "GAP_INDEX", "GROUP_COLOUR", "GROUP_INDEX", "Graph",
           "GraphEdge", "GraphNode", "GroupSpan", "Histogram", "InputRun",
           "LEVELS", "LINE_HEIGHT", "LayerView", "MARGIN", "MapView",
           "NAN_COLOUR", "NAN_INDEX", "NODE_GAP", "NODE_WIDTH", "ParamView",
           "Picture", "Preprocess", "RANK_GAP", "Stats", "TopView", "Window",
           "ZERO_INDEX", "block_mean", "colour_filters", "colour_of",
           "draw_maps", "encode_png", "filter_grid", "fraction_text",
           "input_picture", "layout_graph", "node_lines", "palette",
           "plan_maps", "quantize", "shape_text", "stats_and_histogram",
           "value_of_index", "weight_heatmap"]


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
    from ..core.net_state import set_net_state
    from ..proto.io import load_net
    from .explain import phase_value
    phase = phase_value(phase)
    param, source = load_net(prototxt)
    set_net_state(param, phase, level, stages, replace_stages=True)
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

    plans = map_plans(net, layers, budget, len(runs_inputs))
    runs = []
    for values, label, synthetic, run_notes in runs_inputs:
        run = forward_and_draw(net, values, layers, plans, preprocess,
                               image_input, label, synthetic, run_notes,
                               budget)
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
        shapes = ", ".join(f"{n} {paren_shape_text(net.blobs[n].shape)}"
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


def _summary(layer, kind):
    """The key numbers of a layer in a few characters: '5×5 /2 · 64'."""
    g = layer.geometry
    if is_conv_like(layer):
        text = "×".join(str(v) for v in g.kernel)
        if any(v != 1 for v in g.stride):
            text += " /" + _uniform_text(g.stride)
        if any(g.pad):
            text += " pad " + _uniform_text(g.pad)
        text += f" · {g.num_output}"
        if g.group > 1:
            text += f" · group {g.group}"
        return text
    if is_pooling(layer):
        if g.global_pooling:
            return f"global {g.method}"
        text = f"{g.method} " + "×".join(str(v) for v in g.kernel)
        if any(v != 1 for v in g.stride):
            text += " /" + _uniform_text(g.stride)
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


def _uniform_text(values):
    return str(values[0]) if len(set(values)) == 1 else "×".join(
        str(v) for v in values)


def _layer_views(net, explained, budget, preprocess, image_input):
    views = []
    writer = {}                 # blob -> (layer, top index) that last wrote it
    centres = {}                # blob -> centre of value 0's field (per axis)
    for name in net.inputs:
        writer[name] = None
    for index, (row, node) in enumerate(zip(explained.layers, net.graph)):
        layer, kind = node.layer, row.type
        hidden = node.inserted      # a Split kaffe inserted, not the user's
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
        pad = layer.geometry.pad
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
        g = layer.geometry
        if is_pooling(layer) and g.global_pooling:
            return Window("whole", sources, channels="same")
        pad = tuple(g.pad)
        if is_conv_like(layer):
            channels = net.blobs[row.bottom[0]].shape[g.axis]
            if transposed:
                return Window("window", sources, "group", tuple(k),
                              tuple(s), pad, tuple(d), True,
                              group_channels=channels // g.group,
                              out_per_group=g.num_output // g.group)
            return Window("window", sources,
                          "all" if g.group == 1 else "group", tuple(k),
                          tuple(s), pad, tuple(d), False,
                          group_channels=channels // g.group,
                          out_per_group=g.num_output // g.group)
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
                  and layer.geometry.group == 1 and row.bottom
                  and row.bottom[0] == image_input)
        if colour:
            return colour_filters(weights, preprocess.channel_swap, budget)
        return filter_grid(weights, layer.geometry.group, is_deconv(layer),
                           budget)
    if is_inner_product(layer) and weights.ndim == 2:
        if getattr(layer, "transpose", False):
            weights = weights.T
        return weight_heatmap(weights, budget)
    return None
