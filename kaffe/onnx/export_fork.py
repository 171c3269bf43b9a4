"""ONNX converters for the fork layers kaffe implements (SSD, Fast R-CNN,
DeepLab/PSPNet, SegNet, ShuffleNet, MobileNet-v2, SENet, OCR forks).

Each computes what the fork's layer computes (see the layer's docstring for
the fork's source); a fork setting ONNX cannot express is an error naming
the layer and the field.
"""
import numpy as np

from ..proto import caffe_pb2
from .export_layers import convolution

CONVERTERS = {}


def converts(*types):
    def register(fn):
        for t in types:
            CONVERTERS[t] = fn
        return fn
    return register


# -- element-wise and layout ---------------------------------------------------
@converts("ReLU6")
def relu6(ctx):
    g = ctx.graph
    return g.op("Clip", [ctx.inputs[0], g.const(0.0, ctx.hint("min")),
                         g.const(6.0, ctx.hint("max"))],
                ctx.name, out=ctx.out())


@converts("DepthwiseConvolution")
def depthwise_convolution(ctx):
    return convolution(ctx)


@converts("ConvolutionDepthwise")
def convolution_depthwise(ctx):
    geometry = ctx.node.geometry
    channels = ctx.bottom_shapes[0][1]
    inputs = [ctx.inputs[0], ctx.graph.const(ctx.weights(0),
                                             ctx.hint("weight"))]
    if ctx.param.convolution_param.bias_term:
        inputs.append(ctx.graph.const(ctx.weights(1), ctx.hint("bias")))
    return ctx.graph.op(
        "Conv", inputs, ctx.name, out=ctx.out(),
        kernel_shape=list(geometry.kernel_shape),
        strides=list(geometry.stride), pads=list(geometry.pad) * 2,
        dilations=list(geometry.dilation), group=channels)


@converts("Permute")
def permute(ctx):
    rank = len(ctx.bottom_shapes[0])
    order = list(ctx.param.permute_param.order)
    order += [a for a in range(rank) if a not in order]
    return ctx.graph.op("Transpose", ctx.inputs, ctx.name, out=ctx.out(),
                        perm=order)


@converts("Transpose")
def transpose(ctx):
    return ctx.graph.op("Transpose", ctx.inputs, ctx.name, out=ctx.out(),
                        perm=list(ctx.param.transpose_param.dim))


@converts("Reverse")
def reverse(ctx):
    shape = ctx.bottom_shapes[0]
    axis = ctx.param.reverse_param.axis
    g = ctx.graph
    return g.op("Slice", [ctx.inputs[0],
                          g.ints([shape[axis] - 1], ctx.hint("starts")),
                          g.ints([-shape[axis] - 1], ctx.hint("ends")),
                          g.ints([axis], ctx.hint("axes")),
                          g.ints([-1], ctx.hint("steps"))],
                ctx.name, out=ctx.out())


