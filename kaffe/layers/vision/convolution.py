"""Convolution: learned filters slid over the input (im2col + GEMM)."""
import numpy as np

from ...ops.conv import (SavedColumns, WinogradFilters, conv_backward,
                         conv_bias_backward, conv_forward)
from ...ops.conv_small import SmallConvForward
from ...core.registry import register_layer
from ...proto import caffe_pb2
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

    While training (phase TRAIN, a backward to come that computes the
    filter gradient: ``needs_backward``), the forward's im2col columns of
    each input are kept for that gradient when they take at most
    ``kaffe.ops.conv.KEEP_COLUMNS_MAX_BYTES`` (16 MiB: LeNet's, not
    AlexNet's conv2 at batch 16), instead of unfolding the input again
    (see :class:`~kaffe.ops.conv.SavedColumns`). Otherwise nothing is kept.
    """

    # The SavedColumns of each bottom, or None when nothing is kept.
    _saved = None
    # The filters' Winograd transforms (forward, backward-data), made on
    # first use and kept while the weights do not change.
    _winograd = None
    # (input shape, its SmallConvForward or None): small inputs' forward
    # with the plan's Python work done once (issue 12).
    _small = (None, None)

    def _transforms(self):
        if self._winograd is None:
            self._winograd = (WinogradFilters(), WinogradFilters())
        return self._winograd

    def compute_output_shape(self, spatial):
        return conv_output_shape(self, self.geometry, spatial)

    def _saved_columns(self, count):
        """One SavedColumns per bottom while training, else None (and any
        kept columns dropped)."""
        if not (self.needs_backward and self.phase == caffe_pb2.TRAIN
                and self.param_needs_backward(0)):
            self._saved = None
        elif self._saved is None or len(self._saved) != count:
            self._saved = [SavedColumns() for _ in range(count)]
        return self._saved

    def _small_forward(self, x_blob):
        """The SmallConvForward for this input, or None (it applies to
        N, C, *spatial NumPy inputs whose convolution is small)."""
        shape, small = self._small
        if shape != x_blob.shape:
            small = None
            if (self.xp is np and self.channel_axis == 1
                    and self.num_spatial_axes == x_blob.num_axes - 2):
                small = SmallConvForward.build(
                    x_blob.shape, self.blobs[0].shape, self.dtype,
                    self.stride, self.pad, self.dilation, self.group)
            self._small = (x_blob.shape, small)
        return small

    def forward(self, bottom, top):
        b = self.blobs[1].data if self.bias_term else None
        saved = self._saved_columns(len(bottom))
        if saved is None:
            small = self._small_forward(bottom[0])
            if small is not None and (
                    top[0] is not bottom[0] if len(bottom) == 1 else not any(
                        y is x for x, y in zip(bottom, top))):
                w = self.blobs[0].data
                for x_blob, y_blob in zip(bottom, top):
                    small.forward(x_blob.data, w, b, y_blob.data)
                return
        w = self._filters(self.blobs[0].data)
        for i, (x_blob, y_blob) in enumerate(zip(bottom, top)):
            x = self._as_nc(x_blob.data)
            if y_blob is x_blob:
                # In place (Caffe would read overwritten inputs): compute
                # aside, then copy. The input is gone: keep no columns.
                if saved is not None:
                    saved[i].clear()
                y = conv_forward(x, w, b, **self._geometry())
                y_blob.data[...] = y.reshape(y_blob.shape)
            else:
                conv_forward(x, w, b, **self._geometry(),
                             out=self._as_nc(y_blob.data),
                             save=None if saved is None else saved[i],
                             winograd=self._transforms()[0],
                             workspace=self.workspace_limit)

    def backward(self, top, propagate_down, bottom):
        w = self._filters(self.blobs[0].data)
        dw = (self._filters(self.blobs[0].diff)
              if self.param_needs_backward(0) else None)
        need_b = self.bias_term and self.param_needs_backward(1)
        saved = self._saved
        for i, (y_blob, x_blob) in enumerate(zip(top, bottom)):
            dy = self._as_nc(y_blob.diff)
            if need_b:
                conv_bias_backward(dy, self.blobs[1].diff)
            if dw is None and not propagate_down[i]:
                continue
            # The filter and input gradients in one pass over dy; the
            # input's straight into its diff unless that is dy (in place).
            in_place = y_blob is x_blob
            dx = conv_backward(
                dy, self._as_nc(x_blob.data), w, dw,
                need_dx=propagate_down[i], **self._geometry(),
                saved=saved[i] if saved is not None and i < len(saved)
                else None,
                out=None if in_place or not propagate_down[i]
                else self._as_nc(x_blob.diff),
                winograd=self._transforms()[1])
            if in_place and propagate_down[i]:
                x_blob.diff[...] = dx.reshape(x_blob.shape)
