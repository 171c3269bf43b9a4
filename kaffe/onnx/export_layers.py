"""ONNX converters for Caffe's standard layers.

Each converter takes a :class:`~.export.LayerContext` and returns the ONNX
value of each top (a bottom's value for identities such as Dropout and
Split). Caffe's arithmetic is kept exactly: where ONNX's operator differs
(pooling sizes, average-pooling divisors, LRN within a channel, BatchNorm's
stored scale factor) the converter writes the explicit pads or the small
decomposition that computes what Caffe computes.
"""
import numpy as np

from ..proto import caffe_pb2

CONVERTERS = {}
_FLT_MAX = float(np.finfo(np.float32).max)


def converts(*types):
    def register(fn):
        for t in types:
            CONVERTERS[t] = fn
        return fn
    return register


def _broadcast_shape(shape, axis, ndim):
    """``shape`` (dims starting at ``axis``) padded with trailing 1s so that
    ONNX's right-aligned broadcasting applies it from ``axis`` on."""
    return tuple(shape) + (1,) * (ndim - axis - len(shape))


# -- identities ---------------------------------------------------------------
@converts("Split")
def split(ctx):
    return [ctx.inputs[0]] * len(ctx.top_shapes)


@converts("Dropout")
def dropout(ctx):
    ctx.notes.append(f"layer '{ctx.name}' (Dropout): the identity at "
                     "inference, no node written")
    return [ctx.inputs[0]]


@converts("Silence")
def silence(ctx):
    return []


# -- vision -------------------------------------------------------------------
def _conv_geometry(ctx):
    geometry = ctx.node.geometry
    if geometry.axis != 1:
        raise ctx.error("ONNX convolutions take channels on axis 1",
                        field="convolution_param.axis",
                        received=geometry.axis)
    return geometry


@converts("Convolution")
def convolution(ctx):
    return _conv_node(ctx, "Conv")


@converts("Deconvolution")
def deconvolution(ctx):
    return _conv_node(ctx, "ConvTranspose")


def _conv_node(ctx, op_type):
    """Conv or ConvTranspose from the layer's published geometry (Caffe's
    symmetric pads on both ends of each axis)."""
    g = _conv_geometry(ctx)
    inputs = [ctx.inputs[0], ctx.graph.const(ctx.weights(0),
                                             ctx.hint("weight"))]
    if g.bias_term:
        inputs.append(ctx.graph.const(ctx.weights(1), ctx.hint("bias")))
    return ctx.graph.op(
        op_type, inputs, ctx.name, out=ctx.out(),
        kernel_shape=list(g.kernel), strides=list(g.stride),
        pads=list(g.pad) * 2, dilations=list(g.dilation), group=g.group)


def pool_end_pads(size, kernel, stride, pad, out):
    """The end pad per axis that makes ONNX's floor-mode pooling give Caffe's
    ``out`` windows (ceil rounding and the clip rule included).

    Window i starts at i·stride − pad in both; ONNX yields
    floor((size + pad + end − kernel) / stride) + 1 windows, so any end in
    [need, need + stride − 1] works with need = (out − 1)·stride + kernel −
    size − pad; the smallest non-negative one is taken.
    """
    ends = []
    for n, k, s, p, o in zip(size, kernel, stride, pad, out):
        need = (o - 1) * s + k - n - p
        ends.append(max(need, 0))
    return ends


@converts("Pooling")
def pooling(ctx):
    g = ctx.node.geometry
    x = ctx.inputs[0]
    if len(ctx.bottom_shapes[0]) != 4:
        raise ctx.error("Caffe pools 4-D blobs only",
                        received=ctx.bottom_shapes[0])
    if g.global_pooling:
        op = {"MAX": "GlobalMaxPool", "AVE": "GlobalAveragePool"}.get(g.method)
        if op is None:
            return _stochastic_test(ctx, x, g, ctx.bottom_shapes[0][2:],
                                    ctx.top_shapes[0][2:])
        return ctx.graph.op(op, [x], ctx.name, out=ctx.out())
    size = ctx.bottom_shapes[0][2:]
    out = ctx.top_shapes[0][2:]
    if g.method == "MAX" and len(ctx.top_shapes) == 2:
        ends = pool_end_pads(size, g.kernel, g.stride, g.pad, out)
        kernel, stride = list(g.kernel), list(g.stride)
        # The argmax top: Caffe's index h·W + w within the channel, as a
        # float; ONNX's runs over the whole (N, C, H, W) input.
        values, flat = ctx.graph.op(
            "MaxPool", [x], ctx.name, out=[ctx.out(0), ctx.graph.fresh(
                ctx.hint("flat_index"))], outputs=2, kernel_shape=kernel,
            strides=stride, pads=list(g.pad) + ends)
        within = ctx.graph.op("Mod", [flat, ctx.graph.ints(
            [size[0] * size[1]], ctx.hint("plane"))], ctx.hint("index"))
        return [values, ctx.graph.op("Cast", [within], ctx.hint("mask"),
                                     out=ctx.out(1), to=1)]
    if g.method == "STOCHASTIC":
        return _stochastic_test(ctx, x, g, size, out)
    return _pool_windows(ctx, x, g, size, out, ctx.name, ctx.out())


