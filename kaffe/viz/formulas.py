"""What explain says about a layer: its kind, its MACs, its formula line.

The kind of a layer comes from what it publishes: the geometry of a
sliding-window layer (:mod:`kaffe.ops.geometry`) tells Convolution and
Deconvolution (a ConvGeometry with filters) and Pooling (a PoolGeometry)
apart, whatever their class. The formula lines redo the layer's arithmetic
with its own numbers, and print the real top's size (flagging a
disagreement).
"""
import math

from ..ops.geometry import ConvGeometry, PoolGeometry, pooled_size
from ..proto import caffe_pb2
from .explain_text import dims_text as _dims
from .explain_text import num_text as _num
from .explain_text import shape_text as _shape_text


# -- which kind of layer is it: by what it publishes --------------------------
def is_pooling(layer):
    """A pooling layer: it publishes a PoolGeometry."""
    return isinstance(layer.geometry, PoolGeometry)


def is_conv_like(layer):
    """A layer of filters slid over windows (Convolution, Deconvolution and
    their kin): it publishes a ConvGeometry and has the filters (Im2col
    publishes one too, but has no filters)."""
    return isinstance(layer.geometry, ConvGeometry) and bool(layer.blobs)


def is_deconv(layer):
    """A transposed convolution (Deconvolution)."""
    return is_conv_like(layer) and layer.geometry.deconv


def is_inner_product(layer):
    return layer.type == "InnerProduct" or (
        hasattr(layer, "K") and hasattr(layer, "num_output"))


def is_lrn(layer):
    return hasattr(layer, "norm_region") and hasattr(layer, "alpha")


def enum_name(value, enum):
    """An enum attribute as its name ("MAX"), whether given as str or int."""
    return value if isinstance(value, str) else enum.Name(value)


# -- multiply-accumulates -----------------------------------------------------
def macs(layer, bottoms, tops):
    """Multiply-accumulates of one forward pass (see kaffe.viz.explain)."""
    published = getattr(layer, "macs", None)
    if callable(published):
        # A layer may publish its own count: macs(bottoms, tops).
        return published(bottoms, tops)
    if is_conv_like(layer):
        weights = layer.blobs[0].count
        n_sp = layer.geometry.num_spatial_axes
        total = 0
        for bottom, top in zip(bottoms, tops):
            spatial = bottom.shape if layer.geometry.deconv else top.shape
            outer = math.prod(top.shape[:top.num_axes - n_sp - 1])
            total += outer * weights * math.prod(spatial[len(spatial) - n_sp:])
        return total
    if is_inner_product(layer) and layer.blobs and tops:
        rows = tops[0].count // layer.num_output if layer.num_output else 0
        return rows * layer.blobs[0].count
    return 0


# -- formula lines ------------------------------------------------------------
def formula(name, layer, bottoms, tops):
    """The formula line of one layer ("" when there is nothing to show)."""
    if not bottoms or not tops:
        return ""
    published = getattr(layer, "explain", None)
    if callable(published):
        # A layer may publish its own formula line: explain(bottoms, tops).
        return published(bottoms, tops)
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


def _uniform(values):
    """'2' for (2, 2), '2×1' for (2, 1)."""
    return str(values[0]) if len(set(values)) == 1 else _dims(values)


def _per_axis_lines(names, terms, results):
    """'H_out = … = 8' (plus 'W_out = …' when W's arithmetic differs)."""
    if not names:
        return "no spatial axes"
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
    g = layer.geometry
    n_sp = g.num_spatial_axes
    k, s, p, d = g.kernel, g.stride, g.pad, g.dilation
    channels = bottom.shape[g.axis]
    cg = channels // g.group
    sizes_in = bottom.shape[bottom.num_axes - n_sp:]
    sizes_out = top.shape[top.num_axes - n_sp:]
    text = f"{name}: {g.num_output} filters, each {cg}×{_dims(k)}"
    if cg > 1:
        text += f" (one {_dims(k)} slice per input channel, summed)"
    if g.bias_term:
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
    if g.group > 1:
        text += "; " + _group_text(g.group, g.num_output,
                                   channels, "filters",
                                   "input channels")
    return text


def _deconv_formula(name, layer, bottoms, tops):
    bottom, top = bottoms[0], tops[0]
    g = layer.geometry
    n_sp = g.num_spatial_axes
    k, s, p, d = g.kernel, g.stride, g.pad, g.dilation
    og = g.num_output // g.group
    sizes_in = bottom.shape[bottom.num_axes - n_sp:]
    sizes_out = top.shape[top.num_axes - n_sp:]
    text = (f"{name}: {g.num_output} output channels; every input pixel "
            f"adds its value × its channel's {og}×{_dims(k)} weights (a "
            f"stamp) to the output, stamps {_uniform(s)} apart, overlaps "
            "summed")
    if g.bias_term:
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
    if g.group > 1:
        text += "; " + _group_text(g.group, bottom.shape[g.axis],
                                   g.num_output, "input channels",
                                   "outputs", verb="feed")
    return text


def _pooling_formula(name, layer, bottom, top):
    g = layer.geometry
    method, mode = g.method, g.round_mode
    k, s, p = g.kernel, g.stride, g.pad
    sizes_in = bottom.shape[2:]
    sizes_out = top.shape[2:]
    what = {"MAX": "max", "AVE": "average", "STOCHASTIC": "stochastic pick"}
    if g.global_pooling:
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
    ceil = mode == "CEIL"
    out = pooled_size(size, k, s, p, ceil, clip=any_pad)
    return out, out != pooled_size(size, k, s, p, ceil, clip=False)


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
