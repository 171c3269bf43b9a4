"""AdaDelta (Caffe's AdaDeltaSolver; ``momentum`` is the decay ρ).

    h_g ← ρ·h_g + (1−ρ)·g²
    u   ← g · √((h_u + δ) / (h_g + δ))
    h_u ← ρ·h_u + (1−ρ)·u²
    Δ   ← lr · u

History: 2N blobs, the N gradient averages h_g, then the N update
averages h_u.
"""
from ..core.backend import array_module
from .sgd import SGDSolver
from .solver import axpby, register_solver


@register_solver("AdaDelta")
class AdaDeltaSolver(SGDSolver):
    """Rates from the ratio of running RMS of updates and of gradients.
    Reads momentum (ρ), delta; base_lr is usually 1."""

    history_per_param = 2

    def compute_update_value(self, param_id, rate):
        f = self._f
        n_params = len(self.net.learnable_params)
        diff = self.net.learnable_params[param_id].diff
        grad_history = self.history[param_id].data
        update_history = self.history[n_params + param_id].data
        xp = array_module(diff)
        momentum = f(self._param.momentum)
        delta = f(self._param.delta)
        axpby(f(1) - momentum, diff * diff, momentum, grad_history)
        update = (delta + update_history) / (delta + grad_history)
        update = xp.sqrt(update)
        diff *= update
        axpby(f(1) - momentum, diff * diff, momentum, update_history)
        diff *= self._local_rate(param_id, rate)
