"""Export a kaffe Net to ONNX, layer by layer, with Caffe's exact semantics.

The exporter reads the net only through its public graph (``net.graph``:
name, type, param message, bottoms, tops, params) and the geometry the
layers publish (``LayerNode.geometry``); each layer type has one converter
in :mod:`.export_layers` (standard Caffe) or :mod:`.export_fork` (fork
layers). A layer without a converter is an error naming the layer and its
type — nothing is dropped silently.

Caffe blobs are rewritten in place (conv1 → ReLU → conv1); ONNX values are
written once. A blob's first value keeps the blob's name, later versions are
named ``<blob>/<layer>``; :attr:`ExportResult.values` maps every blob to the
ONNX value that holds what kaffe holds in the blob after a forward pass, which
is what ``--check`` compares.
"""
import dataclasses
import logging

import numpy as np

from ..errors import KaffeConfigError
from ._deps import require_onnx

log = logging.getLogger(__name__)

#: The opset written unless asked otherwise, and the oldest one supported.
DEFAULT_OPSET = 17
MIN_OPSET = 13


@dataclasses.dataclass
class ExportResult:
    """What :func:`export` wrote.

    Attributes:
        path: the file written (None when only the model was built).
        model: the onnx ModelProto.
        values: {caffe blob: ONNX value holding its final content}.
        inputs, outputs: the graph's input and output blob names.
        notes: sentences about what the export changed (folded layers,
            identities removed).
    """
    path: object
    model: object
    values: dict
    inputs: list
    outputs: list
    notes: list


class Graph:
    """The ONNX graph being written: nodes, initializers and value names."""

    def __init__(self, onnx, opset):
        self.onnx = onnx
        self.opset = opset
        self.nodes = []
        self.initializers = []
        self.taken = set()
        self.constants = {}     # initializer name -> numpy array

    def fresh(self, hint):
        """A value name not used yet, based on ``hint``."""
        name = hint
        n = 1
        while name in self.taken:
            n += 1
            name = f"{hint}_{n}"
        self.taken.add(name)
        return name

    def const(self, array, hint, dtype=np.float32):
        """Add an initializer; return its name."""
        array = np.ascontiguousarray(np.asarray(array, dtype=dtype))
        name = self.fresh(hint)
        self.initializers.append(
            self.onnx.numpy_helper.from_array(array, name))
        self.constants[name] = array
        return name

    def ints(self, values, hint):
        """A 1-D int64 initializer (shapes, axes, pads)."""
        return self.const(np.asarray(values, dtype=np.int64).reshape(-1),
                          hint, np.int64)

    def op(self, op_type, inputs, hint, out=None, outputs=1, **attrs):
        """Append a node; return its output name (or names if outputs > 1).

        ``out`` names the (first) output; otherwise fresh names from hint.
        """
        if outputs == 1:
            names = [out if out is not None else self.fresh(hint)]
        else:
            names = list(out) if out is not None else [
                self.fresh(f"{hint}_{i}") for i in range(outputs)]
        for name in names:
            self.taken.add(name)
        node = self.onnx.helper.make_node(
            op_type, list(inputs), names, name=self.fresh(f"{hint}/{op_type}"),
            **{k: v for k, v in attrs.items() if v is not None})
        self.nodes.append(node)
        return names[0] if outputs == 1 else names

    def reduce(self, op_type, x, axes, hint, out=None, keepdims=1):
        """A Reduce* node: axes as an attribute before opset 18 (13 for
        ReduceSum), as an input from then on."""
        input_from = 13 if op_type == "ReduceSum" else 18
        if self.opset >= input_from:
            return self.op(op_type, [x, self.ints(axes, f"{hint}/axes")],
                           hint, out=out, keepdims=keepdims)
        return self.op(op_type, [x], hint, out=out, axes=list(axes),
                       keepdims=keepdims)


