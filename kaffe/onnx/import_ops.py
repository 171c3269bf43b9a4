"""ONNX op → Caffe layer converters for :mod:`.import_`.

Each converter takes a :class:`NodeContext` and appends one or more Caffe
layers whose tops are the node's output names. A converter refuses (with an
error naming the node, its op and the attribute) anything whose Caffe
counterpart would compute something else: asymmetric pads, pooling
divisors that differ, broadcasts Caffe's Scale/Bias cannot do, ….
"""
import numpy as np

from ..errors import KaffeConfigError
from ..ops.geometry import pooled_size


CONVERTERS = {}


def converts(*ops):
    def register(fn):
        for op in ops:
            CONVERTERS[op] = fn
        return fn
    return register


class NodeContext:
    """One ONNX node seen by a converter."""

    def __init__(self, importer, node, index):
        self.importer = importer
        self.node = node
        self.op = node.op_type
        self.name = node.name or f"{node.op_type}_{index}"
        self.attrs = {a.name: importer.onnx.helper.get_attribute_value(a)
                      for a in node.attribute}
        self.inputs = list(node.input)
        self.outputs = list(node.output)

    def error(self, problem, attribute=None, received=None, fix=None):
        kw = {} if received is None else {"received": received}
        return KaffeConfigError(
            problem, layer=self.name, layer_type=f"ONNX {self.op}",
            field=attribute, fix=fix or "Caffe cannot express this exactly; "
            "change the model before exporting it", **kw)

    def attr(self, name, default=None):
        value = self.attrs.get(name, default)
        return value.decode() if isinstance(value, bytes) else value

    def const(self, i):
        """Input ``i`` as a numpy array if it is a constant, else None."""
        if i >= len(self.inputs) or not self.inputs[i]:
            return None
        return self.importer.constants.get(self.inputs[i])

    def is_const(self, i):
        return self.const(i) is not None

    def needs_const(self, i, what):
        value = self.const(i)
        if value is None:
            raise self.error(f"needs its {what} (input {i}) to be a constant "
                             "(Caffe keeps it as a layer parameter)")
        return value

    def shape(self, value):
        shape = self.importer.shapes.get(value)
        if shape is None:
            raise self.error(f"value '{value}' has no static shape after "
                             "shape inference (Caffe blobs have fixed shapes)",
                             fix="export the model with fixed input shapes")
        return shape

    def in_shape(self, i=0):
        return self.shape(self.inputs[i])

    def out_shape(self, i=0):
        return self.shape(self.outputs[i])

    def bottom(self, i=0, allow_pad=False):
        """The Caffe blob of input ``i`` (a data input)."""
        blob = self.importer.blob(self.inputs[i])
        if blob in self.importer.pending_pad and not allow_pad:
            raise self.error(f"reads '{self.inputs[i]}', the output of a Pad "
                             "node; Caffe has no padding layer, so a Pad can "
                             "only be folded into a following Convolution")
        return blob

    def layer(self, layer_type, bottoms, tops=None, blobs=(), suffix=""):
        """Add a layer named after the node; tops default to its outputs."""
        name = self.name + suffix
        return self.importer.add_layer(
            layer_type, name, bottoms, self.outputs if tops is None else tops,
            blobs)

    def alias(self, output, blob):
        self.importer.blobs[output] = blob

    def note(self, text):
        self.importer.notes.append(f"node '{self.name}' ({self.op}): {text}")


