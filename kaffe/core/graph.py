"""The net's public graph: what every reader of a Net reads.

``net.graph`` is a tuple of :class:`LayerNode`, one per layer in execution
order (the Split layers kaffe inserted included, marked ``inserted``). A node
carries the layer's name, type, LayerParameter, bottom and top blob names
(and the Blob objects), whether it runs in place, its parameter blobs as
:class:`ParamNode` (with the owner of a shared parameter and the lr/decay
multipliers the solver uses), the geometry the layer publishes
(:mod:`kaffe.ops.geometry`) and whether backward runs through it.

Explain, viz, draw, coord_map, the exporters, the solvers and the tools read
a net through this graph, ``net.blobs`` / ``net.blob_shapes()``,
``net.inputs`` / ``net.outputs`` and ``net.learnable_params``; nothing
outside :mod:`kaffe.core` reads the net's private lists.

Example::

    net = kaffe.Net("lenet.prototxt", kaffe.TEST)
    for node in net.graph:
        print(node.index, node.name, node.type, node.bottoms, "->", node.tops)
        for p in node.params:
            print("   ", p.display_name, p.blob.shape, p.lr_mult, p.owner)
    conv1 = net.node("conv1")
    conv1.geometry.kernel, conv1.geometry.output_spatial((28, 28))
"""
import difflib
from dataclasses import dataclass

from ..errors import KaffeConfigError


@dataclass(frozen=True)
class ParamNode:
    """One parameter blob of one layer.

    Attributes:
        blob: the Blob (for a shared parameter, a Blob sharing the owner's
            data and diff).
        layer: the name of the layer holding it.
        index: its position in that layer's ``blobs``.
        name: its ``param { name }`` ("" when unnamed).
        owner: None if this blob owns its data, else ``(owner layer name,
            owner index)`` of the parameter it shares.
        lr_mult, decay_mult: the multipliers the solver applies (for a
            shared parameter, the owner's, as in Caffe's ``params_lr``).
        display_name: Caffe's display name: ``name``, or the index as text.
        learnable_index: the position of the owning blob in
            ``net.learnable_params`` (and ``params_lr``,
            ``params_weight_decay``).
    """

    blob: object
    layer: str
    index: int
    name: str
    owner: object
    lr_mult: float
    decay_mult: float
    display_name: str
    learnable_index: int


@dataclass(frozen=True)
class LayerNode:
    """One layer of the net, in execution order.

    Attributes:
        index: the layer's position (``net.layers[index]``).
        name, type: the layer's name and Caffe type.
        param: the caffe_pb2.LayerParameter the layer was built from.
        layer: the Layer object.
        bottoms, tops: blob names (tuples; a top the net created for a
            layer that wants more tops than listed is named "(automatic)").
        in_place: some top is also a bottom (the same blob).
        inserted: a Split layer kaffe inserted (Caffe's InsertSplits), not
            one written in the prototxt.
        params: the layer's parameter blobs, as ParamNodes.
        geometry: the layer's published geometry (ConvGeometry,
            PoolGeometry) or None.
        need_backward: whether backward runs this layer.
        bottom_need_backward: per bottom, whether backward writes its diff.
        loss_weights: per top, its loss weight (0.0 for non-loss tops).
        bottom_blobs, top_blobs: the Blob objects themselves.
        source: (file, line) of the layer's definition, or (None, None).
    """

    index: int
    name: str
    type: str
    param: object
    layer: object
    bottoms: tuple
    tops: tuple
    in_place: bool
    inserted: bool
    params: tuple
    geometry: object
    need_backward: bool
    bottom_need_backward: tuple = ()
    loss_weights: tuple = ()
    bottom_blobs: tuple = ()
    top_blobs: tuple = ()
    source: tuple = (None, None)


def inserted_layers(filtered, with_splits):
    """Per layer of ``with_splits``, whether insert_splits added it.

    ``with_splits`` is ``filtered`` with Split layers inserted after
    producers: every layer of ``filtered`` appears in it, in order, and the
    others are the inserted ones.
    """
    flags = []
    i = 0
    originals = filtered.layer
    for layer_param in with_splits.layer:
        if i < len(originals) and layer_param.name == originals[i].name \
                and layer_param.type == originals[i].type:
            flags.append(False)
            i += 1
        else:
            flags.append(True)
    return flags


def node_not_found(name, names):
    """The error for ``net.node(name)`` with no such layer."""
    close = difflib.get_close_matches(str(name), list(names), n=3)
    fix = ("did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
           if close else "list the layers with [n.name for n in net.graph]")
    return KaffeConfigError("names no layer of this net", field="layer",
                            received=name, fix=fix)


def build_graph(net):
    """The tuple of LayerNodes for ``net`` (kaffe.core reads its lists)."""
    names = net._blob_names
    nodes = []
    for i, layer in enumerate(net.layers):
        bottom_ids = net._bottom_ids[i]
        top_ids = net._top_ids[i]
        params = []
        for j, net_param_id in enumerate(net._param_ids[i]):
            spec_name = (layer.layer_param.param[j].name
                         if j < len(layer.layer_param.param) else "")
            owner_id = net._param_owners[net_param_id]
            owner = None
            if owner_id >= 0:
                owner_layer, owner_index = net._param_layer_indices[owner_id]
                owner = (net._layer_names[owner_layer], owner_index)
            learnable = net._learnable_param_ids[net_param_id]
            params.append(ParamNode(
                blob=layer.blobs[j], layer=net._layer_names[i], index=j,
                name=spec_name, owner=owner,
                lr_mult=net.params_lr[learnable],
                decay_mult=net.params_weight_decay[learnable],
                display_name=net._param_display_names[net_param_id],
                learnable_index=learnable))
        nodes.append(LayerNode(
            index=i, name=net._layer_names[i], type=layer.layer_param.type,
            param=layer.layer_param, layer=layer,
            bottoms=tuple(names[b] for b in bottom_ids),
            tops=tuple(names[t] for t in top_ids),
            in_place=bool(set(bottom_ids) & set(top_ids)),
            inserted=net._inserted[i], params=tuple(params),
            geometry=layer.geometry,
            need_backward=net._layer_need_backward[i],
            bottom_need_backward=tuple(net._bottom_need_backward[i]),
            loss_weights=tuple(layer.loss(k) for k in range(len(top_ids))),
            bottom_blobs=tuple(net._blobs[b] for b in bottom_ids),
            top_blobs=tuple(net._blobs[t] for t in top_ids),
            source=layer.where()))
    return tuple(nodes)