def _pool_windows(ctx, x, g, size, out, hint, out_name=None):
    """MAX or AVE pooling with geometry ``g`` giving Caffe's ``out`` size."""
    ends = pool_end_pads(size, g.kernel, g.stride, g.pad, out)
    kernel, stride = list(g.kernel), list(g.stride)
    empty = any(e >= k for e, k in zip(ends, kernel))
    if g.method == "MAX" and empty:
        # Caffe's last window lies wholly past an unpadded input and gives
        # -FLT_MAX; ONNX pads must be shorter than the kernel, so those
        # cells are written out as -FLT_MAX.
        pads = [0, 0, 0, 0, 0, 0] + ends
        x = ctx.graph.op("Pad", [x, ctx.graph.ints(pads, ctx.hint("pads")),
                                 ctx.graph.const(-_FLT_MAX, ctx.hint("low"))],
                         hint + "/pad", mode="constant")
        ends = [0, 0]
    elif empty:
        raise ctx.error("its last window lies wholly past the input (Caffe "
                        "divides by a zero window size there, giving NaN)",
                        field="pooling_param.stride", received=tuple(stride),
                        fix="use a stride no larger than the kernel, or "
                            "padding")
    if g.method == "MAX":
        # MaxPool ignores padding as Caffe does.
        return ctx.graph.op("MaxPool", [x], hint, out=out_name,
                            kernel_shape=kernel, strides=stride,
                            pads=list(g.pad) + ends)
    # Caffe divides by the window clipped to the padded input [-pad,
    # size + pad): padding counts, a ceil-mode overhang past it does not.
    if all(e <= p for e, p in zip(ends, g.pad)):
        # No window reaches past size + pad: count_include_pad is exact.
        return ctx.graph.op("AveragePool", [x], hint, out=out_name,
                            kernel_shape=kernel, strides=stride,
                            pads=list(g.pad) + ends, count_include_pad=1)
    # Zero-pad explicitly (those zeros count), then let the overhang be ONNX
    # padding that does not count.
    pads = [0, 0] + list(g.pad) + [0, 0] + list(g.pad)
    padded = ctx.graph.op(
        "Pad", [x, ctx.graph.ints(pads, ctx.hint("pads"))],
        hint + "/pad", mode="constant")
    overhang = [max(e - p, 0) for e, p in zip(ends, g.pad)]
    return ctx.graph.op("AveragePool", [padded], hint, out=out_name,
                        kernel_shape=kernel, strides=stride,
                        pads=[0, 0] + overhang, count_include_pad=0)


@converts("SPP")
def spp(ctx):
    """Spatial pyramid pooling: each level's Pooling (the geometries the
    layer publishes), flattened and concatenated in level order; one level
    is the bare Pooling output."""
    levels = ctx.node.layer.level_geometries
    size = ctx.bottom_shapes[0][2:]
    if levels[0].method == "STOCHASTIC":
        raise ctx.error("its STOCHASTIC levels sample at random (Caffe builds "
                        "them in the TRAIN phase)", field="spp_param.pool")
    if len(levels) == 1:
        g = levels[0]
        return _pool_windows(ctx, ctx.inputs[0], g, size,
                             g.output_spatial(size), ctx.name, ctx.out())
    flat = []
    for i, g in enumerate(levels):
        pooled = _pool_windows(ctx, ctx.inputs[0], g, size,
                               g.output_spatial(size), ctx.hint(f"level{i}"))
        flat.append(ctx.graph.op("Flatten", [pooled],
                                 ctx.hint(f"level{i}_flat"), axis=1))
    return ctx.graph.op("Concat", flat, ctx.name, out=ctx.out(), axis=1)


def _stochastic_test(ctx, x, g, size, out):
    """STOCHASTIC pooling at test time: Σx² / Σx over each window. Caffe's
    windows start at i·stride without padding and are clipped to the
    input, so both sums are averages over the same clipped cells."""
    if ctx.phase != "TEST":
        raise ctx.error("STOCHASTIC pooling samples at random while "
                        "training", field="pooling_param.pool",
                        received=g.method, fix="export the TEST phase")
    ends = pool_end_pads(size, g.kernel, g.stride, (0, 0), out)
    if any(e >= k for e, k in zip(ends, g.kernel)):
        raise ctx.error("its last window lies wholly past the input (Caffe "
                        "divides 0 by 0 there)", field="pooling_param.stride",
                        received=tuple(g.stride))
    graph = ctx.graph
    attrs = dict(kernel_shape=list(g.kernel), strides=list(g.stride),
                 pads=[0, 0] + ends, count_include_pad=0)
    square = graph.op("Mul", [x, x], ctx.hint("square"))
    squares = graph.op("AveragePool", [square], ctx.hint("squares"), **attrs)
    values = graph.op("AveragePool", [x], ctx.hint("values"), **attrs)
    return graph.op("Div", [squares, values], ctx.name, out=ctx.out())


@converts("LRN")
def lrn(ctx):
    p = ctx.param.lrn_param
    x = ctx.inputs[0]
    if p.norm_region == caffe_pb2.LRNParameter.ACROSS_CHANNELS:
        # ONNX's LRN is Caffe's: k + alpha/size · Σ x² over the same window.
        return ctx.graph.op("LRN", [x], ctx.name, out=ctx.out(),
                            size=p.local_size, alpha=p.alpha, beta=p.beta,
                            bias=p.k)
    # WITHIN_CHANNEL: scale = 1 + alpha · AVE_POOL(x², size, pad (size-1)/2)
    # (Caffe's k is not used here), y = x · scale^-beta. With stride 1 and
    # that pad every window counts size² cells, padding included.
    pad = (p.local_size - 1) // 2
    g = ctx.graph
    square = g.op("Mul", [x, x], ctx.hint("square"))
    mean = g.op("AveragePool", [square], ctx.hint("mean"),
                kernel_shape=[p.local_size] * 2, strides=[1, 1],
                pads=[pad] * 4, count_include_pad=1)
    scaled = g.op("Mul", [mean, g.const(p.alpha, ctx.hint("alpha"))],
                  ctx.hint("scaled"))
    shifted = g.op("Add", [scaled, g.const(1.0, ctx.hint("one"))],
                   ctx.hint("scale"))
    factor = g.op("Pow", [shifted, g.const(-p.beta, ctx.hint("beta"))],
                  ctx.hint("factor"))
    return g.op("Mul", [x, factor], ctx.name, out=ctx.out())


# -- common -------------------------------------------------------------------
@converts("InnerProduct")
def inner_product(ctx):
    p = ctx.param.inner_product_param
    shape = ctx.bottom_shapes[0]
    axis = p.axis % len(shape)
    g = ctx.graph
    x = ctx.inputs[0]
    if axis != 1 or len(shape) != 2:
        x = g.op("Flatten", [x], ctx.hint("flatten"), axis=axis)
    weight = g.const(ctx.weights(0), ctx.hint("weight"))
    inputs = [x, weight]
    if p.bias_term:
        inputs.append(g.const(ctx.weights(1), ctx.hint("bias")))
    # Caffe's weight is (num_output, K), or (K, num_output) with transpose.
    final = axis == 1
    y = g.op("Gemm", inputs, ctx.name, out=ctx.out() if final else None,
             transB=0 if p.transpose else 1)
    if final:
        return y
    if not ctx.dynamic_batch:
        return ctx.reshape(y, ctx.top_shapes[0], out=ctx.out())
    # (d0 … d{axis-1}) from the input at run time, then num_output.
    lead = g.op("Shape", [ctx.inputs[0]], ctx.hint("shape"), end=axis)
    target = g.op("Concat", [lead, g.ints([p.num_output],
                                          ctx.hint("num_output"))],
                  ctx.hint("target"), axis=0)
    return g.op("Reshape", [y, target], ctx.hint("reshape"), out=ctx.out())


