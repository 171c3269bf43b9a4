"""Learning-rate policies: Caffe's ``SGDSolver::GetLearningRate``.

=========  ==========================================================
fixed      base_lr
step       base_lr · gamma ^ floor(iter / stepsize)
exp        base_lr · gamma ^ iter
inv        base_lr · (1 + gamma · iter) ^ (−power)
multistep  base_lr · gamma ^ current_step, current_step moving on by one
           each time iter reaches the next stepvalue
poly       base_lr · (1 − iter / max_iter) ^ power
sigmoid    base_lr / (1 + exp(−gamma · (iter − stepsize)))
=========  ==========================================================

The rate is computed with the precision Caffe's float build uses (a C++11
compiler, where ``<math.h>`` brings the float overloads of ``std::pow`` and
``std::exp``): ``pow(float, int)`` promotes to double, so step, exp and
multistep take the power in double and round the product with base_lr to
float once; inv, poly and sigmoid work in float throughout (``powf``,
``expf``). ``powf``/``expf`` are taken as the double result rounded to float,
which is how glibc computes them.
"""
import difflib
import logging
import math

import numpy as np

from ..core.errors import KaffeConfigError

log = logging.getLogger("kaffe")

POLICIES = ("fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid")


def check_lr_policy(param, locate=None):
    """Raise KaffeConfigError unless ``param`` names a usable lr policy.

    Checks what Caffe checks when it computes the rate (stepsize > 0 for
    step and sigmoid, gamma >= 0 where gamma is used), but up front.

    Args:
        param: a caffe_pb2.SolverParameter.
        locate: (field, fallback field...) -> dict(file=..., line=...) for
            the error's location (kaffe.solvers.solver.SolverSource.where).
    """
    locate = locate or (lambda *fields: {})
    policy = param.lr_policy
    if policy not in POLICIES:
        close = [p for p in POLICIES if p == policy.lower()] or \
            difflib.get_close_matches(policy, POLICIES, n=1, cutoff=0.5)
        if not policy:
            problem, fix = "is not set", "set lr_policy: \"fixed\" (or one " \
                "of " + ", ".join(POLICIES[1:]) + ")"
        else:
            problem = "is not a known learning rate policy"
            fix = ("did you mean " + " or ".join(f"'{c}'" for c in close) +
                   "?") if close else "use one of " + ", ".join(POLICIES)
        raise KaffeConfigError(problem, field="lr_policy", received=policy,
                               expected="one of " + ", ".join(POLICIES),
                               fix=fix, **locate("lr_policy"))
    if policy in ("step", "sigmoid") and param.stepsize <= 0:
        raise KaffeConfigError(
            f"must be > 0 for the '{policy}' policy", field="stepsize",
            received=param.stepsize, fix="set stepsize to the number of "
            "iterations per step", **locate("stepsize", "lr_policy"))
    if policy != "fixed" and policy != "poly" and param.gamma < 0:
        raise KaffeConfigError(
            f"must be >= 0 for the '{policy}' policy", field="gamma",
            received=param.gamma, **locate("gamma", "lr_policy"))


def learning_rate(param, iteration, current_step=0, dtype=np.float32):
    """The learning rate at ``iteration``, as Caffe computes it.

    Args:
        param: a caffe_pb2.SolverParameter (lr_policy and its fields).
        iteration: the solver's iteration (updates done so far).
        current_step: the solver's step counter (step/multistep state).
        dtype: the solver's float type (float32 as Caffe's float build).

    Returns:
        (rate, current_step): the rate as a ``dtype`` scalar and the step
        counter after this call (step sets it, multistep may advance it by
        one and then logs "MultiStep Status: Iteration N, step = K").

    Raises:
        KaffeConfigError: an unknown policy or a bad stepsize/gamma.
    """
    check_lr_policy(param)
    f = np.dtype(dtype).type
    policy = param.lr_policy
    base = f(param.base_lr)
    gamma = f(param.gamma)
    with np.errstate(all="ignore"):
        if policy == "fixed":
            rate = base
        elif policy == "step":
            current_step = iteration // param.stepsize
            rate = f(float(base) * _pow(float(gamma), current_step))
        elif policy == "exp":
            rate = f(float(base) * _pow(float(gamma), iteration))
        elif policy == "inv":
            x = f(1) + gamma * f(iteration)
            rate = base * f(_pow(float(x), -float(f(param.power))))
        elif policy == "multistep":
            if (current_step < len(param.stepvalue)
                    and iteration >= param.stepvalue[current_step]):
                current_step += 1
                log.info("MultiStep Status: Iteration %d, step = %d",
                         iteration, current_step)
            rate = f(float(base) * _pow(float(gamma), current_step))
        elif policy == "poly":
            x = f(1) - f(iteration) / f(param.max_iter)
            rate = base * f(_pow(float(x), float(f(param.power))))
        else:  # sigmoid
            z = -gamma * (f(iteration) - f(param.stepsize))
            rate = base * (f(1) / (f(1) + f(_exp(float(z)))))
    return f(rate), current_step


def _pow(x, y):
    """C's pow in double, with C's inf/nan results instead of exceptions."""
    try:
        return math.pow(x, y)
    except ValueError:
        if x == 0:      # 0 ^ negative: C gives inf (with the sign of -0 ^ odd)
            odd = float(y).is_integer() and int(y) % 2 == 1
            return math.copysign(math.inf, x) if odd else math.inf
        return math.nan
    except OverflowError:
        negative = x < 0 and float(y).is_integer() and int(y) % 2 == 1
        return -math.inf if negative else math.inf


def _exp(x):
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf
