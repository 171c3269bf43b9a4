"""Learning-rate policies: values against the formulas of sgd_solver.cpp.

Each policy is checked twice: against its formula in float64 (to within
float32 rounding), and exactly against the value a float Caffe build
computes, whose types are spelled out here: ``pow(float, int)`` promotes to
double (step, exp, multistep), ``pow(float, float)`` and ``exp(float)`` stay
in float (inv, poly, sigmoid).
"""
import math

import numpy as np
import pytest

from kaffe.core.errors import KaffeConfigError
from kaffe.proto import caffe_pb2
from kaffe.proto.io import parse_text
from kaffe.solvers.lr_policy import POLICIES, learning_rate

f32 = np.float32


def param(text):
    return parse_text(text, caffe_pb2.SolverParameter())


# (solver fields, formula in float64 of (iter, current_step), exact float32)
CASES = {
    "fixed": ('lr_policy: "fixed" base_lr: 0.01',
              lambda it: 0.01, lambda it: f32(0.01)),
    "step": ('lr_policy: "step" base_lr: 0.01 gamma: 0.1 stepsize: 7',
             lambda it: 0.01 * 0.1 ** (it // 7),
             lambda it: f32(float(f32(0.01)) * float(f32(0.1)) ** (it // 7))),
    "exp": ('lr_policy: "exp" base_lr: 0.01 gamma: 0.97',
            lambda it: 0.01 * 0.97 ** it,
            lambda it: f32(float(f32(0.01)) * float(f32(0.97)) ** it)),
    "inv": ('lr_policy: "inv" base_lr: 0.01 gamma: 0.0001 power: 0.75',
            lambda it: 0.01 * (1 + 0.0001 * it) ** -0.75,
            lambda it: f32(0.01) * f32(float(f32(1) + f32(0.0001) * f32(it))
                                       ** -float(f32(0.75)))),
    "poly": ('lr_policy: "poly" base_lr: 0.01 power: 0.9 max_iter: 40',
             lambda it: 0.01 * (1 - it / 40) ** 0.9,
             lambda it: f32(0.01) * f32(float(f32(1) - f32(it) / f32(40))
                                        ** float(f32(0.9)))),
}


@pytest.mark.parametrize("policy", ["fixed", "step", "exp", "inv", "poly"])
def test_policy_values(policy):
    fields, formula, exact = CASES[policy]
    p = param(fields)
    for it in range(0, 40):
        rate, _ = learning_rate(p, it)
        assert isinstance(rate, np.float32)
        assert rate == exact(it), it
        # The decimal constants differ from the float32 fields by up to
        # 6e-8 relative, which gamma ** 40 compounds.
        assert float(rate) == pytest.approx(formula(it), rel=1e-5)


def test_sigmoid_values():
    p = param('lr_policy: "sigmoid" base_lr: 0.01 gamma: 0.3 stepsize: 10')
    for it in range(0, 30):
        rate, _ = learning_rate(p, it)
        formula = 0.01 / (1 + math.exp(-0.3 * (it - 10)))
        assert float(rate) == pytest.approx(formula, rel=1e-6)
        z = -f32(0.3) * (f32(it) - f32(10))
        assert rate == f32(0.01) * (f32(1) / (f32(1) + f32(math.exp(z))))
    assert learning_rate(p, 10)[0] == f32(0.005)


def test_step_sets_current_step():
    p = param('lr_policy: "step" base_lr: 1 gamma: 0.5 stepsize: 3')
    assert learning_rate(p, 7, current_step=0) == (f32(0.25), 2)


def test_multistep_advances_one_step_per_call(kaffe_log):
    p = param('lr_policy: "multistep" base_lr: 1 gamma: 0.1 '
              'stepvalue: 2 stepvalue: 4 stepvalue: 5')
    step = 0
    rates = []
    for it in range(8):
        rate, step = learning_rate(p, it, step)
        rates.append((it, float(rate), step))
    assert [s for _, _, s in rates] == [0, 0, 1, 1, 2, 3, 3, 3]
    assert rates[5][1] == float(f32(1 * 0.1 ** 3))
    lines = [r.getMessage() for r in kaffe_log.records if "MultiStep" in
             r.getMessage()]
    assert lines == ["MultiStep Status: Iteration 2, step = 1",
                     "MultiStep Status: Iteration 4, step = 2",
                     "MultiStep Status: Iteration 5, step = 3"]
    # Resumed late (current_step 0 at iteration 9): one step per call, as
    # Caffe's `if` (not `while`) does.
    assert learning_rate(p, 9, 0)[1] == 1


def test_poly_reaches_zero_at_max_iter():
    p = param('lr_policy: "poly" base_lr: 0.5 power: 1 max_iter: 10')
    assert learning_rate(p, 10)[0] == 0
    assert learning_rate(p, 5)[0] == f32(0.25)


def test_every_policy_is_covered():
    assert set(POLICIES) == set(CASES) | {"multistep", "sigmoid"}


@pytest.mark.parametrize("text, fix", [
    ('lr_policy: "Step" stepsize: 1', "did you mean 'step'?"),
    ('lr_policy: "multi_step"', "did you mean 'multistep'?"),
    ('lr_policy: "cosine"', "use one of fixed, step, exp, inv, multistep, "
                            "poly, sigmoid"),
    ('', 'set lr_policy: "fixed"'),
])
def test_unknown_policy(text, fix):
    with pytest.raises(KaffeConfigError, match="lr_policy") as e:
        learning_rate(param(text), 0)
    assert fix in str(e.value)


@pytest.mark.parametrize("text, field", [
    ('lr_policy: "step" gamma: 0.1', "stepsize"),
    ('lr_policy: "sigmoid" gamma: 0.1', "stepsize"),
    ('lr_policy: "exp" gamma: -0.1', "gamma"),
    ('lr_policy: "multistep" gamma: -1 stepvalue: 1', "gamma"),
])
def test_policy_field_checks(text, field):
    with pytest.raises(KaffeConfigError, match=field):
        learning_rate(param(text), 0)


def test_solver_lr_property_and_settable_base_lr(write_solver):
    from kaffe import solvers
    solver = solvers.get_solver(write_solver(
        'net: "net.prototxt" base_lr: 0.1 lr_policy: "exp" gamma: 0.5'))
    assert solver.lr == pytest.approx(0.1)
    solver.param.base_lr = 0.2             # pycaffe: param.base_lr settable
    solver.step(2)
    assert solver.lr == float(f32(float(f32(0.2)) * 0.5 ** 2))
