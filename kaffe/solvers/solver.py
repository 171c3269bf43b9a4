"""The Solver: Caffe's training loop, testing, snapshots and update machinery.

A solver is built from a SolverParameter (or a solver.prototxt path), builds
the train net and the test nets, and trains with Caffe's exact order per
iteration (``Solver::Step`` and ``SGDSolver::ApplyUpdate``)::

    ClearParamDiffs → test if due → iter_size × ForwardBackward (loss summed,
    then averaged) → smoothed loss → display → ApplyUpdate: rate, "lr" line,
    ClipGradients (on the accumulated diffs) and per parameter Normalize
    (1/iter_size), Regularize (L2/L1), ComputeUpdateValue (the update rule);
    net.update() (data -= diff) → ++iter → snapshot if due, requested actions

The update rules (SGD, Nesterov, AdaGrad, RMSProp, AdaDelta, Adam) are the
subclasses in this package; each implements
:meth:`Solver.compute_update_value` with Caffe's operations in Caffe's
order, in the net's float type, so the
weights match a Caffe CPU run bit for bit wherever the BLAS sums in the same
order (only the gradient-clipping norm is a BLAS dot product).

Log lines are Caffe's, word for word, so that ``parse_log.py`` and
``extract_seconds.py`` read kaffe's training logs.
"""
import logging
import os
import time

import numpy as np
from google.protobuf import text_format

from ..core.backend import array_module, to_numpy
from ..core.blob import Blob, proto_shape
from ..core.errors import KaffeConfigError, KaffeError, KaffeShapeError
from ..core.net import TEST, TRAIN, Net
from ..core.random import set_random_seed
from ..parallel.context import root_solver, solver_rank
from ..proto import caffe_pb2
from ..proto.io import NetSource, load_net, write_binary
from .lr_policy import check_lr_policy, learning_rate
from .registry import get_solver, register_solver, solver_class, \
    solver_type_list
from .solver_io import (SolverSource, check_counters, check_history_count,
                        load_solver, read_solver_state,
                        solver_state_message, write_solver_state)

log = logging.getLogger("kaffe")

# Caffe's SolverAction: what a signal (or a caller) may ask the loop to do.
NONE = 0      # nothing
STOP = 1      # stop training (snapshot_after_train decides on a snapshot)
SNAPSHOT = 2  # write a snapshot and go on
_ACTION_NAMES = {"none": NONE, "stop": STOP, "snapshot": SNAPSHOT}

_TRAIN_NET_FIELDS = ("net", "net_param", "train_net", "train_net_param")

# Defined in .registry and .solver_io; importable from here as before.
__all__ = ["NONE", "STOP", "SNAPSHOT", "Solver", "SolverSource", "axpby",
           "get_solver", "load_solver", "register_solver", "solver_class",
           "solver_type_list"]


# -- the BLAS-level operations the update rules are written in -----------------
def axpby(alpha, x, beta, y):
    """y = alpha·x + beta·y, as Caffe's CPU ``caffe_cpu_axpby`` does it.

    Without MKL, ``cblas_saxpby`` is ``scal(beta, y)`` then ``axpy(alpha, x,
    y)``: y is scaled and rounded first, then alpha·x is rounded and added.
    """
    y *= beta
    y += alpha * x


def _g(value):
    """A number as C++'s ``ostream << float`` prints it (%g, 6 digits)."""
    return "%g" % float(value)


