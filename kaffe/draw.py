"""Draw a net as a graph: pycaffe's ``caffe.draw``, writing DOT text itself.

No pydot: :func:`get_dot_graph` writes the Graphviz DOT language directly,
with pycaffe's picture — layers as filled records coloured by type
(Convolution/Deconvolution red, Pooling orange, InnerProduct purple, others
blue, in-place layers green) labelled with name, type and the key spatial
parameters; blobs as grey octagons; an edge from each bottom blob to the
layer and from the layer to each top blob. Top edges carry the blob's shape
when the caller knows it (:func:`blob_shapes_of` builds the net to find out),
otherwise pycaffe's label (num_output, or the Data layer's batch size).

:func:`draw_net` returns the picture as bytes, rendered by Graphviz's ``dot``
program for formats such as png, svg and pdf (Graphviz must be installed:
``apt install graphviz``, ``brew install graphviz`` or ``conda install -c
conda-forge graphviz``); the formats ``dot``, ``gv`` and ``raw`` return the
DOT text itself and need nothing. :func:`draw_net_to_file` picks the format
from the file's extension. ``kaffe draw`` is the command-line face.

Differences from pycaffe: every blob is an octagon (pycaffe styled a blob
only when it was last seen as a bottom); an include/exclude rule without a
``phase`` does not decide the phase filter (pycaffe read its default, TRAIN);
``get_layer_label`` returns the label without DOT quotes.
"""
import os
import shutil
import subprocess

from .core.errors import KaffeConfigError, KaffeError
from .proto import caffe_pb2
from .optional import require

LAYER_STYLE_DEFAULT = {"shape": "record", "fillcolor": "#6495ED",
                       "style": "filled"}
NEURON_LAYER_STYLE = {"shape": "record", "fillcolor": "#90EE90",
                      "style": "filled"}
BLOB_STYLE = {"shape": "octagon", "fillcolor": "#E0E0E0", "style": "filled"}

RANKDIRS = ("LR", "TB", "BT", "RL")
# Formats returned as DOT text, without running Graphviz.
TEXT_FORMATS = ("dot", "gv", "raw")
GRAPHVIZ_FIX = ("install Graphviz (apt install graphviz, brew install "
                "graphviz, or conda install -c conda-forge graphviz), or "
                "write the DOT text with a .dot file name")


# -- pycaffe's label helpers ------------------------------------------------------
def get_pooling_types_dict():
    """{pool method number: name}, e.g. {0: 'MAX', 1: 'AVE', 2: 'STOCHASTIC'}."""
    values = caffe_pb2.PoolingParameter.PoolMethod.DESCRIPTOR.values
    return {v.number: v.name for v in values}


def get_edge_label(layer):
    """pycaffe's label for a layer's top edges: the Data layer's batch
    size, the num_output of Convolution/Deconvolution/InnerProduct, else ''."""
    if layer.type == "Data":
        return f"Batch {layer.data_param.batch_size}"
    if layer.type in ("Convolution", "Deconvolution"):
        return str(layer.convolution_param.num_output)
    if layer.type == "InnerProduct":
        return str(layer.inner_product_param.num_output)
    return ""


def get_layer_lr_mult(layer):
    """(weight lr_mult, bias lr_mult) of a Convolution, Deconvolution or
    InnerProduct layer (1.0 where no param block says otherwise)."""
    if layer.type not in ("Convolution", "Deconvolution", "InnerProduct"):
        raise KaffeConfigError(
            "has no learning rate multipliers to show", layer=layer.name,
            layer_type=layer.type,
            expected="a Convolution, Deconvolution or InnerProduct layer")
    mults = [spec.lr_mult for spec in layer.param[:2]]
    mults += [1.0] * (2 - len(mults))
    return mults[0], mults[1]