@converts("ShuffleChannel")
def shuffle_channel(ctx):
    shape = ctx.bottom_shapes[0]
    group = ctx.param.shuffle_channel_param.group
    g = ctx.graph
    split = (shape[0], group, shape[1] // group) + tuple(shape[2:])
    grouped = ctx.reshape(ctx.inputs[0], split)
    swapped = g.op("Transpose", [grouped], ctx.hint("swap"),
                   perm=[0, 2, 1] + list(range(3, len(split))))
    return ctx.reshape(swapped, shape, out=ctx.out(), like=split)


@converts("Axpy")
def axpy(ctx):
    a, x, y = ctx.inputs
    g = ctx.graph
    a_shape, x_shape = ctx.bottom_shapes[0], ctx.bottom_shapes[1]
    wanted = tuple(a_shape[:2]) + (1,) * (len(x_shape) - 2)
    if tuple(a_shape) != wanted:
        a = ctx.reshape(a, wanted, like=a_shape)
    scaled = g.op("Mul", [a, x], ctx.hint("scaled"))
    return g.op("Add", [scaled, y], ctx.name, out=ctx.out())


@converts("Normalize")
def normalize(ctx):
    p = ctx.param.norm_param
    g = ctx.graph
    shape = ctx.bottom_shapes[0]
    x = ctx.inputs[0]
    axes = list(range(1, len(shape))) if p.across_spatial else [1]
    squares = g.reduce("ReduceSumSquare", x, axes, ctx.hint("squares"))
    norm = g.op("Sqrt", [g.op("Add", [squares, g.const(
        p.eps, ctx.hint("eps"))], ctx.hint("squares_eps"))], ctx.hint("norm"))
    unit = g.op("Div", [x, norm], ctx.hint("unit"))
    scale = ctx.weights(0)
    if p.channel_shared:
        scale = scale.reshape(1)
    else:
        scale = scale.reshape((-1,) + (1,) * (len(shape) - 2))
    return g.op("Mul", [unit, g.const(scale, ctx.hint("scale"))], ctx.name,
                out=ctx.out())


@converts("Interp")
def interp(ctx):
    """Bilinear with corners aligned, after cropping by pad_beg/pad_end."""
    p = ctx.param.interp_param
    g = ctx.graph
    shape, out = ctx.bottom_shapes[0], ctx.top_shapes[0]
    x = ctx.inputs[0]
    if p.pad_beg or p.pad_end:
        starts = [-p.pad_beg] * 2
        ends = [shape[2] + p.pad_end, shape[3] + p.pad_end]
        x = g.op("Slice", [x, g.ints(starts, ctx.hint("starts")),
                           g.ints(ends, ctx.hint("ends")),
                           g.ints([2, 3], ctx.hint("axes"))],
                 ctx.hint("crop"))
    sizes = g.op("Concat", [g.op("Shape", [x], ctx.hint("in_shape"), end=2),
                            g.ints(out[2:], ctx.hint("out_hw"))],
                 ctx.hint("sizes"), axis=0)
    return g.op("Resize", [x, "", "", sizes], ctx.name, out=ctx.out(),
                mode="linear", coordinate_transformation_mode="align_corners")


@converts("Upsample")
def upsample(ctx):
    """Max-unpooling: scatter each value to its mask position (a flat index
    into its channel of the output) in zeros."""
    if ctx.dynamic_batch:
        raise ctx.error("the unpooling is written for the net's batch size",
                        fix="export without --dynamic-batch")
    g = ctx.graph
    n, c, h, w = ctx.bottom_shapes[0]
    out = ctx.top_shapes[0]
    flat_in = (n, c, h * w)
    values = ctx.reshape(ctx.inputs[0], flat_in)
    mask = g.op("Cast", [ctx.reshape(ctx.inputs[1], flat_in,
                                     like=ctx.bottom_shapes[1])],
                ctx.hint("mask"), to=7)
    zeros = g.const(np.zeros((n, c, out[2] * out[3])), ctx.hint("zeros"))
    scattered = g.op("ScatterElements", [zeros, mask, values],
                     ctx.hint("scatter"), axis=2)
    return ctx.reshape(scattered, out, out=ctx.out(), like=out)


@converts("BN")
def fork_bn(ctx):
    """The forks' BN: SegNet's in INFERENCE mode is its stored per-channel
    scale and shift (compute_bn_statistics folds the statistics in);
    PSPNet's in TEST (or frozen) normalises with its running statistics,
    ONNX's BatchNormalization exactly."""
    p = ctx.param.bn_param
    g = ctx.graph
    pspnet = len(ctx.node.params) == 4 or any(p.HasField(f) for f in (
        "slope_filler", "bias_filler", "momentum", "eps", "frozen"))
    if pspnet:
        if ctx.phase != "TEST" and not p.frozen:
            raise ctx.error("PSPNet's BN uses batch statistics while "
                            "training", field="bn_param.frozen",
                            fix="export the TEST phase")
        scale, shift, mean, var = (ctx.weights(i).reshape(-1)
                                   for i in range(4))
        return g.op("BatchNormalization", [ctx.inputs[0]] + [
            g.const(v, ctx.hint(n)) for v, n in (
                (scale, "scale"), (shift, "shift"), (mean, "mean"),
                (var, "var"))], ctx.name, out=ctx.out(), epsilon=p.eps)
    if p.bn_mode != caffe_pb2.BNParameter.INFERENCE:
        raise ctx.error("LEARN mode normalises with batch statistics",
                        field="bn_param.bn_mode",
                        fix="set bn_mode: INFERENCE (after computing the "
                            "statistics)")
    rank = len(ctx.bottom_shapes[0])
    scale = ctx.weights(0).reshape((-1,) + (1,) * (rank - 2))
    shift = ctx.weights(1).reshape((-1,) + (1,) * (rank - 2))
    y = g.op("Mul", [ctx.inputs[0], g.const(scale, ctx.hint("scale"))],
             ctx.hint("scaled"))
    return g.op("Add", [y, g.const(shift, ctx.hint("shift"))], ctx.name,
                out=ctx.out())


# -- detection ----------------------------------------------------------------
@converts("PriorBox")
def prior_box(ctx):
    """The priors depend only on the shapes, so they are a constant: the
    layer's own forward, run once here on the net's shapes."""
    node = ctx.node
    node.layer.forward(list(node.bottom_blobs), list(node.top_blobs))
    priors = np.array(node.top_blobs[0].data, dtype=np.float32)
    return ctx.graph.op("Identity", [ctx.graph.const(
        priors, ctx.hint("priors"))], ctx.name, out=ctx.out())


@converts("ROIPooling")
def roi_pooling(ctx):
    p = ctx.param.roi_pooling_param
    rois = ctx.inputs[1]
    if len(ctx.bottom_shapes[1]) != 2:
        rois = ctx.graph.op("Flatten", [rois], ctx.hint("rois"), axis=1)
    return ctx.graph.op("MaxRoiPool", [ctx.inputs[0], rois], ctx.name,
                        out=ctx.out(), pooled_shape=[p.pooled_h, p.pooled_w],
                        spatial_scale=p.spatial_scale)
