"""Reading the sliding-window geometry of a convolution_param.

Convolution, Deconvolution and Im2col describe their windows with the same
fields: ``axis`` (the channel axis: dims before it are batch, after it
spatial), ``kernel_size`` / ``stride`` / ``pad`` / ``dilation`` (repeated: once
for every spatial axis, or once per axis) and the 2-D-only ``kernel_h`` /
``kernel_w``, ``stride_h`` / ``stride_w``, ``pad_h`` / ``pad_w`` forms.
:func:`read_conv_geometry` turns them into one int per spatial axis, with
Caffe's checks as located errors, as the public
:class:`~kaffe.ops.geometry.ConvGeometry` the layer publishes.
"""
from ...ops.geometry import ConvGeometry

FIELD = "convolution_param"


def read_conv_geometry(layer, blob, min_spatial_axes=0, deconv=False):
    """The geometry ``layer.layer_param.convolution_param`` gives ``blob``.

    Args:
        layer: the layer (its param is read and its errors are raised).
        blob: the input blob (its number of axes fixes the spatial rank).
        min_spatial_axes: the fewest spatial axes the layer accepts
            (Convolution 0, Im2col 1).
        deconv: whether the layer is the transpose (Deconvolution).

    Returns:
        A :class:`~kaffe.ops.geometry.ConvGeometry` (group, num_output and
        bias_term as the message gives them; the caller validates them).
    """
    p = layer.layer_param.convolution_param
    channel_axis = layer.canonical_axis(blob, p.axis, f"{FIELD}.axis")
    n = blob.num_axes - channel_axis - 1
    if n < min_spatial_axes:
        raise layer.shape_error(
            f"leaves {n} spatial axes after the channel axis",
            field=f"{FIELD}.axis", received=p.axis,
            expected=f"an axis with at least {min_spatial_axes} axes after "
                     f"it in the input of shape {blob.shape}")
    kernel = _per_axis(layer, "kernel_size", p.kernel_size,
                       ("kernel_h", "kernel_w"), None, n)
    if any(k <= 0 for k in kernel):
        raise layer.config_error(
            "must be > 0 (filter dimensions cannot be zero)",
            field=f"{FIELD}.kernel_size", received=kernel,
            fix="set kernel_size (or kernel_h and kernel_w)")
    stride = _per_axis(layer, "stride", p.stride, ("stride_h", "stride_w"),
                       1, n)
    if any(s <= 0 for s in stride):
        raise layer.config_error("must be > 0", field=f"{FIELD}.stride",
                                 received=stride)
    pad = _per_axis(layer, "pad", p.pad, ("pad_h", "pad_w"), 0, n)
    dilation = _per_axis(layer, "dilation", p.dilation, None, 1, n)
    if any(d <= 0 for d in dilation):
        raise layer.config_error("must be > 0", field=f"{FIELD}.dilation",
                                 received=dilation)
    return ConvGeometry(kernel, stride, pad, dilation, group=p.group,
                        num_output=p.num_output, axis=channel_axis,
                        bias_term=p.bias_term, deconv=deconv)


def _per_axis(layer, name, repeated, hw_names, default, n):
    """One value per spatial axis from the repeated field or its _h/_w form."""
    p = layer.layer_param.convolution_param
    given = [f for f in hw_names or () if p.HasField(f)]
    if given:
        if n != 2:
            raise layer.config_error(
                "can only be used for 2-D convolution",
                field=f"{FIELD}.{given[0]}", received=f"{n} spatial axes",
                expected="2", fix=f"use the repeated {name} field instead")
        if len(repeated):
            both = ", ".join(f"{f}: {getattr(p, f)}" for f in given)
            values = ", ".join(map(str, repeated))
            raise layer.config_error(
                f"cannot be combined with {name}",
                field=f"{FIELD}.{given[0]}",
                received=f"{both} and {name}: {values}",
                fix=f"use either {name} or {hw_names[0]}/{hw_names[1]}")
        return (getattr(p, hw_names[0]), getattr(p, hw_names[1]))
    allowed = (1, n) if default is None else (0, 1, n)
    if len(repeated) not in allowed:
        raise layer.config_error(
            "must be given once, or once per spatial dimension",
            field=f"{FIELD}.{name}", received=f"{len(repeated)} values",
            expected=f"{'0, ' if default is not None else ''}1 or {n}")
    if not len(repeated):
        return (default,) * n
    return tuple(repeated[0 if len(repeated) == 1 else i] for i in range(n))


def conv_output_shape(layer, geometry, spatial):
    """Caffe's convolution output size per spatial axis, or a located error.

    ``(in + 2·pad − (dilation·(k − 1) + 1)) // stride + 1``
    (:meth:`ConvGeometry.output_spatial`); a kernel that does not fit the
    padded input is refused.
    """
    out = geometry.output_spatial(spatial)
    for i, (size, n) in enumerate(zip(spatial, out)):
        if n <= 0:
            extent = geometry.extent[i]
            padded = size + 2 * geometry.pad[i]
            raise layer.shape_error(
                f"kernel is larger than the padded input along spatial axis "
                f"{i} (the kernel spans {extent}, the input plus padding is "
                f"{padded})", field=f"{FIELD}.kernel_size",
                received=geometry.kernel,
                fix="use a smaller kernel or dilation, more padding, or a "
                    "larger input")
    return out
