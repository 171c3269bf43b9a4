"""Scale: multiply by a blob broadcast along the axes it does not cover."""
import logging

from ...core.backend import array_module
from ...core.blob import Blob
from ...core.filler import fill
from ...core.layer import Layer
from ...core.registry import register_layer
from ...ops.ufunc_buffer import rows_unbuffered
from ...proto import caffe_pb2
from .bias import broadcast_dims, learned_shape

log = logging.getLogger("kaffe")


@register_layer("Scale")
class ScaleLayer(Layer):
    """top = bottom[0] · s (+ b), s and b broadcast as in Bias.

    Reads scale_param: axis (1), num_axes (1; −1 = every axis from axis on,
    0 = a scalar), filler (constant 1), bias_term (false), bias_filler
    (constant 0).
    One bottom: s is the learned blob [0] of shape
    bottom.shape[axis : axis + num_axes]. Two bottoms: s is bottom[1], whose
    shape must equal bottom[0]'s dims from axis on (shape () = a scalar).
    Blobs: [s (one bottom only), b (bias_term only)]; b has the shape of s.
    Shape: the top has bottom[0]'s shape. Runs in place: the forward then
    keeps a copy of the input for the gradient of s, as Caffe does (only
    when that gradient may be computed: see ``needs_backward``).

    Gradients: ds = Σ dy·x over the broadcast axes; db = Σ dy; dx = dy·s.
    Caffe quirk, reproduced: for a learned s the gradient is accumulated
    into its diff, except when the input has no axes before ``axis``
    (outer = 1) and s is not a scalar applied to several elements — then
    Caffe overwrites s's diff (its BLAS call uses beta 0 there).
    """

    min_bottom_blobs = 1
    max_bottom_blobs = 2
    exact_num_top_blobs = 1

    def setup(self, bottom, top):
        p = self.layer_param.scale_param
        if len(bottom) > 1:
            # Check bottom[1] before the bias is shaped from it.
            broadcast_dims(self, bottom[0], bottom[1], p.axis,
                           "scale_param.axis", "bottom[1]")
        elif self.blobs:
            log.info("Skipping parameter initialization")
        else:
            shape = learned_shape(self, bottom[0], p.axis, p.num_axes,
                                  "scale_param")
            scale = self.make_blob(shape)
            filler = p.filler
            if not p.HasField("filler"):
                filler = caffe_pb2.FillerParameter(type="constant", value=1)
            fill(scale, filler, layer=self, field="scale_param.filler")
            self.blobs.append(scale)
        self.bias_index = None
        if p.bias_term:
            self._setup_bias(bottom, p)

    def _setup_bias(self, bottom, p):
        # Caffe builds an inner Bias layer from a copy of this layer's
        # parameter; it takes over the last stored blob when there is one
        # more than the scale needs, else it makes a new bias (which, being
        # built from the copied parameter, starts from its first stored blob
        # if the parameter holds any).
        if len(self.blobs) + len(bottom) >= 3:
            self.bias_index = len(self.blobs) - 1
            return
        if self.layer_param.blobs:
            bias = Blob(dtype=self.dtype)
            bias.from_proto(self.layer_param.blobs[0])
        else:
            num_axes = bottom[1].num_axes if len(bottom) > 1 else p.num_axes
            bias = self.make_blob(learned_shape(
                self, bottom[0], p.axis, num_axes, "scale_param"))
            fill(bias, p.bias_filler, layer=self,
                 field="scale_param.bias_filler")
        self.blobs.append(bias)
        self.bias_index = len(self.blobs) - 1

    def _scale(self, bottom):
        return bottom[1] if len(bottom) > 1 else self.blobs[0]

    def reshape(self, bottom, top):
        axis = self.layer_param.scale_param.axis
        self.dims = broadcast_dims(
            self, bottom[0], self._scale(bottom), axis, "scale_param.axis",
            "bottom[1]" if len(bottom) > 1 else "blobs[0]")
        if self.bias_index is not None:
            self.bias_dims = broadcast_dims(
                self, bottom[0], self.blobs[self.bias_index], axis,
                "scale_param.axis", f"blobs[{self.bias_index}]")
        if top[0] is not bottom[0]:
            top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        outer, dim, inner = self.dims
        x = bottom[0].data.reshape(outer, dim, inner)
        y = top[0].data.reshape(outer, dim, inner)
        xp = array_module(x)
        # In place, the product overwrites the input that the gradient of s
        # reads: keep a copy, but only when that gradient will be computed.
        self.saved_input = (x.copy() if top[0] is bottom[0]
                            and self._scale_gradient_may_run(bottom) else None)
        s = self._scale(bottom).data.reshape(1, dim, 1)
        rows = inner
        if self.bias_index is not None:
            rows = min(rows, self.bias_dims[2])
        with rows_unbuffered(rows):
            xp.multiply(x, s, out=y)
            if self.bias_index is not None:
                outer, dim, inner = self.bias_dims
                b = self.blobs[self.bias_index].data.reshape(1, dim, 1)
                y = top[0].data.reshape(outer, dim, inner)
                y += b

    def _scale_gradient_may_run(self, bottom):
        """Whether backward may compute the gradient of s (which reads the
        input): a learned s whose lr_mult is not 0, or a bottom[1] s (its
        propagate_down is only known at backward)."""
        if not self.needs_backward:
            return False
        return len(bottom) > 1 or self.param_needs_backward(0)

    def backward(self, top, propagate_down, bottom):
        if self.bias_index is not None and self.param_needs_backward(
                len(self.blobs) - 1):
            outer, dim, inner = self.bias_dims
            bias = self.blobs[self.bias_index]
            dy = top[0].diff.reshape(outer, dim, inner)
            bias.diff[...] += dy.sum(axis=(0, 2)).reshape(bias.shape)
        outer, dim, inner = self.dims
        learned = len(bottom) == 1
        scale = self._scale(bottom)
        dy = top[0].diff.reshape(outer, dim, inner)
        if (learned and self.param_needs_backward(0)) or (
                not learned and propagate_down[1]):
            x = (self.saved_input if top[0] is bottom[0]
                 else bottom[0].data.reshape(outer, dim, inner))
            grad = (dy * x).sum(axis=(0, 2)).reshape(scale.shape)
            overwrites = outer == 1 and (dim > 1 or inner == 1)
            if learned and not overwrites:
                scale.diff[...] += grad
            else:
                scale.diff[...] = grad
        if propagate_down[0]:
            s = scale.data.reshape(1, dim, 1)
            dx = bottom[0].diff.reshape(outer, dim, inner)
            array_module(dy).multiply(dy, s, out=dx)
