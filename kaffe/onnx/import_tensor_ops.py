"""ONNX → Caffe converters for element-wise arithmetic, shape and layout ops
(the vision and neuron ones are in :mod:`.import_ops`)."""
import numpy as np

from ..proto import caffe_pb2
from .import_ops import converts


def _broadcast(big, small):
    """(axis, shape) such that ``small`` broadcast to ``big`` is Caffe's
    Scale/Bias operand of that shape applied from ``axis``; None if the
    broadcast is not of that form."""
    small = (1,) * (len(big) - len(small)) + tuple(small)
    if len(small) != len(big):
        return None
    nontrivial = [i for i, d in enumerate(small) if d != 1]
    if not nontrivial:
        return None
    first, last = nontrivial[0], nontrivial[-1] + 1
    core = small[first:last]
    if tuple(big[first:last]) != core:
        return None
    return first, core


def _reshape_dims(in_shape, out_shape):
    """Caffe reshape dims: 0 (copy) for a kept batch axis, else static."""
    dims = list(out_shape)
    if dims and in_shape and dims[0] == in_shape[0]:
        dims[0] = 0
    return dims


def _reshape_layer(ctx, bottom, top, in_shape, out_shape, suffix=""):
    layer = ctx.layer("Reshape", [bottom], [top], suffix=suffix)
    layer.reshape_param.shape.dim.extend(_reshape_dims(in_shape, out_shape))
    return layer


def _scalar_power(ctx, x, scale=1.0, shift=0.0):
    layer = ctx.layer("Power", [x])
    if scale != 1:
        layer.power_param.scale = scale
    if shift != 0:
        layer.power_param.shift = shift


@converts("Add", "Sub", "Mul", "Div", "Sum")
def arithmetic(ctx):
    op = ctx.op
    if op == "Sum" and len(ctx.inputs) != 2:
        if any(ctx.is_const(i) for i in range(len(ctx.inputs))):
            raise ctx.error("sums constants with tensors")
        shapes = {ctx.in_shape(i) for i in range(len(ctx.inputs))}
        if len(shapes) != 1:
            raise ctx.error("broadcasts; Caffe's Eltwise needs equal shapes")
        ctx.layer("Eltwise", [ctx.bottom(i) for i in range(len(ctx.inputs))])
        return
    if op == "Sum":
        op = "Add"
    a, b = ctx.const(0), ctx.const(1)
    if a is None and b is None:
        _tensor_tensor(ctx, op)
        return
    if a is not None and b is not None:
        raise ctx.error("has only constant inputs")
    const_first = a is not None
    c = (a if const_first else b).astype(np.float64)
    x = ctx.bottom(1 if const_first else 0)
    x_shape = ctx.in_shape(1 if const_first else 0)
    if const_first and op in ("Sub", "Div"):
        if op == "Sub" and c.size == 1:
            _scalar_power(ctx, x, scale=-1.0, shift=float(c.reshape(-1)[0]))
            return
        raise ctx.error(f"computes constant {'−' if op == 'Sub' else '/'} "
                        "tensor; Caffe has no layer for that")
    if op == "Sub":
        op, c = "Add", -c
    if op == "Div":
        op, c = "Mul", 1.0 / c
        ctx.note("division by a constant becomes multiplication by its "
                 "reciprocal (may differ in the last bit)")
    if c.size == 1:
        value = float(c.reshape(-1)[0])
        if op == "Add":
            _scalar_power(ctx, x, shift=value)
        else:
            _scalar_power(ctx, x, scale=value)
        return
    if tuple(ctx.out_shape()) != tuple(x_shape):
        raise ctx.error("broadcasts its tensor input to a larger shape",
                        received=tuple(c.shape))
    found = _broadcast(x_shape, c.shape)
    if found is None:
        raise ctx.error("broadcasts a constant in a way Caffe's Scale/Bias "
                        "cannot (it must match a run of consecutive axes)",
                        received=tuple(c.shape))
    axis, core = found
    blob = c.astype(np.float32).reshape(core)
    if op == "Add":
        layer = ctx.layer("Bias", [x], blobs=[blob])
        layer.bias_param.axis = axis
        layer.bias_param.num_axes = len(core)
    else:
        layer = ctx.layer("Scale", [x], blobs=[blob])
        layer.scale_param.axis = axis
        layer.scale_param.num_axes = len(core)