class LayerContext:
    """What a converter sees of one layer: its node, its ONNX inputs, the
    shapes of its bottoms and tops, and the graph to write into."""

    def __init__(self, exporter, node):
        self.node = node
        self.graph = exporter.graph
        self.name = node.name
        self.type = node.type
        self.param = node.param
        shapes = exporter.shapes
        self.inputs = [exporter.values[b] for b in node.bottoms]
        self.bottom_shapes = [tuple(shapes[b]) for b in node.bottoms]
        self.top_shapes = [tuple(shapes[t]) for t in node.tops]
        self.dynamic_batch = exporter.dynamic_batch
        self.phase = "TRAIN" if exporter.net.phase == 0 else "TEST"
        self.notes = exporter.notes
        self._outs = [exporter.next_name(t, node.name) for t in node.tops]

    def out(self, i=0):
        """The ONNX name for top ``i`` (use it for the top's final node)."""
        return self._outs[i]

    def weights(self, i):
        """Param blob ``i`` of the layer as a float32 array."""
        return np.asarray(self.node.params[i].blob.data, dtype=np.float32)

    def has_weights(self, i):
        return len(self.node.params) > i

    def hint(self, what=""):
        return f"{self.name}/{what}" if what else self.name

    def error(self, problem, field=None, received=None, fix=None):
        """The error for a layer ONNX cannot express (raise it)."""
        kw = {} if received is None else {"received": received}
        return KaffeConfigError(
            f"cannot be exported to ONNX: {problem}", layer=self.name,
            layer_type=self.type, field=field,
            fix=fix or "change the layer, or leave it out of the exported "
                       "net", **kw)

    def shape_input(self, shape, like=None, static=False):
        """An int64 initializer for a Reshape target ``shape``.

        With a dynamic batch, dim 0 becomes 0 ("copy the input's") when it
        equals the batch of the input ``like`` (default bottom 0), unless
        ``static`` (a shape that does not involve the batch).
        """
        shape = list(shape)
        if self.dynamic_batch and shape and not static:
            source = like if like is not None else self.bottom_shapes[0]
            if source and shape[0] == source[0]:
                shape[0] = 0
            else:
                raise self.error(
                    "its output does not keep the batch axis, so it cannot "
                    "have a dynamic batch", fix="export without "
                    "--dynamic-batch")
        return self.graph.ints(shape, self.hint("shape"))

    def reshape(self, x, shape, out=None, like=None, static=False):
        """Reshape ``x`` to ``shape`` (see :meth:`shape_input`)."""
        return self.graph.op("Reshape",
                             [x, self.shape_input(shape, like, static)],
                             self.hint("reshape"), out=out)


class Exporter:
    """Walks ``net.graph`` and writes one or more ONNX nodes per layer."""

    def __init__(self, net, opset, dynamic_batch):
        onnx = require_onnx()
        self.onnx = onnx
        self.net = net
        self.graph = Graph(onnx, opset)
        self.dynamic_batch = dynamic_batch
        self.shapes = net.blob_shapes()
        self.values = {}          # caffe blob -> current ONNX value
        self.notes = []

    def next_name(self, blob, layer):
        """The ONNX name of the next version of ``blob``."""
        if blob not in self.graph.taken:
            self.graph.taken.add(blob)
            return blob
        return self.graph.fresh(f"{blob}/{layer}")

    def run(self):
        from . import export_detection  # noqa: F401 (registers its converter)
        from .export_fork import CONVERTERS as FORK
        from .export_layers import CONVERTERS
        converters = dict(CONVERTERS, **FORK)
        inputs = []
        for node in self.net.graph:
            if node.type == "Input":
                for top in node.tops:
                    self.values[top] = self.next_name(top, node.name)
                    inputs.append(top)
                continue
            convert = converters.get(node.type)
            if convert is None:
                raise KaffeConfigError(
                    "cannot be exported to ONNX: kaffe has no ONNX "
                    "converter for this layer type", layer=node.name,
                    layer_type=node.type,
                    fix="leave the layer out of the exported net, or export "
                        "the part of the net before it")
            missing = [b for b in node.bottoms if b not in self.values]
            if missing:
                raise KaffeConfigError(
                    f"cannot be exported to ONNX: it reads blob "
                    f"'{missing[0]}', which no exported layer writes",
                    layer=node.name, layer_type=node.type)
            ctx = LayerContext(self, node)
            outs = convert(ctx)
            if isinstance(outs, str):
                outs = [outs]
            if len(outs) != len(node.tops):
                raise RuntimeError(
                    f"kaffe bug: the ONNX converter for {node.type} returned "
                    f"{len(outs)} values for {len(node.tops)} tops")
            for top, value in zip(node.tops, outs):
                self.values[top] = value
        return inputs

    def model(self, inputs, outputs):
        onnx = self.onnx
        helper = onnx.helper
        float_type = onnx.TensorProto.FLOAT

        def info(blob, value):
            shape = list(self.shapes[blob])
            if self.dynamic_batch and shape:
                shape[0] = "N"
            return helper.make_tensor_value_info(value, float_type, shape)

        graph_inputs = [info(b, b) for b in inputs]
        graph_outputs = []
        seen = set()
        for blob in outputs:
            value = self.values[blob]
            if value in seen:
                continue
            seen.add(value)
            if value in inputs:
                value = self.graph.op("Identity", [value], blob + "/output")
                self.values[blob] = value
            graph_outputs.append(info(blob, value))
        graph = helper.make_graph(
            self.graph.nodes, self.net.name or "kaffe", graph_inputs,
            graph_outputs, self.graph.initializers)
        opsets = [helper.make_opsetid("", self.graph.opset)]
        model = helper.make_model(graph, producer_name="kaffe",
                                  opset_imports=opsets)
        # The oldest IR version that has the opset, so that runtimes which
        # lag behind the onnx package still read the file.
        model.ir_version = helper.find_min_ir_version_for(opsets)
        return model