@converts("Reshape", "Flatten")
def reshape(ctx):
    shape, out_shape = ctx.bottom_shapes[0], ctx.top_shapes[0]
    if ctx.type == "Flatten" and len(out_shape) == 2 and len(shape) >= 2 \
            and out_shape[0] == shape[0]:
        return ctx.graph.op("Flatten", [ctx.inputs[0]], ctx.name,
                            out=ctx.out(), axis=1)
    return ctx.reshape(ctx.inputs[0], out_shape, out=ctx.out())


@converts("Concat")
def concat(ctx):
    p = ctx.param.concat_param
    axis = p.concat_dim if p.HasField("concat_dim") else p.axis
    axis %= len(ctx.bottom_shapes[0])
    if len(ctx.inputs) == 1:
        return ctx.graph.op("Identity", ctx.inputs, ctx.name, out=ctx.out())
    return ctx.graph.op("Concat", ctx.inputs, ctx.name, out=ctx.out(),
                        axis=axis)


@converts("Slice")
def slice_(ctx):
    p = ctx.param.slice_param
    shape = ctx.bottom_shapes[0]
    axis = p.slice_dim if p.HasField("slice_dim") else p.axis
    axis %= len(shape)
    sizes = [s[axis] for s in ctx.top_shapes]
    outs = [ctx.out(i) for i in range(len(sizes))]
    if len(sizes) == 1:
        return [ctx.graph.op("Identity", ctx.inputs, ctx.name, out=outs[0])]
    return ctx.graph.op(
        "Split", [ctx.inputs[0], ctx.graph.ints(sizes, ctx.hint("split"))],
        ctx.name, out=outs, outputs=len(outs), axis=axis)


@converts("Crop")
def crop(ctx):
    p = ctx.param.crop_param
    shape, ref = ctx.bottom_shapes
    axis = p.axis % len(shape)
    axes = list(range(axis, len(shape)))
    offsets = list(p.offset) or [0]
    if len(offsets) == 1:
        offsets = offsets * len(axes)
    starts = offsets
    ends = [o + ref[a] for o, a in zip(offsets, axes)]
    g = ctx.graph
    return g.op("Slice", [ctx.inputs[0], g.ints(starts, ctx.hint("starts")),
                          g.ints(ends, ctx.hint("ends")),
                          g.ints(axes, ctx.hint("axes"))],
                ctx.name, out=ctx.out())


@converts("Eltwise")
def eltwise(ctx):
    p = ctx.param.eltwise_param
    g = ctx.graph
    op = p.operation
    xs = list(ctx.inputs)
    E = caffe_pb2.EltwiseParameter
    if op == E.SUM and len(p.coeff):
        if len(p.coeff) != len(xs):
            raise ctx.error("needs one coeff per bottom",
                            field="eltwise_param.coeff",
                            received=len(p.coeff))
        xs = [x if c == 1 else g.op("Mul", [x, g.const(
            c, ctx.hint(f"coeff{i}"))], ctx.hint(f"scaled{i}"))
            for i, (x, c) in enumerate(zip(xs, p.coeff))]
    onnx_op = {E.SUM: "Add", E.PROD: "Mul", E.MAX: "Max"}[op]
    if onnx_op == "Max":
        return g.op("Max", xs, ctx.name, out=ctx.out())
    # Caffe accumulates left to right: ((x0 + x1) + x2) …
    acc = xs[0]
    for i, x in enumerate(xs[1:], 1):
        last = i == len(xs) - 1
        acc = g.op(onnx_op, [acc, x], ctx.name,
                   out=ctx.out() if last else None)
    if len(xs) == 1:
        acc = g.op("Identity", [acc], ctx.name, out=ctx.out())
    return acc


def _scale_shape(ctx, field, param_shape):
    """(axis, broadcast shape) of Scale/Bias's second operand."""
    p = getattr(ctx.param, field)
    shape = ctx.bottom_shapes[0]
    axis = p.axis % len(shape) if len(shape) else 0
    return axis, _broadcast_shape(param_shape, axis, len(shape))


