"""What Convolution and Deconvolution share: reading their geometry."""
import logging

from ...core.filler import fill
from ...core.layer import Layer
from .conv_geometry import FIELD, read_conv_geometry

log = logging.getLogger("kaffe")


class BaseConvolutionLayer(Layer):
    """Parses convolution_param into per-axis geometry and makes the blobs.

    After setup: ``geometry`` (the public
    :class:`~kaffe.ops.geometry.ConvGeometry`) and, as its parts,
    ``channel_axis``, ``num_spatial_axes``, ``kernel_shape``,
    ``stride``, ``pad``, ``dilation`` (tuples, one int per spatial axis),
    ``channels`` (input channels), ``num_output``, ``group``, ``bias_term``.
    Blobs: [0] weight (num_output, C/group, *kernel) — for Deconvolution
    (C, num_output/group, *kernel); [1] bias (num_output,).
    Each bottom is convolved with the same weights into the top of the same
    index.
    """

    min_bottom_blobs = 1
    min_top_blobs = 1
    equal_num_bottom_top_blobs = True
    # Deconvolution swaps the roles of input and output channels.
    reverse_dimensions = False

    def setup(self, bottom, top):
        p = self.layer_param.convolution_param
        geometry = read_conv_geometry(self, bottom[0],
                                      deconv=self.reverse_dimensions)
        self.geometry = geometry
        self.channel_axis = geometry.axis
        self.num_spatial_axes = geometry.num_spatial_axes
        self.kernel_shape = geometry.kernel
        self.stride = geometry.stride
        self.pad = geometry.pad
        self.dilation = geometry.dilation
        self.channels = bottom[0].shape[self.channel_axis]
        self.num_output = p.num_output
        if self.num_output <= 0:
            raise self.config_error(
                "must be > 0", field=f"{FIELD}.num_output",
                received=self.num_output,
                fix="set num_output to the number of filters")
        self.group = p.group
        if self.group <= 0:
            raise self.config_error("must be > 0", field=f"{FIELD}.group",
                                    received=self.group)
        if self.channels % self.group:
            raise self.config_error(
                f"must divide the number of input channels ({self.channels})",
                field=f"{FIELD}.group", received=self.group,
                expected=f"a divisor of {self.channels}",
                fix="change group, or the number of channels of the input")
        if self.num_output % self.group:
            raise self.config_error(
                f"must divide num_output ({self.num_output})",
                field=f"{FIELD}.group", received=self.group,
                expected=f"a divisor of {self.num_output}",
                fix="make num_output a multiple of group")
        self.bias_term = p.bias_term
        if self.reverse_dimensions:
            conv_out, conv_in = self.channels, self.num_output
        else:
            conv_out, conv_in = self.num_output, self.channels
        weight_shape = (conv_out, conv_in // self.group) + self.kernel_shape
        bias_shape = (self.num_output,)
        if conv_params(self, weight_shape, bias_shape):
            log.info("Skipping parameter initialization")

    def _geometry(self):
        """The ops' keyword arguments for this layer's geometry."""
        if not self.num_spatial_axes:
            return dict(group=self.group)
        return dict(stride=self.stride, pad=self.pad, dilation=self.dilation,
                    group=self.group)

    def _as_nc(self, array):
        """View an array as (num, channels, *spatial) for the ops. With no
        spatial axis (the channel axis is the last: Caffe's 0-D convolution,
        a fully connected layer) a unit one stands in."""
        spatial = array.shape[self.channel_axis + 1:] or (1,)
        return array.reshape((self.num, array.shape[self.channel_axis])
                             + spatial)

    def _filters(self, array):
        """The weight blob's data or diff, viewed as the ops want it."""
        return array.reshape(array.shape[:2] + (self.kernel_shape or (1,)))

    def compute_output_shape(self, spatial):
        """Spatial output shape for an input of spatial shape ``spatial``."""
        raise TypeError(f"{type(self).__name__} does not define "
                        "compute_output_shape()")

    def reshape(self, bottom, top):
        first = bottom[0]
        if first.num_axes != self.channel_axis + 1 + self.num_spatial_axes:
            raise self.shape_error(
                "the input's number of axes may not change after setup",
                field="bottom", received=first.shape)
        if first.shape[self.channel_axis] != self.channels:
            raise self.shape_error(
                "input channels are incompatible with the layer's weights",
                field="bottom", received=first.shape[self.channel_axis],
                expected=self.channels)
        for i, blob in enumerate(bottom[1:], start=1):
            if blob.shape != first.shape:
                raise self.shape_error(
                    f"bottom[{i}] must have the same shape as bottom[0]",
                    field="bottom", received=blob.shape, expected=first.shape)
        spatial = first.shape[self.channel_axis + 1:]
        self.input_spatial = spatial
        self.output_spatial = self.compute_output_shape(spatial)
        self.num = first.count_axes(0, self.channel_axis)
        shape = (first.shape[:self.channel_axis] + (self.num_output,)
                 + self.output_spatial)
        for blob in top:
            blob.reshape(shape)


def conv_params(layer, weight_shape, bias_shape):
    """A convolution's weight (and, with bias_term, bias) blobs: check the
    ones ``layer`` was given against the shapes its geometry needs, or make
    them and fill them from convolution_param's fillers. Returns True when
    they were given."""
    p = layer.layer_param.convolution_param
    if layer.blobs:
        expected = 1 + int(layer.bias_term)
        if len(layer.blobs) != expected:
            raise layer.config_error(
                "has the wrong number of weight blobs", field="blobs",
                received=len(layer.blobs), expected=expected)
        if layer.blobs[0].shape != weight_shape:
            raise layer.shape_error(
                "has the wrong weight shape", field="blobs[0]",
                received=layer.blobs[0].shape, expected=weight_shape)
        if layer.bias_term and layer.blobs[1].shape != bias_shape:
            raise layer.shape_error(
                "has the wrong bias shape", field="blobs[1]",
                received=layer.blobs[1].shape, expected=bias_shape)
        return True
    weight = layer.make_blob(weight_shape)
    fill(weight, p.weight_filler, layer=layer, field=f"{FIELD}.weight_filler")
    layer.blobs.append(weight)
    if layer.bias_term:
        bias = layer.make_blob(bias_shape)
        fill(bias, p.bias_filler, layer=layer, field=f"{FIELD}.bias_filler")
        layer.blobs.append(bias)
    return False
