"""Making a net explainable here: data layers whose sources are elsewhere.

:func:`replace_data_layers` turns the data layers explain and viz cannot
open (an LMDB, an image list, HDF5 files, a bottomless Python layer, a fork's
data layer) into Input layers of the right shapes — from ``--shape``, or
from the layer's own parameters where they fix the shape — so that the net
builds from its prototxt alone.
"""
import difflib

from ..core.errors import KaffeConfigError
from ..core.net import TEST, TRAIN
from ..proto import caffe_pb2
from .explain_text import shape_text

# Data layers whose sources explain never opens (they become Input layers).
DATA_LAYER_TYPES = ("Data", "ImageData", "HDF5Data", "WindowData",
                    "MemoryData", "DenseImageData")
# ... of them, those whose second top is a label of shape (batch,).
_LABELLED = ("Data", "ImageData", "WindowData", "MemoryData")


def phase_value(phase):
    if isinstance(phase, str):
        try:
            return caffe_pb2.Phase.Value(phase.upper())
        except ValueError:
            raise KaffeConfigError("is not a phase", field="phase",
                                   received=phase,
                                   expected="TRAIN or TEST") from None
    if phase not in (TRAIN, TEST):
        raise KaffeConfigError("is not a phase", field="phase",
                               received=phase, expected="TRAIN or TEST")
    return phase


def replace_data_layers(param, source, shapes):
    """Turn unopenable data layers of ``param`` into Input layers, in place.

    Only layers that the net's phase includes are touched. Input layers take
    their shape from ``shapes`` when it names their tops.

    Returns:
        {layer name: note saying where the shapes came from, or
        (note, original type) for a replaced data layer}.

    Raises:
        KaffeConfigError naming the layer, its line, the top that needs a
        shape and the ``--shape`` flag to pass.
    """
    from ..core.net import layer_included
    shapes = {name: _check_shape(name, shape)
              for name, shape in shapes.items()}
    path = source.path if source is not None else None
    chosen = []                 # (layer, line) of the inputs to shape
    seen = {}
    for layer in param.layer:
        occurrence = seen.get(layer.name, 0)
        seen[layer.name] = occurrence + 1
        if not layer_included(param.state, layer):
            continue
        # A Python layer (with or without bottoms) is never built here:
        # that would import its module, which runs the module's code.
        if layer.type in ("Input", "Python") or _is_unopenable_data(layer):
            line = source.line(layer.name, occurrence) if source else None
            chosen.append((layer, line))
    tops = [t for layer, _ in chosen for t in layer.top]
    unknown = [name for name in shapes if name not in tops]
    if unknown:
        close = difflib.get_close_matches(unknown[0], tops, n=1)
        raise KaffeConfigError(
            f"names blob '{unknown[0]}', which is not a top of an input or "
            "data layer of this net in this phase", file=path, field="--shape",
            expected=("one of " + ", ".join(tops)) if tops else None,
            fix=(f"did you mean '{close[0]}'?" if close else
                 "--shape only sets the shapes of the net's input blobs"))
    notes = {}                  # layer name -> note (one phase: names unique)
    for layer, line in chosen:
        if layer.type == "Input":
            note = _reshape_input(layer, shapes, path, line)
            if note:
                notes[layer.name] = note
        else:
            notes[layer.name] = _to_input(layer, shapes, path, line)
    return notes


def _is_unopenable_data(layer):
    if len(layer.bottom) or not len(layer.top):
        return False
    if layer.type in DATA_LAYER_TYPES or layer.type == "Python":
        return True
    from ..core.registry import layer_class, layer_type_list
    if layer_class(layer.type) is not None:
        return False
    # An unregistered type without bottoms is a data layer of some fork,
    # unless it looks like a misspelt known type (the net then says so).
    return layer.type.endswith("Data") or not difflib.get_close_matches(
        layer.type, layer_type_list(), n=1, cutoff=0.6)


def _check_shape(name, shape):
    try:
        dims = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        dims = None
    if not dims or any(d <= 0 for d in dims):
        raise KaffeConfigError(
            "must be a tuple of positive dimensions",
            field=f"shape of '{name}'", received=shape,
            expected="e.g. (64, 1, 28, 28)")
    return dims


def _reshape_input(layer, shapes, path, line):
    given = [shapes.get(top) for top in layer.top]
    declared = list(layer.input_param.shape)
    if len(declared) not in (0, 1, len(layer.top)):
        return ""               # the Input layer itself refuses this
    if not any(given):
        if not declared and len(layer.top):  # (no tops: the net refuses it)
            raise _needs_shape(layer, layer.top[0], None, path, line,
                               "its input_param has no shape")
        return ""
    new_shapes = []
    for i, top in enumerate(layer.top):
        if given[i] is not None:
            new_shapes.append(given[i])
        elif declared:
            new_shapes.append(tuple(declared[0 if len(declared) == 1
                                             else i].dim))
        else:
            raise _needs_shape(layer, top, None, path, line,
                               "its input_param has no shape")
    del layer.input_param.shape[:]
    for shape in new_shapes:
        layer.input_param.shape.add().dim.extend(shape)
    return "shapes from --shape: " + ", ".join(
        f"{top} {shape_text(s)}" for top, s, g in
        zip(layer.top, new_shapes, given) if g is not None)


