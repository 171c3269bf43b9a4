"""InnerProduct: the fully connected layer."""
import logging

from ...core.backend import array_module
from ...core.filler import fill
from ...core.layer import Layer
from ...core.registry import register_layer

log = logging.getLogger("kaffe")


# InnerProduct's weight gradient goes through a scratch of this many bytes
# (see _accumulate_product).
_PRODUCT_BLOCK_BYTES = 1 << 20


@register_layer("InnerProduct")
class InnerProductLayer(Layer):
    """Fully connected: top = flatten(bottom, axis) · Wᵀ + b.

    Reads inner_product_param: num_output, bias_term, weight_filler,
    bias_filler, axis, transpose.
    Blobs: [0] weight (num_output, K) — (K, num_output) if transpose;
    [1] bias (num_output,). K = product of the bottom's dims from ``axis`` on,
    fixed at setup.
    Shape: bottom (d0 … d{axis-1}, *) → top (d0 … d{axis-1}, num_output).
    """

    exact_num_bottom_blobs = 1
    exact_num_top_blobs = 1

    def setup(self, bottom, top):
        p = self.layer_param.inner_product_param
        if p.num_output <= 0:
            raise self.config_error(
                "must be > 0", field="inner_product_param.num_output",
                received=p.num_output,
                fix="set num_output to the number of outputs you want")
        self.num_output = p.num_output
        self.bias_term = p.bias_term
        self.transpose = p.transpose
        axis = self.canonical_axis(bottom[0], p.axis,
                                   "inner_product_param.axis")
        self.K = bottom[0].count_axes(axis)
        if self.blobs:
            log.info("Skipping parameter initialization")
            return
        shape = ((self.K, self.num_output) if self.transpose
                 else (self.num_output, self.K))
        weight = self.make_blob(shape)
        fill(weight, p.weight_filler, layer=self,
             field="inner_product_param.weight_filler")
        self.blobs.append(weight)
        if self.bias_term:
            bias = self.make_blob((self.num_output,))
            fill(bias, p.bias_filler, layer=self,
                 field="inner_product_param.bias_filler")
            self.blobs.append(bias)

    def reshape(self, bottom, top):
        axis = self.canonical_axis(bottom[0],
                                   self.layer_param.inner_product_param.axis,
                                   "inner_product_param.axis")
        k = bottom[0].count_axes(axis)
        if k != self.K:
            raise self.shape_error(
                "input size is incompatible with the layer's weights "
                f"(the product of the input's dims from axis {axis} on must "
                "stay what it was at setup)", field="bottom",
                received=f"{k} from shape {bottom[0].shape}",
                expected=str(self.K))
        self.M = bottom[0].count_axes(0, axis)
        top[0].reshape(bottom[0].shape[:axis] + (self.num_output,))

    def forward(self, bottom, top):
        x = bottom[0].data.reshape(self.M, self.K)
        w = self.blobs[0].data
        y = top[0].data.reshape(self.M, self.num_output)
        xp = array_module(x)
        xp.matmul(x, w if self.transpose else w.T, out=y)
        if self.bias_term:
            y += self.blobs[1].data

    def backward(self, top, propagate_down, bottom):
        dy = top[0].diff.reshape(self.M, self.num_output)
        x = bottom[0].data.reshape(self.M, self.K)
        if self.param_needs_backward(0):
            dw = self.blobs[0].diff
            if self.transpose:
                self._accumulate_product(dw, x, dy)
            else:
                self._accumulate_product(dw, dy, x)
        if self.bias_term and self.param_needs_backward(1):
            self.blobs[1].diff[...] += dy.sum(axis=0)
        if propagate_down[0]:
            w = self.blobs[0].data
            dx = bottom[0].diff.reshape(self.M, self.K)
            xp = array_module(dy)
            xp.matmul(dy, w.T if self.transpose else w, out=dx)

    def _accumulate_product(self, dw, a, b):
        """dw += a.T @ b, a block of dw's rows at a time through a kept
        scratch of about _PRODUCT_BLOCK_BYTES: no weight-sized temporary
        (AlexNet's fc6: 151 MB, page-faulted in on every step), and each
        block is still in the cache when it is added. float32 only, the
        training type, where OpenBLAS gives every entry the same bits
        either way (checked over shapes and thread counts; its float64
        kernels do not always: float64, the gradient checks' type, keeps the
        one product)."""
        xp = array_module(dw)
        rows = _PRODUCT_BLOCK_BYTES // max(1, dw[:1].nbytes)
        rows = max(64, rows - rows % 64)  # whole BLAS register blocks
        if rows >= len(dw) or dw.dtype != xp.float32:
            dw += a.T @ b
            return
        scratch = getattr(self, "_product_scratch", None)
        if scratch is None or scratch.shape != (rows,) + dw.shape[1:] \
                or scratch.dtype != dw.dtype:
            scratch = self._product_scratch = xp.empty(
                (rows,) + dw.shape[1:], dtype=dw.dtype)
        for first in range(0, len(dw), rows):
            block = scratch[:min(rows, len(dw) - first)]
            xp.matmul(a[:, first:first + rows].T, b, out=block)
            dw[first:first + rows] += block