def get_layer_label(layer, rankdir, display_lrm=False):
    """The text of a layer's node: name, (type), spatial parameters, and
    with ``display_lrm`` the lr_mult pair, one per line in LR layouts (DOT's
    ``\\n``) and separated by spaces in TB/BT layouts."""
    separator = " " if rankdir in ("TB", "BT") else r"\n"
    parts = [_record_escape(layer.name)]
    if layer.type == "Pooling":
        pool = get_pooling_types_dict().get(layer.pooling_param.pool, "?")
        parts.append(_record_escape(f"(Pooling {pool})"))
    else:
        parts.append(_record_escape(f"({layer.type})"))
    if layer.type in ("Convolution", "Deconvolution", "Pooling"):
        kernel, stride, pad = _spatial(layer)
        parts.append(separator.join([f"kernel size: {kernel}",
                                     f"stride: {stride}", f"pad: {pad}"]))
    if display_lrm and layer.type in ("Convolution", "Deconvolution",
                                      "InnerProduct"):
        weight, bias = get_layer_lr_mult(layer)
        if weight or bias:
            parts.append(f"lr mult: {weight:.1f}, {bias:.1f}")
    return separator.join(parts)


def _spatial(layer):
    """(kernel, stride, pad) texts: 'k' when uniform, 'h x w' per axis."""
    if layer.type == "Pooling":
        p = layer.pooling_param
        if p.global_pooling:
            return "global", "1", "0"
        return (_hw(p.kernel_h, p.kernel_w, p.kernel_size),
                _hw(p.stride_h, p.stride_w, p.stride),
                _hw(p.pad_h, p.pad_w, p.pad))
    p = layer.convolution_param
    return (_hw(p.kernel_h, p.kernel_w, p.kernel_size[0]
                if len(p.kernel_size) else 1),
            _hw(p.stride_h, p.stride_w, p.stride[0] if len(p.stride) else 1),
            _hw(p.pad_h, p.pad_w, p.pad[0] if len(p.pad) else 0))


def _hw(h, w, both):
    if h or w:
        return f"{h}x{w}" if h != w else str(h)
    return str(both)


def choose_color_by_layertype(layertype):
    """The fill colour of a layer node (pycaffe's palette)."""
    if layertype in ("Convolution", "Deconvolution"):
        return "#FF5050"
    if layertype == "Pooling":
        return "#FF9900"
    if layertype == "InnerProduct":
        return "#CC33FF"
    return "#6495ED"


# -- the graph ---------------------------------------------------------------
def get_dot_graph(caffe_net, rankdir, label_edges=True, phase=None,
                  display_lrm=False, blob_shapes=None):
    """The net as DOT text (pycaffe's get_pydot_graph, without pydot).

    Args:
        caffe_net: a caffe_pb2.NetParameter (or a prototxt path); old
            formats are upgraded first.
        rankdir: layout direction, 'LR', 'TB', 'BT' or 'RL'.
        label_edges: label the top edges (shape, or pycaffe's label).
        phase: kaffe.TRAIN or kaffe.TEST to draw that phase's layers only
            (by the phase of their include/exclude rules); None for all.
        display_lrm: show the lr_mult of Convolution, Deconvolution and
            InnerProduct layers.
        blob_shapes: optional {blob name: shape tuple or text} for the top
            edges (see :func:`blob_shapes_of`).
    """
    if rankdir not in RANKDIRS:
        raise KaffeConfigError("is not a Graphviz rank direction",
                               field="rankdir", received=rankdir,
                               expected=" or ".join(RANKDIRS))
    net = _net_param(caffe_net)
    phase = _phase(phase)
    blob_shapes = blob_shapes or {}
    nodes = {}          # node id -> attribute dict (first-seen order)
    edges = []          # (source id, destination id, label)
    for layer in net.layer:
        if phase is not None and not _in_phase(layer, phase):
            continue
        layer_id = f"{layer.name}_{layer.type}"
        in_place = (len(layer.bottom) == 1 and len(layer.top) == 1
                    and layer.bottom[0] == layer.top[0])
        style = dict(NEURON_LAYER_STYLE if in_place else LAYER_STYLE_DEFAULT)
        if not in_place:
            style["fillcolor"] = choose_color_by_layertype(layer.type)
        style["label"] = get_layer_label(layer, rankdir, display_lrm)
        nodes[layer_id] = style
        for bottom in layer.bottom:
            nodes.setdefault(bottom + "_blob", _blob_node(bottom))
            edges.append((bottom + "_blob", layer_id, ""))
        for top in layer.top:
            nodes.setdefault(top + "_blob", _blob_node(top))
            label = ""
            if label_edges:
                label = (_shape_label(blob_shapes[top]) if top in blob_shapes
                         else get_edge_label(layer))
            edges.append((layer_id, top + "_blob", label))
    lines = [f"digraph {_quote(net.name or 'Net')} {{",
             f"  rankdir={rankdir};"]
    for node_id, attributes in nodes.items():
        lines.append(f"  {_quote(node_id)} [{_attributes(attributes)}];")
    for source, destination, label in edges:
        text = f" [label={_quote(label)}]" if label else ""
        lines.append(f"  {_quote(source)} -> {_quote(destination)}{text};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def get_pydot_graph(caffe_net, rankdir, label_edges=True, phase=None,
                    display_lrm=False):
    """The graph as a pydot object, for scripts that want pycaffe's return
    value (needs pydot: ``pip install pydot``); get_dot_graph needs nothing."""
    pydot = require("pydot", "get_pydot_graph",
                    fix="or use kaffe.draw.get_dot_graph (DOT text) / "
                        "draw_net, which need no pydot")
    text = get_dot_graph(caffe_net, rankdir, label_edges, phase, display_lrm)
    return pydot.graph_from_dot_data(text)[0]


