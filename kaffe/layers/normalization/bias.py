"""Bias: add a blob broadcast along the axes it does not cover.

Also holds the broadcasting rules that Scale shares: an operand of shape
bottom.shape[axis:axis + k] applies to bottom viewed as (outer, dim, inner).
"""
import logging

from ...core.backend import array_module
from ...core.filler import fill
from ...core.layer import Layer
from ...core.registry import register_layer

log = logging.getLogger("kaffe")


def learned_shape(layer, bottom, axis, num_axes, prefix):
    """The shape of a learned operand: bottom.shape[axis : axis + num_axes].

    ``num_axes`` −1 means every axis from ``axis`` on, 0 a scalar. Errors
    name ``<prefix>.axis`` and ``<prefix>.num_axes``.
    """
    axis = layer.canonical_axis(bottom, axis, f"{prefix}.axis")
    if num_axes < -1:
        raise layer.config_error(
            "must be >= 0, or -1 for every axis from axis on",
            field=f"{prefix}.num_axes", received=num_axes,
            expected="-1, 0 or a positive axis count")
    if num_axes >= 0 and axis + num_axes > bottom.num_axes:
        raise layer.shape_error(
            f"runs past the {bottom.num_axes}-D input of shape "
            f"({', '.join(map(str, bottom.shape))}) from axis {axis}",
            field=f"{prefix}.num_axes", received=num_axes,
            expected=f"at most {bottom.num_axes - axis}")
    end = bottom.num_axes if num_axes == -1 else axis + num_axes
    return bottom.shape[axis:end]


def broadcast_dims(layer, bottom, operand, axis, axis_field, what):
    """(outer, dim, inner) for applying ``operand`` to ``bottom`` at ``axis``.

    The operand's shape must equal bottom's dims from ``axis`` on (a scalar,
    shape (), applies everywhere and ignores ``axis``, as in Caffe).
    ``what`` names the operand in errors ("bottom[1]", "blobs[0]").
    """
    k = operand.num_axes
    axis = 0 if k == 0 else layer.canonical_axis(bottom, axis, axis_field)
    covered = bottom.shape[axis:axis + k]
    if axis + k > bottom.num_axes or covered != operand.shape:
        raise layer.shape_error(
            f"shape must equal the dims of bottom[0] "
            f"({', '.join(map(str, bottom.shape))}) from axis {axis} on",
            field=what, received=operand.shape,
            expected=f"({', '.join(map(str, covered))})")
    return (bottom.count_axes(0, axis), operand.count,
            bottom.count_axes(axis + k))


@register_layer("Bias")
class BiasLayer(Layer):
    """top = bottom[0] + b, with b broadcast over the axes it does not cover.

    Reads bias_param: axis (1), num_axes (1; −1 = every axis from axis on,
    0 = a scalar), filler (constant 0).
    One bottom: b is the learned blob [0] of shape
    bottom.shape[axis : axis + num_axes]. Two bottoms: b is bottom[1], whose
    shape must equal bottom[0]'s dims from axis on (shape () = a scalar);
    its gradient is the top diff summed over the broadcast axes.
    Shape: the top has bottom[0]'s shape. Runs in place.
    """

    min_bottom_blobs = 1
    max_bottom_blobs = 2
    exact_num_top_blobs = 1

    def setup(self, bottom, top):
        p = self.layer_param.bias_param
        if len(bottom) > 1:
            return
        if self.blobs:
            log.info("Skipping parameter initialization")
            return
        shape = learned_shape(self, bottom[0], p.axis, p.num_axes,
                              "bias_param")
        bias = self.make_blob(shape)
        fill(bias, p.filler, layer=self, field="bias_param.filler")
        self.blobs.append(bias)

    def _bias(self, bottom):
        return bottom[1] if len(bottom) > 1 else self.blobs[0]

    def reshape(self, bottom, top):
        self.dims = broadcast_dims(
            self, bottom[0], self._bias(bottom),
            self.layer_param.bias_param.axis, "bias_param.axis",
            "bottom[1]" if len(bottom) > 1 else "blobs[0]")
        if top[0] is not bottom[0]:
            top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        outer, dim, inner = self.dims
        b = self._bias(bottom).data.reshape(1, dim, 1)
        x = bottom[0].data.reshape(outer, dim, inner)
        y = top[0].data.reshape(outer, dim, inner)
        array_module(x).add(x, b, out=y)

    def backward(self, top, propagate_down, bottom):
        outer, dim, inner = self.dims
        dy = top[0].diff.reshape(outer, dim, inner)
        learned = len(bottom) == 1
        if (learned and self.param_needs_backward(0)) or (
                not learned and propagate_down[1]):
            grad = dy.sum(axis=(0, 2)).reshape(self._bias(bottom).shape)
            if learned:
                self.blobs[0].diff[...] += grad
            else:
                bottom[1].diff[...] = grad
        # In place, the bottom diff already is the top diff.
        if propagate_down[0] and top[0] is not bottom[0]:
            bottom[0].diff[...] = top[0].diff
