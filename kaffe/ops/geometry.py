"""Sliding-window geometry, written once: convolution and pooling.

The layers that slide a window over their input publish what they read from
their parameter message as one of these frozen values (``layer.geometry``);
the ops, explain, viz, draw, coord_map and the exporters read it from there
instead of re-parsing the message or reaching into the layer.

* :class:`ConvGeometry` — Convolution, Deconvolution and Im2col: one kernel,
  stride, pad and dilation per spatial axis, plus group, num_output, the
  channel axis, bias_term and whether the layer is the transpose (deconv).
* :class:`PoolGeometry` — Pooling: method, kernel, stride, pad (h, w),
  global pooling and round mode.
* :func:`pooled_size` — Caffe's pooled length with its clip rule; the only
  place the rule is written.

Pure Python: no arrays, no proto, nothing from ``kaffe.core``.
"""
import math
from dataclasses import dataclass

POOL_METHODS = ("MAX", "AVE", "STOCHASTIC")
ROUND_MODES = ("CEIL", "FLOOR")


def conv_output_size(size, kernel, stride, pad, dilation=1):
    """Convolution output length along one axis (Caffe's floor rule).

    ``(size + 2·pad − (dilation·(kernel − 1) + 1)) // stride + 1``; zero or
    less means the kernel does not fit the padded input.
    """
    extent = dilation * (kernel - 1) + 1
    return (size + 2 * pad - extent) // stride + 1


def deconv_output_size(size, kernel, stride, pad, dilation=1):
    """Deconvolution output length along one axis.

    ``stride·(size − 1) + dilation·(kernel − 1) + 1 − 2·pad``: the input
    length of the convolution that this layer transposes.
    """
    extent = dilation * (kernel - 1) + 1
    return stride * (size - 1) + extent - 2 * pad


def pooled_size(size, kernel, stride, pad, ceil=True, clip=None):
    """Caffe's pooled length along one axis (``PoolingLayer::Reshape``).

    ``ceil((size + 2·pad − kernel) / stride) + 1`` (``floor`` when ``ceil``
    is false), then Caffe's clip rule: when the layer is padded, a last
    window that would start at or past ``size + pad`` (entirely in the
    padding) is dropped.

    Args:
        size, kernel, stride, pad: ints along this axis.
        ceil: True for round_mode CEIL (Caffe's default), False for FLOOR.
        clip: whether the clip rule applies. Caffe applies it to both axes
            as soon as either is padded, so a 2-D caller passes
            ``any(pads)``; the default is ``pad > 0`` (this axis alone).

    Returns:
        The pooled length; zero or less means the kernel does not fit.
    """
    span = size + 2 * pad - kernel
    out = (-(-span // stride) if ceil else span // stride) + 1
    if clip is None:
        clip = pad > 0
    if clip and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _ints(values):
    return tuple(int(v) for v in values)


@dataclass(frozen=True)
class ConvGeometry:
    """A convolution's window and channels, one entry per spatial axis.

    Attributes:
        kernel, stride, pad, dilation: tuples of ints, one per spatial axis
            (empty for Caffe's 0-D convolution, where the channel axis is
            the last).
        group: channel groups (input and output channels split alike).
        num_output: output channels (Deconvolution: also the output's).
        axis: the channel axis of the input, non-negative (axes before it
            are batch axes, after it spatial).
        bias_term: whether the layer adds a bias.
        deconv: True for Deconvolution (the transpose: output_spatial
            grows the input instead of shrinking it).
    """

    kernel: tuple
    stride: tuple
    pad: tuple
    dilation: tuple
    group: int = 1
    num_output: int = 0
    axis: int = 1
    bias_term: bool = True
    deconv: bool = False

    def __post_init__(self):
        n = len(self.kernel)
        for name in ("stride", "pad", "dilation"):
            value = _ints(getattr(self, name))
            if len(value) != n:
                raise ValueError(
                    f"ConvGeometry.{name} needs one value per spatial axis "
                    f"({n}), received {value}")
            object.__setattr__(self, name, value)
        object.__setattr__(self, "kernel", _ints(self.kernel))

    @property
    def num_spatial_axes(self):
        return len(self.kernel)

    @property
    def kernel_shape(self):
        """``kernel`` under the name the layers give it."""
        return self.kernel

    @property
    def channel_axis(self):
        """``axis`` under the name the layers give it."""
        return self.axis

    @property
    def extent(self):
        """Per axis, the span of one dilated window: d·(k − 1) + 1."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel,
                                                      self.dilation))

    @property
    def kernel_count(self):
        """Cells in one window: the product of the kernel sizes."""
        return math.prod(self.kernel)

    def output_spatial(self, input_spatial):
        """The output's spatial shape for an input of spatial shape
        ``input_spatial`` (an entry ≤ 0: the window does not fit)."""
        size_of = deconv_output_size if self.deconv else conv_output_size
        return tuple(size_of(size, k, s, p, d) for size, k, s, p, d in zip(
            input_spatial, self.kernel, self.stride, self.pad,
            self.dilation))


@dataclass(frozen=True)
class PoolGeometry:
    """A pooling layer's windows over (H, W).

    Attributes:
        method: "MAX", "AVE" or "STOCHASTIC".
        kernel, stride, pad: (h, w) pairs. With ``global_pooling`` the
            kernel is the input's (H, W) as last reshaped.
        global_pooling: the kernel is the whole input.
        round_mode: "CEIL" (Caffe's default) or "FLOOR".
    """

    method: str
    kernel: tuple
    stride: tuple = (1, 1)
    pad: tuple = (0, 0)
    global_pooling: bool = False
    round_mode: str = "CEIL"

    def __post_init__(self):
        if self.method not in POOL_METHODS:
            raise ValueError(f"PoolGeometry.method must be one of "
                             f"{POOL_METHODS}, received {self.method!r}")
        if self.round_mode not in ROUND_MODES:
            raise ValueError(f"PoolGeometry.round_mode must be one of "
                             f"{ROUND_MODES}, received {self.round_mode!r}")
        for name in ("kernel", "stride", "pad"):
            value = _ints(getattr(self, name))
            if len(value) != 2:
                raise ValueError(f"PoolGeometry.{name} must be an (h, w) "
                                 f"pair, received {value}")
            object.__setattr__(self, name, value)

    def kernel_for(self, input_spatial):
        """The window actually used for an input of ``input_spatial``: the
        whole input under global pooling, else ``kernel``."""
        if self.global_pooling:
            return tuple(int(v) for v in input_spatial)
        return self.kernel

    def output_spatial(self, input_spatial):
        """(H_out, W_out) for an input of spatial shape (H, W), with Caffe's
        rounding and clip rule (an entry ≤ 0: the kernel does not fit)."""
        kernel = self.kernel_for(input_spatial)
        clip = any(self.pad)
        ceil = self.round_mode == "CEIL"
        return tuple(pooled_size(size, k, s, p, ceil, clip) for size, k, s, p
                     in zip(input_spatial, kernel, self.stride, self.pad))