def draw_net(caffe_net, rankdir, ext="png", phase=None, display_lrm=False,
             blob_shapes=None):
    """The drawing of ``caffe_net`` as bytes in format ``ext``.

    'dot', 'gv' and 'raw' give the DOT text; any other format (png, svg,
    pdf, ...) is rendered by Graphviz's ``dot`` program.

    Raises:
        KaffeError if Graphviz is needed but not installed, or cannot
        render the format.
    """
    text = get_dot_graph(caffe_net, rankdir, phase=phase,
                         display_lrm=display_lrm, blob_shapes=blob_shapes)
    if ext.lower() in TEXT_FORMATS:
        return text.encode("utf-8")
    return render(text, ext)


def draw_net_to_file(caffe_net, filename, rankdir="LR", phase=None,
                     display_lrm=False, blob_shapes=None):
    """Draw ``caffe_net`` into ``filename``, in the format its extension
    names (``.dot``/``.gv``/``.raw``: DOT text)."""
    filename = os.fspath(filename)
    ext = output_format(filename)
    data = draw_net(caffe_net, rankdir, ext, phase, display_lrm, blob_shapes)
    from .proto.io import atomic_write
    atomic_write(filename, data)


def output_format(filename):
    """The format a file name's extension asks for ('net.svg' -> 'svg')."""
    base = os.path.basename(os.fspath(filename))
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem or not ext:
        raise KaffeConfigError(
            "needs an extension naming the picture format",
            field="output file", received=os.fspath(filename),
            expected="a name ending in .svg, .png, .pdf or .dot")
    return ext.lower()


def graphviz_available():
    """Whether Graphviz's ``dot`` program is on the PATH."""
    return shutil.which("dot") is not None


def render(dot_text, fmt):
    """Run Graphviz's ``dot -T<fmt>`` on ``dot_text``; return the bytes."""
    exe = shutil.which("dot")
    if exe is None:
        raise KaffeError(
            f"drawing a .{fmt} picture needs Graphviz's dot program, which "
            "is not installed", fix=GRAPHVIZ_FIX)
    proc = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode("utf-8"),
                          capture_output=True, check=False)
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip()
        raise KaffeError(
            f"Graphviz's dot could not render the graph as '{fmt}'",
            received=message or f"exit status {proc.returncode}",
            fix="use a format dot supports (svg, png, pdf; `dot -T?` lists "
                "them) or a .dot file name")
    return proc.stdout