# -- the solver ---------------------------------------------------------------
class Solver:
    """Caffe's Solver and SGDSolver machinery; subclasses give the update rule.

    Construct with a path or a message (pycaffe: ``caffe.SGDSolver(path)``);
    :func:`get_solver` picks the class from the solver's ``type``.

    Args:
        solver: a solver.prototxt path or a caffe_pb2.SolverParameter.
        dtype: the nets' float type (float32 as Caffe's float build).
        source: where a given SolverParameter was read from (a
            :class:`SolverSource`, as :func:`load_solver` returns), so that
            errors can name the file and line; leave it out otherwise.

    Attributes:
        net: the train net.
        test_nets: the test nets, in Caffe's order (test_net_param,
            test_net, then net/net_param once per remaining test_iter).
        history: the update rule's state blobs, one per learnable parameter
            (two per parameter for AdaDelta and Adam: the second set after
            the first), as saved in a solverstate.
        current_step: the lr policy's step counter (step/multistep).
        requested_early_exit: True once a STOP action has been taken.

    Raises:
        KaffeConfigError: the definition is inconsistent (see the checks in
            Caffe's Solver::Init), naming file:line when read from a file.
    """

    type = None
    # History blobs per learnable parameter (AdaDelta and Adam keep two).
    history_per_param = 1

    def __init__(self, solver, dtype=np.float32, source=None):
        if self.type is None:
            raise TypeError("Solver holds the machinery but no update rule: "
                            "use SGDSolver, NesterovSolver, AdaGradSolver, "
                            "RMSPropSolver, AdaDeltaSolver, AdamSolver or "
                            "get_solver()")
        if source is None:
            param, source = load_solver(solver)
        else:
            param = caffe_pb2.SolverParameter()
            param.CopyFrom(solver)
        self.dtype = np.dtype(dtype)
        self._f = self.dtype.type
        self._source = source
        log.info("Initializing solver from parameters: \n%s",
                 text_format.MessageToString(param))
        self._param = param
        self._check_param()
        self._check_snapshot_write_permissions()
        # Several workers (kaffe.parallel): worker r seeds random_seed + r,
        # and only worker 0 builds test nets, tests and snapshots (Caffe's
        # Caffe::root_solver()).
        self._root = root_solver()
        if param.random_seed >= 0:
            set_random_seed(param.random_seed + solver_rank())
        self.net = self._init_train_net()
        self.test_nets = self._init_test_nets() if self._root else []
        self._check_regularization()
        log.info("Solver scaffolding done.")
        self._iter = 0
        self.current_step = 0
        self._callbacks = []
        self._losses = []
        self._smoothed_loss = self._f(0)
        self._iterations_last = 0
        self._timer_start = time.perf_counter()
        self.requested_early_exit = False
        self._action_function = None
        self._pending_actions = []
        self.history = self._make_history()

    # -- pycaffe's surface ----------------------------------------------------
    @property
    def iter(self):
        """How many updates have been applied."""
        return self._iter

    @property
    def param(self):
        """The SolverParameter in force (change its fields to steer training).

        Assigning a new SolverParameter replaces it; the nets are kept.
        """
        return self._param

    @param.setter
    def param(self, value):
        if not isinstance(value, caffe_pb2.SolverParameter):
            raise KaffeConfigError(
                "must be a caffe_pb2.SolverParameter", field="param",
                received=type(value).__name__)
        param = caffe_pb2.SolverParameter()
        param.CopyFrom(value)
        old, self._param = self._param, param
        try:
            self._check_param()
        except KaffeError:
            self._param = old
            raise

    @property
    def smoothed_loss(self):
        """The loss averaged over the last ``average_loss`` iterations."""
        return float(self._smoothed_loss)

    def add_callback(self, on_start, on_gradients_ready=None):
        """Call ``on_start()`` after any test and before the forward passes of
        each iteration, and ``on_gradients_ready()`` before the update.

        Also accepts one object with ``on_start``/``on_gradients_ready``
        methods (how pycaffe's NCCL hooks in).
        """
        if on_gradients_ready is None and hasattr(on_start, "on_start"):
            on_start, on_gradients_ready = (on_start.on_start,
                                            on_start.on_gradients_ready)
        for name, fn in (("on_start", on_start),
                         ("on_gradients_ready", on_gradients_ready)):
            if not callable(fn):
                raise KaffeConfigError(
                    "must be callable", field=name,
                    received=type(fn).__name__,
                    fix="pass two functions of no arguments")
        self._callbacks.append((on_start, on_gradients_ready))

    def share_weights(self, net):
        """Make ``net`` use the train net's weights (pycaffe's API)."""
        net.share_trained_layers_with(self.net)

    # -- requested actions (the CLI's SIGINT/SIGHUP handlers) -----------------
    def request_action(self, kind):
        """Ask the loop to STOP or SNAPSHOT at its next check.

        Safe to call from a signal handler. The loop checks once after each
        update, and before each test batch (there, every pending request is
        taken at once). ``kind`` is STOP, SNAPSHOT, NONE or their names.
        """
        action = _action_value(kind)
        if action != NONE:
            self._pending_actions.append(action)

    def set_action_function(self, func):
        """Ask ``func()`` for an action (STOP/SNAPSHOT/NONE) at each check,
        after any requests made through :meth:`request_action` (Caffe's
        SetActionFunction)."""
        self._action_function = func

    def get_requested_action(self):
        """The next requested action (and forget it), or NONE."""
        if self._pending_actions:
            return self._pending_actions.pop(0)
        if self._action_function is not None:
            return _action_value(self._action_function())
        return NONE

    # -- checks ---------------------------------------------------------------
    def _where(self, *fields):
        return self._source.where(*fields)

    def _check_param(self):
        p = self._param
        if p.average_loss < 1:
            raise KaffeConfigError(
                "must be >= 1", field="average_loss", received=p.average_loss,
                fix="set average_loss to the number of iterations the "
                    "displayed loss averages over (1 = no smoothing)",
                **self._where("average_loss"))
        if p.iter_size < 1:
            raise KaffeConfigError(
                "must be >= 1", field="iter_size", received=p.iter_size,
                **self._where("iter_size"))
        check_lr_policy(p, self._where)
        self._check_update_param()

    def _check_update_param(self):
        """Checks a particular update rule makes (Caffe's sanity checks)."""

    def _require_no_momentum(self):
        if self._param.momentum != 0:
            raise KaffeConfigError(
                f"cannot be used with {self.type}", field="momentum",
                received=self._param.momentum, expected="0",
                fix=f"remove momentum: {self.type} scales each gradient by "
                    "its own running statistics instead",
                **self._where("momentum"))

    def _check_regularization(self):
        p = self._param
        if p.regularization_type in ("L1", "L2"):
            return
        decays = [p.weight_decay * m for m in self.net.params_weight_decay]
        if any(decays):
            raise self._regularization_error()

    def _regularization_error(self):
        p = self._param
        close = [t for t in ("L1", "L2")
                 if t.lower() == p.regularization_type.lower()]
        return KaffeConfigError(
            "is not a known regularization type", field="regularization_type",
            received=p.regularization_type, expected="'L2' or 'L1'",
            fix=(f"did you mean '{close[0]}'?" if close else
                 "use 'L2' (weight decay) or 'L1'"),
            **self._where("regularization_type"))

    def _check_snapshot_write_permissions(self):
        p = self._param
        if not p.snapshot or not root_solver():     # worker 0 writes them
            return
        if not p.HasField("snapshot_prefix"):
            raise KaffeConfigError(
                "is set but snapshot_prefix is not", field="snapshot",
                received=p.snapshot,
                fix="set snapshot_prefix (e.g. \"models/x/x\" writes "
                    "models/x/x_iter_N.caffemodel)", **self._where("snapshot"))
        probe = self._snapshot_filename(".tempfile", 0)
        try:
            with open(probe, "w"):
                pass
            os.remove(probe)
        except (OSError, ValueError) as e:  # ValueError: a NUL in it
            raise KaffeConfigError(
                f"cannot be written to ({getattr(e, 'strerror', None) or e})",
                field="snapshot_prefix", received=p.snapshot_prefix,
                fix="make sure that the directory exists and is writable",
                **self._where("snapshot_prefix", "snapshot")) from None

    # -- building the nets ----------------------------------------------------
    def _read_net(self, field, index=None):
        """(NetParameter, NetSource) of net field ``field`` ([index])."""
        p = self._param
        value = getattr(p, field) if index is None else \
            getattr(p, field)[index]
        if isinstance(value, caffe_pb2.NetParameter):
            param, _ = load_net(value)
            return param, NetSource(self._source.path)
        if not os.path.isfile(value):
            where = self._source.where(field)
            if index is not None and self._source.path is not None:
                where["line"] = self._source.line(field, index)
            raise KaffeConfigError(
                "names a net file that does not exist", field=field,
                received=value, fix="net paths are taken from the current "
                f"directory ({os.getcwd()}), as Caffe does: run from the "
                "directory they are relative to, or give an absolute path",
                **where)
        return load_net(value)

    def _init_train_net(self):
        p = self._param
        given = [f for f in _TRAIN_NET_FIELDS if p.HasField(f)]
        if not given:
            raise KaffeConfigError(
                "the solver specifies no train net", expected="one of " +
                ", ".join(_TRAIN_NET_FIELDS), fix="add net: "
                "\"path/to/train_val.prototxt\" (or net_param { ... })",
                **self._where())
        if len(given) > 1:
            raise KaffeConfigError(
                "specifies the train net more than once",
                received=", ".join(given),
                expected="exactly one of " + ", ".join(_TRAIN_NET_FIELDS),
                fix="keep one of them", **self._where(given[1]))
        field = given[0]
        if field.endswith("_param"):
            log.info("Creating training net specified in %s.", field)
        else:
            log.info("Creating training net from %s file: %s", field,
                     getattr(p, field))
        net_param, source = self._read_net(field)
        state = caffe_pb2.NetState(phase=TRAIN)
        state.MergeFrom(net_param.state)
        state.MergeFrom(p.train_state)
        net_param.state.CopyFrom(state)
        net = Net.from_param(net_param, source, dtype=self.dtype)
        self._load_weights(net)
        return net

    def _init_test_nets(self):
        p = self._param
        generic = [f for f in ("net_param", "net") if p.HasField(f)]
        n_specific = len(p.test_net_param) + len(p.test_net)
        n_iter = len(p.test_iter)
        if (n_iter < n_specific) if generic else (n_iter != n_specific):
            what = (f"{len(p.test_net_param)} test_net_param and "
                    f"{len(p.test_net)} test_net")
            if generic:
                what += f" (and {generic[0]}, tested once per extra test_iter)"
            raise KaffeConfigError(
                "must be given once for each test net", field="test_iter",
                received=f"{n_iter} test_iter", expected=f"one per test net: "
                f"{what}", fix="add a test_iter (test batches per test) for "
                "each test net", **self._where("test_iter", "test_net",
                                               "test_net_param"))
        n_instances = n_iter
        if len(p.test_state) and len(p.test_state) != n_instances:
            raise KaffeConfigError(
                "must be unspecified or given once per test net",
                field="test_state", received=len(p.test_state),
                expected=n_instances, **self._where("test_state"))
        if n_instances and p.test_interval <= 0:
            raise KaffeConfigError(
                "must be > 0 when there are test nets", field="test_interval",
                received=p.test_interval, fix="set test_interval (iterations "
                "between tests), or remove test_iter to train without "
                "testing", **self._where("test_interval", "test_iter"))
        specs = [("test_net_param", i) for i in range(len(p.test_net_param))]
        specs += [("test_net", i) for i in range(len(p.test_net))]
        specs += [(generic[0], None)] * (n_instances - n_specific) if \
            generic else []
        nets = []
        for i, (field, index) in enumerate(specs):
            net_param, source = self._read_net(field, index)
            state = caffe_pb2.NetState(phase=TEST)
            state.MergeFrom(net_param.state)
            if len(p.test_state):
                state.MergeFrom(p.test_state[i])
            net_param.state.CopyFrom(state)
            if field == "test_net":
                described = f"test_net file: {p.test_net[index]}"
            elif field == "net":
                described = f"net file: {p.net}"
            else:
                described = field
            log.info("Creating test net (#%d) specified by %s", i, described)
            net = Net.from_param(net_param, source, dtype=self.dtype)
            net.debug_info = p.debug_info
            self._load_weights(net)
            nets.append(net)
        return nets

    def _load_weights(self, net):
        for entry in self._param.weights:
            for name in entry.split(","):
                name = name.strip()
                log.info("Finetuning from %s", name)
                net.copy_from(name)

    def _make_history(self):
        params = self.net.learnable_params
        history = []
        for _ in range(self.history_per_param):
            for blob in params:
                xp = array_module(blob.data)
                history.append(Blob(blob.shape, dtype=self.dtype, xp=xp))
        return history

    # -- training -------------------------------------------------------------
    def solve(self, resume_file=None):
        """Train to max_iter (Caffe's Solver::Solve).

        Restores ``resume_file`` (a .solverstate or .solverstate.h5) first if
        given; snapshots at the end unless snapshot_after_train is false or
        the last iteration was just snapshotted; then, if due, a forward pass
        for the final "Iteration N, loss = L" line and a final test.
        """
        p = self._param
        log.info("Solving %s", self.net.name)
        log.info("Learning Rate Policy: %s", p.lr_policy)
        self.requested_early_exit = False
        if resume_file is not None:
            log.info("Restoring previous solver status from %s",
                     os.fspath(resume_file))
            self.restore(resume_file)
        start_iter = self._iter
        self.step(p.max_iter - self._iter)
        if self._root and p.snapshot_after_train and (
                not p.snapshot or self._iter % p.snapshot != 0):
            self.snapshot()
        if self.requested_early_exit:
            log.info("Optimization stopped early.")
            return
        if p.display and self._iter % p.display == 0:
            loss = self._f(self.net.forward_from_to(
                0, len(self.net.layers) - 1))
            self._update_smoothed_loss(loss, start_iter, p.average_loss)
            log.info("Iteration %d, loss = %s", self._iter,
                     _g(self._smoothed_loss))
        if p.test_interval and self._iter % p.test_interval == 0:
            self.test_all()
        log.info("Optimization Done.")

    def step(self, iters):
        """Run ``iters`` training iterations (Caffe's Solver::Step)."""
        p = self._param
        f = self._f
        start_iter = self._iter
        stop_iter = self._iter + iters
        average_loss = p.average_loss
        self._losses = []
        self._smoothed_loss = f(0)
        self._timer_start = time.perf_counter()
        while self._iter < stop_iter:
            self.net.clear_param_diffs()
            if p.test_interval and self._iter % p.test_interval == 0 and (
                    self._iter > 0 or p.test_initialization):
                self.test_all()
                if self.requested_early_exit:
                    break
            for on_start, _ in self._callbacks:
                on_start()
            display = bool(p.display) and self._iter % p.display == 0
            self.net.debug_info = display and p.debug_info
            loss = f(0)
            for _ in range(p.iter_size):
                loss += f(self.net.forward_backward())
            loss /= f(p.iter_size)
            self._update_smoothed_loss(loss, start_iter, average_loss)
            if display:
                self._display()
            for _, on_gradients_ready in self._callbacks:
                on_gradients_ready()
            self.apply_update()
            request = self.get_requested_action()
            if self._root and ((p.snapshot and self._iter % p.snapshot == 0)
                               or request == SNAPSHOT):
                self.snapshot()
            if request == STOP:
                self.requested_early_exit = True
                break

    def _update_smoothed_loss(self, loss, start_iter, average_loss):
        f = self._f
        if len(self._losses) < average_loss:
            self._losses.append(loss)
            size = len(self._losses)
            self._smoothed_loss = (self._smoothed_loss * f(size - 1) +
                                   loss) / f(size)
        else:
            idx = (self._iter - start_iter) % average_loss
            self._smoothed_loss += (loss - self._losses[idx]) / \
                f(average_loss)
            self._losses[idx] = loss

    def _display(self):
        p = self._param
        now = time.perf_counter()
        lapse = np.float32(now - self._timer_start)
        per_s = np.float32(self._iter - self._iterations_last) / (
            lapse if lapse else np.float32(1))
        log.info("Iteration %d (%s iter/s, %ss/%d iters), loss = %s",
                 self._iter, _g(per_s), _g(lapse), p.display,
                 _g(self._smoothed_loss))
        self._timer_start = now
        self._iterations_last = self._iter
        values = [to_numpy(self.net.blobs[name].data).ravel()
                  for name in self.net.outputs]
        self._log_outputs(self.net, "Train", values)

    def _log_outputs(self, net, kind, values):
        """One "    <kind> net output #k: <blob> = v" line per output element,
        with " (* w = w·v loss)" for a loss output; ``values`` holds one flat
        array per output of ``net``."""
        f = self._f
        index = 0
        loss_weights = net.blob_loss_weights
        for name, array in zip(net.outputs, values):
            weight = f(loss_weights[name])
            for value in array:
                value = f(value)
                suffix = (f" (* {_g(weight)} = {_g(weight * value)} loss)"
                          if weight else "")
                log.info("    %s net output #%d: %s = %s%s", kind, index,
                         name, _g(value), suffix)
                index += 1

    # -- the update (SGDSolver::ApplyUpdate) ----------------------------------
    def get_learning_rate(self):
        """The rate for the current iteration (advances multistep's counter)."""
        rate, self.current_step = learning_rate(
            self._param, self._iter, self.current_step, self.dtype)
        return rate

    def apply_update(self):
        """Compute and apply this iteration's update, then ++iter."""
        p = self._param
        rate = self.get_learning_rate()
        if p.display and self._iter % p.display == 0:
            log.info("Iteration %d, lr = %s", self._iter, _g(rate))
        self.clip_gradients()
        self.update_params(rate)
        self._iter += 1

    def update_params(self, rate):
        """Per parameter Normalize, Regularize and ComputeUpdateValue, then
        net.update() (data -= diff): the update after the clipping."""
        for param_id in range(len(self.net.learnable_params)):
            self.normalize(param_id)
            self.regularize(param_id)
            self.compute_update_value(param_id, rate)
        self.net.update()

    def clip_gradients(self):
        """Scale all diffs by clip/‖diffs‖₂ if that norm exceeds the clip."""
        f = self._f
        clip = f(self._param.clip_gradients)
        if clip < 0:
            return
        params = self.net.learnable_params
        sumsq = f(0)
        for blob in params:
            diff = blob.diff.ravel()
            sumsq += f(float(array_module(diff).dot(diff, diff)))
        l2norm = f(np.sqrt(sumsq))
        if l2norm > clip:
            scale = clip / l2norm
            log.info("Gradient clipping: scaling down gradients (L2 norm %s "
                     "> %s) by scale factor %s", _g(l2norm), _g(clip),
                     _g(scale))
            for blob in params:
                blob.diff[...] *= scale

    def normalize(self, param_id):
        """Divide the accumulated diff by iter_size (times 1/iter_size)."""
        iter_size = self._param.iter_size
        if iter_size == 1:
            return
        f = self._f
        self.net.learnable_params[param_id].diff[...] *= f(1) / f(iter_size)

    def regularize(self, param_id):
        """diff += weight_decay·decay_mult · (w for L2, sign(w) for L1)."""
        p = self._param
        f = self._f
        local_decay = f(p.weight_decay) * f(
            self.net.params_weight_decay[param_id])
        if not local_decay:
            return
        blob = self.net.learnable_params[param_id]
        if p.regularization_type == "L2":
            blob.diff[...] += local_decay * blob.data
        elif p.regularization_type == "L1":
            data = blob.data
            # caffe_cpu_sign: (0 < w) - (w < 0), so sign(0) = sign(nan) = 0
            sign = (data > 0).astype(self.dtype) - (data < 0).astype(
                self.dtype)
            blob.diff[...] += local_decay * sign
        else:
            raise self._regularization_error()

    def compute_update_value(self, param_id, rate):
        """Turn param ``param_id``'s diff into the step to subtract."""
        raise TypeError(
            f"{type(self).__name__} does not define compute_update_value()")

    def _local_rate(self, param_id, rate):
        return self._f(rate) * self._f(self.net.params_lr[param_id])

    # -- testing --------------------------------------------------------------
    def test_all(self):
        """Test every test net in turn (stops early on a STOP request)."""
        for test_net_id in range(len(self.test_nets)):
            if self.requested_early_exit:
                break
            self.test(test_net_id)

    def test(self, test_net_id=0):
        """Run test_iter[test_net_id] forward passes with the train net's
        weights and log the mean of every output element (Caffe's Test)."""
        p = self._param
        f = self._f
        log.info("Iteration %d, Testing net (#%d)", self._iter, test_net_id)
        net = self.test_nets[test_net_id]
        net.share_trained_layers_with(self.net)
        n_iter = p.test_iter[test_net_id]
        scores = None
        loss = f(0)
        for _ in range(n_iter):
            request = self.get_requested_action()
            while request != NONE:
                if request == SNAPSHOT:
                    self.snapshot()
                elif request == STOP:
                    self.requested_early_exit = True
                request = self.get_requested_action()
            if self.requested_early_exit:
                break
            iter_loss = f(net.forward_from_to(0, len(net.layers) - 1))
            if p.test_compute_loss:
                loss += iter_loss
            values = np.concatenate(
                [to_numpy(net.blobs[name].data).ravel().astype(self.dtype)
                 for name in net.outputs] or [np.zeros(0, self.dtype)])
            scores = values.copy() if scores is None else scores + values
        if self.requested_early_exit:
            log.info("Test interrupted.")
            return
        if p.test_compute_loss:
            with np.errstate(all="ignore"):     # test_iter 0: nan, as Caffe
                loss /= f(n_iter)
            log.info("Test loss: %s", _g(loss))
        if scores is None:
            return
        means = scores / f(n_iter)
        counts = [net.blobs[name].count for name in net.outputs]
        self._log_outputs(net, "Test",
                          np.split(means, np.cumsum(counts)[:-1]))

    # -- snapshots ------------------------------------------------------------
    def _snapshot_filename(self, extension, iteration=None):
        iteration = self._iter if iteration is None else iteration
        return f"{self._param.snapshot_prefix}_iter_{iteration}{extension}"

    def snapshot(self):
        """Write the weights and the solver state for the current iteration.

        BINARYPROTO: ``<prefix>_iter_<N>.caffemodel`` + ``.solverstate``;
        HDF5: ``.caffemodel.h5`` + ``.solverstate.h5``. Each file is written
        to a temporary name and renamed, so a crash leaves no torn file.

        Returns:
            (model file, state file)
        """
        p = self._param
        # before the weights are written: no model without its state
        check_counters(self._iter, self.current_step,
                       self._snapshot_filename(".solverstate"))
        if p.snapshot_format == caffe_pb2.SolverParameter.HDF5:
            model = self._snapshot_filename(".caffemodel.h5")
            log.info("Snapshotting to HDF5 file %s", model)
            self.net.save_hdf5(model, p.snapshot_diff)
            state = self._snapshot_filename(".solverstate.h5")
            log.info("Snapshotting solver state to HDF5 file %s", state)
            write_solver_state(state, self._iter, self.current_step,
                               self.history, model, hdf5=True)
        else:
            model = self._snapshot_filename(".caffemodel")
            log.info("Snapshotting to binary proto file %s", model)
            write_binary(self.net.to_proto(p.snapshot_diff), model)
            state = self._snapshot_filename(".solverstate")
            log.info("Snapshotting solver state to binary proto file %s",
                     state)
            write_solver_state(state, self._iter, self.current_step,
                               self.history, model)
        return model, state

    def solver_state(self, learned_net=None):
        """The SolverState message a binary snapshot writes."""
        return solver_state_message(self._iter, self.current_step,
                                    self.history, learned_net)

    def restore(self, state_file):
        """Resume from a snapshot: a ``.solverstate``, or ``…h5`` for HDF5.

        Sets iter and current_step, copies the weights of the snapshot's
        ``learned_net`` into the train net, and loads the history.
        """
        state_file = os.fspath(state_file)
        iteration, learned, current_step, history = read_solver_state(
            state_file, shapes=[blob.shape for blob in self.history])
        check_history_count(
            state_file, len(history), len(self.history),
            f"{self.history_per_param} per learnable parameter of a "
            f"{self.type} solver")
        for i, (blob, saved) in enumerate(zip(self.history, history)):
            shape = (tuple(saved.shape) if isinstance(saved, np.ndarray)
                     else None)
            if (shape is not None and shape != blob.shape) or (
                    shape is None and not blob.shape_equals_proto(saved)):
                raise KaffeShapeError(
                    f"history blob {i} has the wrong shape", file=state_file,
                    received=shape if shape is not None else
                    proto_shape(saved), expected=blob.shape,
                    fix="resume with the net the snapshot was written by")
        self._iter = iteration
        if learned is not None:
            self.net.copy_from(self._learned_net_path(learned, state_file))
        self.current_step = current_step
        if not state_file.endswith(".h5"):
            log.info("SGDSolver: restoring history")
        for blob, saved in zip(self.history, history):
            if isinstance(saved, np.ndarray):
                blob.data[...] = saved
            else:
                blob.from_proto(saved, reshape=False)

    def _learned_net_path(self, learned, state_file):
        """``learned_net`` as written (relative to the current directory, as
        Caffe reads it), or, when that file is gone, the file of that name
        beside the solverstate (a snapshot directory that was moved)."""
        if os.path.exists(learned):
            return learned
        beside = os.path.join(os.path.dirname(state_file),
                              os.path.basename(learned))
        if os.path.exists(beside):
            log.warning("learned_net %s not found; using %s beside the "
                        "solver state", learned, beside)
            return beside
        return learned

# -- helpers ------------------------------------------------------------------
def _action_value(kind):
    if isinstance(kind, str):
        value = _ACTION_NAMES.get(kind.lower())
    elif kind in (NONE, STOP, SNAPSHOT):
        value = int(kind)
    else:
        value = None
    if value is None:
        raise KaffeConfigError(
            "is not a solver action", field="action", received=kind,
            expected="STOP, SNAPSHOT or NONE ('stop', 'snapshot', 'none')")
    return value
