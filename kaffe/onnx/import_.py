"""Import an ONNX model as a Caffe net definition and weights.

:func:`load` reads the model, fixes the input shapes (a symbolic batch
becomes 1 unless ``shapes`` says otherwise), infers every value's shape,
evaluates the constant subgraphs exporters emit (``Shape → Gather → Concat →
Reshape`` chains, ``Constant`` nodes, casts of weights) and converts each
remaining node with a converter in :mod:`.import_ops`. An op or attribute
Caffe cannot express exactly is an error naming the node.

Caffe blob names are the ONNX value names, so an ONNX output and the Caffe
top that computes it carry the same name (``ImportResult.blob_values``
records the rare renamings, e.g. an identity's output read from its input).
"""
import dataclasses

import numpy as np

from ..errors import KaffeConfigError, KaffeFormatError
from ..proto import caffe_pb2
from ._deps import require_onnx


@dataclasses.dataclass
class ImportResult:
    """What :func:`load` made of an ONNX model.

    Attributes:
        net: the NetParameter to write as the prototxt.
        weights: the NetParameter (layers with blobs) to write as the
            caffemodel.
        inputs, outputs: the Caffe blob names of the graph inputs/outputs.
        onnx_inputs: {caffe input blob: ONNX input name}.
        onnx_outputs: {ONNX output name: caffe blob computing it}.
        blob_values: {caffe blob: ONNX value it holds} for every blob.
        notes: sentences about what the import did (folded nodes, fixed
            batch size).
    """
    net: object
    weights: object
    inputs: list
    outputs: list
    onnx_inputs: dict
    onnx_outputs: dict
    blob_values: dict
    notes: list


