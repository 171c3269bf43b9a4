"""Pooling: MAX, AVE or STOCHASTIC over windows of each channel."""
import numpy as np

from ...core.backend import array_module
from ...core.random import rng
from ...core.layer import Layer
from ...core.registry import register_layer
from ...ops.geometry import PoolGeometry
from ...ops.pool_small import SmallMaxPool
from ...ops.pooling import (ave_pool_backward, ave_pool_forward,
                            max_pool_backward, max_pool_forward)
from ...ops.stochastic_pool import (stochastic_pool_test,
                                    stochastic_pool_test_backward,
                                    stochastic_pool_train,
                                    stochastic_pool_train_backward)
from ...proto import caffe_pb2

_P = caffe_pb2.PoolingParameter
FIELD = "pooling_param"


@register_layer("Pooling")
class PoolingLayer(Layer):
    """Pools each channel of an (N, C, H, W) input over kernel windows.

    Reads pooling_param: pool MAX (default) / AVE / STOCHASTIC; kernel_size or
    kernel_h + kernel_w; stride (1) or stride_h + stride_w; pad (0) or pad_h +
    pad_w (MAX and AVE only, smaller than the kernel); global_pooling (kernel =
    the whole input); round_mode CEIL (default) or FLOOR, or the forks'
    ceil_mode (true: CEIL, false: FLOOR; see :func:`round_mode`).
    Shape: out = ceil((in + 2·pad − k) / stride) + 1 (floor for FLOOR), minus
    one if pad_h or pad_w > 0 and the last window would start at or past
    in + pad (Caffe applies this to both axes, even an unpadded one).
    MAX ignores padding and may output the argmax as top[1] (flat h·W + w in
    the channel); it finds the argmax only for top[1] or a backward to come
    (``needs_backward``). AVE divides by the window size counting padding
    but not the overhang past the padded edge. STOCHASTIC samples by value in TRAIN and
    takes the value-weighted mean in TEST (Caffe has it only on the GPU).

    After setup: ``geometry`` (a :class:`~kaffe.ops.geometry.PoolGeometry`;
    under global pooling its kernel follows the input at each reshape) and,
    as its parts, ``kernel_shape``, ``stride``, ``pad`` ((h, w) tuples),
    ``method``, ``global_pooling``, ``round_mode``.
    """

    exact_num_bottom_blobs = 1
    min_top_blobs = 1
    max_top_blobs = 2
    # (input shape and geometry, its SmallMaxPool or None): small inputs'
    # mask-free MAX pooling with its Python work done once (issue 12).
    _small = (None, None)

    def setup(self, bottom, top):
        p = self.layer_param.pooling_param
        self.method = _P.PoolMethod.Name(p.pool)
        self.round_mode = round_mode(self, p)
        self.global_pooling = p.global_pooling
        has_kernel_hw = p.HasField("kernel_h") or p.HasField("kernel_w")
        kernel_fields = ", ".join(
            f"{f}: {getattr(p, f)}" for f in ("kernel_size", "kernel_h",
                                              "kernel_w") if p.HasField(f))
        if self.global_pooling:
            if p.HasField("kernel_size") or has_kernel_hw:
                raise self.config_error(
                    "cannot be combined with a kernel size",
                    field=f"{FIELD}.global_pooling", received=kernel_fields,
                    fix="remove kernel_size/kernel_h/kernel_w: the kernel is "
                        "the whole input")
        else:
            both_hw = p.HasField("kernel_h") and p.HasField("kernel_w")
            if p.HasField("kernel_size") == both_hw or (
                    has_kernel_hw and not both_hw):
                raise self.config_error(
                    "must be set as kernel_size, or as both kernel_h and "
                    "kernel_w (not both forms)", field=f"{FIELD}.kernel_size",
                    received=kernel_fields or "none of them",
                    fix="write kernel_size: K, or kernel_h: H kernel_w: W")
        self.pad = self._pair(p, "pad", 0)
        self.stride = self._pair(p, "stride", 1)
        if self.global_pooling:
            self.kernel_shape = tuple(bottom[0].shape[2:4])
            if self.pad != (0, 0) or self.stride != (1, 1):
                raise self.config_error(
                    "allows only pad = 0 and stride = 1",
                    field=f"{FIELD}.global_pooling",
                    received=f"pad {self.pad}, stride {self.stride}")
        elif p.HasField("kernel_size"):
            self.kernel_shape = (p.kernel_size, p.kernel_size)
        else:
            self.kernel_shape = (p.kernel_h, p.kernel_w)
        if min(self.kernel_shape) <= 0:
            raise self.config_error(
                "must be > 0 (filter dimensions cannot be zero)",
                field=f"{FIELD}.kernel_size", received=self.kernel_shape)
        if min(self.stride) <= 0:
            raise self.config_error("must be > 0", field=f"{FIELD}.stride",
                                    received=self.stride)
        if self.pad != (0, 0):
            if self.method == "STOCHASTIC":
                raise self.config_error(
                    "is only implemented for MAX and AVE pooling",
                    field=f"{FIELD}.pad", received=self.pad)
            if any(pad >= k for pad, k in zip(self.pad, self.kernel_shape)):
                raise self.config_error(
                    "must be smaller than the kernel", field=f"{FIELD}.pad",
                    received=self.pad, expected=f"< {self.kernel_shape}")
        if len(top) > 1 and self.method != "MAX":
            raise self.config_error(
                "a second top (the argmax mask) exists only for MAX pooling",
                field="top", received=f"{len(top)} tops with pool: "
                f"{self.method}", expected="1 top")
        self._check_axes(bottom)
        self.geometry = self._make_geometry()

    def _check_axes(self, bottom):
        if bottom[0].num_axes != 4:
            raise self.shape_error(
                "input must have 4 axes (num, channels, height, width)",
                field="bottom", received=bottom[0].shape)

    def _make_geometry(self):
        return PoolGeometry(self.method, self.kernel_shape, self.stride,
                            self.pad, self.global_pooling, self.round_mode)

    def _pair(self, p, name, default):
        has_h, has_w = p.HasField(f"{name}_h"), p.HasField(f"{name}_w")
        if has_h or has_w:
            if p.HasField(name) or not (has_h and has_w):
                given = ", ".join(
                    f"{f}: {getattr(p, f)}" for f in (name, f"{name}_h",
                                                      f"{name}_w")
                    if p.HasField(f))
                raise self.config_error(
                    f"must be set as {name}, or as both {name}_h and "
                    f"{name}_w", field=f"{FIELD}.{name}", received=given,
                    fix=f"write {name}: V, or {name}_h: H {name}_w: W")
            return (getattr(p, f"{name}_h"), getattr(p, f"{name}_w"))
        value = getattr(p, name) if p.HasField(name) else default
        return (value, value)

    def reshape(self, bottom, top):
        self._check_axes(bottom)
        in_hw = bottom[0].shape[2:]
        if self.global_pooling and self.kernel_shape != tuple(in_hw):
            self.kernel_shape = tuple(in_hw)
            self.geometry = self._make_geometry()
        out = self.geometry.output_spatial(in_hw)
        for axis, n in enumerate(out):
            if n <= 0:
                raise self.shape_error(
                    f"kernel is larger than the padded input along "
                    f"{'height' if axis == 0 else 'width'} (pooled size "
                    f"would be {n})", field=f"{FIELD}.kernel_size",
                    received=self.kernel_shape, expected=f"a kernel that fits "
                    f"{in_hw[0] + 2 * self.pad[0]}×{in_hw[1] + 2 * self.pad[1]}")
        self.out_hw = tuple(out)
        shape = bottom[0].shape[:2] + self.out_hw
        for blob in top:
            blob.reshape(shape)

    def forward(self, bottom, top):
        x = bottom[0].data
        if self.method == "MAX":
            self._max_forward(bottom, top)
            return
        if self.method == "AVE":
            out = None if top[0] is bottom[0] else top[0].data
            y = ave_pool_forward(x, self.kernel_shape, self.stride, self.pad,
                                 self.out_hw, out=out)
            if out is not None:
                return
        elif self.phase == caffe_pb2.TRAIN:
            xp = array_module(x)
            uniform = xp.asarray(rng().random(size=top[0].shape), x.dtype)
            y, self.chosen = stochastic_pool_train(
                x, self.kernel_shape, self.stride, self.out_hw, uniform)
        else:
            y = stochastic_pool_test(x, self.kernel_shape, self.stride,
                                     self.out_hw)
        top[0].data[...] = y

    def _small_max_pool(self, x_blob):
        """The SmallMaxPool for this input and geometry, or None."""
        key = (x_blob.shape, self.kernel_shape, self.stride, self.pad,
               self.out_hw)
        if self._small[0] != key:
            small = None
            if self.xp is np:
                small = SmallMaxPool.build(x_blob.shape, x_blob.dtype,
                                           *key[1:])
            self._small = (key, small)
        return self._small[1]

    def _max_forward(self, bottom, top):
        # The argmax mask is for backward and top[1]: finding it costs 2–3×
        # the pooling itself, so skip it when neither will read it.
        want_mask = self.needs_backward or len(top) > 1
        if not want_mask and top[0] is not bottom[0]:
            small = self._small_max_pool(bottom[0])
            if small is not None:
                small.forward(bottom[0].data, top[0].data)
                self.mask = None
                return
        geometry = (self.kernel_shape, self.stride, self.pad, self.out_hw)
        if top[0] is bottom[0]:  # the ops' out may not overlap the input
            y, self.mask = max_pool_forward(bottom[0].data, *geometry,
                                            mask=want_mask)
            top[0].data[...] = y
        else:
            _, self.mask = max_pool_forward(bottom[0].data, *geometry,
                                            mask=want_mask, out=top[0].data)
        if len(top) > 1:
            top[1].data[...] = self.mask

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dy = top[0].diff
        shape = bottom[0].shape
        if self.method == "MAX":
            if top[0] is not bottom[0]:  # else out would overlap dy
                max_pool_backward(dy, self.mask, shape, out=bottom[0].diff)
                return
            dx = max_pool_backward(dy, self.mask, shape)
        elif self.method == "AVE":
            out = None if top[0] is bottom[0] else bottom[0].diff
            dx = ave_pool_backward(dy, shape, self.kernel_shape, self.stride,
                                   self.pad, out=out)
            if out is not None:
                return
        elif self.phase == caffe_pb2.TRAIN:
            dx = stochastic_pool_train_backward(dy, self.chosen, shape)
        else:
            dx = stochastic_pool_test_backward(
                dy, bottom[0].data, self.kernel_shape, self.stride,
                self.out_hw)
        bottom[0].diff[...] = dx


def round_mode(layer, p):
    """The rounding of the pooled size: ``round_mode``, or the forks'
    ``ceil_mode``.

    DenseNet, DPN, ResNeXt and other prototxts from the forks that merged
    BVLC pull request #3057 write ``ceil_mode: false`` for floor rounding;
    that flag means exactly round_mode FLOOR (true: CEIL), with the same
    clip rule. A file that sets both must agree with itself.
    """
    mode = _P.RoundMode.Name(p.round_mode)
    if not p.HasField("ceil_mode"):
        return mode
    from_flag = "CEIL" if p.ceil_mode else "FLOOR"
    if p.HasField("round_mode") and mode != from_flag:
        raise layer.config_error(
            "contradicts round_mode", field=f"{FIELD}.ceil_mode",
            received=f"ceil_mode: {str(p.ceil_mode).lower()} with "
                     f"round_mode: {mode}",
            fix="keep one of the two fields")
    return from_flag