def _operand(ctx, field, blob_index):
    """Scale/Bias's second operand: its param blob or bottom[1], reshaped
    to broadcast from the layer's axis."""
    if len(ctx.inputs) > 1:
        axis, shape = _scale_shape(ctx, field, ctx.bottom_shapes[1])
        if shape == ctx.bottom_shapes[1]:
            return ctx.inputs[1]
        return ctx.reshape(ctx.inputs[1], shape, like=ctx.bottom_shapes[1])
    w = ctx.weights(blob_index)
    axis, shape = _scale_shape(ctx, field, w.shape)
    return ctx.graph.const(w.reshape(shape), ctx.hint(field.split("_")[0]))


@converts("Scale")
def scale(ctx):
    p = ctx.param.scale_param
    g = ctx.graph
    factor = _operand(ctx, "scale_param", 0)
    if not p.bias_term:
        return g.op("Mul", [ctx.inputs[0], factor], ctx.name, out=ctx.out())
    y = g.op("Mul", [ctx.inputs[0], factor], ctx.hint("mul"))
    bias_index = 1 if len(ctx.inputs) == 1 else 0
    b = ctx.weights(bias_index)
    axis, shape = _scale_shape(ctx, "scale_param", b.shape)
    bias = g.const(b.reshape(shape), ctx.hint("bias"))
    return g.op("Add", [y, bias], ctx.name, out=ctx.out())


@converts("Bias")
def bias(ctx):
    b = _operand(ctx, "bias_param", 0)
    return ctx.graph.op("Add", [ctx.inputs[0], b], ctx.name, out=ctx.out())


@converts("Softmax")
def softmax(ctx):
    axis = ctx.param.softmax_param.axis % len(ctx.bottom_shapes[0])
    return ctx.graph.op("Softmax", ctx.inputs, ctx.name, out=ctx.out(),
                        axis=axis)


@converts("Reduction")
def reduction(ctx):
    p = ctx.param.reduction_param
    shape = ctx.bottom_shapes[0]
    axis = p.axis % len(shape) if shape else 0
    axes = list(range(axis, len(shape)))
    R = caffe_pb2.ReductionParameter
    op = {R.SUM: "ReduceSum", R.ASUM: "ReduceL1", R.SUMSQ: "ReduceSumSquare",
          R.MEAN: "ReduceMean"}[p.operation]
    g = ctx.graph
    if p.coeff == 1:
        return g.reduce(op, ctx.inputs[0], axes, ctx.name, out=ctx.out(),
                        keepdims=0)
    reduced = g.reduce(op, ctx.inputs[0], axes, ctx.hint("reduce"),
                       keepdims=0)
    return g.op("Mul", [reduced, g.const(p.coeff, ctx.hint("coeff"))],
                ctx.name, out=ctx.out())


@converts("ArgMax")
def argmax(ctx):
    p = ctx.param.argmax_param
    g = ctx.graph
    shape, out_shape = ctx.bottom_shapes[0], ctx.top_shapes[0]
    x = ctx.inputs[0]
    if p.HasField("axis"):
        axis = p.axis % len(shape)
    else:
        x = g.op("Flatten", [x], ctx.hint("flatten"), axis=1)
        axis = 1
    # Caffe ranks ties by the larger index first: for k = 1 that is ONNX's
    # select_last_index; TopK breaks ties the other way.
    if p.top_k == 1:
        idx = g.op("ArgMax", [x], ctx.hint("argmax"), axis=axis, keepdims=1,
                   select_last_index=1)
        values = g.reduce("ReduceMax", x, [axis], ctx.hint("max")) \
            if p.out_max_val else None
    else:
        values, idx = g.op("TopK", [x, g.ints([p.top_k], ctx.hint("k"))],
                           ctx.hint("topk"), outputs=2, axis=axis,
                           largest=1, sorted=1)
    idx = g.op("Cast", [idx], ctx.hint("index"), to=1)
    if p.HasField("axis"):
        return g.op("Identity", [values if p.out_max_val else idx],
                    ctx.name, out=ctx.out())
    parts = [idx, values] if p.out_max_val else [idx]
    if p.out_max_val:
        both = g.op("Concat", parts, ctx.hint("both"), axis=1)
        return ctx.reshape(both, out_shape, out=ctx.out())
    return ctx.reshape(idx, out_shape, out=ctx.out())