def _tensor_tensor(ctx, op):
    s0, s1 = ctx.in_shape(0), ctx.in_shape(1)
    if s0 == s1:
        layer = ctx.layer("Eltwise", [ctx.bottom(0), ctx.bottom(1)])
        E = layer.eltwise_param
        if op == "Add":
            E.operation = E.SUM
        elif op == "Sub":
            E.operation = E.SUM
            E.coeff.extend([1.0, -1.0])
        elif op == "Mul":
            E.operation = E.PROD
        else:
            raise ctx.error("divides two tensors; Caffe has no layer for that")
        return
    if op not in ("Add", "Mul"):
        raise ctx.error("broadcasts two tensors with an op Caffe cannot "
                        "broadcast", received=(s0, s1))
    out = ctx.out_shape()
    big = 0 if tuple(s0) == tuple(out) else 1
    if tuple((s0, s1)[big]) != tuple(out):
        raise ctx.error("broadcasts both inputs", received=(s0, s1))
    found = _broadcast(out, (s0, s1)[1 - big])
    if found is None:
        raise ctx.error("broadcasts in a way Caffe's Scale/Bias cannot (the "
                        "smaller input must match consecutive axes)",
                        received=(s0, s1))
    axis, core = found
    small = ctx.bottom(1 - big)
    small_shape = (s0, s1)[1 - big]
    if tuple(small_shape) != tuple(core):
        reshaped = ctx.outputs[0] + "/operand"
        layer = ctx.layer("Reshape", [small], [reshaped], suffix="/operand")
        dims = list(core)
        if axis == 0 and small_shape[0] == core[0]:
            dims[0] = 0
        layer.reshape_param.shape.dim.extend(dims)
        small = reshaped
    layer = ctx.layer("Scale" if op == "Mul" else "Bias",
                      [ctx.bottom(big), small])
    param = layer.scale_param if op == "Mul" else layer.bias_param
    param.axis = axis
    param.num_axes = len(core)


@converts("Concat")
def concat(ctx):
    rank = len(ctx.out_shape())
    bottoms = [ctx.bottom(i) for i in range(len(ctx.inputs))]
    if any(ctx.is_const(i) for i in range(len(ctx.inputs))):
        raise ctx.error("concatenates a constant; Caffe concatenates blobs")
    layer = ctx.layer("Concat", bottoms)
    layer.concat_param.axis = ctx.attr("axis") % rank


@converts("Flatten")
def flatten(ctx):
    shape = ctx.in_shape()
    axis = ctx.attr("axis", 1) % max(len(shape), 1)
    if axis == 1:
        ctx.layer("Flatten", [ctx.bottom()])
        return
    _reshape_layer(ctx, ctx.bottom(), ctx.outputs[0], shape, ctx.out_shape())


@converts("Reshape", "Squeeze", "Unsqueeze")
def reshape(ctx):
    _reshape_layer(ctx, ctx.bottom(), ctx.outputs[0], ctx.in_shape(),
                   ctx.out_shape())


@converts("Identity", "Dropout")
def identity(ctx):
    if ctx.op == "Dropout" and len(ctx.outputs) > 1 and ctx.outputs[1]:
        raise ctx.error("outputs its mask; Caffe's Dropout does not")
    ctx.alias(ctx.outputs[0], ctx.bottom())


@converts("Cast")
def cast(ctx):
    if ctx.attr("to") != 1:
        raise ctx.error("casts to a type other than float; Caffe blobs are "
                        "float", "to", ctx.attr("to"))
    ctx.alias(ctx.outputs[0], ctx.bottom())


