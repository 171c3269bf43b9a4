"""SGD with momentum (Caffe's SGDSolver::ComputeUpdateValue).

    h ← lr·g + μ·h        (history; Caffe: scale h by μ, then add lr·g)
    Δ ← h                 (the step net.update() subtracts)

lr is the rate times the parameter's lr_mult, μ is ``momentum``.
"""
from ..core.backend import array_module
from .solver import Solver, axpby, register_solver

# SGD updates a parameter in parts of this many elements (256 KB of
# float32): each part's four arrays (weights, diff, history, a scratch) stay
# in the L2 cache through the update's seven passes, where a whole large
# parameter would go to memory on each (LeNet's ip1, 400 000 weights:
# 0.69 → 0.32 ms).
_PART_ELEMENTS = 1 << 16


@register_solver("SGD")
class SGDSolver(Solver):
    """Stochastic gradient descent with momentum; the base of every rule.

    Reads: base_lr, lr_policy & co, momentum, weight_decay,
    regularization_type. History: one blob per learnable parameter (the
    last step taken).
    """

    @property
    def lr(self):
        """The current learning rate (pycaffe's ``SGDSolver.lr``, which calls
        GetLearningRate: for multistep it may advance the step counter)."""
        return float(self.get_learning_rate())

    def compute_update_value(self, param_id, rate):
        diff = self.net.learnable_params[param_id].diff
        history = self.history[param_id].data
        momentum = self._f(self._param.momentum)
        axpby(self._local_rate(param_id, rate), diff, momentum, history)
        diff[...] = history

    def update_params(self, rate):
        """Solver.update_params, part by part of each parameter (the same
        operations on every element, so the same bits), for plain SGD; the
        rules derived from it use their own compute_update_value."""
        if type(self).compute_update_value is not \
                SGDSolver.compute_update_value:
            super().update_params(rate)
            return
        for param_id in range(len(self.net.learnable_params)):
            self._update_in_parts(param_id, rate)

    def _update_in_parts(self, param_id, rate):
        """normalize, regularize, compute_update_value and data -= diff of
        one parameter, with Caffe's roundings, one part at a time."""
        f = self._f
        p = self._param
        blob = self.net.learnable_params[param_id]
        data = blob.data.reshape(-1)
        diff = blob.diff.reshape(-1)
        history = self.history[param_id].data.reshape(-1)
        xp = array_module(data)
        scale = f(1) / f(p.iter_size) if p.iter_size != 1 else None
        decay = f(p.weight_decay) * f(self.net.params_weight_decay[param_id])
        if decay and p.regularization_type not in ("L1", "L2"):
            raise self._regularization_error()
        local_rate = self._local_rate(param_id, rate)
        momentum = f(p.momentum)
        scratch = xp.empty(min(data.size, _PART_ELEMENTS), dtype=data.dtype)
        for start in range(0, data.size, _PART_ELEMENTS):
            part = slice(start, start + _PART_ELEMENTS)
            w, g, h = data[part], diff[part], history[part]
            t = scratch[:w.size]
            if scale is not None:                # normalize
                g *= scale
            if decay:                            # regularize
                if p.regularization_type == "L2":
                    xp.multiply(w, decay, out=t)
                else:
                    # caffe_cpu_sign: (0 < w) - (w < 0)
                    sign = ((w > 0).astype(self.dtype)
                            - (w < 0).astype(self.dtype))
                    xp.multiply(sign, decay, out=t)
                g += t
            h *= momentum                        # axpby(lr, g, μ, h)
            xp.multiply(g, local_rate, out=t)
            h += t
            g[...] = h
            w -= g                               # net.update()