@converts("Tile")
def tile(ctx):
    p = ctx.param.tile_param
    shape = ctx.bottom_shapes[0]
    repeats = [1] * len(shape)
    repeats[p.axis % len(shape)] = p.tiles
    return ctx.graph.op("Tile", [ctx.inputs[0], ctx.graph.ints(
        repeats, ctx.hint("repeats"))], ctx.name, out=ctx.out())


@converts("Embed")
def embed(ctx):
    p = ctx.param.embed_param
    g = ctx.graph
    index = g.op("Cast", ctx.inputs, ctx.hint("index"), to=7)
    table = g.const(ctx.weights(0), ctx.hint("weight"))
    if not p.bias_term:
        return g.op("Gather", [table, index], ctx.name, out=ctx.out(), axis=0)
    rows = g.op("Gather", [table, index], ctx.hint("rows"), axis=0)
    return g.op("Add", [rows, g.const(ctx.weights(1), ctx.hint("bias"))],
                ctx.name, out=ctx.out())


# -- normalisation ------------------------------------------------------------
@converts("BatchNorm")
def batch_norm(ctx):
    p = ctx.param.batch_norm_param
    g = ctx.graph
    shape = ctx.bottom_shapes[0]
    # Caffe's default: the stored statistics in TEST, the batch's in TRAIN.
    use_global = (p.use_global_stats if p.HasField("use_global_stats")
                  else ctx.phase == "TEST")
    channels = shape[1] if len(shape) > 1 else 1
    if use_global:
        # Caffe stores running sums and their scale factor: mean = blob0 /
        # blob2[0] (0 when the factor is 0), the same for the variance.
        factor = float(ctx.weights(2).reshape(-1)[0])
        inv = 0.0 if factor == 0 else np.float32(1.0) / np.float32(factor)
        mean = ctx.weights(0) * np.float32(inv)
        var = ctx.weights(1) * np.float32(inv)
        return g.op("BatchNormalization", [
            ctx.inputs[0], g.const(np.ones(channels), ctx.hint("gamma")),
            g.const(np.zeros(channels), ctx.hint("beta")),
            g.const(mean, ctx.hint("mean")), g.const(var, ctx.hint("var"))],
            ctx.name, out=ctx.out(), epsilon=p.eps)
    # Batch statistics (use_global_stats: false): per channel over every
    # other axis, biased variance, (x - mean) / sqrt(var + eps).
    axes = [a for a in range(len(shape)) if a != 1]
    x = ctx.inputs[0]
    mean = g.reduce("ReduceMean", x, axes, ctx.hint("mean"))
    centred = g.op("Sub", [x, mean], ctx.hint("centred"))
    square = g.op("Mul", [centred, centred], ctx.hint("square"))
    var = g.reduce("ReduceMean", square, axes, ctx.hint("var"))
    std = g.op("Sqrt", [g.op("Add", [var, g.const(p.eps, ctx.hint("eps"))],
                             ctx.hint("var_eps"))], ctx.hint("std"))
    return g.op("Div", [centred, std], ctx.name, out=ctx.out())


@converts("MVN")
def mvn(ctx):
    p = ctx.param.mvn_param
    g = ctx.graph
    shape = ctx.bottom_shapes[0]
    first = 1 if p.across_channels else 2
    axes = list(range(first, len(shape)))
    x = ctx.inputs[0]
    mean = g.reduce("ReduceMean", x, axes, ctx.hint("mean"))
    if not p.normalize_variance:
        return g.op("Sub", [x, mean], ctx.name, out=ctx.out())
    centred = g.op("Sub", [x, mean], ctx.hint("centred"))
    square = g.op("Mul", [centred, centred], ctx.hint("square"))
    var = g.reduce("ReduceMean", square, axes, ctx.hint("var"))
    # MVN adds eps to the standard deviation, not to the variance.
    std = g.op("Sqrt", [var], ctx.hint("std"))
    denom = g.op("Add", [std, g.const(p.eps, ctx.hint("eps"))],
                 ctx.hint("denom"))
    return g.op("Div", [centred, denom], ctx.name, out=ctx.out())


# -- neurons ------------------------------------------------------------------
@converts("ReLU")
def relu(ctx):
    slope = ctx.param.relu_param.negative_slope
    if slope == 0:
        return ctx.graph.op("Relu", ctx.inputs, ctx.name, out=ctx.out())
    return ctx.graph.op("LeakyRelu", ctx.inputs, ctx.name, out=ctx.out(),
                        alpha=slope)


