"""Nesterov's accelerated gradient (Caffe's NesterovSolver).

    h' ← lr·g + μ·h
    Δ  ← (1+μ)·h' − μ·h     (step back by the old momentum, over-step)

In Caffe's order: the old h is saved, h is updated as in SGD, then the saved
copy is scaled by −μ and (1+μ)·h' is added to it.
"""
from .sgd import SGDSolver
from .solver import axpby, register_solver


@register_solver("Nesterov")
class NesterovSolver(SGDSolver):
    """SGD with Nesterov momentum. Reads momentum. History: one blob per
    learnable parameter (the momentum h)."""

    def compute_update_value(self, param_id, rate):
        f = self._f
        diff = self.net.learnable_params[param_id].diff
        history = self.history[param_id].data
        momentum = f(self._param.momentum)
        update = history.copy()
        axpby(self._local_rate(param_id, rate), diff, momentum, history)
        axpby(f(1) + momentum, history, -momentum, update)
        diff[...] = update