def export(net, path=None, *, opset=DEFAULT_OPSET, dynamic_batch=False,
           fold=False, outputs=None):
    """Write ``net`` (weights loaded) as an ONNX model.

    Args:
        net: a :class:`kaffe.Net` (for a train prototxt, build it with
            :func:`kaffe.onnx.deploy_net`).
        path: where to write the ``.onnx`` file (None: build it only).
        opset: the ONNX opset (13 to the newest the installed onnx knows).
        dynamic_batch: make dim 0 of inputs and outputs symbolic ("N").
        fold: fold BatchNorm / Scale / Bias that directly follow a
            convolution or inner product into its weights (says so in the
            notes); off by default (the graph stays layer for layer).
        outputs: the blobs to make graph outputs (default ``net.outputs``).

    Returns:
        an :class:`ExportResult`.

    Raises:
        KaffeConfigError naming the layer and its type if a layer cannot be
        expressed in ONNX.
    """
    onnx = require_onnx()
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise KaffeConfigError(
            "is not an opset kaffe exports to", field="opset",
            received=opset, expected=f"{MIN_OPSET} to {newest}")
    exporter = Exporter(net, opset, dynamic_batch)
    inputs = exporter.run()
    outputs = list(outputs if outputs is not None else net.outputs)
    for blob in outputs:
        if blob not in exporter.values:
            raise KaffeConfigError(
                "is not a blob of the exported net", field="outputs",
                received=blob, expected=", ".join(exporter.values))
    if fold:
        from .fold import fold_into_linear
        folded = fold_into_linear(exporter.graph, protected={
            exporter.values[b] for b in outputs})
        exporter.notes.extend(folded)
    live = _live_values(exporter.graph)
    values = {b: v for b, v in exporter.values.items()
              if v in live or b in inputs}
    model = exporter.model(inputs, outputs)
    if path is not None:
        from ..proto.io import atomic_write
        atomic_write(path, model.SerializeToString())
        log.info("Wrote %s (%d nodes, opset %d)", path,
                 len(model.graph.node), opset)
    return ExportResult(path, model, values, inputs, outputs, exporter.notes)


def _live_values(graph):
    return {out for node in graph.nodes for out in node.output}


def with_outputs(model, names):
    """A copy of ``model`` whose graph also outputs the values ``names``
    (for comparing intermediate blobs)."""
    onnx = require_onnx()
    extended = onnx.ModelProto()
    extended.CopyFrom(model)
    present = {o.name for o in extended.graph.output}
    for name in names:
        if name not in present:
            present.add(name)
            extended.graph.output.append(onnx.helper.make_tensor_value_info(
                name, onnx.TensorProto.FLOAT, None))
    return extended
