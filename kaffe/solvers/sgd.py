"""SGD with momentum (Caffe's SGDSolver::ComputeUpdateValue).

    h ← lr·g + μ·h        (history; Caffe: scale h by μ, then add lr·g)
    Δ ← h                 (the step net.update() subtracts)

lr is the rate times the parameter's lr_mult, μ is ``momentum``.
"""
from .solver import Solver, axpby, register_solver


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
