"""Every update rule × every configuration against a hand-written reference.

The reference below is Caffe's arithmetic written out from
``sgd_solver.cpp`` and the ``*_solver.cpp`` files: the learning rate, gradient
clipping, 1/iter_size normalisation, L2/L1 regularisation with
weight_decay·decay_mult, the rate times lr_mult and the six update rules, each
operation rounded to float32 in the order Caffe's CPU code performs it
(``caffe_cpu_axpby`` scales y before adding alpha·x, and so on). Its
gradients come from a second copy of the net that replays the same batches
with the reference's own weights, so any divergence of the solver's weights
shows up in the next gradient as well.

The comparison is exact (``assert_array_equal``): both sides round every
operation to float32 identically. The one sum whose order depends on the
BLAS, the squared L2 norm of the gradients for clipping, is taken with
``np.dot`` on both sides.
"""
import math
import re

import numpy as np
import pytest

from kaffe import solvers

f32 = np.float32

# The configurations: extra solver fields, by name. Every one runs with
# every solver type; "momentum" gives each type its usual momentum/decay.
POLICIES = {
    "fixed": 'lr_policy: "fixed"',
    "step": 'lr_policy: "step" stepsize: 2 gamma: 0.5',
    "exp": 'lr_policy: "exp" gamma: 0.9',
    "inv": 'lr_policy: "inv" gamma: 0.1 power: 0.75',
    "multistep": 'lr_policy: "multistep" gamma: 0.3 stepvalue: 1 '
                 'stepvalue: 3',
    "poly": 'lr_policy: "poly" power: 2 max_iter: 7',
    "sigmoid": 'lr_policy: "sigmoid" gamma: 0.5 stepsize: 3',
}
CONFIGS = {
    "plain": "",
    "l2": "weight_decay: 0.01",
    "l1": 'weight_decay: 0.02 regularization_type: "L1"',
    "clip": "clip_gradients: 0.05",
    "iter_size_2": "iter_size: 2 weight_decay: 0.005",
    "momentum": None,     # filled per type below
}
TYPE_FIELDS = {
    "SGD": ("base_lr: 0.05", "momentum: 0.9"),
    "Nesterov": ("base_lr: 0.05", "momentum: 0.9"),
    "AdaGrad": ("base_lr: 0.05", "delta: 0.01"),
    "RMSProp": ("base_lr: 0.01", "rms_decay: 0.5 delta: 1e-4"),
    "AdaDelta": ("base_lr: 1.0", "momentum: 0.95 delta: 1e-6"),
    "Adam": ("base_lr: 0.01", "momentum: 0.9 momentum2: 0.99 delta: 1e-6"),
}
STEPS = 5


# -- the reference -------------------------------------------------------------
def reference_rate(p, it, current_step):
    """GetLearningRate (sgd_solver.cpp) with a float Caffe build's types."""
    base, gamma, power = f32(p.base_lr), f32(p.gamma), f32(p.power)
    policy = p.lr_policy
    if policy == "fixed":
        return base, current_step
    if policy == "step":
        current_step = it // p.stepsize
        return f32(float(base) * float(gamma) ** current_step), current_step
    if policy == "exp":
        return f32(float(base) * float(gamma) ** it), current_step
    if policy == "inv":
        x = f32(1) + gamma * f32(it)
        return base * f32(float(x) ** -float(power)), current_step
    if policy == "multistep":
        if current_step < len(p.stepvalue) and it >= p.stepvalue[current_step]:
            current_step += 1
        return f32(float(base) * float(gamma) ** current_step), current_step
    if policy == "poly":
        x = f32(1) - f32(it) / f32(p.max_iter)
        return base * f32(float(x) ** float(power)), current_step
    assert policy == "sigmoid"
    z = -gamma * (f32(it) - f32(p.stepsize))
    return base * (f32(1) / (f32(1) + f32(math.exp(float(z))))), current_step


def sgd(ref, i, g, lr):
    mu = f32(ref.p.momentum)
    ref.h[0][i] = mu * ref.h[0][i] + lr * g
    return ref.h[0][i]


def nesterov(ref, i, g, lr):
    mu = f32(ref.p.momentum)
    old = ref.h[0][i]
    ref.h[0][i] = mu * old + lr * g
    return -mu * old + (f32(1) + mu) * ref.h[0][i]


def adagrad(ref, i, g, lr):
    ref.h[0][i] = g * g + ref.h[0][i]
    return lr * (g / (np.sqrt(ref.h[0][i]) + f32(ref.p.delta)))


def rmsprop(ref, i, g, lr):
    rho = f32(ref.p.rms_decay)
    ref.h[0][i] = rho * ref.h[0][i] + (f32(1) - rho) * (g * g)
    return lr * (g / (np.sqrt(ref.h[0][i]) + f32(ref.p.delta)))


def adadelta(ref, i, g, lr):
    rho, delta = f32(ref.p.momentum), f32(ref.p.delta)
    grads, updates = ref.h
    grads[i] = rho * grads[i] + (f32(1) - rho) * (g * g)
    u = g * np.sqrt((delta + updates[i]) / (delta + grads[i]))
    updates[i] = rho * updates[i] + (f32(1) - rho) * (u * u)
    return lr * u