def _spatial_pads(ctx, spatial, kernel, stride, dilation):
    """Symmetric per-axis pads from ``pads`` / ``auto_pad``, or an error."""
    n = len(kernel)
    auto = ctx.attr("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = list(ctx.attr("pads", [0] * 2 * n))
    elif auto == "VALID":
        pads = [0] * 2 * n
    else:
        pads = [0] * 2 * n
        for i in range(n):
            out = -(-spatial[i] // stride[i])
            extent = dilation[i] * (kernel[i] - 1) + 1
            total = max((out - 1) * stride[i] + extent - spatial[i], 0)
            small, large = total // 2, total - total // 2
            pads[i], pads[i + n] = ((small, large) if auto == "SAME_UPPER"
                                    else (large, small))
    begin, end = pads[:n], pads[n:]
    return begin, end


def _set_window(param, kernel, stride, pads, dilation=None):
    del param.kernel_size[:], param.stride[:], param.pad[:]
    param.kernel_size.extend(kernel)
    param.stride.extend(stride)
    param.pad.extend(pads)
    if dilation is not None and any(d != 1 for d in dilation):
        param.dilation.extend(dilation)


@converts("Conv")
def conv(ctx):
    weight = ctx.needs_const(1, "weight")
    bias = ctx.const(2) if len(ctx.inputs) > 2 and ctx.inputs[2] else None
    if len(ctx.inputs) > 2 and ctx.inputs[2] and bias is None:
        raise ctx.error("needs a constant bias")
    kernel = list(ctx.attr("kernel_shape", weight.shape[2:]))
    n = len(kernel)
    stride = list(ctx.attr("strides", [1] * n))
    dilation = list(ctx.attr("dilations", [1] * n))
    shape = ctx.in_shape()
    begin, end = _spatial_pads(ctx, shape[2:], kernel, stride, dilation)
    source = ctx.bottom(0, allow_pad=True)
    if source in ctx.importer.pending_pad:
        source, extra = ctx.importer.pending_pad[source][:2]
        begin = [b + e for b, e in zip(begin, extra[:n])]
        end = [b + e for b, e in zip(end, extra[n:])]
        ctx.note("the zero Pad before it is folded into its pad")
    if begin != end:
        raise ctx.error("has asymmetric padding; Caffe pads both sides of an "
                        "axis equally", attribute="pads",
                        received=tuple(begin + end))
    layer = ctx.layer("Convolution", [source],
                      blobs=[weight] + ([bias] if bias is not None else []))
    p = layer.convolution_param
    p.num_output = weight.shape[0]
    p.bias_term = bias is not None
    if ctx.attr("group", 1) != 1:
        p.group = ctx.attr("group")
    _set_window(p, kernel, stride, begin, dilation)


@converts("ConvTranspose")
def conv_transpose(ctx):
    weight = ctx.needs_const(1, "weight")
    bias = ctx.const(2) if len(ctx.inputs) > 2 and ctx.inputs[2] else None
    group = ctx.attr("group", 1)
    kernel = list(ctx.attr("kernel_shape", weight.shape[2:]))
    n = len(kernel)
    stride = list(ctx.attr("strides", [1] * n))
    dilation = list(ctx.attr("dilations", [1] * n))
    if any(ctx.attr("output_padding", [0] * n)):
        raise ctx.error("has output_padding; Caffe's Deconvolution has none",
                        attribute="output_padding",
                        received=tuple(ctx.attr("output_padding")))
    pads = list(ctx.attr("pads", [0] * 2 * n))
    if pads[:n] != pads[n:] or ctx.attr("auto_pad", "NOTSET") not in (
            "NOTSET", "VALID"):
        raise ctx.error("has asymmetric or automatic padding", "pads",
                        tuple(pads))
    spatial = ctx.in_shape()[2:]
    caffe = [s * (i - 1) + d * (k - 1) + 1 - 2 * p for i, s, d, k, p in zip(
        spatial, stride, dilation, kernel, pads[:n])]
    if tuple(caffe) != tuple(ctx.out_shape()[2:]):
        raise ctx.error("has an output size Caffe's Deconvolution does not "
                        "give", "output_shape", tuple(ctx.out_shape()[2:]),
                        fix=f"Caffe would give {tuple(caffe)}")
    layer = ctx.layer("Deconvolution", [ctx.bottom()],
                      blobs=[weight] + ([bias] if bias is not None else []))
    p = layer.convolution_param
    p.num_output = weight.shape[1] * group
    p.bias_term = bias is not None
    if group != 1:
        p.group = group
    _set_window(p, kernel, stride, pads[:n], dilation)


@converts("Gemm")
def gemm(ctx):
    if ctx.attr("transA", 0):
        raise ctx.error("has transA = 1; Caffe's InnerProduct multiplies the "
                        "input as it is", "transA", 1)
    if len(ctx.in_shape()) != 2:
        raise ctx.error("needs a 2-D input", received=ctx.in_shape())
    b = ctx.needs_const(1, "B matrix").astype(np.float32)
    alpha, beta = ctx.attr("alpha", 1.0), ctx.attr("beta", 1.0)
    weight = b * np.float32(alpha) if alpha != 1 else b
    trans_b = ctx.attr("transB", 0)
    num_output = weight.shape[0] if trans_b else weight.shape[1]
    blobs = [weight]
    c = ctx.const(2)
    if len(ctx.inputs) > 2 and ctx.inputs[2]:
        if c is None:
            raise ctx.error("needs a constant C (bias)")
        if c.size not in (1, num_output) or (c.ndim == 2 and c.shape[0] != 1):
            raise ctx.error("has a C that is not one bias per output",
                            received=c.shape)
        bias = np.broadcast_to(c.reshape(-1), (num_output,)) * np.float32(beta)
        blobs.append(bias)
    layer = ctx.layer("InnerProduct", [ctx.bottom()], blobs=blobs)
    p = layer.inner_product_param
    p.num_output = num_output
    p.bias_term = len(blobs) > 1
    if not trans_b:
        p.transpose = True


@converts("MatMul")
def matmul(ctx):
    b = ctx.const(1)
    if b is None or b.ndim != 2 or ctx.is_const(0):
        raise ctx.error("multiplies by something other than a constant "
                        "matrix; Caffe's InnerProduct needs a constant weight")
    layer = ctx.layer("InnerProduct", [ctx.bottom()], blobs=[b])
    p = layer.inner_product_param
    p.num_output = b.shape[1]
    p.bias_term = False
    p.transpose = True
    p.axis = len(ctx.in_shape()) - 1


@converts("BatchNormalization")
def batch_normalization(ctx):
    if ctx.attr("training_mode", 0):
        raise ctx.error("is in training mode", "training_mode", 1)
    gamma, beta, mean, var = (ctx.needs_const(i, what) for i, what in (
        (1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")))
    out = ctx.outputs[0]
    bn = ctx.layer("BatchNorm", [ctx.bottom()], [out],
                   blobs=[mean, var, np.ones(1, np.float32)])
    bn.batch_norm_param.eps = ctx.attr("epsilon", 1e-5)
    scale = ctx.layer("Scale", [out], [out], blobs=[gamma, beta],
                      suffix="/scale")
    scale.scale_param.bias_term = True


@converts("Relu")
def relu(ctx):
    ctx.layer("ReLU", [ctx.bottom()])


@converts("LeakyRelu")
def leaky_relu(ctx):
    layer = ctx.layer("ReLU", [ctx.bottom()])
    layer.relu_param.negative_slope = ctx.attr("alpha", 0.01)


@converts("PRelu")
def prelu(ctx):
    slope = ctx.needs_const(1, "slope")
    shape = ctx.in_shape()
    layer = ctx.layer("PReLU", [ctx.bottom()],
                      blobs=[slope.reshape(()) if slope.size == 1
                             else slope.reshape(-1)])
    if slope.size == 1:
        layer.prelu_param.channel_shared = True
        return
    aligned = (1,) * (len(shape) - slope.ndim) + tuple(slope.shape)
    if len(shape) < 2 or aligned[1] != slope.size:
        raise ctx.error("has a slope that is not one per channel (axis 1)",
                        received=tuple(slope.shape))


def _simple(caffe_type):
    def convert(ctx):
        ctx.layer(caffe_type, [ctx.bottom()])
    return convert


for _onnx, _caffe in (("Sigmoid", "Sigmoid"), ("Tanh", "TanH"),
                      ("Abs", "AbsVal"), ("Softplus", "BNLL"),
                      ("Exp", "Exp"), ("Log", "Log")):
    converts(_onnx)(_simple(_caffe))


@converts("Elu")
def elu(ctx):
    layer = ctx.layer("ELU", [ctx.bottom()])
    layer.elu_param.alpha = ctx.attr("alpha", 1.0)


@converts("Clip")
def clip(ctx):
    from ..core.registry import layer_type_list
    if ctx.importer.opset >= 11:
        low, high = ctx.const(1), ctx.const(2)
        if (len(ctx.inputs) > 1 and ctx.inputs[1] and low is None) or (
                len(ctx.inputs) > 2 and ctx.inputs[2] and high is None):
            raise ctx.error("needs constant min and max")
        low = float(low) if low is not None else -np.inf
        high = float(high) if high is not None else np.inf
    else:
        low = ctx.attr("min", -np.inf)
        high = ctx.attr("max", np.inf)
    if low == 0 and high == np.inf:
        ctx.layer("ReLU", [ctx.bottom()])
        return
    if low == 0 and high == 6 and "ReLU6" in layer_type_list():
        ctx.layer("ReLU6", [ctx.bottom()])
        return
    big = float(np.finfo(np.float32).max)
    layer = ctx.layer("Clip", [ctx.bottom()])
    layer.clip_param.min = max(low, -big)
    layer.clip_param.max = min(high, big)


def _divisors(size, kernel, stride, begin, counted_begin, counted_end, out):
    """Per window along one axis, the cells an average divides by: the
    window clipped to [-counted_begin, size + counted_end), windows starting
    at i·stride − begin."""
    return [min(i * stride - begin + kernel, size + counted_end) -
            max(i * stride - begin, -counted_begin) for i in range(out)]


@converts("MaxPool", "AveragePool")
def pool(ctx):
    """Pooling, with a zero Pad before an AveragePool folded in (the padded
    zeros count, as Caffe's padding does)."""
    if len(ctx.outputs) > 1 and ctx.outputs[1]:
        raise ctx.error("outputs indices; Caffe's argmax top is laid out "
                        "differently")
    method = "MAX" if ctx.op == "MaxPool" else "AVE"
    source = ctx.bottom(0, allow_pad=method == "AVE")
    explicit = [0, 0, 0, 0]
    shape = ctx.in_shape()
    if source in ctx.importer.pending_pad:
        source, explicit = ctx.importer.pending_pad[source][:2]
        shape = tuple(shape[:2]) + tuple(
            s - b - e for s, b, e in zip(shape[2:], explicit[:2],
                                         explicit[2:]))
    if len(shape) != 4:
        raise ctx.error("pools a non-4-D input; Caffe pools (N, C, H, W)",
                        received=shape)
    kernel = list(ctx.attr("kernel_shape"))
    stride = list(ctx.attr("strides", [1, 1]))
    if any(d != 1 for d in ctx.attr("dilations", [1, 1])):
        raise ctx.error("is dilated; Caffe's pooling is not", "dilations",
                        tuple(ctx.attr("dilations")))
    padded = [s + b + e for s, b, e in zip(shape[2:], explicit[:2],
                                           explicit[2:])]
    own_begin, own_end = _spatial_pads(ctx, padded, kernel, stride, [1, 1])
    begin = [a + b for a, b in zip(explicit[:2], own_begin)]
    out = ctx.out_shape()[2:]
    mode = None
    for candidate in ("CEIL", "FLOOR"):
        caffe = [pooled_size(s, k, st, p, candidate == "CEIL", any(begin))
                 for s, k, st, p in zip(shape[2:], kernel, stride, begin)]
        if tuple(caffe) == tuple(out):
            mode = candidate
            break
    if mode is None or any(p >= k for p, k in zip(begin, kernel)):
        raise ctx.error("gives an output size that Caffe's pooling (same pad "
                        "on both sides, ceil or floor) cannot give", "pads",
                        tuple(own_begin + own_end))
    if method == "AVE":
        count = ctx.attr("count_include_pad", 0)
        for axis in range(2):
            theirs = _divisors(
                shape[2 + axis], kernel[axis], stride[axis], begin[axis],
                explicit[axis] + (own_begin[axis] if count else 0),
                explicit[2 + axis] + (own_end[axis] if count else 0),
                out[axis])
            caffe = _divisors(shape[2 + axis], kernel[axis], stride[axis],
                              begin[axis], begin[axis], begin[axis],
                              out[axis])
            if theirs != caffe:
                raise ctx.error(
                    "divides by a window size Caffe does not use (Caffe "
                    "counts the padding of its symmetric pad)",
                    "count_include_pad", count)
    if explicit != [0, 0, 0, 0]:
        ctx.note("the zero Pad before it is folded into its pad")
    layer = ctx.layer("Pooling", [source])
    p = layer.pooling_param
    p.pool = p.MAX if method == "MAX" else p.AVE
    p.kernel_h, p.kernel_w = kernel
    p.stride_h, p.stride_w = stride
    p.pad_h, p.pad_w = begin
    if mode == "FLOOR":
        p.round_mode = p.FLOOR


@converts("GlobalAveragePool", "GlobalMaxPool")
def global_pool(ctx):
    if len(ctx.in_shape()) != 4:
        raise ctx.error("pools a non-4-D input", received=ctx.in_shape())
    layer = ctx.layer("Pooling", [ctx.bottom()])
    p = layer.pooling_param
    p.pool = p.AVE if ctx.op == "GlobalAveragePool" else p.MAX
    p.global_pooling = True


@converts("ReduceMean")
def reduce_mean(ctx):
    shape = ctx.in_shape()
    axes = ctx.attr("axes")
    if axes is None and len(ctx.inputs) > 1:
        axes = ctx.needs_const(1, "axes").tolist()
    axes = sorted(a % len(shape) for a in (axes or range(len(shape))))
    if len(shape) != 4 or axes != [2, 3]:
        raise ctx.error("averages over axes other than the spatial (2, 3) of "
                        "a 4-D input", "axes", tuple(axes))
    keep = ctx.attr("keepdims", 1)
    top = ctx.outputs[0] if keep else ctx.outputs[0] + "/pooled"
    layer = ctx.layer("Pooling", [ctx.bottom()], [top])
    layer.pooling_param.pool = layer.pooling_param.AVE
    layer.pooling_param.global_pooling = True
    if not keep:
        ctx.layer("Flatten", [top], suffix="/flatten")

