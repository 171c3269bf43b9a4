"""BatchNorm: normalise each channel by batch or running statistics."""
import logging

import numpy as np

from ...core.backend import array_module
from ...core.layer import Layer
from ...core.registry import register_layer
from ...ops.normalization import centered_moments, normalize_backward
from ...ops.ufunc_buffer import rows_unbuffered
from ...proto import caffe_pb2

log = logging.getLogger("kaffe")

# The reduction axes of the (N, C, S) view: everything but the channel.
_AXES = (0, 2)


@register_layer("BatchNorm")
class BatchNormLayer(Layer):
    """y = (x − μ) / sqrt(σ² + eps) per channel; no learned scale or shift.

    Reads batch_norm_param: use_global_stats (unset ⇒ phase == TEST),
    moving_average_fraction (0.999), eps (1e-5).
    Blobs: [0] running mean sum (C,), [1] running variance sum (C,),
    [2] scale factor s (1,); all start at 0. They are statistics, not
    parameters: the layer appends ``param { lr_mult: 0 }`` for every blob
    that has no param spec and refuses a nonzero lr_mult, as Caffe does.
    Shape: (N, C, *) → the same; C = shape[1], the statistics are taken over
    N and every trailing axis (m = count / C elements per channel).

    With batch statistics (training), μ and the *biased* σ² come from the
    batch, then s ← maf·s + 1, blob0 ← μ + maf·blob0 and
    blob1 ← m/(m−1)·σ² + maf·blob1 (factor 1 when m = 1).
    With global statistics, μ = blob0·(1/s) and σ² = blob1·(1/s), with
    1/s taken as 0 when s = 0.

    Backward: batch statistics give the exact gradient
    (dy − mean(dy) − mean(dy·y)·y) / sqrt(σ² + eps) from the normalised
    output cached at forward (only when the net will run backward: see
    ``needs_backward``); global statistics give dy / sqrt(σ² + eps).
    Runs in place.
    """

    exact_num_bottom_blobs = 1
    exact_num_top_blobs = 1

    def setup(self, bottom, top):
        p = self.layer_param.batch_norm_param
        self.use_global_stats = (p.use_global_stats
                                 if p.HasField("use_global_stats")
                                 else self.phase == caffe_pb2.TEST)
        self.moving_average_fraction = p.moving_average_fraction
        self.eps = p.eps
        self._check_axes(bottom[0])
        self.channels = bottom[0].shape[1]
        if self.channels == 0:
            raise self.shape_error(
                "needs at least one channel (shape[1])", field="bottom",
                received=bottom[0].shape)
        if self.blobs:
            log.info("Skipping parameter initialization")
            self._check_loaded_blobs()
        else:
            for shape in ((self.channels,), (self.channels,), (1,)):
                self.blobs.append(self.make_blob(shape))
        self._fix_param_specs()

    def _check_axes(self, blob):
        if blob.num_axes < 2:
            raise self.shape_error(
                "needs an input with at least 2 axes (N, C, ...)",
                field="bottom", received=blob.shape,
                expected="a shape (N, C, *)")

    def _check_loaded_blobs(self):
        if len(self.blobs) < 3:
            raise self.config_error(
                "must hold 3 stored blobs (mean sum, variance sum, scale "
                "factor)", field="blobs", received=len(self.blobs),
                expected="3")
        for i, need in ((0, self.channels), (1, self.channels), (2, 1)):
            if self.blobs[i].count < need:
                raise self.shape_error(
                    f"stored blob {i} is too small for {self.channels} "
                    "channels", field=f"blobs[{i}]",
                    received=self.blobs[i].shape,
                    expected=f"at least {need} element(s)")

    def _fix_param_specs(self):
        # Caffe edits the layer's own copy of its parameter (the net keeps
        # the original, so its need-backward decision still sees lr_mult 1
        # where no spec was written), and saves the copy with the weights.
        own = caffe_pb2.LayerParameter()
        own.CopyFrom(self.layer_param)
        self.layer_param = own
        for i in range(len(self.blobs)):
            if len(own.param) == i:
                own.param.add().lr_mult = 0
            elif own.param[i].lr_mult != 0:
                raise self.config_error(
                    "must be 0: BatchNorm's blobs are running statistics, "
                    "not learned parameters", field=f"param[{i}].lr_mult",
                    received=own.param[i].lr_mult, expected="0",
                    fix="remove the param { } blocks (BatchNorm sets lr_mult "
                        "0 itself) and follow the layer with a Scale layer "
                        "(bias_term: true) for a learned scale and shift")

    def reshape(self, bottom, top):
        self._check_axes(bottom[0])
        if bottom[0].shape[1] != self.channels:
            raise self.shape_error(
                "channel count (shape[1]) must stay what it was at setup",
                field="bottom", received=bottom[0].shape,
                expected=f"shape[1] = {self.channels}")
        if top[0] is not bottom[0]:
            top[0].reshape_like(bottom[0])

    def _view(self, array):
        """``array`` as (N, C, S), S = the product of the trailing axes."""
        n = array.shape[0]
        rows = n * self.channels
        spatial = array.size // rows if rows else 0
        return array.reshape(n, self.channels, spatial)

    def forward(self, bottom, top):
        # Caffe's order, computed in the top: subtract the mean, then divide
        # by the standard deviation. In place, the top is the bottom: the
        # statistics are taken before it is overwritten.
        x = self._view(bottom[0].data)
        y = self._view(top[0].data)
        xp = array_module(x)
        if self.use_global_stats:
            mean, var = self._global_stats(xp)
            self.std = xp.sqrt(var + self.dtype.type(self.eps))
            # (The buffer size changes speed, never results: the
            # reductions of the batch statistics run outside it.)
            with rows_unbuffered(x.shape[2]):
                xp.subtract(x, mean, out=y)
                xp.divide(y, self.std, out=y)
        else:
            _, mean, var = centered_moments(x, _AXES, out=y)
            self._update_running_stats(mean, var, x.size // self.channels)
            self.std = xp.sqrt(var + self.dtype.type(self.eps))
            with rows_unbuffered(x.shape[2]):
                xp.divide(y, self.std, out=y)
        # Only the batch-statistics backward reads the normalised output,
        # and later in-place layers overwrite the top: keep a copy of it,
        # and only if backward can run.
        keep = self.needs_backward and not self.use_global_stats
        self.x_norm = y.copy() if keep else None

    def _global_stats(self, xp):
        """(mean, var), (1, C, 1): the running sums times 1/s (0 if s = 0)."""
        c = self.channels
        s = self.blobs[2].data.reshape(-1)[:1]
        if xp is np:    # the same float32 arithmetic on a scalar: faster
            s = s[0]
            inverse = s.dtype.type(0) if s == 0 else s.dtype.type(1) / s
        else:           # (a device array: no host round trip)
            inverse = xp.where(s == 0, 0, 1 / xp.where(s == 0, 1, s))
        mean = self.blobs[0].data.reshape(-1)[:c] * inverse
        var = self.blobs[1].data.reshape(-1)[:c] * inverse
        return mean.reshape(1, c, 1), var.reshape(1, c, 1)

    def _update_running_stats(self, mean, var, m):
        maf = self.dtype.type(self.moving_average_fraction)
        # Caffe's Dtype(m) / (m − 1), rounded in the blob's precision.
        factor = (self.dtype.type(m) / (m - 1) if m > 1
                  else self.dtype.type(1))
        c = self.channels
        s = self.blobs[2].data.reshape(-1)[:1]
        s *= maf
        s += 1
        mean_sum = self.blobs[0].data.reshape(-1)[:c]
        mean_sum *= maf
        mean_sum += mean.reshape(-1)
        var_sum = self.blobs[1].data.reshape(-1)[:c]
        var_sum *= maf
        var_sum += factor * var.reshape(-1)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        # In place, the bottom diff is the top diff: both compute elementwise
        # (normalize_backward takes its means before writing).
        dy = self._view(top[0].diff)
        dx = self._view(bottom[0].diff)
        xp = array_module(dy)
        if self.use_global_stats:
            xp.divide(dy, self.std, out=dx)
        else:
            normalize_backward(dy, self.x_norm, self.std, _AXES, out=dx)
