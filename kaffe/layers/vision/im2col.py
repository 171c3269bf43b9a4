"""Im2col: the column matrix a convolution multiplies, as a layer."""
import dataclasses
import math

from ...core.layer import Layer
from ...core.registry import register_layer
from ...ops.im2col import col2im, im2col
from .conv_geometry import conv_output_shape, read_conv_geometry


@register_layer("Im2col")
class Im2colLayer(Layer):
    """Unfolds every kernel window of the input into a column.

    Reads convolution_param as Convolution does: kernel_size | kernel_h/
    kernel_w, stride | stride_h/stride_w (1), pad | pad_h/pad_w (0),
    dilation (1), axis (1: dims before it are batch, after it at least one
    spatial axis); num_output, group, bias and fillers are ignored.
    Shape: (d0 … d{axis-1}, C, *in) → (d0 … d{axis-1}, C·Π k, *out), out =
    (in + 2·pad − (dilation·(k − 1) + 1)) / stride + 1 (floor). Channel
    c·Π k + (i0, i1, …) (kernel offsets row-major) at output position o
    holds input[c, o·stride − pad + i·dilation], 0 in the padding.
    Backward is col2im: each input cell gets the sum of the column entries
    read from it.
    """

    exact_num_bottom_blobs = 1
    exact_num_top_blobs = 1

    def setup(self, bottom, top):
        g = read_conv_geometry(self, bottom[0], min_spatial_axes=1)
        # Published as the convolution it unfolds for: one group, no bias,
        # and C·Π k output channels (the rows of the column matrix).
        self.geometry = dataclasses.replace(
            g, group=1, bias_term=False,
            num_output=bottom[0].shape[g.axis] * g.kernel_count)

    def reshape(self, bottom, top):
        g = self.geometry
        x = bottom[0]
        if x.num_axes != g.axis + 1 + g.num_spatial_axes:
            raise self.shape_error(
                "the input's number of axes may not change after setup",
                field="bottom", received=x.shape,
                expected=f"{g.axis + 1 + g.num_spatial_axes} axes")
        spatial = x.shape[g.axis + 1:]
        out = conv_output_shape(self, g, spatial)
        rows = x.shape[g.axis] * math.prod(g.kernel)
        top[0].reshape(x.shape[:g.axis] + (rows,) + out)

    def _kwargs(self):
        g = self.geometry
        return dict(kernel=g.kernel, stride=g.stride, pad=g.pad,
                    dilation=g.dilation)

    def forward(self, bottom, top):
        # The ops take any leading (batch) axes before the channel axis.
        cols = im2col(bottom[0].data, **self._kwargs())
        top[0].data[...] = cols.reshape(top[0].shape)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        rows_axis = self.geometry.axis + 1
        dy = top[0].diff.reshape(top[0].shape[:rows_axis]
                                 + (top[0].count_axes(rows_axis),))
        bottom[0].diff[...] = col2im(dy, bottom[0].shape, **self._kwargs())
