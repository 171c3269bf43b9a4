"""AdaGrad (Caffe's AdaGradSolver).

    h ← g² + h
    Δ ← lr · g / (√h + δ)

δ is ``delta``; momentum must be 0.
"""
from ..core.backend import array_module
from .sgd import SGDSolver
from .solver import axpby, register_solver


@register_solver("AdaGrad")
class AdaGradSolver(SGDSolver):
    """Per-element rates from the sum of squared gradients. Reads delta.
    History: one blob per learnable parameter (Σ g²)."""

    def _check_update_param(self):
        self._require_no_momentum()

    def compute_update_value(self, param_id, rate):
        diff = self.net.learnable_params[param_id].diff
        history = self.history[param_id].data
        xp = array_module(diff)
        history[...] = diff * diff + history
        update = xp.sqrt(history)
        update += self._f(self._param.delta)
        update = diff / update
        axpby(self._local_rate(param_id, rate), update, self._f(0), diff)
