"""Convolution: learned filters slid over the input (im2col + GEMM)."""
from ...ops.conv import (conv_backward_data, conv_backward_weights,
                         conv_bias_backward, conv_forward)
from ...core.registry import register_layer
from .base_conv import BaseConvolutionLayer
from .conv_geometry import conv_output_shape


@register_layer("Convolution")
class ConvolutionLayer(BaseConvolutionLayer):
    """top[n, m] = b[m] + Σ over the C/group channels of m's group of w[m, c] ⋆ x[n, c].

    Each of the ``num_output`` filters spans all C/group input channels of
    its group (one k×k slice per channel, summed), so the top has num_output
    channels: 20 filters then 50 filters give (N, 50, H, W), not 1000 maps.

    Reads convolution_param: num_output, kernel_size | kernel_h/kernel_w,
    stride | stride_h/stride_w (1), pad | pad_h/pad_w (0), dilation (1),
    group (1), bias_term (true), weight_filler, bias_filler (both constant 0
    by default!), axis (1: dims before it are batch, after it spatial, any
    number of them).
    Shape: out = (in + 2·pad − (dilation·(k − 1) + 1)) / stride + 1 (floor).
    """

    def compute_output_shape(self, spatial):
        return conv_output_shape(self, self.geometry, spatial)

    def forward(self, bottom, top):
        w = self._filters(self.blobs[0].data)
        b = self.blobs[1].data if self.bias_term else None
        for x_blob, y_blob in zip(bottom, top):
            x = self._as_nc(x_blob.data)
            if y_blob is x_blob:
                # In place (Caffe would read overwritten inputs): compute
                # aside, then copy.
                y = conv_forward(x, w, b, **self._geometry())
                y_blob.data[...] = y.reshape(y_blob.shape)
            else:
                conv_forward(x, w, b, **self._geometry(),
                             out=self._as_nc(y_blob.data))

    def backward(self, top, propagate_down, bottom):
        w = self._filters(self.blobs[0].data)
        need_w = self.param_needs_backward(0)
        need_b = self.bias_term and self.param_needs_backward(1)
        for i, (y_blob, x_blob) in enumerate(zip(top, bottom)):
            dy = self._as_nc(y_blob.diff)
            if need_b:
                conv_bias_backward(dy, self.blobs[1].diff)
            if need_w:
                conv_backward_weights(dy, self._as_nc(x_blob.data),
                                      self._filters(self.blobs[0].diff),
                                      **self._geometry())
            if propagate_down[i]:
                dx = conv_backward_data(dy, w, self._as_nc(x_blob.data).shape,
                                        **self._geometry())
                x_blob.diff[...] = dx.reshape(x_blob.shape)
