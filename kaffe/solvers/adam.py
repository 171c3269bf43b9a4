"""Adam (Caffe's AdamSolver; β1 = ``momentum``, β2 = ``momentum2``,
ε = ``delta``).

    m ← β1·m + (1−β1)·g
    v ← β2·v + (1−β2)·g²
    Δ ← lr·√(1−β2ᵗ)/(1−β1ᵗ) · m / (√v + ε),   t = iter + 1

The bias correction is folded into the rate: computed in double (Caffe's
``pow(float, int)`` promotes), rounded to float, then multiplied by the
parameter's local rate in float. History: 2N blobs, the N first moments m,
then the N second moments v.
"""
import numpy as np

from ..core.backend import array_module
from .sgd import SGDSolver
from .solver import axpby, register_solver


@register_solver("Adam")
class AdamSolver(SGDSolver):
    """Adaptive moment estimation. Reads momentum (β1, typically 0.9),
    momentum2 (β2, 0.999), delta (ε, 1e-8)."""

    history_per_param = 2

    def compute_update_value(self, param_id, rate):
        f = self._f
        n_params = len(self.net.learnable_params)
        diff = self.net.learnable_params[param_id].diff
        m = self.history[param_id].data
        v = self.history[n_params + param_id].data
        xp = array_module(diff)
        beta1 = f(self._param.momentum)
        beta2 = f(self._param.momentum2)
        t = self._iter + 1
        correction = f(bias_correction(float(beta1), float(beta2), t))
        axpby(f(1) - beta1, diff, beta1, m)
        axpby(f(1) - beta2, diff * diff, beta2, v)
        update = xp.sqrt(v)
        update += f(self._param.delta)
        update = m / update
        diff[...] = (self._local_rate(param_id, rate) * correction) * update


def bias_correction(beta1, beta2, t):
    """sqrt(1 − β2^t) / (1 − β1^t) in IEEE arithmetic, as Caffe's C++
    computes it: a β outside [0, 1) or a far-off t gives inf or NaN (which
    the training then shows), never a Python OverflowError or
    ZeroDivisionError."""
    with np.errstate(all="ignore"):
        b1, b2, t = np.float64(beta1), np.float64(beta2), np.float64(t)
        return float(np.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t))
