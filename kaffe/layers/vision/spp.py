"""SPP: spatial pyramid pooling (He et al.), built from Pooling layers."""
import math

from ...core.blob import Blob
from ...core.layer import Layer
from ...core.registry import register_layer
from ...proto import caffe_pb2
from ..common.concat import ConcatLayer
from ..common.flatten import FlattenLayer
from ..common.split import SplitLayer
from .pooling import PoolingLayer

FIELD = "spp_param"


def spp_level_geometry(level, size):
    """(kernel, pad) that pool ``size`` cells into 2^level bins.

    kernel = ceil(size / bins); the kernel·bins − size missing cells are
    padded, (remainder + 1) // 2 on each side; the stride is the kernel.
    """
    bins = 2 ** level
    kernel = math.ceil(size / bins)
    return kernel, (kernel * bins - size + 1) // 2


@register_layer("SPP")
class SPPLayer(Layer):
    """Pools an (N, C, H, W) input over 1, 2×2, 4×4 … bins and concatenates.

    Reads spp_param: pyramid_height (levels 0 … height − 1), pool MAX
    (default) / AVE / STOCHASTIC.
    Level l is a Pooling layer with bins = 2^l, kernel = ceil(H / bins)
    (ceil(W / bins) across), pad = (kernel·bins − H + 1) // 2, stride =
    kernel: a bins × bins output. As in Caffe the levels are composed of
    Split → Pooling → Flatten → Concat, so top = (N, C·Σ_l 4^l), level 0's
    C values first. pyramid_height 1 is the single level-0 Pooling layer
    writing the top directly: (N, C, 1, 1), not flattened.
    The inner Pooling layers are built with Caffe's default phase, TRAIN,
    whatever the net's phase: STOCHASTIC always samples.
    A level whose padding would reach the kernel size (an input too small
    for 2^l bins) is refused, as Pooling refuses pad >= kernel.
    ``level_geometries``: each level's PoolGeometry for the current input
    (the layer's own ``geometry`` is None: it is several windows).
    """

    exact_num_bottom_blobs = 1
    exact_num_top_blobs = 1

    def setup(self, bottom, top):
        p = self.layer_param.spp_param
        self.height = p.pyramid_height
        if self.height < 1:
            raise self.config_error(
                "must be >= 1", field=f"{FIELD}.pyramid_height",
                received=self.height,
                fix="set pyramid_height to the number of pyramid levels")
        self.built_for = None
        # Check every level against the input first: the first level that
        # does not fit is refused before anything is built per level (a huge
        # pyramid_height fails at once, at a level near log2 of the input).
        self._check_input(bottom[0])
        for level in range(self.height):
            self._pooling_param(level, *bottom[0].shape[2:])
        if self.height > 1:
            self.split = SplitLayer(self._inner_param("Split"),
                                    dtype=self.dtype)
            self.split_tops = [Blob(dtype=self.dtype)
                               for _ in range(self.height)]
            self.pooled = [Blob(dtype=self.dtype) for _ in range(self.height)]
            self.flat = [Blob(dtype=self.dtype) for _ in range(self.height)]
            self.flatten = [FlattenLayer(self._inner_param("Flatten"),
                                         dtype=self.dtype)
                            for _ in range(self.height)]
            self.concat = ConcatLayer(self._inner_param("Concat"),
                                      dtype=self.dtype)
            self.split.SetUp(bottom, self.split_tops)
        self._build_pooling(bottom, top)
        if self.height > 1:
            for i in range(self.height):
                self.flatten[i].SetUp([self.pooled[i]], [self.flat[i]])
            self.concat.SetUp(self.flat, top)

    @property
    def level_geometries(self):
        """One :class:`~kaffe.ops.geometry.PoolGeometry` per pyramid level,
        level 0 first, for the input the levels were last built for."""
        return tuple(layer.geometry for layer in self.pooling)

    def _inner_param(self, kind):
        # No phase is set on the inner layers, so they get the proto's
        # default, TRAIN, as in Caffe.
        return caffe_pb2.LayerParameter(name=self.name, type=kind,
                                        phase=caffe_pb2.TRAIN)

    def _check_input(self, blob):
        if blob.num_axes != 4:
            raise self.shape_error(
                "input must have 4 axes (num, channels, height, width)",
                field="bottom", received=blob.shape)
        if min(blob.shape[2:]) <= 0:
            raise self.shape_error(
                "input height and width must be > 0", field="bottom",
                received=blob.shape)

    def _pooling_param(self, level, height, width):
        spp = self.layer_param.spp_param
        param = self._inner_param("Pooling")
        pool = param.pooling_param
        pool.pool = spp.pool  # the two enums have the same values
        pool.kernel_h, pool.pad_h = spp_level_geometry(level, height)
        pool.kernel_w, pool.pad_w = spp_level_geometry(level, width)
        pool.stride_h, pool.stride_w = pool.kernel_h, pool.kernel_w
        if pool.pad_h >= pool.kernel_h or pool.pad_w >= pool.kernel_w:
            raise self.shape_error(
                f"is too high for the {height}×{width} input: level {level} "
                f"({2 ** level}×{2 ** level} bins) would need a kernel of "
                f"{pool.kernel_h}×{pool.kernel_w} with a padding of "
                f"{pool.pad_h}×{pool.pad_w}, and pooling needs pad < kernel",
                field=f"{FIELD}.pyramid_height", received=self.height,
                fix="lower pyramid_height or feed a larger input")
        if spp.pool == caffe_pb2.SPPParameter.STOCHASTIC and (
                pool.pad_h or pool.pad_w):
            raise self.config_error(
                f"STOCHASTIC pooling cannot pad, but level {level} of the "
                f"{height}×{width} input needs a padding of "
                f"{pool.pad_h}×{pool.pad_w}", field=f"{FIELD}.pool",
                received="STOCHASTIC",
                fix=f"use MAX or AVE, or an input whose sides are multiples "
                    f"of {2 ** (self.height - 1)}")
        return param

    def _build_pooling(self, bottom, top):
        """(Re)make the Pooling layers for the input's height and width."""
        self._check_input(bottom[0])
        height, width = bottom[0].shape[2:]
        self.pooling = [PoolingLayer(self._pooling_param(i, height, width),
                                     dtype=self.dtype)
                        for i in range(self.height)]
        if self.height == 1:
            self.pooling[0].SetUp(bottom, top)
        else:
            for i, layer in enumerate(self.pooling):
                layer.SetUp([self.split_tops[i]], [self.pooled[i]])
        self.built_for = (height, width)

    def reshape(self, bottom, top):
        self._check_input(bottom[0])
        if tuple(bottom[0].shape[2:]) != self.built_for:
            self._build_pooling(bottom, top)
        if self.height == 1:
            self.pooling[0].reshape(bottom, top)
            return
        self.split.reshape(bottom, self.split_tops)
        for i in range(self.height):
            self.pooling[i].reshape([self.split_tops[i]], [self.pooled[i]])
            self.flatten[i].reshape([self.pooled[i]], [self.flat[i]])
        self.concat.reshape(self.flat, top)

    def forward(self, bottom, top):
        if self.height == 1:
            self.pooling[0].forward(bottom, top)
            return
        self.split.forward(bottom, self.split_tops)
        for i in range(self.height):
            self.pooling[i].forward([self.split_tops[i]], [self.pooled[i]])
            self.flatten[i].forward([self.pooled[i]], [self.flat[i]])
        self.concat.forward(self.flat, top)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        if self.height == 1:
            self.pooling[0].backward(top, propagate_down, bottom)
            return
        self.concat.backward(top, [True] * self.height, self.flat)
        for i in range(self.height):
            self.flatten[i].backward([self.flat[i]], [True], [self.pooled[i]])
            self.pooling[i].backward([self.pooled[i]], [True],
                                     [self.split_tops[i]])
        self.split.backward(self.split_tops, [True], bottom)
