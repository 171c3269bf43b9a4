"""Net: a DAG of layers built from a NetParameter, run forward and backward.

Construction follows Caffe's Net::Init step by step:

1. keep the layers whose include/exclude rules match the NetState (phase,
   level, stages);
2. insert Split layers where a blob feeds several bottoms (Caffe's names,
   ``<blob>_<layer>_<i>_split_<j>``);
3. create each layer in file order, wire its bottoms and tops (a top named like
   the bottom at the same index is computed in place), set it up, collect its
   parameters (sharing those with the same ``param { name }``);
4. work out which layers and blobs need backward (learnable params, blobs
   under a loss, propagate_down, force_backward);
5. the blobs nobody consumed are the outputs, in alphabetical order.

The pycaffe surface (``blobs``, ``params``, ``forward(**inputs)``, ...) lives
here too, so ``import kaffe as caffe`` scripts see the Net they expect.
"""
import logging
import os
from collections import OrderedDict

import numpy as np

from ..proto import caffe_pb2
from ..errors import KaffeConfigError, KaffeShapeError
from ..memory import Budget, KaffeMemoryError, located
from .blob import Blob
from .graph import build_graph, inserted_layers, node_not_found
from .net_batches import PycaffeBatches
from .net_run import forward_layers, layer_blob_lists, lean_plans
from .net_weights import NetWeights
from .insert_splits import insert_splits, split_blob_name, split_layer_name
from .net_state import (filter_net, layer_error, layer_included,
                        set_net_state, state_meets_rule, unknown_bottom)
from .registry import create_layer

log = logging.getLogger("kaffe")

# Defined in .net_state and .insert_splits; importable from here as before.
__all__ = ["Net", "TRAIN", "TEST", "filter_net", "insert_splits",
           "layer_included", "split_blob_name", "split_layer_name",
           "state_meets_rule"]

TRAIN = caffe_pb2.TRAIN
TEST = caffe_pb2.TEST
# Elements of one scratch array of a layer in lean inference (1 MiB of
# float32; see release_intermediates).
LEAN_WORKSPACE_ELEMENTS = 1 << 18


