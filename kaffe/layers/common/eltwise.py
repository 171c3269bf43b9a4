"""Eltwise: element-wise SUM (with coefficients), PROD or MAX of blobs."""
from ...core.backend import array_module
from ...core.layer import Layer
from ...core.registry import register_layer
from ...proto import caffe_pb2

_OP = caffe_pb2.EltwiseParameter


@register_layer("Eltwise")
class EltwiseLayer(Layer):
    """Combines same-shaped bottoms element by element.

    Reads eltwise_param: operation SUM (default) / PROD / MAX; coeff (none
    or one per bottom; used by SUM, ignored by MAX, refused by PROD);
    stable_prod_grad (true: PROD's gradient is the product of the other
    bottoms rather than top / bottom).
    MAX ties: between bottom 0 and 1 the later wins; later bottoms must be
    strictly greater to win (Caffe's rule); only the winner gets gradient.
    """

    min_bottom_blobs = 2
    exact_num_top_blobs = 1

    def setup(self, bottom, top):
        p = self.layer_param.eltwise_param
        if len(p.coeff) not in (0, len(bottom)):
            raise self.config_error(
                "takes one coefficient per bottom blob",
                field="eltwise_param.coeff", received=f"{len(p.coeff)} coeffs",
                expected=f"0 or {len(bottom)}")
        # Caffe refuses coefficients only for PROD; MAX silently ignores them.
        if p.operation == _OP.PROD and len(p.coeff):
            raise self.config_error(
                "is not allowed with operation PROD",
                field="eltwise_param.coeff",
                received=_OP.EltwiseOp.Name(p.operation),
                fix="remove coeff, or use operation: SUM")
        self.op = p.operation
        self.coeffs = list(p.coeff) if len(p.coeff) else [1.0] * len(bottom)
        self.stable_prod_grad = p.stable_prod_grad

    def reshape(self, bottom, top):
        for i, blob in enumerate(bottom[1:], start=1):
            if blob.shape != bottom[0].shape:
                raise self.shape_error(
                    f"bottom[{i}] must have the same shape as bottom[0]",
                    field="bottom", received=blob.shape,
                    expected=bottom[0].shape)
        top[0].reshape_like(bottom[0])

    def forward(self, bottom, top):
        xs = [b.data for b in bottom]
        y = top[0].data
        xp = array_module(y)
        if self.op == _OP.PROD:
            xp.multiply(xs[0], xs[1], out=y)
            for x in xs[2:]:
                y *= x
            return
        # Results go straight into the top. In place on bottom 0, y already
        # holds x0; in place on a later bottom, writing y would lose that
        # bottom before it is read: work in a fresh array then.
        overwrites_input = any(top[0] is b for b in bottom[1:])
        result = xp.empty_like(y) if overwrites_input else y
        if self.op == _OP.SUM:
            holds_x0 = top[0] is bottom[0] and not overwrites_input
            self._sum(xp, xs, result, holds_x0)
        else:
            self._max(xp, xs, result)
        if overwrites_input:
            y[...] = result

    def _sum(self, xp, xs, total, holds_x0):
        """total = Σ coeff·x, added bottom by bottom (``holds_x0``: total
        already is x0)."""
        first = 1
        if self.coeffs[0] != 1:
            xp.multiply(xs[0], self.coeffs[0], out=total)
        elif not holds_x0:
            if self.coeffs[1] == 1:
                # x0 + x1 in one pass (ResNet's shortcut sums).
                xp.add(xs[0], xs[1], out=total)
                first = 2
            else:
                total[...] = xs[0]
        for c, x in zip(self.coeffs[first:], xs[first:]):
            total += c * x if c != 1 else x

    def _max(self, xp, xs, best):
        """best = the elementwise maximum by Caffe's rule; the index of the
        winning bottom goes to ``self.argmax`` only if backward can run."""
        # Caffe: a > b keeps a, otherwise b; later bottoms need strictly >.
        better = xs[0] > xs[1]
        keep = self.needs_backward
        self.argmax = (~better).astype(xp.int32) if keep else None
        best[...] = xp.where(better, xs[0], xs[1])
        for i, x in enumerate(xs[2:], start=2):
            better = x > best
            if keep:
                self.argmax[better] = i
            best[better] = x[better]

    def backward(self, top, propagate_down, bottom):
        dy = top[0].diff
        xp = array_module(dy)
        # A bottom computed in place shares the top's diff: do it last.
        order = sorted(range(len(bottom)), key=lambda i: bottom[i] is top[0])
        for i in order:
            blob = bottom[i]
            if not propagate_down[i]:
                continue
            if self.op == _OP.PROD:
                if self.stable_prod_grad:
                    grad = None
                    for j, other in enumerate(bottom):
                        if j != i:
                            grad = (other.data.copy() if grad is None
                                    else grad * other.data)
                else:
                    grad = top[0].data / blob.data
                xp.multiply(grad, dy, out=blob.diff)
            elif self.op == _OP.SUM:
                xp.multiply(dy, self.coeffs[i], out=blob.diff)
            else:
                xp.multiply(dy, self.argmax == i, out=blob.diff)