class Importer:
    """State of one import: constants, shapes, aliases and the layers made."""

    def __init__(self, model, shapes=None):
        onnx = require_onnx()
        self.onnx = onnx
        self.notes = []
        self.opset = next((o.version for o in model.opset_import
                           if o.domain in ("", "ai.onnx")), 1)
        model = self._fix_inputs(model, shapes or {})
        self.model = self._simplify(model)
        self.graph = self.model.graph
        self.net = caffe_pb2.NetParameter(name=self.graph.name or "onnx")
        self.weights = caffe_pb2.NetParameter(name=self.net.name)
        self.blobs = {}           # ONNX value -> Caffe blob
        self.pending_pad = {}     # Caffe blob -> (source blob, pads, node)
        self.layer_names = set()

    def _fix_inputs(self, model, shapes):
        onnx = self.onnx
        fixed = onnx.ModelProto()
        fixed.CopyFrom(model)
        initializers = {i.name for i in fixed.graph.initializer}
        names = [v.name for v in fixed.graph.input if v.name not in initializers]
        for name in shapes:
            if name not in names:
                raise KaffeConfigError(
                    f"names '{name}', which is not an input of the model",
                    field="--shape", expected="one of " + ", ".join(names))
        for value in fixed.graph.input:
            if value.name in initializers:
                continue
            dims = value.type.tensor_type.shape.dim
            if value.name in shapes:
                wanted = shapes[value.name]
                if len(wanted) != len(dims):
                    raise KaffeConfigError(
                        f"gives {len(wanted)} dimensions to input "
                        f"'{value.name}', which has {len(dims)}",
                        field="--shape", received=wanted)
                for d, n in zip(dims, wanted):
                    d.ClearField("dim_param")
                    d.dim_value = n
                continue
            for i, d in enumerate(dims):
                if not d.HasField("dim_value") or d.dim_value <= 0:
                    if i != 0:
                        raise KaffeConfigError(
                            f"has the symbolic dimension {i} "
                            f"('{d.dim_param}'); Caffe blobs have fixed shapes",
                            field=f"input '{value.name}'",
                            fix=f"pass --shape {value.name}=N,C,H,W")
                    symbol = d.dim_param or "?"
                    d.ClearField("dim_param")
                    d.dim_value = 1
                    self.notes.append(
                        f"input '{value.name}': symbolic batch '{symbol}' "
                        "set to 1 (kaffe reshapes it at run time)")
        return fixed

    # -- helpers for converters -----------------------------------------------
    def blob(self, value):
        """The Caffe blob holding ONNX ``value``."""
        return self.blobs.get(value, value)

    def layer_name(self, hint):
        name = hint
        n = 1
        while name in self.layer_names:
            n += 1
            name = f"{hint}_{n}"
        self.layer_names.add(name)
        return name

    def add_layer(self, layer_type, name, bottoms, tops, blobs=()):
        """Append a layer (and its weights); return its LayerParameter."""
        from ..io import array_to_blobproto
        layer = self.net.layer.add(name=self.layer_name(name),
                                   type=layer_type)
        layer.bottom.extend(bottoms)
        layer.top.extend(tops)
        if blobs:
            stored = self.weights.layer.add(name=layer.name, type=layer_type)
            for array in blobs:
                stored.blobs.add().CopyFrom(array_to_blobproto(
                    np.asarray(array, dtype=np.float32)))
        return layer

    # -- the walk -------------------------------------------------------------
    def run(self):
        from .import_ops import CONVERTERS, NodeContext
        from . import import_tensor_ops  # noqa: F401 (registers converters)
        inputs, onnx_inputs = [], {}
        for value in self.graph.input:
            if value.name in self.constants:
                continue
            shape = self.shapes.get(value.name)
            layer = self.add_layer("Input", value.name, [], [value.name])
            layer.input_param.shape.add().dim.extend(shape)
            inputs.append(value.name)
            onnx_inputs[value.name] = value.name
        for index, node in enumerate(self.graph.node):
            ctx = NodeContext(self, node, index)
            convert = CONVERTERS.get(node.op_type)
            if convert is None or node.domain not in ("", "ai.onnx"):
                raise ctx.error("has no Caffe equivalent kaffe knows",
                                fix="change the model, or cut the graph "
                                    "before this node")
            convert(ctx)
        outputs, onnx_outputs = [], {}
        for value in self.graph.output:
            if value.name in self.constants:
                raise KaffeConfigError(
                    "is a constant; a Caffe net cannot output one",
                    field=f"output '{value.name}'")
            blob = self.blob(value.name)
            if blob in self.pending_pad:
                raise KaffeConfigError(
                    "is the output of a Pad node; Caffe has no padding layer",
                    field=f"output '{value.name}'")
            outputs.append(blob)
            onnx_outputs[value.name] = blob
        produced = {o for node in self.graph.node for o in node.output}
        blob_values = {}
        for layer in self.net.layer:
            for top in layer.top:
                if top in produced:
                    blob_values.setdefault(top, top)
        for value, blob in self.blobs.items():
            if value in produced:
                blob_values.setdefault(blob, value)
        return ImportResult(self.net, self.weights, inputs, outputs,
                            onnx_inputs, onnx_outputs, blob_values,
                            self.notes)

    def _simplify(self, model):
        """Infer shapes and evaluate constant nodes until nothing changes:
        folded nodes become initializers."""
        onnx = self.onnx
        from onnx.reference import ReferenceEvaluator
        while True:
            try:
                model = onnx.shape_inference.infer_shapes(model,
                                                          data_prop=True)
            except Exception as e:      # onnx raises its own types
                raise KaffeFormatError(
                    f"cannot be read: ONNX shape inference failed ({e})",
                    field="model") from None
            graph = model.graph
            self.constants = {init.name: onnx.numpy_helper.to_array(init)
                              for init in graph.initializer}
            self.shapes = {}
            for info in (list(graph.value_info) + list(graph.input) +
                         list(graph.output)):
                shape = _static_shape(info)
                if shape is not None:
                    self.shapes[info.name] = shape
            kept, folded, inlined = [], [], False
            for node in graph.node:
                branch = self._constant_branch(node)
                if branch is not None:
                    kept.extend(branch.node)
                    graph.initializer.extend(branch.initializer)
                    kept.extend(onnx.helper.make_node(
                        "Identity", [inner.name], [outer])
                        for inner, outer in zip(branch.output, node.output))
                    inlined = True
                elif self._fold_constant(node, ReferenceEvaluator):
                    folded.extend(node.output)
                else:
                    kept.append(node)
            if not folded and not inlined:
                return model
            del graph.node[:]
            graph.node.extend(kept)
            for name in folded:
                if name:
                    graph.initializer.append(onnx.numpy_helper.from_array(
                        np.asarray(self.constants[name]), name))

    def _constant_branch(self, node):
        """The branch an If node with a constant condition takes, or None."""
        if node.op_type != "If" or node.input[0] not in self.constants:
            return None
        taken = ("then_branch" if bool(self.constants[node.input[0]])
                 else "else_branch")
        return next(self.onnx.helper.get_attribute_value(a)
                    for a in node.attribute if a.name == taken)

    def _one_node_model(self, node, inputs):
        """``node`` alone in a model of this model's opset (the reference
        evaluator otherwise runs the newest version of the op)."""
        helper = self.onnx.helper
        undefined = self.onnx.TensorProto.UNDEFINED
        graph = helper.make_graph(
            [node], "fold", [helper.make_tensor_value_info(i, undefined, None)
                             for i in inputs],
            [helper.make_tensor_value_info(o, undefined, None)
             for o in node.output if o])
        return helper.make_model(graph, opset_imports=[
            helper.make_opsetid("", self.opset)])

    def _fold_constant(self, node, evaluator):
        """Evaluate ``node`` now if its result does not depend on the input
        data (only on constants and static shapes); return True if done."""
        onnx = self.onnx
        if node.op_type == "Constant":
            value = onnx.numpy_helper.to_array(
                onnx.helper.get_attribute_value(node.attribute[0])) \
                if node.attribute[0].name == "value" else \
                evaluator(self._one_node_model(node, [])).run(None, {})[0]
            self.constants[node.output[0]] = np.asarray(value)
            return True
        if node.op_type in ("Shape", "Size") and node.input[0] in self.shapes \
                and node.input[0] not in self.constants:
            shape = np.asarray(self.shapes[node.input[0]], dtype=np.int64)
            if node.op_type == "Size":
                self.constants[node.output[0]] = np.asarray(
                    int(np.prod(shape)), dtype=np.int64)
                return True
            attrs = {a.name: a.i for a in node.attribute}
            start, end = attrs.get("start", 0), attrs.get("end")
            self.constants[node.output[0]] = shape[start:end]
            return True
        present = [i for i in node.input if i]
        if node.op_type in ("If", "Loop", "Scan"):
            return False
        if not present or not all(i in self.constants for i in present):
            return False
        try:
            results = evaluator(self._one_node_model(node, present)).run(
                None, {i: self.constants[i] for i in present})
        except Exception as e:      # onnx.reference raises many types
            raise KaffeFormatError(
                f"has constant inputs but could not be evaluated ({e})",
                layer=node.name or node.output[0],
                layer_type=f"ONNX {node.op_type}") from None
        for name, value in zip(node.output, results):
            self.constants[name] = np.asarray(value)
        return True


