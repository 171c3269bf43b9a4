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
from .blob import Blob
from .errors import KaffeConfigError, KaffeShapeError
from .memory import Budget, KaffeMemoryError, located
from .registry import create_layer

log = logging.getLogger("kaffe")

TRAIN = caffe_pb2.TRAIN
TEST = caffe_pb2.TEST


class Net:
    """A Caffe network.

    Construct with pycaffe's signatures::

        Net(prototxt, phase, level=0, stages=None, weights=None)
        Net(prototxt, weights, phase)            # deprecated form, still works
        Net(net_parameter)                       # a caffe_pb2.NetParameter

    Args:
        dtype: element type of every blob (float32, as Caffe; tests may use
            float64).
    """

    def __init__(self, network, *args, phase=None, level=None, stages=None,
                 weights=None, dtype=np.float32):
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
        if phase is not None:
            param.state.phase = phase
        if level is not None:
            param.state.level = level
        if stages:
            param.state.stage.extend(stages)
        self.dtype = np.dtype(dtype)
        self._source = source
        self._init(param)
        if weights is not None:
            self.copy_from(weights)

    @classmethod
    def from_param(cls, param, source=None, dtype=np.float32):
        """Build a net from an in-memory NetParameter (its state decides the phase).

        Args:
            param: a caffe_pb2.NetParameter in the current format.
            source: the NetSource it was read from, so that errors keep naming
                the file and line of each layer (see kaffe.proto.io.load_net).
        """
        from ..proto.io import NetSource
        net = cls.__new__(cls)
        net.dtype = np.dtype(dtype)
        net._source = source if source is not None else NetSource(None)
        net._init(param)
        return net

    # -- construction ------------------------------------------------------
    def _init(self, in_param):
        self.phase = in_param.state.phase
        filtered, lines = filter_net(in_param, self._source)
        param, lines = insert_splits(filtered, lines, self._source.path)
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
                raise _layer_error(
                    layer_param, source, "must be given either 0 times or "
                    "once per bottom", field="propagate_down",
                    received=len(layer_param.propagate_down),
                    expected=f"0 or {len(layer_param.bottom)}")
            layer = create_layer(layer_param, dtype=self.dtype, source=source)
            self.layers.append(layer)
            self._layer_names.append(layer_param.name)
            log.info("Creating Layer %s", layer_param.name)
            need_backward = False

            bottoms, bottom_ids, bottom_need = [], [], []
            for i, name in enumerate(layer_param.bottom):
                if name not in available:
                    raise _unknown_bottom(layer_param, source, i, name,
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
                    raise _layer_error(
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
                raise _layer_error(
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
        self._blob_dict = OrderedDict(zip(self._blob_names, self._blobs))
        self._layer_dict = OrderedDict(zip(self._layer_names, self.layers))
        log.info("Network initialization done.")

    def _new_blob(self, name):
        self._blobs.append(Blob(dtype=self.dtype))
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
            raise _layer_error(
                layer_param, source, f"cannot share param '{name}' owned by "
                f"layer '{owner_layer}': counts differ (PERMISSIVE mode needs "
                "equal counts)", field=f"param[{param_id}].name",
                received=this_blob.shape, expected=owner_blob.shape)
        if not permissive and this_blob.shape != owner_blob.shape:
            raise _layer_error(
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
                raise _layer_error(
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
        loss = 0.0
        for i in range(start, end + 1):
            for run in self._before_forward:
                run(i)
            try:
                loss += self.layers[i].Forward(self._bottoms(i),
                                               self._tops(i))
            except (MemoryError, KaffeMemoryError) as e:
                raise self._memory_error(e, i, "running forward") from None
            if self.debug_info:
                self._forward_debug_info(i)
            for run in self._after_forward:
                run(i)
        return loss

    def _backward(self, start, end):
        """Run layers ``start`` down to ``end`` (inclusive) backward."""
        for i in range(start, end - 1, -1):
            for run in self._before_backward:
                run(i)
            if self._layer_need_backward[i]:
                try:
                    self.layers[i].Backward(self._tops(i),
                                            self._bottom_need_backward[i],
                                            self._bottoms(i))
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
            outputs = set(self.top_names[end] + blobs)
        else:
            end_ind = len(self.layers) - 1
            outputs = set(self.outputs + blobs)
        if kwargs:
            self._set_arrays(kwargs, self.inputs, "data", "input")
        self._forward(start_ind, end_ind)
        return {name: self.blobs[name].data for name in outputs}

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

    def forward_all(self, blobs=None, **kwargs):
        """pycaffe's forward_all: run the inputs through in batches.

        Args:
            blobs: names of extra blobs to return, as for :meth:`forward`.
            kwargs: input blob name -> array of any number of items (all the
                same number); without any, one forward of the net's own data.

        Returns:
            {blob name: array} for the outputs and ``blobs``, the batches
            concatenated. A last partial batch is zero-padded to the batch
            size for the forward, and the padding stripped from the result.
        """
        names = set(self.outputs + list(blobs or []))
        collected = {name: [] for name in names}
        for batch in self._batch(kwargs) if kwargs else [{}]:
            outs = self.forward(blobs=blobs, **batch)
            for name, value in outs.items():
                collected[name].append(value.copy())
        return _concatenate(collected, _padding(self, kwargs))

    def forward_backward_all(self, blobs=None, diffs=None, **kwargs):
        """pycaffe's forward_backward_all: forward and backward in batches.

        Args:
            blobs: extra blobs whose data to return, as for :meth:`forward`.
            diffs: extra blobs whose diff to return, as for :meth:`backward`.
            kwargs: input arrays (for forward) and output diffs (for
                backward), by blob name; where either kind is missing the
                net's own values are used.

        Returns:
            (all_blobs, all_diffs): {blob name: array}, padding stripped as
            in :meth:`forward_all`.
        """
        inputs = {name: kwargs[name] for name in self.inputs if name in kwargs}
        top_diffs = {name: kwargs[name] for name in self.outputs
                     if name in kwargs}
        unknown = set(kwargs) - set(inputs) - set(top_diffs)
        if unknown:
            raise KaffeConfigError(
                "keyword arguments must name the net's inputs or outputs",
                received=sorted(unknown),
                expected=sorted(self.inputs + self.outputs))
        out_names = set(self.outputs + list(blobs or []))
        diff_names = set(self.inputs + list(diffs or []))
        all_outs = {name: [] for name in out_names}
        all_diffs = {name: [] for name in diff_names}
        forward_batches = list(self._batch(inputs)) if inputs else [{}]
        backward_batches = list(self._batch(top_diffs)) if top_diffs else [{}]
        for i in range(max(len(forward_batches), len(backward_batches))):
            fb = forward_batches[i] if i < len(forward_batches) else {}
            bb = backward_batches[i] if i < len(backward_batches) else {}
            for name, value in self.forward(blobs=blobs, **fb).items():
                all_outs[name].append(value.copy())
            for name, value in self.backward(diffs=diffs, **bb).items():
                all_diffs[name].append(value.copy())
        pad = _padding(self, inputs or top_diffs)
        return _concatenate(all_outs, pad), _concatenate(all_diffs, pad)

    def _batch(self, blobs):
        """Yield {name: batch-sized array} batches of ``blobs`` (pycaffe's).

        The batch size is the first dimension of the net's first blob; a
        last partial batch is padded with zeros.
        """
        if not blobs:
            return
        arrays = {name: np.asarray(value) for name, value in blobs.items()}
        lengths = {name: len(a) for name, a in arrays.items()}
        if len(set(lengths.values())) > 1:
            raise KaffeShapeError(
                "arrays passed together must hold the same number of items",
                received=", ".join(f"{n}: {k}" for n, k in lengths.items()))
        num = next(iter(lengths.values()))
        batch_size = self._batch_size()
        for start in range(0, num - num % batch_size, batch_size):
            yield {name: a[start:start + batch_size]
                   for name, a in arrays.items()}
        remainder = num % batch_size
        if remainder:
            padded = {}
            for name, a in arrays.items():
                padding = np.zeros((batch_size - remainder,) + a.shape[1:],
                                   dtype=a.dtype)
                padded[name] = np.concatenate([a[num - remainder:], padding])
            yield padded

    def _batch_size(self):
        first = next(iter(self.blobs.values()), None)
        if first is None or not first.shape or first.shape[0] < 1:
            raise KaffeShapeError(
                "has no batch size to split the arrays by",
                field="first blob", received=first.shape if first else None,
                fix="give the net an input with a batch dimension")
        return first.shape[0]

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

    # -- weights -------------------------------------------------------------
    def copy_from(self, path):
        """Load weights from a .caffemodel: binary NetParameter or HDF5.

        As Caffe, the file's content decides (the HDF5 signature), not its
        name. Layers are matched by name; source layers this net lacks are
        skipped with a log line; a shape mismatch raises KaffeShapeError.
        """
        from ..proto.hdf5 import is_hdf5
        if is_hdf5(path):
            self.load_hdf5(path)
            return
        from ..proto.io import load_weights
        self.copy_trained_layers_from(load_weights(path), path)

    def load_hdf5(self, path):
        """Load weights from an HDF5 file in Caffe's layout (pycaffe's
        load_hdf5; see kaffe.proto.hdf5). Needs h5py (kaffe[hdf5])."""
        from ..proto.hdf5 import load_hdf5
        load_hdf5(self, path)

    def save_hdf5(self, path, write_diff=False):
        """Write the weights (and diffs) as HDF5 in Caffe's layout,
        atomically (pycaffe's save_hdf5). Needs h5py (kaffe[hdf5])."""
        from ..proto.hdf5 import save_hdf5
        save_hdf5(self, path, write_diff)

    def copy_trained_layers_from(self, param, path=None):
        """Copy the blobs of ``param``'s layers into same-named layers here."""
        for source_layer in param.layer:
            name = source_layer.name
            if name not in self._layer_dict:
                log.info("Ignoring source layer %s", name)
                continue
            target = self._layer_dict[name]
            if len(target.blobs) != len(source_layer.blobs):
                raise KaffeShapeError(
                    "has a different number of parameter blobs in the weight "
                    "file", file=path, layer=name, layer_type=target.type,
                    received=f"{len(source_layer.blobs)} blob(s) in the file",
                    expected=f"{len(target.blobs)} (as the net defines it)",
                    fix="check bias_term and that the file belongs to this net")
            for j, (blob, proto) in enumerate(zip(target.blobs,
                                                  source_layer.blobs)):
                if not blob.shape_equals_proto(proto):
                    from .blob import proto_shape
                    raise KaffeShapeError(
                        f"cannot copy param {j} weights: shape mismatch",
                        file=path, layer=name, layer_type=target.type,
                        received=_shape_text(proto_shape(proto)) +
                        " in the file", expected=blob.shape_string() +
                        " in the net", fix="to learn this layer's parameters "
                        "from scratch rather than copying them, rename the "
                        "layer; otherwise make the layer's definition match "
                        "the file (num_output, kernel, group, input size)")
                blob.from_proto(proto, reshape=False)

    def share_trained_layers_with(self, other):
        """Make same-named layers here use ``other``'s parameter data."""
        for name, source in other._layer_dict.items():
            if name not in self._layer_dict:
                log.info("Ignoring source layer %s", name)
                continue
            target = self._layer_dict[name]
            if len(target.blobs) != len(source.blobs):
                raise KaffeShapeError(
                    "has an incompatible number of parameter blobs",
                    layer=name, received=len(source.blobs),
                    expected=len(target.blobs))
            for j, (t, s) in enumerate(zip(target.blobs, source.blobs)):
                if t.shape != s.shape:
                    raise KaffeShapeError(
                        f"cannot share param {j} weights: shape mismatch",
                        layer=name, received=s.shape_string(),
                        expected=t.shape_string())
                t.share_data(s)

    share_with = share_trained_layers_with

    def to_proto(self, write_diff=False):
        """The net as a NetParameter with every layer's blobs (Caffe's ToProto)."""
        param = caffe_pb2.NetParameter(name=self.name)
        for layer in self.layers:
            param.layer.append(layer.to_proto(write_diff))
        return param

    def save(self, path, write_diff=False):
        """Write the weights as a binary .caffemodel (atomically)."""
        from ..proto.io import write_binary
        write_binary(self.to_proto(write_diff), path)

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


def _layer_error(layer_param, source, problem, cls=KaffeConfigError, **kw):
    file, line = source if source else (None, None)
    return cls(problem, file=file, line=line, layer=layer_param.name,
               layer_type=layer_param.type, **kw)


def _unknown_bottom(layer_param, source, index, name, blob_index):
    import difflib
    if name in blob_index:
        problem = (f"names blob '{name}', which an earlier layer consumed in "
                   "place or is no longer available")
        fix = "check the order of the layers"
    else:
        problem = (f"names unknown blob '{name}' (no earlier layer produces "
                   "it in this phase)")
        close = difflib.get_close_matches(name, list(blob_index), n=3)
        fix = ("did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
               if close else "define a layer with this top before this layer, "
               "or check the include/exclude rules")
    return _layer_error(layer_param, source, problem,
                        field=f"bottom[{index}]", fix=fix)


def _shape_text(shape):
    count = 1
    for d in shape:
        count *= d
    return "".join(f"{d} " for d in shape) + f"({count})"


class _IdLists(list):
    """Per layer, the indices of its bottom (or top) blobs.

    kaffe's code indexes it, ``net._top_ids[i]``; pycaffe's C++ binding
    exposed the same data as a method, ``net._top_ids(i)`` (a copy), which
    calling it gives.
    """

    def __call__(self, i):
        return list(self[i])


def _padding(net, arrays):
    """How many zero items forward_all appended to the last batch."""
    if not arrays:
        return 0
    num = len(next(iter(arrays.values())))
    remainder = num % net._batch_size()
    return net._batch_size() - remainder if remainder else 0


def _concatenate(collected, pad):
    """{name: [batch arrays]} -> {name: one array}, minus ``pad`` items.

    A 0-axis blob (a loss) has no items: it gives one value per batch.
    """
    out = {}
    for name, parts in collected.items():
        if parts and parts[0].ndim == 0:
            out[name] = np.stack(parts)
            continue
        array = np.concatenate(parts) if parts else np.zeros((0,))
        out[name] = array[:len(array) - pad] if pad else array
    return out


def _abs_mean(array):
    return float(np.abs(array).mean()) if array.size else 0.0


# -- net filtering and split insertion -----------------------------------------
def state_meets_rule(state, rule, layer_name):
    """Caffe's StateMeetsRule: does NetState ``state`` satisfy ``rule``?"""
    if rule.HasField("phase") and rule.phase != state.phase:
        log.info("The NetState phase (%d) differed from the phase (%d) "
                 "specified by a rule in layer %s", state.phase, rule.phase,
                 layer_name)
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        log.info("The NetState level (%d) is above the min_level (%d) "
                 "specified by a rule in layer %s", state.level,
                 rule.min_level, layer_name)
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        log.info("The NetState level (%d) is above the max_level (%d) "
                 "specified by a rule in layer %s", state.level,
                 rule.max_level, layer_name)
        return False
    stages = set(state.stage)
    for stage in rule.stage:
        if stage not in stages:
            log.info("The NetState did not contain stage '%s' specified by a "
                     "rule in layer %s", stage, layer_name)
            return False
    for stage in rule.not_stage:
        if stage in stages:
            log.info("The NetState contained a not_stage '%s' specified by a "
                     "rule in layer %s", stage, layer_name)
            return False
    return True


def layer_included(state, layer_param):
    """Whether a layer's include/exclude rules admit NetState ``state``.

    No include rules: included unless an exclude rule matches; otherwise
    included if any include rule matches.
    """
    included = not len(layer_param.include)
    for rule in layer_param.exclude:
        if included and state_meets_rule(state, rule, layer_param.name):
            included = False
    for rule in layer_param.include:
        if not included and state_meets_rule(state, rule, layer_param.name):
            included = True
    return included


def filter_net(param, source=None):
    """Keep the layers whose include/exclude rules admit ``param.state``.

    Returns (filtered NetParameter, line of each kept layer or None).
    """
    filtered = caffe_pb2.NetParameter()
    filtered.CopyFrom(param)
    del filtered.layer[:]
    lines = []
    seen = {}
    for layer_param in param.layer:
        name = layer_param.name
        occurrence = seen.get(name, 0)
        seen[name] = occurrence + 1
        line = source.line(name, occurrence) if source else None
        if len(layer_param.include) and len(layer_param.exclude):
            raise _layer_error(
                layer_param, (source.path if source else None, line),
                "has both include and exclude rules",
                fix="specify either include rules or exclude rules, not both")
        if layer_included(param.state, layer_param):
            filtered.layer.add().CopyFrom(layer_param)
            lines.append(line)
    return filtered, lines


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
                raise _unknown_bottom(layer_param, (path, lines[i]), j, name,
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
