"""Opt-in inference speed: fold BatchNorm and Scale into the layer before.

A Convolution or InnerProduct followed by BatchNorm (with its stored
statistics) and/or Scale computes, per output channel m,

    y[m] = ((w[m]·x + b[m] − mean[m]) / std[m]) · gamma[m] + beta[m]

which is one linear layer with w'[m] = w[m]·a[m], b'[m] = b[m]·a[m] + c[m]
(a = gamma / std, c = beta − mean·gamma / std; each BatchNorm or Scale of a
chain multiplies ``a`` and shifts ``c`` in turn). :func:`fold_batchnorm`
builds a new net from the old one's graph without the folded layers, with
those weights: what OpenCV's importer does on every load. It changes the
float32 rounding (the folded factors are computed in float64 and rounded
once, the divisions and additions Caffe does per element are gone), by a
few 1e-7 of each output's scale per folded layer, which is why it is opt-in
and never the default.

A BatchNorm or Scale is folded when its bottom is the top of the layer
being folded into (directly, or after layers already folded into it), it
reads only that bottom, and either runs in place or is that blob's only
reader (no other layer may see the value before it); a BatchNorm only when
it uses its stored statistics (phase TEST or ``use_global_stats``), a Scale
only per channel (``axis`` 1, ``num_axes`` 1, its scale a learned blob).
Layers whose weights are shared (``param { name }``) are left as they are,
and so is Deconvolution.

The original net is not changed; the new one is built from its graph and
current weights, for inference (phase TEST): rebuild it if the original's
weights change.
"""
import logging

import numpy as np

from .proto import caffe_pb2

__all__ = ["fold_batchnorm", "foldable_chains"]

log = logging.getLogger(__name__)

_LINEAR = ("Convolution", "InnerProduct")


def _uses_stored_statistics(node, phase):
    param = node.param.batch_norm_param
    if param.HasField("use_global_stats"):
        return param.use_global_stats
    return phase == caffe_pb2.TEST


def _per_channel_scale(node):
    param = node.param.scale_param
    return (len(node.bottoms) == 1 and param.axis == 1
            and param.num_axes == 1)


def _linear_ok(node):
    if any(p.name or p.owner is not None for p in node.params):
        return False
    if node.type == "Convolution":
        return node.param.convolution_param.axis == 1
    return node.param.inner_product_param.axis == 1


def foldable_chains(net):
    """{linear layer name: [names of the BatchNorm/Scale layers folded into
    it, in order]} for ``net`` (see the module's rules)."""
    readers = {}
    for node in net.graph:
        for blob in node.bottoms:
            readers.setdefault(blob, []).append(node.index)
    chains = {}
    nodes = net.graph
    for node in nodes:
        if (node.type not in _LINEAR or len(node.tops) != 1 or node.in_place
                or not _linear_ok(node)):
            continue
        top, chain, last = node.tops[0], [], node.index
        for later in nodes[node.index + 1:]:
            if top not in later.bottoms:
                continue
            fits = (later.type == "BatchNorm"
                    and _uses_stored_statistics(later, net.phase)
                    or later.type == "Scale" and _per_channel_scale(later))
            if not fits or later.bottoms != (top,) or len(later.tops) != 1:
                break
            if not later.in_place and [
                    i for i in readers[top] if i > last] != [later.index]:
                break
            chain.append(later.name)
            top, last = later.tops[0], later.index
        if chain:
            chains[node.name] = chain
    return chains


def _factors(net, names, channels):
    """(a, c), float64 per channel, of the BatchNorm/Scale layers ``names``
    applied in order."""
    a = np.ones(channels)
    c = np.zeros(channels)
    for name in names:
        node = net.node(name)
        blobs = [b.data.astype(np.float64).reshape(-1) for b in
                 node.layer.blobs]
        if node.type == "BatchNorm":
            s = blobs[2][0]
            factor = 0.0 if s == 0 else 1.0 / s
            mean, var = blobs[0] * factor, blobs[1] * factor
            std = np.sqrt(var + node.param.batch_norm_param.eps)
            a, c = a / std, (c - mean) / std
        else:
            gamma = blobs[0]
            beta = (blobs[1] if node.param.scale_param.bias_term
                    else np.zeros(channels))
            a, c = a * gamma, c * gamma + beta
    return a, c


def fold_batchnorm(net):
    """A new inference net computing ``net``'s function with each foldable
    BatchNorm and Scale merged into the Convolution or InnerProduct before
    it (see the module's notes: float32 results change by rounding only).

    Args:
        net: a built kaffe.Net (its current weights are used; it is not
            changed).

    Returns:
        The new kaffe.Net (phase TEST, the same dtype and array module, its
        inputs shaped as ``net``'s are now). Layers that fold nothing keep
        their parameters; folded ones get a bias.
    """
    from .core.net import Net

    chains = foldable_chains(net)
    folded = {name for chain in chains.values() for name in chain}
    renamed_top = {}
    param = caffe_pb2.NetParameter()
    param.name = net.name
    param.state.phase = caffe_pb2.TEST
    # The net's own Split layers are left out (the new net inserts its
    # own): their tops stand for their bottom.
    split_source = {top: node.bottoms[0] for node in net.graph
                    if node.inserted for top in node.tops}
    for node in net.graph:
        if node.inserted or node.name in folded:
            continue
        layer = param.layer.add()
        layer.CopyFrom(node.param)
        layer.bottom[:] = [split_source.get(b, b) for b in layer.bottom]
        layer.ClearField("include")
        layer.ClearField("exclude")
        layer.phase = caffe_pb2.TEST
        if node.name in chains:
            last = net.node(chains[node.name][-1])
            renamed_top[node.name] = last.tops[0]
            layer.top[:] = [last.tops[0]]
            if node.type == "Convolution":
                layer.convolution_param.bias_term = True
            else:
                layer.inner_product_param.bias_term = True
        del layer.blobs[:]
    new = Net.from_param(param, dtype=net.dtype, xp=net.xp)
    for name in new.inputs:
        new.blobs[name].reshape(*net.blobs[name].shape)
    new.reshape()
    for name, blobs in new.params.items():
        old = net.params[name]
        if name not in chains:
            for target, source in zip(blobs, old):
                target.data[...] = source.data
            continue
        w = old[0].data.astype(np.float64)
        transposed = (net.node(name).type == "InnerProduct"
                      and net.node(name).param.inner_product_param.transpose)
        channels = w.shape[1] if transposed else w.shape[0]
        b = (old[1].data.astype(np.float64).reshape(-1) if len(old) > 1
             else np.zeros(channels))
        a, c = _factors(net, chains[name], channels)
        scale = a.reshape((1, -1) if transposed else
                          (-1,) + (1,) * (w.ndim - 1))
        blobs[0].data[...] = (w * scale).astype(net.dtype)
        blobs[1].data[...] = (b * a + c).astype(net.dtype)
        log.info("fold: %s <- %s", name, ", ".join(chains[name]))
    return new