class Net(NetWeights, PycaffeBatches):
    """A Caffe network.

    Construct with pycaffe's signatures::

        Net(prototxt, phase, level=0, stages=None, weights=None)
        Net(prototxt, weights, phase)            # deprecated form, still works
        Net(net_parameter)                       # a caffe_pb2.NetParameter

    Args:
        dtype: element type of every blob (float32, as Caffe; tests may use
            float64).
        xp: the array module the blobs are made with (NumPy; a GPU array
            module such as CuPy once kaffe has a GPU backend). The layers
            see it as ``layer.xp`` and make their parameter blobs with it.
    """

    def __init__(self, network, *args, phase=None, level=None, stages=None,
                 weights=None, dtype=np.float32, xp=np):
        legacy = bool(args) and isinstance(args[0], (str, bytes, os.PathLike))
        phase, weights, level, stages = _constructor_args(
            args, phase, weights, level, stages)
        if legacy:
            phase_name = "caffe.TRAIN" if phase == TRAIN else "caffe.TEST"
            log.warning("DEPRECATION WARNING - deprecated use of Python "
                        "interface")
            log.warning('Use this instead (with the named "weights" '
                        "parameter):")
            log.warning("Net('%s', %s, weights='%s')", network, phase_name,
                        weights)
        from ..proto.io import load_net
        param, source = load_net(network)
        set_net_state(param, phase, level, stages)
        self.dtype = np.dtype(dtype)
        self.xp = xp
        self._source = source
        self._init(param)
        if weights is not None:
            self.copy_from(weights)

    @classmethod
    def from_param(cls, param, source=None, dtype=np.float32, xp=np):
        """Build a net from an in-memory NetParameter (its state decides the phase).

        Args:
            param: a caffe_pb2.NetParameter in the current format.
            source: the NetSource it was read from, so that errors keep naming
                the file and line of each layer (see kaffe.proto.io.load_net).
        """
        from ..proto.io import NetSource
        net = cls.__new__(cls)
        net.dtype = np.dtype(dtype)
        net.xp = xp
        net._source = source if source is not None else NetSource(None)
        net._init(param)
        return net

    # -- construction ------------------------------------------------------
    def _init(self, in_param):
        self.phase = in_param.state.phase
        filtered, lines = filter_net(in_param, self._source)
        param, lines = insert_splits(filtered, lines, self._source.path)
        self._inserted = inserted_layers(filtered, param)
        self._graph = None
        self.name = param.name
        self.debug_info = param.debug_info
        self.layers = []
        self._layer_names = []
        self._blobs = []
        self._blob_names = []
        self._bottom_ids = _IdLists()
        self._top_ids = _IdLists()
        self._bottom_need_backward = []
        self._layer_need_backward = []
        self._blob_need_backward = []
        self._inputs = []
        self._blob_loss_weights = []
        self._before_forward = []    # pycaffe's callbacks, run(layer index)
        self._after_forward = []
        self._before_backward = []
        self._after_backward = []
        self._params = []            # every param blob, in layer order
        self._param_owners = []      # -1, or index of the owning param
        self._param_layer_indices = []
        self._param_display_names = []
        self._param_ids = []         # per layer: indices into _params
        self.learnable_params = []
        self._learnable_param_ids = []
        self.params_lr = []
        self.params_weight_decay = []
        self._has_params_lr = []
        self._has_params_decay = []
        param_names_index = {}
        blob_index = {}
        available = set()
        memory = 0
        budget = Budget()

        for layer_id, layer_param in enumerate(param.layer):
            source = (self._source.path, lines[layer_id])
            if not layer_param.HasField("phase"):
                layer_param.phase = self.phase
            if len(layer_param.propagate_down) and (
                    len(layer_param.propagate_down) != len(layer_param.bottom)):
                raise layer_error(
                    layer_param, source, "must be given either 0 times or "
                    "once per bottom", field="propagate_down",
                    received=len(layer_param.propagate_down),
                    expected=f"0 or {len(layer_param.bottom)}")
            layer = create_layer(layer_param, dtype=self.dtype, source=source)
            layer.xp = self.xp
            self.layers.append(layer)
            self._layer_names.append(layer_param.name)
            log.info("Creating Layer %s", layer_param.name)
            need_backward = False

            bottoms, bottom_ids, bottom_need = [], [], []
            for i, name in enumerate(layer_param.bottom):
                if name not in available:
                    raise unknown_bottom(layer_param, source, i, name,
                                          blob_index)
                blob_id = blob_index[name]
                log.info("%s <- %s", layer_param.name, name)
                bottoms.append(self._blobs[blob_id])
                bottom_ids.append(blob_id)
                available.discard(name)
                need = self._blob_need_backward[blob_id]
                if len(layer_param.propagate_down):
                    need = bool(layer_param.propagate_down[i])
                bottom_need.append(need)
                need_backward |= self._blob_need_backward[blob_id]

            tops, top_ids = [], []
            n_tops = len(layer_param.top)
            for i, name in enumerate(layer_param.top):
                if i < len(layer_param.bottom) and name == layer_param.bottom[i]:
                    log.info("%s -> %s (in-place)", layer_param.name, name)
                    blob_id = blob_index[name]
                elif name in blob_index:
                    raise layer_error(
                        layer_param, source, "is produced by more than one "
                        "layer", field="top", received=name,
                        fix="give this top a new name, or make the layer "
                        "in-place by naming the bottom at the same index")
                else:
                    log.info("%s -> %s", layer_param.name, name)
                    blob_id = self._new_blob(name)
                    blob_index[name] = blob_id
                tops.append(self._blobs[blob_id])
                top_ids.append(blob_id)
                available.add(name)
                if layer_param.type == "Input":
                    self._inputs.append(blob_id)
            if layer.auto_top_blobs:
                needed = max(layer.min_top_blobs, layer.exact_num_top_blobs)
                for _ in range(n_tops, needed):
                    blob_id = self._new_blob("(automatic)")
                    tops.append(self._blobs[blob_id])
                    top_ids.append(blob_id)

            self._bottom_ids.append(bottom_ids)
            self._top_ids.append(top_ids)
            self._bottom_need_backward.append(bottom_need)
            try:
                layer.SetUp(bottoms, tops)
            except (MemoryError, KaffeMemoryError) as e:
                raise located(e, "setting up", layer_param.name,
                              layer_param.type, *source) from None
            budget.add((sum(b.count for b in layer.blobs)
                        + sum(b.count for b in tops)) * self.dtype.itemsize,
                       layer_param.name, layer_param.type, *source)
            log.info("Setting up %s", layer_param.name)
            for i, blob_id in enumerate(top_ids):
                self._blob_loss_weights[blob_id] = layer.loss(i)
                log.info("Top shape: %s", self._blobs[blob_id].shape_string())
                if layer.loss(i):
                    log.info("    with loss weight %g", layer.loss(i))
                memory += self._blobs[blob_id].count
            log.info("Memory required for data: %d",
                     memory * self.dtype.itemsize)

            n_params = len(layer.blobs)
            if len(layer_param.param) > n_params:
                raise layer_error(
                    layer_param, source, "has more entries than the layer has "
                    "parameter blobs", field="param",
                    received=len(layer_param.param),
                    expected=f"at most {n_params}",
                    fix="remove the extra param { } blocks")
            for param_id in range(n_params):
                spec = _param_spec(layer_param, param_id)
                needs = spec.lr_mult != 0
                need_backward |= needs
                layer.set_param_propagate_down(param_id, needs)
            self._param_ids.append([])
            for param_id in range(n_params):
                self._append_param(layer_id, param_id, param_names_index,
                                   source)
            self._layer_need_backward.append(need_backward)
            if need_backward:
                for blob_id in top_ids:
                    self._blob_need_backward[blob_id] = True

        self._prune_backward()
        if param.force_backward:
            self._force_backward()
        for layer, need in zip(self.layers, self._layer_need_backward):
            layer.needs_backward = need
        self._outputs = [blob_index[name] for name in sorted(available)]
        for name in sorted(available):
            log.info("This network produces output %s", name)
        self._share_weights()
        self._blob_lists = layer_blob_lists(self)
        self._blob_dict = OrderedDict(zip(self._blob_names, self._blobs))
        self._layer_dict = OrderedDict(zip(self._layer_names, self.layers))
        self._layer_index_of = {name: i for i, name in
                                reversed(list(enumerate(self._layer_names)))}
        log.info("Network initialization done.")

    def _new_blob(self, name):
        self._blobs.append(Blob(dtype=self.dtype, xp=self.xp))
        self._blob_names.append(name)
        self._blob_need_backward.append(False)
        self._blob_loss_weights.append(0.0)
        return len(self._blobs) - 1

    def _append_param(self, layer_id, param_id, names_index, source):
        layer = self.layers[layer_id]
        layer_param = layer.layer_param
        spec = _param_spec(layer_param, param_id)
        name = spec.name
        self._param_display_names.append(name or str(param_id))
        net_param_id = len(self._params)
        self._params.append(layer.blobs[param_id])
        self._param_ids[layer_id].append(net_param_id)
        self._param_layer_indices.append((layer_id, param_id))
        if not name or name not in names_index:
            self._param_owners.append(-1)
            if name:
                names_index[name] = net_param_id
            self._learnable_param_ids.append(len(self.learnable_params))
            self.learnable_params.append(layer.blobs[param_id])
            self._has_params_lr.append(spec.HasField("lr_mult"))
            self._has_params_decay.append(spec.HasField("decay_mult"))
            self.params_lr.append(spec.lr_mult)
            self.params_weight_decay.append(spec.decay_mult)
            return
        owner_id = names_index[name]
        self._param_owners.append(owner_id)
        owner_layer_id, owner_param_id = self._param_layer_indices[owner_id]
        owner_layer = self._layer_names[owner_layer_id]
        log.info("Sharing parameters '%s' owned by layer '%s', param index %d",
                 name, owner_layer, owner_param_id)
        this_blob = layer.blobs[param_id]
        owner_blob = self.layers[owner_layer_id].blobs[owner_param_id]
        permissive = spec.share_mode == caffe_pb2.ParamSpec.PERMISSIVE
        if permissive and this_blob.count != owner_blob.count:
            raise layer_error(
                layer_param, source, f"cannot share param '{name}' owned by "
                f"layer '{owner_layer}': counts differ (PERMISSIVE mode needs "
                "equal counts)", field=f"param[{param_id}].name",
                received=this_blob.shape, expected=owner_blob.shape)
        if not permissive and this_blob.shape != owner_blob.shape:
            raise layer_error(
                layer_param, source, f"cannot share param '{name}' owned by "
                f"layer '{owner_layer}': shapes differ", field=(
                    f"param[{param_id}].name"),
                received=this_blob.shape, expected=owner_blob.shape,
                fix="make the shapes equal, or set share_mode: PERMISSIVE "
                    "to only require equal counts")
        learnable_id = self._learnable_param_ids[owner_id]
        self._learnable_param_ids.append(learnable_id)
        for field, has, values in (
                ("lr_mult", self._has_params_lr, self.params_lr),
                ("decay_mult", self._has_params_decay,
                 self.params_weight_decay)):
            if not spec.HasField(field):
                continue
            value = getattr(spec, field)
            if has[learnable_id] and values[learnable_id] != value:
                raise layer_error(
                    layer_param, source, f"of shared param '{name}' differs "
                    "from the owner's", field=f"param[{param_id}].{field}",
                    received=value, expected=values[learnable_id])
            has[learnable_id] = True
            values[learnable_id] = value

    def _prune_backward(self):
        """Drop backward where nothing under a loss, or nothing wanted, flows."""
        under_loss = set()
        skip = set()
        for layer_id in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[layer_id]
            contributes = False
            skip_propagate = True
            for i, blob_id in enumerate(self._top_ids[layer_id]):
                name = self._blob_names[blob_id]
                if layer.loss(i) or name in under_loss:
                    contributes = True
                if name not in skip:
                    skip_propagate = False
                if contributes and not skip_propagate:
                    break
            if self._layer_need_backward[layer_id] and skip_propagate:
                self._layer_need_backward[layer_id] = False
                need = self._bottom_need_backward[layer_id]
                need[:] = [False] * len(need)
            if not contributes:
                self._layer_need_backward[layer_id] = False
            if self._layer_need_backward[layer_id]:
                log.info("%s needs backward computation.",
                         self._layer_names[layer_id])
            else:
                log.info("%s does not need backward computation.",
                         self._layer_names[layer_id])
            for i, blob_id in enumerate(self._bottom_ids[layer_id]):
                name = self._blob_names[blob_id]
                if contributes:
                    under_loss.add(name)
                else:
                    self._bottom_need_backward[layer_id][i] = False
                if not self._bottom_need_backward[layer_id][i]:
                    skip.add(name)

    def _force_backward(self):
        for layer_id, layer in enumerate(self.layers):
            self._layer_need_backward[layer_id] = True
            need = self._bottom_need_backward[layer_id]
            for i, blob_id in enumerate(self._bottom_ids[layer_id]):
                need[i] = need[i] or layer.allow_force_backward(i)
                self._blob_need_backward[blob_id] = (
                    self._blob_need_backward[blob_id] or need[i])
            for param_id in range(len(layer.blobs)):
                layer.set_param_propagate_down(param_id, True)

    def _share_weights(self):
        for i, owner in enumerate(self._param_owners):
            if owner >= 0:
                self._params[i].share_data(self._params[owner])
                self._params[i].share_diff(self._params[owner])

    # -- running -----------------------------------------------------------
    def _forward(self, start, end):
        """Run layers ``start`` .. ``end`` (inclusive) forward; return the loss."""
        return forward_layers(self, start, end)

    def _backward(self, start, end):
        """Run layers ``start`` down to ``end`` (inclusive) backward."""
        for i in range(start, end - 1, -1):
            for run in self._before_backward:
                run(i)
            if self._layer_need_backward[i]:
                try:
                    bottoms, tops = self._blob_lists[i]
                    self.layers[i].Backward(tops,
                                            self._bottom_need_backward[i],
                                            bottoms)
                except (MemoryError, KaffeMemoryError) as e:
                    raise self._memory_error(e, i, "running backward") \
                        from None
                if self.debug_info:
                    self._backward_debug_info(i)
            for run in self._after_backward:
                run(i)

    def _memory_error(self, exc, i, what):
        layer = self.layers[i]
        file, line = getattr(layer, "source", None) or (None, None)
        return located(exc, what, self._layer_names[i], layer.type, file,
                       line)

    def forward_from_to(self, start, end):
        """Run layers ``start`` .. ``end`` (indices, inclusive) forward on
        the blobs as they are; return the weighted loss (Caffe's
        ForwardFromTo; ``forward_from_to(0, len(net.layers) - 1)`` is its
        Forward)."""
        return self._forward(start, end)

    def backward_from_to(self, start, end):
        """Run layers ``start`` down to ``end`` (indices, inclusive)
        backward (Caffe's BackwardFromTo)."""
        self._backward(start, end)

    def before_forward(self, run):
        """Call ``run(i)`` before layer ``i`` runs forward (pycaffe's hook)."""
        self._before_forward.append(run)

    def after_forward(self, run):
        """Call ``run(i)`` after layer ``i`` ran forward."""
        self._after_forward.append(run)

    def before_backward(self, run):
        """Call ``run(i)`` before layer ``i``'s turn in backward (called for
        every layer in the range, whether or not it needs backward)."""
        self._before_backward.append(run)

    def after_backward(self, run):
        """Call ``run(i)`` after layer ``i``'s turn in backward."""
        self._after_backward.append(run)

    def remove_hook(self, run):
        """Stop calling ``run``, registered with before_forward,
        after_forward, before_backward or after_backward."""
        for hooks in (self._before_forward, self._after_forward,
                      self._before_backward, self._after_backward):
            while run in hooks:
                hooks.remove(run)

    def forward_backward(self):
        """Forward then backward over the whole net; return the loss."""
        loss = self._forward(0, len(self.layers) - 1)
        self._backward(len(self.layers) - 1, 0)
        return loss

    def _bottoms(self, i):
        return [self._blobs[b] for b in self._bottom_ids[i]]

    def _tops(self, i):
        return [self._blobs[t] for t in self._top_ids[i]]

    def forward(self, blobs=None, start=None, end=None, **kwargs):
        """pycaffe's forward: set inputs from kwargs, run, return outputs.

        Args:
            blobs: names of extra blobs to return.
            start, end: layer names to start at / stop after (inclusive).
            kwargs: input blob name -> array (must name every input).

        Returns:
            {blob name: data array} for the outputs (or ``end``'s tops) plus
            ``blobs``.
        """
        blobs = list(blobs or [])
        start_ind = self._layer_index(start, "start") if start else 0
        if end is not None:
            end_ind = self._layer_index(end, "end")
            outputs = self.top_names[end] + blobs
        else:
            end_ind = len(self.layers) - 1
            outputs = self.outputs + blobs if blobs else self.outputs
        if kwargs:
            self._set_arrays(kwargs, self.inputs, "data", "input")
        self._forward(start_ind, end_ind)
        blob_dict = self._blob_dict
        return {name: blob_dict[name].data for name in outputs}

    def backward(self, diffs=None, start=None, end=None, **kwargs):
        """pycaffe's backward: set output diffs from kwargs, run, return diffs.

        Returns:
            {blob name: diff array} for the inputs (or ``end``'s bottoms) plus
            ``diffs``.
        """
        diffs = list(diffs or [])
        start_ind = (self._layer_index(start, "start") if start
                     else len(self.layers) - 1)
        if end is not None:
            end_ind = self._layer_index(end, "end")
            outputs = set(self.bottom_names[end] + diffs)
        else:
            end_ind = 0
            outputs = set(self.inputs + diffs)
        if kwargs:
            self._set_arrays(kwargs, self.outputs, "diff", "output")
        self._backward(start_ind, end_ind)
        return {name: self.blobs[name].diff for name in outputs}

    def _set_arrays(self, arrays, expected_names, which, kind):
        if set(arrays) != set(expected_names):
            raise KaffeConfigError(
                f"keyword arguments must name exactly the net's {kind}s",
                received=sorted(arrays), expected=sorted(expected_names))
        for name, value in arrays.items():
            blob = self.blobs[name]
            value = np.asarray(value)
            if value.shape[:1] != blob.shape[:1]:
                raise KaffeShapeError(
                    f"{kind} '{name}' is not batch sized",
                    received=value.shape, expected=blob.shape,
                    fix="reshape the blob first (net.blobs[name].reshape(...)"
                        "; net.reshape()) or pass a full batch")
            getattr(blob, which)[...] = value

    def set_input_arrays(self, data, labels):
        """Feed a MemoryData first layer (pycaffe's set_input_arrays)."""
        first = self.layers[0] if self.layers else None
        if first is None or first.type != "MemoryData":
            raise KaffeConfigError(
                "set_input_arrays may only be called if the first layer is a "
                "MemoryData layer", received=first.type if first else None,
                expected="MemoryData",
                fix="use net.blobs[name].data[...] = array for Input layers")
        first.set_input_arrays(data, labels)

    def _layer_index(self, name, what):
        try:
            return self._layer_names.index(name)
        except ValueError:
            raise KaffeConfigError(
                f"names no layer of this net", field=what, received=name,
                expected="one of " + ", ".join(self._layer_names)) from None

    def reshape(self):
        """Propagate changed input shapes through every layer's reshape."""
        for i, layer in enumerate(self.layers):
            layer.reshape(self._bottoms(i), self._tops(i))

    def clear_param_diffs(self):
        """Zero the diff of every learnable parameter."""
        for blob in self.learnable_params:
            blob.diff[...] = 0

    def update(self):
        """Apply each learnable parameter's diff (data -= diff)."""
        for blob in self.learnable_params:
            blob.update()

    def _forward_debug_info(self, i):
        for blob_id in self._top_ids[i]:
            blob = self._blobs[blob_id]
            log.info("    [Forward] Layer %s, top blob %s data: %g",
                     self._layer_names[i], self._blob_names[blob_id],
                     _abs_mean(blob.data))
        for param_id, net_param_id in enumerate(self._param_ids[i]):
            log.info("    [Forward] Layer %s, param blob %s data: %g",
                     self._layer_names[i],
                     self._param_display_names[net_param_id],
                     _abs_mean(self.layers[i].blobs[param_id].data))

    def _backward_debug_info(self, i):
        for j, blob_id in enumerate(self._bottom_ids[i]):
            if self._bottom_need_backward[i][j]:
                log.info("    [Backward] Layer %s, bottom blob %s diff: %g",
                         self._layer_names[i], self._blob_names[blob_id],
                         _abs_mean(self._blobs[blob_id].diff))
        layer = self.layers[i]
        for param_id, blob in enumerate(layer.blobs):
            if layer.param_needs_backward(param_id):
                log.info("    [Backward] Layer %s, param blob %d diff: %g",
                         self._layer_names[i], param_id, _abs_mean(blob.diff))

    # -- the public graph (kaffe.core.graph) ----------------------------------
    @property
    def graph(self):
        """Tuple of :class:`~kaffe.core.graph.LayerNode`, one per layer in
        execution order (kaffe's inserted Split layers included)."""
        key = tuple(id(layer.geometry) for layer in self.layers)
        if self._graph is None or self._graph[0] != key:
            self._graph = (key, build_graph(self))
        return self._graph[1]

    def node(self, name):
        """The :class:`~kaffe.core.graph.LayerNode` of layer ``name``."""
        index = self._layer_index_of.get(name)
        if index is None:
            raise node_not_found(name, self._layer_names)
        return self.graph[index]

    def blob_shapes(self):
        """{blob name: shape tuple} for every blob, as they are now."""
        return OrderedDict((name, tuple(blob.shape))
                           for name, blob in self._blob_dict.items())

    # -- pycaffe's views -----------------------------------------------------
    @property
    def blobs(self):
        """OrderedDict blob name -> Blob, input to output (split blobs too)."""
        return self._blob_dict

    @property
    def params(self):
        """OrderedDict layer name -> [param Blobs], for layers that have any."""
        return OrderedDict((name, layer.blobs) for name, layer in
                           zip(self._layer_names, self.layers) if layer.blobs)

    @property
    def layer_dict(self):
        return self._layer_dict

    @property
    def blob_loss_weights(self):
        return OrderedDict(zip(self._blob_names, self._blob_loss_weights))

    # Opt-in inference memory: the blobs each layer's forward is the last
    # to read, or None (see release_intermediates); each layer's scratch
    # arrays are then held to LEAN_WORKSPACE_ELEMENTS.
    _release_plan = None
    _reuse_plan = None

    @property
    def release_intermediates(self):
        """Opt-in lean inference (default False): when True, forward frees
        each intermediate blob's data as soon as no later layer reads it,
        so that only the weights and the activations still to be read take
        memory (a chain net peaks near its two largest activations), and
        a convolution's im2col columns are made band by band, about 1 MiB
        at a time (``Layer.workspace_limit``), and an Eltwise whose first
        bottom is read for the last time computes into its memory. The
        net's inputs and outputs are kept; every other blob reads as zeros
        after a forward (pycaffe scripts that read features from inner
        blobs must leave it off), forward(start=...) must start at the
        first layer, and each forward allocates the blobs afresh. The
        narrower GEMMs round differently: outputs differ from the ordinary
        forward's by about 2e-7 of their scale."""
        return self._release_plan is not None

    @release_intermediates.setter
    def release_intermediates(self, value):
        for layer in self.layers:
            layer.workspace_limit = LEAN_WORKSPACE_ELEMENTS if value else None
        if self._reuse_plan is not None:
            for entry in self._reuse_plan:
                if entry is not None:
                    entry[0].release()   # its own memory again
        if not value:
            self._release_plan = self._reuse_plan = None
            return
        self._release_plan, self._reuse_plan = lean_plans(self)

    @property
    def inputs(self):
        return [self._blob_names[i] for i in self._inputs]

    @property
    def outputs(self):
        return [self._blob_names[i] for i in self._outputs]

    @property
    def top_names(self):
        return OrderedDict(
            (name, [self._blob_names[b] for b in ids])
            for name, ids in zip(self._layer_names, self._top_ids))

    @property
    def bottom_names(self):
        return OrderedDict(
            (name, [self._blob_names[b] for b in ids])
            for name, ids in zip(self._layer_names, self._bottom_ids))

    def _top_ids_of(self, i):
        return list(self._top_ids[i])

    def _bottom_ids_of(self, i):
        return list(self._bottom_ids[i])

    @property
    def layer_need_backward(self):
        return list(self._layer_need_backward)

    @property
    def bottom_need_backward(self):
        return [list(b) for b in self._bottom_need_backward]

    @property
    def param_owners(self):
        return list(self._param_owners)

    @property
    def param_display_names(self):
        return list(self._param_display_names)

    def has_blob(self, name):
        return name in self._blob_dict

    def has_layer(self, name):
        return name in self._layer_dict

    def layer_by_name(self, name):
        return self._layer_dict[name]

    def blob_by_name(self, name):
        return self._blob_dict[name]

    @property
    def source(self):
        """The NetSource (file and layer lines) this net was read from."""
        return self._source


