"""The depthwise convolutions of the MobileNet / ShuffleNet Caffe forks.

Two forks named the same operation differently:

- ``DepthwiseConvolution`` (yonghenglh6/DepthwiseConvolution, used by
  MobileNet-YOLO, MobileNet-SSD variants): a Convolution layer with a faster
  GPU kernel; its CPU path *is* Caffe's Convolution, so it reads
  convolution_param exactly as Convolution does (num_output, group, …).
- ``ConvolutionDepthwise`` (the ``conv_dw_layer.cpp`` fork used by
  ShuffleNet and MobileNet prototxts): one k×k filter per input channel
  whatever num_output and group say; the output has the input's channels.

Both run on :mod:`kaffe.ops.depthwise` when the convolution is depthwise
(one filter per channel), the general Convolution path otherwise.
"""
import dataclasses

from ...core.layer import Layer
from ...core.registry import register_layer
from ...ops.depthwise import (depthwise_backward, depthwise_bias_backward,
                              depthwise_forward)
from .base_conv import conv_params
from .conv_geometry import FIELD, conv_output_shape, read_conv_geometry
from .convolution import ConvolutionLayer


@register_layer("DepthwiseConvolution")
class DepthwiseConvolutionLayer(ConvolutionLayer):
    """Convolution under the name of yonghenglh6's DepthwiseConvolution fork.

    Reads convolution_param as Convolution (the fork's prototxts set
    group = num_output = the input channels). When that holds for a 2-D
    input the direct depthwise kernel runs; otherwise it is Convolution.
    """

    def _depthwise(self, bottom, top):
        return (self.num_spatial_axes == 2 and self.channel_axis == 1
                and self.group == self.channels == self.num_output
                and all(t is not b for t, b in zip(top, bottom)))

    def forward(self, bottom, top):
        if not self._depthwise(bottom, top):
            super().forward(bottom, top)
            return
        b = self.blobs[1].data if self.bias_term else None
        for x, y in zip(bottom, top):
            depthwise_forward(x.data, self.blobs[0].data, b, self.stride,
                              self.pad, self.dilation, out=y.data)

    def backward(self, top, propagate_down, bottom):
        if not self._depthwise(bottom, top):
            super().backward(top, propagate_down, bottom)
            return
        _backward(self, top, propagate_down, bottom)


def _backward(layer, top, propagate_down, bottom):
    """Depthwise backward of ``layer``'s blobs: param diffs +=, bottom
    diffs =."""
    need_w = layer.param_needs_backward(0)
    need_b = layer.bias_term and layer.param_needs_backward(1)
    for i, (y, x) in enumerate(zip(top, bottom)):
        if need_b:
            layer.blobs[1].diff += depthwise_bias_backward(y.diff)
        if not (need_w or propagate_down[i]):
            continue
        dx, dw = depthwise_backward(y.diff, x.data, layer.blobs[0].data,
                                    layer.stride, layer.pad, layer.dilation,
                                    need_dx=propagate_down[i],
                                    need_dw=need_w)
        if need_w:
            layer.blobs[0].diff += dw
        if propagate_down[i]:
            x.diff[...] = dx


@register_layer("ConvolutionDepthwise")
class ConvolutionDepthwiseLayer(Layer):
    """y[n, c] = b[c] + w[c] ⋆ x[n, c]: one k×k filter per input channel.

    From the ``conv_dw_layer.cpp`` Caffe fork (ShuffleNet and MobileNet
    prototxts; OpenCV 4.x reads the type as a Convolution). Reads
    convolution_param: kernel_size | kernel_h/kernel_w, stride |
    stride_h/stride_w (1), pad | pad_h/pad_w (0), dilation (1), bias_term
    (true), weight_filler, bias_filler. num_output and group are not read:
    the output has the input's C channels, as in the fork.
    Blobs: [0] weight (C, 1, kh, kw); [1] bias (C,).
    Shape: (N, C, H, W) → (N, C, H_out, W_out), out = (in + 2·pad −
    (dilation·(k − 1) + 1)) / stride + 1 (floor).
    The forward sums the taps in the fork's order (bit-identical to its CPU
    loop). Backward: param diffs accumulate, the bottom diff is written.

    Publishes ``geometry``, a :class:`~kaffe.ops.geometry.ConvGeometry`
    with group = num_output = C, and Convolution's attributes
    (``kernel_shape``, ``stride``, ``pad``, ``dilation``, ``channels``,
    ``num_output``, ``group``, ``bias_term``).
    """

    exact_num_bottom_blobs = 1
    exact_num_top_blobs = 1

    def setup(self, bottom, top):
        p = self.layer_param.convolution_param
        x = bottom[0]
        if x.num_axes != 4:
            raise self.shape_error(
                "input must have 4 axes (num, channels, height, width)",
                field="bottom", received=x.shape)
        if p.axis != 1:
            raise self.config_error(
                "must be 1 (the fork convolves (N, C, H, W) inputs)",
                field=f"{FIELD}.axis", received=p.axis)
        self.refuse_in_place(bottom, top)
        channels = x.shape[1]
        # The fork's geometry: one filter per channel whatever num_output
        # and group say.
        self.geometry = dataclasses.replace(
            read_conv_geometry(self, x), group=channels, num_output=channels)
        self.channel_axis = 1
        self.num_spatial_axes = 2
        self.kernel_shape = self.geometry.kernel
        self.stride = self.geometry.stride
        self.pad = self.geometry.pad
        self.dilation = self.geometry.dilation
        self.channels = self.num_output = self.group = channels
        self.bias_term = p.bias_term
        conv_params(self, (self.channels, 1) + self.kernel_shape,
                    (self.channels,))

    def reshape(self, bottom, top):
        x = bottom[0]
        if x.num_axes != 4 or x.shape[1] != self.channels:
            raise self.shape_error(
                "input must stay (N, C, H, W) with the channels the weights "
                "were made for", field="bottom", received=x.shape,
                expected=f"(N, {self.channels}, H, W)")
        out = conv_output_shape(self, self.geometry, x.shape[2:])
        top[0].reshape(x.shape[:2] + out)

    def forward(self, bottom, top):
        b = self.blobs[1].data if self.bias_term else None
        depthwise_forward(bottom[0].data, self.blobs[0].data, b, self.stride,
                          self.pad, self.dilation, out=top[0].data,
                          fork_order=True)

    def backward(self, top, propagate_down, bottom):
        _backward(self, top, propagate_down, bottom)