def _unary(onnx_op):
    def convert(ctx):
        return ctx.graph.op(onnx_op, ctx.inputs, ctx.name, out=ctx.out())
    return convert


for _caffe, _onnx in (("Sigmoid", "Sigmoid"), ("TanH", "Tanh"),
                      ("AbsVal", "Abs"), ("BNLL", "Softplus")):
    converts(_caffe)(_unary(_onnx))


@converts("ELU")
def elu(ctx):
    return ctx.graph.op("Elu", ctx.inputs, ctx.name, out=ctx.out(),
                        alpha=ctx.param.elu_param.alpha)


@converts("PReLU")
def prelu(ctx):
    shape = ctx.bottom_shapes[0]
    slope = ctx.weights(0)
    if ctx.param.prelu_param.channel_shared:
        slope = slope.reshape(1)
    else:       # one slope per channel (axis 1), broadcast over the rest
        slope = slope.reshape((-1,) + (1,) * (len(shape) - 2))
    return ctx.graph.op("PRelu", [ctx.inputs[0], ctx.graph.const(
        slope, ctx.hint("slope"))], ctx.name, out=ctx.out())


@converts("Clip")
def clip(ctx):
    p = ctx.param.clip_param
    g = ctx.graph
    return g.op("Clip", [ctx.inputs[0], g.const(p.min, ctx.hint("min")),
                         g.const(p.max, ctx.hint("max"))],
                ctx.name, out=ctx.out())


@converts("Swish")
def swish(ctx):
    beta = ctx.param.swish_param.beta
    g = ctx.graph
    x = ctx.inputs[0]
    scaled = x if beta == 1 else g.op(
        "Mul", [x, g.const(beta, ctx.hint("beta"))], ctx.hint("scaled"))
    gate = g.op("Sigmoid", [scaled], ctx.hint("gate"))
    return g.op("Mul", [x, gate], ctx.name, out=ctx.out())


def _affine(ctx, x, scale, shift, hint):
    """shift + scale · x, skipping a unit scale and a zero shift."""
    g = ctx.graph
    if scale != 1:
        x = g.op("Mul", [x, g.const(scale, ctx.hint("scale"))],
                 ctx.hint(hint + "_scaled"))
    if shift != 0:
        x = g.op("Add", [x, g.const(shift, ctx.hint("shift"))],
                 ctx.hint(hint + "_shifted"))
    return x


@converts("Power")
def power(ctx):
    p = ctx.param.power_param
    g = ctx.graph
    y = _affine(ctx, ctx.inputs[0], p.scale, p.shift, "power")
    if p.power != 1:
        y = g.op("Pow", [y, g.const(p.power, ctx.hint("power"))],
                 ctx.hint("pow"))
    return g.op("Identity", [y], ctx.name, out=ctx.out())


@converts("Exp")
def exp(ctx):
    # y = base^(shift + scale·x) = e^(ln(base)·(shift + scale·x))
    p = ctx.param.exp_param
    ln_base = 1.0 if p.base == -1 else float(np.log(p.base))
    y = _affine(ctx, ctx.inputs[0], p.scale * ln_base, p.shift * ln_base,
                "exp")
    return ctx.graph.op("Exp", [y], ctx.name, out=ctx.out())


@converts("Log")
def log(ctx):
    # y = log_base(shift + scale·x) = ln(shift + scale·x) / ln(base)
    p = ctx.param.log_param
    g = ctx.graph
    y = g.op("Log", [_affine(ctx, ctx.inputs[0], p.scale, p.shift, "log")],
             ctx.hint("ln"))
    if p.base != -1:
        y = g.op("Mul", [y, g.const(1.0 / np.log(p.base), ctx.hint("base"))],
                 ctx.hint("log_base"))
    return g.op("Identity", [y], ctx.name, out=ctx.out())


@converts("Threshold")
def threshold(ctx):
    g = ctx.graph
    above = g.op("Greater", [ctx.inputs[0], g.const(
        ctx.param.threshold_param.threshold, ctx.hint("threshold"))],
        ctx.hint("above"))
    return g.op("Cast", [above], ctx.name, out=ctx.out(), to=1)
