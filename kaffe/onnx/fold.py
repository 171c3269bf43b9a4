"""``--fold``: fold per-channel affine nodes into the linear node before them.

Applied to the ONNX graph the exporter wrote: a BatchNormalization with
constant statistics, or a Mul / Add by a per-output-channel constant (what
Caffe's Scale and Bias become), whose input is the only use of a Conv,
ConvTranspose or Gemm output, is merged into that node's weight and bias.
The folded graph computes the same function up to float rounding (the check
compares it with kaffe as usual); the blobs between the merged nodes are no
longer in the graph.
"""
import numpy as np


def fold_into_linear(graph, protected=()):
    """Fold in place; return one note per folded node."""
    notes = []
    changed = True
    while changed:
        changed = False
        consumers = {}
        for node in graph.nodes:
            for name in node.input:
                consumers.setdefault(name, []).append(node)
        producers = {out: node for node in graph.nodes for out in node.output}
        for node in list(graph.nodes):
            folded = _try_fold(graph, node, producers, consumers, protected)
            if folded:
                notes.append(folded)
                changed = True
                break
    _drop_unused_initializers(graph)
    return notes


def _try_fold(graph, node, producers, consumers, protected):
    if node.op_type not in ("BatchNormalization", "Mul", "Add"):
        return None
    inputs = list(node.input)
    if node.op_type == "BatchNormalization":
        if not all(i in graph.constants for i in inputs[1:]):
            return None
        x = inputs[0]
    else:
        constant = [i for i in inputs if i in graph.constants]
        if len(constant) != 1:
            return None
        x = inputs[1 - inputs.index(constant[0])]
    linear = producers.get(x)
    if linear is None or linear.op_type not in ("Conv", "ConvTranspose",
                                                "Gemm"):
        return None
    if x in protected or len(consumers.get(x, ())) != 1:
        return None
    if not all(i in graph.constants for i in linear.input[1:]):
        return None
    weight = graph.constants[linear.input[1]]
    channels = _out_channels(linear, weight)
    if node.op_type == "BatchNormalization":
        gamma, beta, mean, var = (graph.constants[i] for i in inputs[1:])
        eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
        scale = gamma / np.sqrt(var + np.float32(eps))
        shift = beta - mean * scale
    else:
        value = graph.constants[constant[0]]
        per_channel = _per_channel(value, linear, channels)
        if per_channel is None:
            return None
        if node.op_type == "Mul":
            scale, shift = per_channel, np.zeros(channels, np.float32)
        else:
            scale, shift = np.ones(channels, np.float32), per_channel
    bias = (graph.constants[linear.input[2]] if len(linear.input) > 2
            else np.zeros(channels, np.float32))
    new_weight = _scale_weight(linear, weight, scale.astype(np.float32))
    new_bias = (bias * scale + shift).astype(np.float32)
    w_name = graph.const(new_weight, linear.input[1] + "_folded")
    b_name = graph.const(new_bias, linear.name + "/bias_folded")
    del linear.input[1:]
    linear.input.extend([w_name, b_name])
    linear.output[0] = node.output[0]
    graph.nodes.remove(node)
    return f"folded {node.name} ({node.op_type}) into {linear.name}"


def _attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return a.i
    return default


def _out_channels(linear, weight):
    if linear.op_type == "Conv":
        return weight.shape[0]
    if linear.op_type == "ConvTranspose":
        return weight.shape[1] * _attr(linear, "group", 1)
    return weight.shape[0] if _attr(linear, "transB", 0) else weight.shape[1]


def _per_channel(value, linear, channels):
    """The constant as one value per output channel, if it is one."""
    rank_after = 1 if linear.op_type == "Gemm" else None
    shape = value.shape
    if value.size not in (1, channels):
        return None
    if value.size == 1:
        return np.full(channels, value.reshape(-1)[0], np.float32)
    # The channel axis must be the one ONNX broadcasting lines up with it:
    # the last dim for Gemm, dim -(spatial+1) for convolutions.
    nontrivial = [i for i, d in enumerate(shape) if d != 1]
    trailing = len(shape) - 1 - nontrivial[0]
    if rank_after is not None:
        return value.reshape(-1) if trailing == 0 else None
    spatial = len(_ints(linear, "kernel_shape"))
    return value.reshape(-1) if trailing == spatial else None


def _ints(node, name):
    for a in node.attribute:
        if a.name == name:
            return list(a.ints)
    return []


def _scale_weight(linear, weight, scale):
    if linear.op_type == "Conv":
        return weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    if linear.op_type == "ConvTranspose":
        group = _attr(linear, "group", 1)
        w = weight.reshape((group, weight.shape[0] // group) + weight.shape[1:])
        s = scale.reshape((group, 1, weight.shape[1]) +
                          (1,) * (weight.ndim - 2))
        return (w * s).reshape(weight.shape)
    if _attr(linear, "transB", 0):
        return weight * scale[:, None]
    return weight * scale[None, :]


def _drop_unused_initializers(graph):
    used = {i for node in graph.nodes for i in node.input}
    graph.initializers[:] = [t for t in graph.initializers if t.name in used]
    for name in list(graph.constants):
        if name not in used:
            del graph.constants[name]
