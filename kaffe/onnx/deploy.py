"""Deploy conversion: the net an exporter sees from a train or deploy prototxt.

A train/val prototxt reads data layers and ends in losses and accuracies;
a deployed model has inputs and outputs. :func:`deploy_net` builds the TEST
phase of the net with

* its data layers (Data, ImageData, HDF5Data, …) replaced by Input layers
  shaped by ``shapes`` (the CLI's ``--shape BLOB=N,C,H,W``), as
  ``kaffe explain`` does;
* its loss and accuracy layers left out, each with a note;
* the input blobs that only those layers read (labels) dropped, with a note.

Dropout stays in the net (kaffe runs it as the identity in TEST); the
exporter writes no node for it.
"""
from ..core.net import Net
from ..errors import KaffeConfigError
from ..proto import caffe_pb2

#: Layer types that only make sense while training or scoring.
TRAINING_ONLY_TYPES = ("Accuracy", "Silence")


def is_training_only(layer_type):
    """Loss layers (any type ending in 'Loss') and Accuracy/Silence."""
    return layer_type.endswith("Loss") or layer_type in TRAINING_ONLY_TYPES


def deploy_param(network, shapes=None, phase=caffe_pb2.TEST, stages=()):
    """The deploy NetParameter of ``network`` and the notes about it.

    Args:
        network: a prototxt path or a NetParameter.
        shapes: {blob: shape} for data-layer tops (and to override Inputs).
        phase, stages: the NetState selecting the layers (TEST by default).

    Returns:
        (NetParameter, NetSource, notes: list of str).
    """
    from ..core.net import layer_included
    from ..proto.io import load_net
    from ..viz.explain import replace_data_layers
    param, source = load_net(network)
    param.state.phase = phase
    del param.state.stage[:]
    param.state.stage.extend(stages)
    notes = []
    kept = []
    for layer in param.layer:
        if not layer_included(param.state, layer):
            continue
        if is_training_only(layer.type):
            notes.append(f"layer '{layer.name}' ({layer.type}) left out: "
                         "it only scores training")
            continue
        kept.append(layer)
    del param.layer[:]
    param.layer.extend(kept)
    needed = {b for layer in kept for b in layer.bottom}
    for layer in param.layer:
        if not len(layer.bottom) and layer.type != "Input":
            unused = [t for t in layer.top if t not in needed]
            if unused and len(unused) < len(layer.top):
                _drop_tops(layer, unused, notes)
    for name, data_note in replace_data_layers(param, source,
                                               shapes or {}).items():
        text = data_note[0] if isinstance(data_note, tuple) else data_note
        notes.append(f"layer '{name}': {text}")
    return param, source, notes


def _drop_tops(layer, unused, notes):
    """Remove a data layer's tops that nothing reads (its labels)."""
    keep = [t for t in layer.top if t not in unused]
    del layer.top[:]
    layer.top.extend(keep)
    notes.append(f"layer '{layer.name}' ({layer.type}): top(s) "
                 f"{', '.join(unused)} dropped: only left-out layers read them")


def deploy_net(network, weights=None, shapes=None, phase=caffe_pb2.TEST,
               stages=()):
    """Build the deploy net of ``network`` (see the module docstring).

    Returns:
        (Net, notes: list of str).
    """
    param, source, notes = deploy_param(network, shapes, phase, stages)
    if not len(param.layer):
        raise KaffeConfigError(
            "has no layer left to export once losses and accuracies are "
            "left out", file=source.path if source else None,
            fix="check the phase and the net definition")
    net = Net.from_param(param, source)
    if weights is not None:
        net.copy_from(weights)
    return net, notes
