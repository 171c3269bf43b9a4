"""Layer: the unit of computation, with pycaffe's Python-layer method names.

A layer reads its configuration straight from its LayerParameter (the protobuf
message is the config; defaults live in the schema), owns its learnable
parameter blobs in ``self.blobs`` and implements four methods::

    setup(bottom, top)                    once: read/validate params, make blobs
    reshape(bottom, top)                  before every forward: set top shapes
    forward(bottom, top)                  compute tops from bottoms
    backward(top, propagate_down, bottom) param diffs +=, bottom diffs =

``bottom`` and ``top`` are lists of :class:`~kaffe.core.blob.Blob`. The net
drives a layer through the template methods :meth:`Layer.SetUp`,
:meth:`Layer.Forward` and :meth:`Layer.Backward` (Caffe's names), which add the
blob-count contract and the loss weights around those four.

A user's Python layer (``type: "Python"``) subclasses this same class.
"""
import numpy as np

from .blob import Blob
from ..errors import KaffeConfigError, KaffeShapeError


# Layer types whose reshape depends on nothing but the bottoms' shapes and
# the layer's own fixed parameters: Layer.Forward calls it only when a
# bottom or top shape changed since the last call.
SHAPE_ONLY_RESHAPE = frozenset({
    "Convolution", "Deconvolution", "Pooling", "InnerProduct", "ReLU",
    "PReLU", "Sigmoid", "TanH", "BatchNorm", "Scale", "Eltwise", "Softmax",
    "LRN", "Concat", "Split", "Dropout"})