@converts("Transpose")
def transpose(ctx):
    from ..core.registry import layer_type_list
    if "Permute" not in layer_type_list():
        raise ctx.error("transposes; this kaffe has no Permute layer")
    rank = len(ctx.in_shape())
    order = list(ctx.attr("perm", list(range(rank))[::-1]))
    layer = ctx.layer("Permute", [ctx.bottom()])
    layer.permute_param.order.extend(order)


@converts("Softmax")
def softmax(ctx):
    rank = len(ctx.in_shape())
    if ctx.importer.opset >= 13:
        axis = ctx.attr("axis", -1) % rank
    else:
        axis = ctx.attr("axis", 1) % rank
        if axis != rank - 1:
            raise ctx.error("(opset < 13) normalises over every axis from "
                            "its axis on; Caffe's Softmax over one axis "
                            "equals that only on the last axis", "axis", axis)
    layer = ctx.layer("Softmax", [ctx.bottom()])
    layer.softmax_param.axis = axis


@converts("LRN")
def lrn(ctx):
    size = ctx.attr("size")
    if size % 2 == 0:
        raise ctx.error("has an even size; Caffe's LRN needs an odd one",
                        "size", size)
    layer = ctx.layer("LRN", [ctx.bottom()])
    p = layer.lrn_param
    p.local_size = size
    p.alpha = ctx.attr("alpha", 1e-4)
    p.beta = ctx.attr("beta", 0.75)
    p.k = ctx.attr("bias", 1.0)


# Nearest-neighbour coordinate rules that repeat every input pixel f times
# for an integer factor f (no input position lands on a rounding tie).
_NEAREST_EXACT = {"asymmetric": ("floor",),
                  "half_pixel": ("round_prefer_floor", "round_prefer_ceil"),
                  "pytorch_half_pixel": ("round_prefer_floor",
                                         "round_prefer_ceil"),
                  "tf_half_pixel_for_nn": ("round_prefer_floor",
                                           "round_prefer_ceil")}