# -- helpers --------------------------------------------------------------------
def _constructor_args(args, phase, weights, level, stages):
    """Sort out pycaffe's two Net signatures."""
    if len(args) > 3:
        raise TypeError("Net(network, phase, level=0, stages=None, "
                        "weights=None) takes at most 4 positional arguments")
    args = list(args)
    if args and isinstance(args[0], (str, bytes)) or (
            args and hasattr(args[0], "__fspath__")):
        # Net(prototxt, weights, phase): the deprecated form.
        if weights is not None:
            raise TypeError("weights given twice")
        weights = args.pop(0)
    if args:
        if phase is not None:
            raise TypeError("phase given twice")
        phase = args.pop(0)
    if args:
        if level is not None:
            raise TypeError("level given twice")
        level = args.pop(0)
    if args:
        if stages is not None:
            raise TypeError("stages given twice")
        stages = args.pop(0)
    if phase is not None and phase not in (TRAIN, TEST):
        raise KaffeConfigError("must be kaffe.TRAIN or kaffe.TEST",
                               field="phase", received=phase)
    return phase, weights, level, stages


def _param_spec(layer_param, param_id):
    if param_id < len(layer_param.param):
        return layer_param.param[param_id]
    return caffe_pb2.ParamSpec()


class _IdLists(list):
    """Per layer, the indices of its bottom (or top) blobs.

    kaffe's code indexes it, ``net._top_ids[i]``; pycaffe's C++ binding
    exposed the same data as a method, ``net._top_ids(i)`` (a copy), which
    calling it gives.
    """

    def __call__(self, i):
        return list(self[i])


def _abs_mean(array):
    return float(np.abs(array).mean()) if array.size else 0.0