class Layer:
    """Base class of every layer, built-in or user-written.

    Class attributes state the blob-count contract (-1 = no constraint), as
    Caffe's ExactNumBottomBlobs() & co do.

    Attributes:
        layer_param: the caffe_pb2.LayerParameter this layer was built from.
        type: the registered type name ("Convolution").
        phase: kaffe.TRAIN or kaffe.TEST.
        blobs: the learnable parameter blobs.
        param_propagate_down: per param blob, whether backward computes its diff.
        geometry: the window geometry (ConvGeometry / PoolGeometry from
            kaffe.ops.geometry) for Convolution, Deconvolution, Im2col and
            Pooling after setup; None for other layers.
    """

    type = ""
    # The (bottom shapes, top shapes) the last reshape left, for the layer
    # types of SHAPE_ONLY_RESHAPE, and (Blob.reshapes, bottoms, tops) when
    # Forward last compared them.
    _reshaped_for = None
    _checked = None
    exact_num_bottom_blobs = -1
    min_bottom_blobs = -1
    max_bottom_blobs = -1
    exact_num_top_blobs = -1
    min_top_blobs = -1
    max_top_blobs = -1
    equal_num_bottom_top_blobs = False
    # If True, the net creates anonymous tops up to the required count.
    auto_top_blobs = False
    # Whether backward may be called: the net clears it for layers its
    # analysis exempts from backward, so that forward can skip keeping what
    # only backward reads (argmax masks, saved inputs). A layer on its own
    # keeps everything.
    needs_backward = True
    # How many elements one scratch array of the layer's ops may take (None:
    # as fast as possible): the net sets LEAN_WORKSPACE_ELEMENTS while it
    # releases intermediates (lean inference), and Convolution then
    # unfolds an image by bands of output rows.
    workspace_limit = None
    # The array module the layer's blobs are made with (the net sets its own).
    xp = np
    # The sliding-window geometry a layer publishes for the net's readers
    # (kaffe.ops.geometry.ConvGeometry or PoolGeometry), set by setup; None
    # for layers without one.
    geometry = None

    def __init__(self, layer_param=None, *, dtype=np.float32, source=None):
        from ..proto import caffe_pb2
        if layer_param is None:
            layer_param = caffe_pb2.LayerParameter(type=self.type)
        self.layer_param = layer_param
        self.phase = layer_param.phase
        self.dtype = np.dtype(dtype)
        self.source = source
        self.blobs = []
        for proto in layer_param.blobs:
            blob = Blob(dtype=self.dtype)
            blob.from_proto(proto)
            self.blobs.append(blob)
        self.param_propagate_down = []
        self.loss_weights = []

    # -- what subclasses implement ------------------------------------------
    def setup(self, bottom, top):
        """Read and check parameters, create and fill ``self.blobs``."""

    def reshape(self, bottom, top):
        """Set top shapes from bottom shapes (called before every forward)."""
        raise TypeError(f"{type(self).__name__} does not define reshape()")

    def forward(self, bottom, top):
        """Compute the tops."""
        raise TypeError(f"{type(self).__name__} does not define forward()")

    def backward(self, top, propagate_down, bottom):
        """Accumulate param diffs, write the bottom diffs asked for."""
        raise TypeError(f"{type(self).__name__} does not define backward()")

    def allow_force_backward(self, bottom_index):
        """Whether force_backward may ask for this bottom's gradient."""
        return True

    # -- the template methods the net calls ------------------------------------
    def SetUp(self, bottom, top):
        """Check blob counts, setup, reshape, then install the loss weights."""
        self.check_blob_counts(bottom, top)
        self.setup(bottom, top)
        self.reshape(bottom, top)
        self._set_loss_weights(top)

    def Forward(self, bottom, top):
        """Reshape, forward, and return this layer's weighted loss.

        Layer types whose reshape reads nothing but the bottoms' shapes
        (``SHAPE_ONLY_RESHAPE``) skip it while the bottoms and tops keep
        the shapes of the last call: per-layer overhead that dominates
        nets running in well under a millisecond (issue 12)."""
        if self.type in SHAPE_ONLY_RESHAPE:
            checked = self._checked
            # No blob took a new shape since the last check of these same
            # blobs: their shapes are the ones checked then.
            if (checked is None or checked[0] != Blob.reshapes
                    or checked[1] != bottom or checked[2] != top):
                shapes = ([b.shape for b in bottom], [t.shape for t in top])
                if shapes != self._reshaped_for:
                    self.reshape(bottom, top)
                    self._reshaped_for = ([b.shape for b in bottom],
                                          [t.shape for t in top])
                self._checked = (Blob.reshapes, list(bottom), list(top))
        else:
            self.reshape(bottom, top)
        self.forward(bottom, top)
        if not self.loss_weights:
            return 0.0
        loss = 0.0
        for i, weight in enumerate(self.loss_weights):
            if weight:
                # The loss weights live in the top's diff (Caffe's convention);
                # refill them in case the top was reshaped.
                blob = top[i]
                blob.diff[...] = weight
                loss += weight * blob.data.sum(dtype=np.float64)
        return loss

    def Backward(self, top, propagate_down, bottom):
        """Run backward (the net only calls it when the layer needs it)."""
        self.backward(top, propagate_down, bottom)

    # -- helpers -------------------------------------------------------------
    def loss(self, top_index):
        """The loss weight of top ``top_index`` (0 if it is not a loss)."""
        if top_index < len(self.loss_weights):
            return self.loss_weights[top_index]
        return 0.0

    def set_loss(self, top_index, value):
        while len(self.loss_weights) <= top_index:
            self.loss_weights.append(0.0)
        self.loss_weights[top_index] = value

    def set_param_propagate_down(self, param_index, value):
        while len(self.param_propagate_down) <= param_index:
            self.param_propagate_down.append(True)
        self.param_propagate_down[param_index] = value

    def param_needs_backward(self, param_index):
        """Whether backward must compute the diff of ``self.blobs[param_index]``."""
        if param_index < len(self.param_propagate_down):
            return self.param_propagate_down[param_index]
        return True

    def canonical_axis(self, blob, axis, field):
        """``axis`` of ``blob`` mapped into [0, num_axes), or a located error."""
        n = blob.num_axes
        if not -n <= axis < n:
            raise self.shape_error(
                f"is out of range for the {n}-D input of shape "
                f"({', '.join(map(str, blob.shape))})", field=field,
                received=axis, expected=f"an axis in [{-n}, {n - 1}]")
        return axis + n if axis < 0 else axis

    def make_blob(self, shape):
        """A new parameter-sized blob in this layer's dtype, made with its
        array module (``xp``: the net's)."""
        return Blob(shape, dtype=self.dtype, xp=self.xp)

    def to_proto(self, write_diff=False):
        """A copy of the layer's parameter with the current blobs in it."""
        from ..proto import caffe_pb2
        param = caffe_pb2.LayerParameter()
        param.CopyFrom(self.layer_param)
        del param.blobs[:]
        for blob in self.blobs:
            blob.to_proto(param.blobs.add(), write_diff=write_diff)
        return param

    @property
    def name(self):
        return self.layer_param.name

    def where(self):
        """(file, line) of the layer's definition, or (None, None)."""
        return self.source if self.source else (None, None)

    def config_error(self, problem, field=None, **details):
        """A KaffeConfigError located at this layer (raise it)."""
        return self._error(KaffeConfigError, problem, field, details)

    def shape_error(self, problem, field=None, **details):
        """A KaffeShapeError located at this layer (raise it)."""
        return self._error(KaffeShapeError, problem, field, details)

    def refuse_in_place(self, bottom, top):
        """Raise a config error if top[0] is bottom[0] (for layers whose top
        cannot share the bottom's memory)."""
        if top and bottom and top[0] is bottom[0]:
            raise self.config_error(
                "cannot run in place", field="top",
                received=self.layer_param.top[0] if self.layer_param.top
                else "the bottom blob",
                fix="give the top a name different from the bottom")

    def _error(self, cls, problem, field, details):
        file, line = self.where()
        return cls(problem, file=file, line=line, layer=self.name,
                   layer_type=self.type or self.layer_param.type, field=field,
                   **details)

    def no_gradient_error(self, bottom_index, what):
        """The error for a backward request into an input that has no
        gradient (labels, indices, selectors); ``what`` names the input."""
        n = len(self.layer_param.bottom) or bottom_index + 1
        flags = " ".join(
            f"propagate_down: {'false' if i == bottom_index else 'true'}"
            for i in range(n))
        return self.config_error(
            f"asks for the gradient of {what} (bottom[{bottom_index}]), "
            f"which {self.type} cannot compute", field="propagate_down",
            received=f"true for bottom[{bottom_index}]",
            expected=f"false for bottom[{bottom_index}]",
            fix=f"add '{flags}' to the layer, or feed that input from a "
                "layer that needs no gradient (and drop force_backward)")

    def check_blob_counts(self, bottom, top):
        """Enforce the class's bottom/top count contract."""
        def check(n, kind, exact, low, high):
            if exact >= 0 and n != exact:
                expected = f"exactly {exact}"
            elif low >= 0 and n < low:
                expected = f"at least {low}"
            elif high >= 0 and n > high:
                expected = f"at most {high}"
            else:
                return
            raise self.config_error(
                f"takes {expected} {kind} blob(s)", field=kind,
                received=f"{n} {kind} blob(s)", expected=expected,
                fix=f"list {expected} '{kind}' entries in the layer")

        check(len(bottom), "bottom", self.exact_num_bottom_blobs,
              self.min_bottom_blobs, self.max_bottom_blobs)
        check(len(top), "top", self.exact_num_top_blobs, self.min_top_blobs,
              self.max_top_blobs)
        if self.equal_num_bottom_top_blobs and len(bottom) != len(top):
            raise self.config_error(
                "produces one top blob for each bottom blob", field="top",
                received=f"{len(bottom)} bottoms and {len(top)} tops",
                fix="give the layer as many tops as bottoms")

    def _set_loss_weights(self, top):
        weights = list(self.layer_param.loss_weight)
        if not weights:
            return
        if len(weights) != len(top):
            raise self.config_error(
                "must be unspecified or specified once per top blob",
                field="loss_weight", received=f"{len(weights)} value(s)",
                expected=f"{len(top)} (one per top)",
                fix="add a loss_weight line for every top (0 for non-loss tops)")
        for i, weight in enumerate(weights):
            if weight != 0:
                self.set_loss(i, weight)
                top[i].diff[...] = weight

    def __repr__(self):
        return f"<{type(self).__name__} '{self.name}'>"
