"""Caffe's InsertSplits: one Split layer after every blob read more than once.

A blob consumed by several layers gets a Split layer that copies it into one
top per consumer (and sums their gradients in backward), named as Caffe names
them: layer ``<blob>_<producer>_<top index>_split``, tops
``<blob>_<producer>_<top index>_split_<j>``.
"""
from ..proto import caffe_pb2
from .net_state import unknown_bottom


def split_layer_name(layer_name, blob_name, blob_index):
    return f"{blob_name}_{layer_name}_{blob_index}_split"


def split_blob_name(layer_name, blob_name, blob_index, split_index):
    return f"{blob_name}_{layer_name}_{blob_index}_split_{split_index}"


def insert_splits(param, lines=None, path=None):
    """Caffe's InsertSplits: a Split layer after every top read more than once.

    A top with a nonzero loss weight counts as one more reader, and the loss
    weight moves to the split's first top. Returns (new NetParameter, lines)
    with the split layers' lines set to their producer's line.
    """
    lines = list(lines) if lines is not None else [None] * len(param.layer)
    last_top = {}          # blob name -> (layer, top index) producing it now
    source_of = {}         # (layer, bottom index) -> (layer, top index)
    readers = {}           # (layer, top index) -> number of consumers
    loss_weight = {}       # (layer, top index) -> loss weight
    for i, layer_param in enumerate(param.layer):
        for j, name in enumerate(layer_param.bottom):
            if name not in last_top:
                raise unknown_bottom(layer_param, (path, lines[i]), j, name,
                                      last_top)
            top = last_top[name]
            source_of[(i, j)] = top
            readers[top] = readers.get(top, 0) + 1
        for j, name in enumerate(layer_param.top):
            last_top[name] = (i, j)
        for j in range(min(len(layer_param.loss_weight),
                           len(layer_param.top))):
            top = last_top[layer_param.top[j]]
            loss_weight[top] = layer_param.loss_weight[j]
            if loss_weight[top]:
                readers[top] = readers.get(top, 0) + 1

    out = caffe_pb2.NetParameter()
    out.CopyFrom(param)
    del out.layer[:]
    out_lines = []
    next_split = {}
    for i, layer_param in enumerate(param.layer):
        new = out.layer.add()
        new.CopyFrom(layer_param)
        out_lines.append(lines[i])
        for j in range(len(new.bottom)):
            top = source_of[(i, j)]
            if readers.get(top, 0) > 1:
                producer = param.layer[top[0]].name
                k = next_split.get(top, 0)
                next_split[top] = k + 1
                new.bottom[j] = split_blob_name(producer, new.bottom[j],
                                                top[1], k)
        for j, name in enumerate(new.top):
            top = (i, j)
            count = readers.get(top, 0)
            if count <= 1:
                continue
            weight = loss_weight.get(top, 0.0)
            split = out.layer.add()
            split.name = split_layer_name(layer_param.name, name, j)
            split.type = "Split"
            split.bottom.append(name)
            for k in range(count):
                split.top.append(split_blob_name(layer_param.name, name, j, k))
                if weight:
                    split.loss_weight.append(weight if k == 0 else 0.0)
            out_lines.append(lines[i])
            if weight:
                del new.loss_weight[:]
                next_split[top] = next_split.get(top, 0) + 1
    return out, out_lines
