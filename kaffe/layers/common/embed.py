"""Embed: a learned lookup table (one-hot input × weight matrix)."""
import logging

from ...core.backend import array_module
from ...core.filler import fill
from ...core.layer import Layer
from ...core.registry import register_layer

log = logging.getLogger("kaffe")

FIELD = "embed_param"


@register_layer("Embed")
class EmbedLayer(Layer):
    """top[…, :] = W[bottom[…], :] (+ b): each input value picks a row of W.

    Reads embed_param: num_output, input_dim (the vocabulary size; valid
    indices are 0 … input_dim − 1), bias_term (true), weight_filler,
    bias_filler (both constant 0 by default).
    Blobs: [0] weight (input_dim, num_output) — InnerProduct's transposed;
    [1] bias (num_output,).
    Shape: any bottom → bottom.shape + (num_output,).
    The bottom holds indices as floats: each must be an integer in
    [0, input_dim) (Caffe only checks that in debug builds). Backward adds
    each top gradient row onto the weight row it was read from (repeated
    indices accumulate); there is no gradient for the indices.
    """

    exact_num_bottom_blobs = 1
    exact_num_top_blobs = 1

    def setup(self, bottom, top):
        p = self.layer_param.embed_param
        for name in ("num_output", "input_dim"):
            if getattr(p, name) <= 0:
                raise self.config_error(
                    "must be > 0", field=f"{FIELD}.{name}",
                    received=getattr(p, name),
                    fix="set num_output to the embedding size and input_dim "
                        "to the vocabulary size")
        self.num_output = p.num_output
        self.input_dim = p.input_dim
        self.bias_term = p.bias_term
        weight_shape = (self.input_dim, self.num_output)
        if self.blobs:
            self._check_given_blobs(weight_shape)
            log.info("Skipping parameter initialization")
            return
        weight = self.make_blob(weight_shape)
        fill(weight, p.weight_filler, layer=self,
             field=f"{FIELD}.weight_filler")
        self.blobs.append(weight)
        if self.bias_term:
            bias = self.make_blob((self.num_output,))
            fill(bias, p.bias_filler, layer=self, field=f"{FIELD}.bias_filler")
            self.blobs.append(bias)

    def _check_given_blobs(self, weight_shape):
        expected = 1 + int(self.bias_term)
        if len(self.blobs) != expected:
            raise self.config_error(
                "has the wrong number of weight blobs", field="blobs",
                received=len(self.blobs), expected=expected)
        if self.blobs[0].shape != weight_shape:
            raise self.shape_error(
                "has the wrong weight shape (input_dim, num_output)",
                field="blobs[0]", received=self.blobs[0].shape,
                expected=weight_shape)
        if self.bias_term and self.blobs[1].shape != (self.num_output,):
            raise self.shape_error(
                "has the wrong bias shape", field="blobs[1]",
                received=self.blobs[1].shape, expected=(self.num_output,))

    def allow_force_backward(self, bottom_index):
        return False

    def reshape(self, bottom, top):
        top[0].reshape(bottom[0].shape + (self.num_output,))

    def _indices(self, bottom):
        """The bottom's values as int indices, checked."""
        values = bottom[0].data.reshape(-1)
        xp = array_module(values)
        good = (values >= 0) & (values < self.input_dim) & (
            values == xp.trunc(values))
        if not good.all():
            raise self.shape_error(
                "input values must be integer indices in [0, input_dim)",
                field="bottom", received=values[~good][0].tolist(),
                expected=f"an integer in [0, {self.input_dim - 1}]",
                fix="check the input, or raise embed_param.input_dim to "
                    "the vocabulary size")
        return values.astype(xp.int64)

    def forward(self, bottom, top):
        rows = self._indices(bottom)
        y = top[0].data.reshape(rows.shape[0], self.num_output)
        xp = array_module(y)
        xp.take(self.blobs[0].data, rows, axis=0, out=y)
        if self.bias_term:
            y += self.blobs[1].data

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            raise self.no_gradient_error(0, "the input indices")
        dy = top[0].diff.reshape(-1, self.num_output)
        if self.param_needs_backward(0):
            xp = array_module(dy)
            # In input order, so repeated indices add up as in Caffe.
            xp.add.at(self.blobs[0].diff, self._indices(bottom), dy)
        if self.bias_term and self.param_needs_backward(1):
            self.blobs[1].diff[...] += dy.sum(axis=0)