def _static_shape(info):
    if not info.type.HasField("tensor_type"):
        return None
    shape = info.type.tensor_type.shape
    if not info.type.tensor_type.HasField("shape"):
        return None
    dims = []
    for d in shape.dim:
        if not d.HasField("dim_value"):
            return None
        dims.append(d.dim_value)
    return tuple(dims)


def load(model, shapes=None):
    """Convert an ONNX model to Caffe.

    Args:
        model: a path to an ``.onnx`` file, or an onnx ModelProto.
        shapes: {input name: shape} to fix symbolic input dimensions (a
            symbolic batch alone defaults to 1).

    Returns:
        an :class:`ImportResult` (write it with :func:`save`).

    Raises:
        KaffeConfigError naming the node for an op or attribute Caffe cannot
        express exactly.
    """
    onnx = require_onnx()
    if not hasattr(model, "graph"):
        path = str(model)
        try:
            model = onnx.load(path)
        except OSError:
            raise
        except Exception as e:
            raise KaffeFormatError(f"is not an ONNX model ({e})",
                                   file=path) from None
    return Importer(model, shapes).run()


def save(result, prototxt, caffemodel):
    """Write an :class:`ImportResult` as a prototxt and a caffemodel."""
    from ..proto.io import write_binary, write_text
    write_text(result.net, prototxt)
    write_binary(result.weights, caffemodel)