def _to_input(layer, shapes, path, line):
    """Replace data ``layer`` by an Input layer with the same name and tops."""
    if not len(layer.top):
        # A Python sink (bottoms, no tops): a Silence layer stands in, so
        # that its module is not imported.
        kind, module = layer.type, layer_python_module(layer)
        layer.type = "Silence"
        layer.ClearField("python_param")
        return (f"{kind} layer {module} not run (module not imported); "
                "stands in as a Silence layer", kind)
    derived, batch = _shapes_from_params(layer)
    first = shapes.get(layer.top[0])
    if first is not None:
        batch = first[0]
    result, origin = [], []
    for i, top in enumerate(layer.top):
        if top in shapes:
            result.append(shapes[top])
            origin.append("--shape")
        elif i < len(derived) and derived[i] is not None:
            shape = derived[i]
            if i == 1 and batch:
                shape = (batch,)
            result.append(shape)
            origin.append(_param_name(layer))
        elif i == 1 and batch and layer.type in _LABELLED:
            result.append((batch,))
            origin.append("the batch size")
        else:
            raise _needs_shape(layer, top, batch, path, line, None)
    kind, tops = layer.type, list(layer.top)
    original = caffe_pb2.LayerParameter()
    original.CopyFrom(layer)
    # Same name, tops and rules (the net filters it again), no data source.
    replacement = caffe_pb2.LayerParameter(
        name=layer.name, type="Input", top=tops, include=layer.include,
        exclude=layer.exclude)
    if layer.HasField("phase"):
        replacement.phase = layer.phase
    for shape in result:
        replacement.input_param.shape.add().dim.extend(shape)
    layer.CopyFrom(replacement)
    parts = ", ".join(f"{top} {shape_text(s)} from {o}"
                      for top, s, o in zip(tops, result, origin))
    if kind == "Python":
        return (f"Python layer {layer_python_module(original)} not run "
                f"(module '{original.python_param.module}' not imported); "
                f"stands in as an Input layer: {parts}", kind)
    return (f"{kind} source not opened here; stands in as an Input layer: "
            f"{parts}", kind)


def layer_python_module(layer):
    """'module.Layer' that a Python layer's python_param names."""
    p = layer.python_param
    return f"{p.module}.{p.layer}" if p.layer else p.module


def _param_name(layer):
    return {"MemoryData": "memory_data_param", "ImageData":
            "image_data_param"}.get(layer.type, "the layer's parameters")


def _shapes_from_params(layer):
    """([shape per top], batch size or 0), as the layer's fields fix them."""
    crop = layer.transform_param.crop_size
    if layer.type == "MemoryData":
        p = layer.memory_data_param
        dims = (p.batch_size, p.channels, p.height, p.width)
        if all(dims):
            return [dims, (p.batch_size,)], p.batch_size
        return [], p.batch_size
    if layer.type == "ImageData":
        p = layer.image_data_param
        channels = 3 if p.is_color else 1
        if crop:
            return [(p.batch_size, channels, crop, crop)], p.batch_size
        if p.new_height and p.new_width:
            return [(p.batch_size, channels, p.new_height, p.new_width)], \
                p.batch_size
        return [], p.batch_size
    for field_name in ("data_param", "window_data_param", "hdf5_data_param"):
        if layer.HasField(field_name):
            return [], getattr(layer, field_name).batch_size
    return [], 0


def _needs_shape(layer, top, batch, path, line, why):
    example = f"{batch or 'N'},C,H,W"
    if why is None:
        if layer.type in DATA_LAYER_TYPES:
            why = (f"kaffe does not open {layer.type} sources to work out "
                   "shapes")
        elif layer.type == "Python":
            why = ("inspection does not import its module "
                   f"'{layer.python_param.module}' to work out shapes, since "
                   "importing a module runs its code")
        else:
            why = f"'{layer.type}' is not a layer type kaffe knows"
    flag = f"--shape {top}={example}"
    python = f"shapes={{'{top}': ({example.replace(',', ', ')})}}"
    return KaffeConfigError(
        f"top '{top}' needs a shape ({why})", file=path, line=line,
        layer=layer.name, layer_type=layer.type,
        fix=f"pass {flag} (in Python: {python}) with the blob's real "
            "dimensions")