# -- blob shapes -------------------------------------------------------------
def blob_shapes_of(caffe_net, phase=None, shapes=None):
    """Build the net to learn the shape of every blob, for the top edges.

    Data layers whose sources cannot be opened stand in as Input layers, as
    in ``kaffe explain`` (``shapes``: {top: shape} for those that need one).
    Nets with Python layers are not built: that would import their modules.

    Args:
        caffe_net: a NetParameter or a prototxt path.
        phase: kaffe.TRAIN / kaffe.TEST, or None for both (where the phases
            disagree the label shows both shapes).
        shapes: {blob: shape} for data-layer tops, as ``--shape``.

    Returns:
        ({blob name: shape tuple or label text}, [notes saying why a phase
        could not be built]); an empty dict when no phase could be.
    """
    from .proto.io import load_net
    phase = _phase(phase)
    param, source = load_net(caffe_net)
    phases = [phase] if phase is not None else [caffe_pb2.TRAIN,
                                                caffe_pb2.TEST]
    found, notes = {}, []
    for each in phases:
        try:
            found[each] = _build_shapes(param, source, each, shapes or {})
        except (KaffeError, OSError) as e:
            notes.append(f"{caffe_pb2.Phase.Name(each)}: {e}")
    if len(found) < 2:
        return (next(iter(found.values())) if found else {}), notes
    train, test = found[caffe_pb2.TRAIN], found[caffe_pb2.TEST]
    merged = {}
    for name in list(train) + [n for n in test if n not in train]:
        a, b = train.get(name), test.get(name)
        if a is None or b is None or a == b:
            merged[name] = a if a is not None else b
        else:
            merged[name] = (f"{_shape_label(a)} (TRAIN), "
                            f"{_shape_label(b)} (TEST)")
    return merged, notes


def _build_shapes(param, source, phase, shapes):
    from .core.net import Net, layer_included
    from .viz.explain import replace_data_layers
    built = caffe_pb2.NetParameter()
    built.CopyFrom(param)
    built.state.phase = phase
    replace_data_layers(built, source, shapes)
    python = sorted({layer.python_param.module for layer in built.layer
                     if layer.type == "Python"
                     and layer_included(built.state, layer)})
    if python:
        raise KaffeConfigError(
            "blob shapes left out: building the net would import its Python "
            "layer module(s) " + ", ".join(python),
            fix="draw the shapes with kaffe explain, which you run knowingly")
    net = Net.from_param(built, source)
    return {name: tuple(blob.shape) for name, blob in net.blobs.items()}


# -- DOT writing -------------------------------------------------------------
def _net_param(caffe_net):
    """A current-format NetParameter from a NetParameter or a path."""
    from .proto.io import load_net
    if isinstance(caffe_net, caffe_pb2.NetParameter) and len(
            caffe_net.layers) == 0 and not len(caffe_net.input):
        return caffe_net
    return load_net(caffe_net)[0]


def _phase(phase):
    if phase is None:
        return None
    if isinstance(phase, str):
        if phase.upper() == "ALL":
            return None
        if phase.upper() in ("TRAIN", "TEST"):
            return caffe_pb2.Phase.Value(phase.upper())
    elif phase in (caffe_pb2.TRAIN, caffe_pb2.TEST):
        return phase
    raise KaffeConfigError("is not a phase", field="phase", received=phase,
                           expected="kaffe.TRAIN, kaffe.TEST or None (all)")


def _in_phase(layer, phase):
    """pycaffe's phase filter: included when no include rule says
    otherwise, and no exclude rule names this phase. Rules without a phase
    (stages, levels) do not decide it."""
    if len(layer.include) and len(layer.exclude):
        raise KaffeConfigError(
            "has both include and exclude rules", layer=layer.name,
            layer_type=layer.type,
            fix="specify either include rules or exclude rules, not both")
    if len(layer.include) and not any(
            not rule.HasField("phase") or rule.phase == phase
            for rule in layer.include):
        return False
    return not any(rule.HasField("phase") and rule.phase == phase
                   for rule in layer.exclude)


def _blob_node(name):
    return dict(BLOB_STYLE, label=_escape(name))


def _shape_label(shape):
    if isinstance(shape, str):
        return shape
    return "x".join(str(d) for d in shape) if shape else "scalar"


def _escape(text):
    """Escape for a DOT quoted string (backslashes and quotes)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _record_escape(text):
    """Escape for a record label: also the record syntax characters."""
    text = _escape(text)
    for ch in "{}|<>":
        text = text.replace(ch, "\\" + ch)
    return text


def _quote(text):
    return f'"{_escape(text)}"'


def _attributes(attributes):
    # Labels arrive escaped already (they may hold DOT's \n line breaks).
    parts = []
    for key, value in attributes.items():
        shown = f'"{value}"' if key == "label" else _quote(str(value))
        parts.append(f"{key}={shown}")
    return ", ".join(parts)