@converts("Resize", "Upsample")
def resize(ctx):
    shape, out = ctx.in_shape(), ctx.out_shape()
    if len(shape) != 4 or tuple(shape[:2]) != tuple(out[:2]):
        raise ctx.error("resizes other than the spatial axes of a 4-D input",
                        received=(shape, out))
    mode = ctx.attr("mode", "nearest")
    transform = ctx.attr("coordinate_transformation_mode", "half_pixel")
    if mode == "linear" and transform == "align_corners" and \
            ctx.op == "Resize":
        _interp(ctx, out)
        return
    if mode != "nearest":
        raise ctx.error(f"'{mode}' with {transform} coordinates has no Caffe "
                        "layer (Caffe and its forks resize nearest by an "
                        "integer factor, or bilinear with aligned corners "
                        "as Interp)", "mode")
    factors = [o // i for o, i in zip(out[2:], shape[2:])]
    if any(o != f * i for o, f, i in zip(out[2:], factors, shape[2:])):
        raise ctx.error("resizes by a non-integer factor", received=out)
    if ctx.op == "Resize":
        rounding = ctx.attr("nearest_mode", "round_prefer_floor")
        if rounding not in _NEAREST_EXACT.get(transform, ()):
            raise ctx.error("picks source pixels in a way that is not a "
                            "plain repeat", "coordinate_transformation_mode",
                            f"{transform}/{rounding}")
    channels = shape[1]
    weight = np.ones((channels, 1) + tuple(factors), np.float32)
    layer = ctx.layer("Deconvolution", [ctx.bottom()], blobs=[weight])
    p = layer.convolution_param
    p.num_output = channels
    p.group = channels
    p.bias_term = False
    p.kernel_size.extend(factors)
    p.stride.extend(factors)
    ctx.note(f"nearest upsampling ×{factors} written as a depthwise "
             "Deconvolution with unit weights")


@converts("Pad")
def pad(ctx):
    mode = ctx.attr("mode", "constant")
    if ctx.importer.opset >= 11:
        pads = ctx.needs_const(1, "pads").tolist()
        value = ctx.const(2)
        value = 0.0 if value is None else float(value.reshape(-1)[0])
        if len(ctx.inputs) > 3 and ctx.inputs[3]:
            raise ctx.error("pads selected axes; only all-axis pads are read",
                            "axes")
    else:
        pads = list(ctx.attr("pads"))
        value = ctx.attr("value", 0.0)
    rank = len(ctx.in_shape())
    if mode != "constant" or value != 0 or rank != 4 or any(
            pads[i] or pads[i + rank] for i in range(2)):
        raise ctx.error("is not a zero pad of the spatial axes; Caffe has no "
                        "padding layer", "pads", tuple(pads))
    spatial = pads[2:4] + pads[6:8]
    ctx.importer.pending_pad[ctx.outputs[0]] = (ctx.bottom(), spatial,
                                                ctx.node)


@converts("Pow")
def pow_(ctx):
    exponent = ctx.const(1)
    if exponent is None or exponent.size != 1 or ctx.is_const(0):
        raise ctx.error("raises to a non-constant or non-scalar power; "
                        "Caffe's Power takes one constant exponent")
    layer = ctx.layer("Power", [ctx.bottom()])
    layer.power_param.power = float(exponent.reshape(-1)[0])


@converts("Split")
def split(ctx):
    shape = ctx.in_shape()
    axis = ctx.attr("axis", 0) % len(shape)
    sizes = [ctx.shape(out)[axis] for out in ctx.outputs]
    layer = ctx.layer("Slice", [ctx.bottom()])
    layer.slice_param.axis = axis
    layer.slice_param.slice_point.extend(np.cumsum(sizes)[:-1].tolist())


def _interp(ctx, out):
    from ..core.registry import layer_type_list
    if "Interp" not in layer_type_list():
        raise ctx.error("resizes bilinearly; this kaffe has no Interp layer")
    if ctx.attr("antialias", 0) or ctx.attr("keep_aspect_ratio_policy",
                                            "stretch") != "stretch":
        raise ctx.error("antialiases or keeps the aspect ratio; Interp "
                        "does neither")
    layer = ctx.layer("Interp", [ctx.bottom()])
    layer.interp_param.height, layer.interp_param.width = out[2], out[3]


@converts("MaxRoiPool")
def max_roi_pool(ctx):
    from ..core.registry import layer_type_list
    if "ROIPooling" not in layer_type_list():
        raise ctx.error("this kaffe has no ROIPooling layer")
    layer = ctx.layer("ROIPooling", [ctx.bottom(0), ctx.bottom(1)])
    p = layer.roi_pooling_param
    p.pooled_h, p.pooled_w = ctx.attr("pooled_shape")
    p.spatial_scale = ctx.attr("spatial_scale", 1.0)


@converts("Slice")
def slice_(ctx):
    """A step-1 Slice as one Caffe Slice per cut axis: the kept piece goes
    on, the pieces cut off go to a Silence layer."""
    shape = ctx.in_shape()
    if ctx.importer.opset < 10:         # attributes until opset 10
        starts, ends = list(ctx.attr("starts")), list(ctx.attr("ends"))
        axes = list(ctx.attr("axes", range(len(starts))))
        steps = []
    else:
        starts = ctx.needs_const(1, "starts").tolist()
        ends = ctx.needs_const(2, "ends").tolist()
        axes = (ctx.const(3).tolist() if ctx.const(3) is not None
                else list(range(len(starts))))
        steps = ctx.const(4).tolist() if ctx.const(4) is not None else []
    if any(step != 1 for step in steps):
        raise ctx.error("slices with a step other than 1; Caffe's Slice cuts "
                        "contiguous pieces", "steps", tuple(steps))
    cuts = []
    for start, end, axis in zip(starts, ends, axes):
        axis %= len(shape)
        dim = shape[axis]
        start = min(max(start + dim if start < 0 else start, 0), dim)
        end = min(max(end + dim if end < 0 else end, 0), dim)
        if (start, end) != (0, dim):
            cuts.append((axis, start, end))
    if not cuts:
        ctx.alias(ctx.outputs[0], ctx.bottom())
        return
    if any(end <= start for _, start, end in cuts):
        raise ctx.error("produces an empty blob", received=tuple(cuts))
    current = ctx.bottom()
    discarded = []
    for i, (axis, start, end) in enumerate(cuts):
        last = i == len(cuts) - 1
        kept = ctx.outputs[0] if last else f"{ctx.outputs[0]}/axis{axis}"
        points = [p for p in (start, end) if 0 < p < shape[axis]]
        tops = []
        for piece, (lo, hi) in enumerate(zip([0] + points,
                                             points + [shape[axis]])):
            if (lo, hi) == (start, end):
                tops.append(kept)
            else:
                tops.append(f"{ctx.outputs[0]}/axis{axis}_cut{piece}")
                discarded.append(tops[-1])
        layer = ctx.layer("Slice", [current], tops, suffix=f"/axis{axis}")
        layer.slice_param.axis = axis
        layer.slice_param.slice_point.extend(points)
        current = kept
    ctx.layer("Silence", discarded, [], suffix="/cut_off")


@converts("ArgMax")
def argmax(ctx):
    """Caffe's ArgMax along an axis (indices written as floats)."""
    shape = ctx.in_shape()
    axis = ctx.attr("axis", 0) % len(shape)
    if not ctx.attr("select_last_index", 0):
        ctx.note("exact ties go to the larger index in Caffe's ArgMax, to "
                 "the smaller one in this model")
    keep = ctx.attr("keepdims", 1)
    top = ctx.outputs[0] if keep else ctx.outputs[0] + "/kept"
    layer = ctx.layer("ArgMax", [ctx.bottom()], [top])
    layer.argmax_param.axis = axis
    if not keep:
        kept_shape = tuple(1 if a == axis else d for a, d in enumerate(shape))
        _reshape_layer(ctx, top, ctx.outputs[0], kept_shape, ctx.out_shape(),
                       suffix="/squeeze")


@converts("Neg", "Sqrt", "Reciprocal")
def power_form(ctx):
    """Unary ops that are Caffe's Power (shift + scale·x)^power."""
    layer = ctx.layer("Power", [ctx.bottom()])
    p = layer.power_param
    if ctx.op == "Neg":
        p.scale = -1.0
    else:
        p.power = 0.5 if ctx.op == "Sqrt" else -1.0


@converts("HardSigmoid", "HardSwish")
def hard_sigmoid(ctx):
    """clip(alpha·x + beta, 0, 1) as Power + Clip; HardSwish multiplies x
    by it (alpha 1/6, beta 1/2)."""
    alpha = ctx.attr("alpha", 0.2 if ctx.op == "HardSigmoid" else 1 / 6)
    beta = ctx.attr("beta", 0.5)
    x = ctx.bottom()
    gate = ctx.outputs[0] if ctx.op == "HardSigmoid" else \
        ctx.outputs[0] + "/gate"
    linear = ctx.layer("Power", [x], [gate], suffix="/linear")
    linear.power_param.scale = alpha
    linear.power_param.shift = beta
    clip = ctx.layer("Clip", [gate], [gate], suffix="/clip")
    clip.clip_param.min, clip.clip_param.max = 0.0, 1.0
    if ctx.op == "HardSwish":
        ctx.layer("Eltwise", [x, gate], suffix="/product").eltwise_param \
            .operation = caffe_pb2.EltwiseParameter.PROD


@converts("Max")
def maximum(ctx):
    shapes = {ctx.in_shape(i) for i in range(len(ctx.inputs))}
    if len(shapes) != 1 or any(ctx.is_const(i)
                               for i in range(len(ctx.inputs))):
        raise ctx.error("takes the maximum of constants or of broadcast "
                        "inputs; Caffe's Eltwise MAX needs equal blobs")
    layer = ctx.layer("Eltwise", [ctx.bottom(i)
                                  for i in range(len(ctx.inputs))])
    layer.eltwise_param.operation = caffe_pb2.EltwiseParameter.MAX
