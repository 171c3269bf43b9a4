"""Deconvolution: the transpose of Convolution (learned upsampling)."""
from ...ops.conv import (conv_backward_data, conv_backward_weights,
                         conv_bias_backward, conv_forward)
from ...core.registry import register_layer
from .base_conv import FIELD, BaseConvolutionLayer


@register_layer("Deconvolution")
class DeconvolutionLayer(BaseConvolutionLayer):
    """The convolution with forward and backward-data swapped.

    Each input cell, times the filter bank of its channel, is added into the
    output at stride spacing: top[n, m, o] = b[m] + Σ_{c in m's group, i, k
    with i·stride + k·dilation − pad = o} x[n, c, i]·w[c, m mod (M/group),
    k]. Overlapping windows add up.

    Reads convolution_param exactly as Convolution does (num_output,
    kernel_size | kernel_h/kernel_w, stride, pad, dilation, group,
    bias_term, weight_filler, bias_filler — both constant 0 by default —,
    axis), with the roles of the channel counts reversed.
    Blobs: [0] weight (C, num_output/group, *kernel); [1] bias (num_output,).
    Shape: out = stride·(in − 1) + dilation·(k − 1) + 1 − 2·pad per axis.

    Bilinear upsampling by an integer factor f (FCN's recipe): group = C =
    num_output, kernel_size 2f − f % 2, stride f, pad ceil((f − 1) / 2),
    weight_filler { type: "bilinear" }, bias_term false and
    ``param { lr_mult: 0 }`` to keep the weights fixed.
    """

    reverse_dimensions = True

    def compute_output_shape(self, spatial):
        out = self.geometry.output_spatial(spatial)
        for i, n in enumerate(out):
            if n < 1:
                full = n + 2 * self.pad[i]
                raise self.shape_error(
                    f"padding leaves no output along spatial axis {i} "
                    f"(stride·(in − 1) + dilation·(k − 1) + 1 = {full}, "
                    f"minus 2·pad = {n})",
                    field=f"{FIELD}.pad", received=self.pad,
                    expected=f"2·pad < {full} along axis {i}",
                    fix="use less padding, or a larger kernel, stride or "
                        "input")
        return out

    def forward(self, bottom, top):
        # The deconvolution's input plays the convolution's output (dy).
        w = self._filters(self.blobs[0].data)
        for x_blob, y_blob in zip(bottom, top):
            y_shape = self._as_nc(y_blob.data).shape
            y = conv_backward_data(self._as_nc(x_blob.data), w, y_shape,
                                   **self._geometry())
            if self.bias_term:
                y += self.blobs[1].data.reshape(
                    (-1,) + (1,) * (y.ndim - 2))
            y_blob.data[...] = y.reshape(y_blob.shape)

    def backward(self, top, propagate_down, bottom):
        w = self._filters(self.blobs[0].data)
        need_w = self.param_needs_backward(0)
        need_b = self.bias_term and self.param_needs_backward(1)
        for i, (y_blob, x_blob) in enumerate(zip(top, bottom)):
            dy = self._as_nc(y_blob.diff)
            if need_b:
                conv_bias_backward(dy, self.blobs[1].diff)
            if need_w:
                # The convolution's input is dy, its output gradient is x.
                conv_backward_weights(self._as_nc(x_blob.data), dy,
                                      self._filters(self.blobs[0].diff),
                                      **self._geometry())
            if propagate_down[i]:
                if x_blob is y_blob:
                    dx = conv_forward(dy, w, **self._geometry())
                    x_blob.diff[...] = dx.reshape(x_blob.shape)
                else:
                    conv_forward(dy, w, **self._geometry(),
                                 out=self._as_nc(x_blob.diff))