def adam(ref, i, g, lr):
    b1, b2 = f32(ref.p.momentum), f32(ref.p.momentum2)
    m, v = ref.h
    t = ref.iter + 1
    correction = f32(math.sqrt(1 - float(b2) ** t) / (1 - float(b1) ** t))
    m[i] = b1 * m[i] + (f32(1) - b1) * g
    v[i] = b2 * v[i] + (f32(1) - b2) * (g * g)
    return (lr * correction) * (m[i] / (np.sqrt(v[i]) + f32(ref.p.delta)))


RULES = {"SGD": sgd, "Nesterov": nesterov, "AdaGrad": adagrad,
         "RMSProp": rmsprop, "AdaDelta": adadelta, "Adam": adam}


class Reference:
    """Caffe's ApplyUpdate by hand, on its own copy of the weights."""

    def __init__(self, solver, oracle):
        self.p = solver.param
        net = solver.net
        self.w = [b.data.copy() for b in net.learnable_params]
        self.lr_mult = [f32(m) for m in net.params_lr]
        self.decay_mult = [f32(m) for m in net.params_weight_decay]
        n_sets = 2 if self.p.type in ("AdaDelta", "Adam") else 1
        self.h = [[np.zeros_like(w) for w in self.w] for _ in range(n_sets)]
        self.iter = 0
        self.current_step = 0
        self.oracle = oracle
        self.clipped = 0

    def gradients(self):
        for blob, w in zip(self.oracle.learnable_params, self.w):
            blob.data[...] = w
            blob.diff[...] = 0
        for _ in range(self.p.iter_size):
            self.oracle.forward_backward()
        return [b.diff.copy() for b in self.oracle.learnable_params]

    def step(self):
        p = self.p
        grads = self.gradients()
        rate, self.current_step = reference_rate(p, self.iter,
                                                 self.current_step)
        if p.clip_gradients >= 0:
            sumsq = f32(0)
            for g in grads:
                sumsq = sumsq + f32(np.dot(g.ravel(), g.ravel()))
            norm = np.sqrt(sumsq)
            if norm > f32(p.clip_gradients):
                scale = f32(p.clip_gradients) / norm
                grads = [g * scale for g in grads]
                self.clipped += 1
        for i, g in enumerate(grads):
            if p.iter_size > 1:
                g = g * (f32(1) / f32(p.iter_size))
            decay = f32(p.weight_decay) * self.decay_mult[i]
            if decay:
                w = self.w[i]
                penalty = w if p.regularization_type == "L2" else \
                    (w > 0).astype(f32) - (w < 0).astype(f32)
                g = g + decay * penalty
            step = RULES[p.type](self, i, g, rate * self.lr_mult[i])
            self.w[i] = self.w[i] - step
        self.iter += 1

    def history(self):
        return [h for history_set in self.h for h in history_set]


def solver_text(type_name, config, policy):
    base, momentum = TYPE_FIELDS[type_name]
    extra = momentum if config == "momentum" else CONFIGS[config]
    return (f'net: "net.prototxt" type: "{type_name}" {base} {extra} '
            f'{POLICIES[policy]} random_seed: 1701 display: 0')


def check_against_reference(write_solver, oracle_net, type_name, config,
                            policy):
    solver = solvers.get_solver(write_solver(
        solver_text(type_name, config, policy)))
    assert type(solver).type == type_name
    ref = Reference(solver, oracle_net())
    ref.initial = [w.copy() for w in ref.w]
    for _ in range(STEPS):
        solver.step(1)
        ref.step()
        for got, want in zip(solver.net.learnable_params, ref.w):
            np.testing.assert_array_equal(got.data, want)
        for got, want in zip(solver.history, ref.history()):
            np.testing.assert_array_equal(got.data, want)
        assert solver.current_step == ref.current_step
    assert solver.iter == STEPS
    return solver, ref


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("type_name", list(TYPE_FIELDS))
def test_update_matches_reference(write_solver, oracle_net, type_name,
                                  config):
    solver, ref = check_against_reference(write_solver, oracle_net,
                                          type_name, config, "step")
    if config == "clip":
        assert ref.clipped == STEPS     # the clip bound was active
    # The frozen bias (lr_mult 0) never moves, whatever the rule; the rest
    # all do.
    params = solver.net.learnable_params
    np.testing.assert_array_equal(params[1].data, ref.initial[1])
    for i in (0, 2, 3):
        assert not np.array_equal(params[i].data, ref.initial[i])


@pytest.mark.parametrize("policy", list(POLICIES))
@pytest.mark.parametrize("type_name", list(TYPE_FIELDS))
def test_every_lr_policy_with_every_rule(write_solver, oracle_net, type_name,
                                         policy):
    check_against_reference(write_solver, oracle_net, type_name, "momentum",
                            policy)


