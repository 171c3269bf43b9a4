"""RMSProp (Caffe's RMSPropSolver).

    h ← ρ·h + (1−ρ)·g²
    Δ ← lr · g / (√h + δ)

ρ is ``rms_decay`` (in [0, 1)), δ is ``delta``; momentum must be 0.
"""
from ..core.backend import array_module
from ..core.errors import KaffeConfigError
from .sgd import SGDSolver
from .solver import axpby, register_solver


@register_solver("RMSProp")
class RMSPropSolver(SGDSolver):
    """Per-element rates from a running mean of squared gradients. Reads
    rms_decay, delta. History: one blob per learnable parameter (mean g²)."""

    def _check_update_param(self):
        self._require_no_momentum()
        rms_decay = self._param.rms_decay
        if not 0 <= rms_decay < 1:
            raise KaffeConfigError(
                "should lie between 0 and 1", field="rms_decay",
                received=rms_decay, expected="0 <= rms_decay < 1",
                **self._where("rms_decay"))

    def compute_update_value(self, param_id, rate):
        f = self._f
        diff = self.net.learnable_params[param_id].diff
        history = self.history[param_id].data
        xp = array_module(diff)
        rms_decay = f(self._param.rms_decay)
        axpby(f(1) - rms_decay, diff * diff, rms_decay, history)
        update = xp.sqrt(history)
        update += f(self._param.delta)
        update = diff / update
        axpby(self._local_rate(param_id, rate), update, self._f(0), diff)