def test_clipping_logs_caffe_line(write_solver, kaffe_log):
    solver = solvers.get_solver(write_solver(
        solver_text("SGD", "clip", "fixed")))
    solver.step(1)
    lines = [r.getMessage() for r in kaffe_log.records
             if "Gradient clipping" in r.getMessage()]
    assert len(lines) == 1
    norm, scale = [float(x) for x in re.match(
        r"Gradient clipping: scaling down gradients \(L2 norm (\S+) > 0\.05\) "
        r"by scale factor (\S+)$", lines[0]).groups()]
    assert scale == pytest.approx(0.05 / norm, rel=1e-5)


def test_clip_inactive_below_bound(write_solver, oracle_net, kaffe_log):
    text = solver_text("SGD", "plain", "fixed") + " clip_gradients: 1000"
    solver = solvers.get_solver(write_solver(text))
    ref = Reference(solver, oracle_net())
    solver.step(2)
    ref.step()
    ref.step()
    assert ref.clipped == 0
    assert not any("Gradient clipping" in r.getMessage()
                   for r in kaffe_log.records)
    for got, want in zip(solver.net.learnable_params, ref.w):
        np.testing.assert_array_equal(got.data, want)


def test_reference_gradient_is_the_analytic_one(workdir, oracle_net):
    """The oracle's gradient is d/dW of ½N⁻¹‖W2(W1x+b1)+b2−y‖² (float64)."""
    net = oracle_net()
    w1, b1, w2, b2 = [b.data.astype(np.float64)
                      for b in net.learnable_params]
    net.forward_backward()
    x = net.blobs["data"].data.astype(np.float64)
    y = net.blobs["target"].data.astype(np.float64)
    h = x @ w1.T + b1
    r = (h @ w2.T + b2 - y) / len(x)
    grads = [(r @ w2).T @ x, None, r.T @ h, r.sum(0)]
    for blob, want in zip(net.learnable_params, grads):
        if want is not None:
            np.testing.assert_allclose(blob.diff, want, rtol=1e-5, atol=1e-6)


def test_iter_size_two_halves_equal_one_full_batch(workdir, write_solver):
    """Caffe's CheckAccumulation: 2 × batch 2 ≈ 1 × batch 4 (float32 sums)."""
    net_text = (workdir / "net.prototxt").read_text()

    def run(iter_size, batch):
        text = net_text.replace("dim: 4 dim: 3", f"dim: {batch} dim: 3") \
            .replace("dim: 4 dim: 2", f"dim: {batch} dim: 2")
        (workdir / f"net{batch}.prototxt").write_text(text)
        solver = solvers.get_solver(write_solver(
            f'net: "net{batch}.prototxt" base_lr: 0.1 lr_policy: "fixed" '
            f'momentum: 0.9 weight_decay: 0.01 iter_size: {iter_size} '
            f'random_seed: 3', f"s{batch}.prototxt"))
        return solver

    full, halves = run(1, 4), run(2, 2)
    # Feed both the same four rows per iteration: the halves layer's two
    # passes see rows 0-1 then 2-3 of what the full layer sees at once.
    for solver, batch in ((full, 4), (halves, 2)):
        solver.net.layer_dict["data"].forward = _rows_forward(batch)
    full.step(4)
    halves.step(4)
    for a, b in zip(full.net.learnable_params, halves.net.learnable_params):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-5, atol=1e-6)


def _rows_forward(batch):
    """A forward that serves rows of a fixed 4-row stream, batch at a time."""
    rows = np.random.default_rng(0).uniform(-1, 1, (64, 5)).astype(f32)
    state = {"next": 0}

    def forward(bottom, top):
        start = state["next"]
        chunk = rows[start:start + batch]
        top[0].data[...] = chunk[:, :3]
        top[1].data[...] = chunk[:, 3:]
        state["next"] = start + batch
    return forward


def test_float64_solver_runs_in_double(write_solver):
    solver = solvers.SGDSolver(write_solver(
        solver_text("SGD", "momentum", "inv")), dtype=np.float64)
    solver.step(2)
    assert all(b.data.dtype == np.float64 for b in solver.net.learnable_params)
    assert all(h.data.dtype == np.float64 for h in solver.history)
    assert isinstance(solver.get_learning_rate(), np.float64)


def test_history_layout(write_solver):
    for type_name, n_sets in (("SGD", 1), ("AdaDelta", 2), ("Adam", 2)):
        solver = solvers.get_solver(write_solver(
            solver_text(type_name, "plain", "fixed")))
        params = solver.net.learnable_params
        assert len(solver.history) == n_sets * len(params)
        for k, blob in enumerate(solver.history):
            assert blob.shape == params[k % len(params)].shape


@pytest.mark.parametrize("config", list(CONFIGS))
def test_sgd_updates_by_parts_of_parameters(monkeypatch, write_solver,
                                            oracle_net, config):
    """SGD updates each parameter part by part (for the cache): parts of 2
    elements (the 3-element bias: a part of 2 and one of 1) give Caffe's
    bits all the same."""
    monkeypatch.setattr(solvers.sgd, "_PART_ELEMENTS", 2)
    check_against_reference(write_solver, oracle_net, "SGD", config, "step")
