"""``kaffe train``: train a net with a solver, as ``caffe train`` does.

    kaffe train --solver lenet_solver.prototxt [--weights W1,W2 | --snapshot S]

The solver's own log lines (Caffe's, so that parse_log.py and plot scripts
read them) go to stderr. SIGINT and SIGHUP request an action as Caffe's
``--sigint_effect`` / ``--sighup_effect`` say (stop, snapshot, none). On a
terminal, with tqdm installed, a progress bar shows the iteration, the
smoothed loss and the time left; the log lines print above it.

Under ``mpiexec -n N`` it trains with N workers as Caffe trains on N GPUs:
worker 0's initial weights are broadcast, each worker reads its shard of
the data with its own batch_size, the gradients are summed and scaled by
1/N before every update, and only worker 0 logs, tests and snapshots. A
signal to any worker (mpiexec passes Ctrl-C to all) acts on every worker
after the same iteration.
"""
import logging
import signal
import sys

from .flags import add_bool_flag, add_net_state_flags, add_value_flag, \
    stages

HELP = "train a net with a solver (caffe train)"
PARALLEL = True
DESCRIPTION = __doc__.split("\n\n", 1)[1]
EPILOG = """\
examples:
  kaffe train --solver examples/mnist/lenet_solver.prototxt
  kaffe train --solver solver.prototxt --snapshot snap_iter_500.solverstate
  kaffe train --solver solver.prototxt --weights pretrained.caffemodel
  mpiexec -n 2 kaffe train --solver examples/mnist/lenet_solver.prototxt"""

log = logging.getLogger("kaffe")

EFFECTS = ("stop", "snapshot", "none")


def add_arguments(parser):
    add_value_flag(parser, "solver", metavar="S.prototxt",
                   help="the solver definition")
    add_value_flag(parser, "snapshot", metavar="S.solverstate",
                   help="resume training from this solver state")
    add_value_flag(parser, "weights", metavar="W1[,W2...]",
                   help="pretrained weights to fine-tune from (comma-separated;"
                        " not with --snapshot)")
    add_net_state_flags(parser, "the train net")
    add_value_flag(parser, "sigint_effect", choices=EFFECTS, default="stop",
                   help="what SIGINT (Ctrl-C) does: stop, snapshot or none "
                        "(default stop)")
    add_value_flag(parser, "sighup_effect", choices=EFFECTS,
                   default="snapshot",
                   help="what SIGHUP does (default snapshot)")
    add_value_flag(parser, "stats", metavar="DIR",
                   help="record per-layer activation, gradient and weight "
                        "statistics every `display` iterations into DIR "
                        "(for kaffe doctor --stats and kaffe viz --stats)")
    add_bool_flag(parser, "tensorboard",
                  help="with --stats: also write them as TensorBoard "
                       "scalars under DIR/tensorboard (needs tensorboardX)")
    add_value_flag(parser, "progress", choices=("auto", "always", "never"),
                   default="auto",
                   help="progress bar: auto (on a terminal, if tqdm is "
                        "installed), always or never")


def run(args):
    from ..core.errors import KaffeConfigError
    from ..parallel import root_solver, solver_count
    from ..solvers import get_solver
    from ..solvers.solver import load_solver
    from .device_query import refuse_gpu
    from .flags import require
    refuse_gpu(args.gpu)
    require(args, "solver", "a solver definition to train with")
    if args.snapshot and args.weights:
        raise KaffeConfigError(
            "give a snapshot to resume training or weights to fine-tune, "
            "not both", field="--snapshot/--weights",
            received=f"--snapshot {args.snapshot} --weights {args.weights}")
    param, source = load_solver(args.solver)
    param.train_state.level = args.level
    param.train_state.stage.extend(stages(args))
    if param.HasField("solver_mode") and param.solver_mode == param.GPU:
        # Caffe's example solvers say GPU; Caffe falls back to nothing, kaffe
        # to the CPU (its only backend), and says so.
        log.warning("solver_mode: GPU is set, but kaffe has no GPU backend: "
                    "training on the CPU")
    log.info("Use CPU.")
    if args.snapshot:
        param.ClearField("weights")
    elif args.weights:
        param.ClearField("weights")
        param.weights.append(args.weights)
    solver = get_solver(param, source=source)
    nccl = None
    with _signal_actions(solver, args.sigint_effect,
                         args.sighup_effect) as actions:
        if args.snapshot:
            log.info("Resuming from %s", args.snapshot)
            solver.restore(args.snapshot)
        if solver_count() > 1:
            nccl = _data_parallel(solver)
            actions.target = nccl
        log.info("Starting Optimization")
        progress = args.progress if root_solver() else "never"
        with _progress_bar(solver, progress), \
                _statistics(solver, param, args, root_solver()):
            solver.solve()
    log.info("Optimization Done.")
    return 0


def _data_parallel(solver):
    """Join ``solver`` to the other workers: broadcast worker 0's weights,
    sum the gradients in one flat buffer before each update.

    Caffe reduces layer by layer during backward when layer_wise_reduce is
    set (its default); on the CPU, with no MPI progress thread to overlap
    the reductions with backward, the flat buffer measured faster
    (benchmarks/parallel.py [--layer-wise]), so ``kaffe train`` always uses
    it. pycaffe scripts choose with ``solver.net.after_backward(nccl)``."""
    from ..parallel import solver_count
    from ..parallel.nccl import NCCL
    log.info("Training with %d workers (MPI); each reads its shard of the "
             "data with the net's batch size", solver_count())
    nccl = NCCL(solver)
    nccl.bcast()
    solver.add_callback(nccl)
    return nccl


class _statistics:
    """With --stats DIR: a kaffe.doctor Recorder on the train net, writing
    every `display`-th iteration's statistics to DIR."""

    def __init__(self, solver, param, args, root=True):
        self.writer = None
        if args.stats and root:
            # Under mpiexec only worker 0 records (as only it logs).
            from ..doctor.record import record_training
            self.writer = record_training(solver, param, args.stats,
                                          tensorboard=args.tensorboard)
        elif args.tensorboard:
            from ..core.errors import KaffeConfigError
            raise KaffeConfigError("needs --stats DIR (the scalars are "
                                   "written under DIR/tensorboard)",
                                   field="--tensorboard")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.writer is not None:
            self.writer.close()


class _signal_actions:
    """Install SIGINT/SIGHUP handlers that request solver actions (of
    ``target``: the solver, or the NCCL that shares them with every
    worker)."""

    def __init__(self, solver, sigint_effect, sighup_effect):
        self.target = solver
        self.effects = {signal.SIGINT: sigint_effect}
        if hasattr(signal, "SIGHUP"):
            self.effects[signal.SIGHUP] = sighup_effect
        self.saved = {}

    def _handle(self, signum, frame):
        self.target.request_action(self.effects[signum])

    def __enter__(self):
        for signum in self.effects:
            self.saved[signum] = signal.signal(signum, self._handle)
            # SA_RESTART, as Caffe's handlers: a signal must not break a
            # system call inside MPI (or LMDB) with EINTR; Python still runs
            # the handler at its next instruction.
            if hasattr(signal, "siginterrupt"):       # not on Windows
                signal.siginterrupt(signum, False)
        return self

    def __exit__(self, *exc):
        for signum, handler in self.saved.items():
            signal.signal(signum, handler)


class _progress_bar:
    """A tqdm bar over the remaining iterations, fed by a solver callback."""

    def __init__(self, solver, mode):
        self.solver = solver
        self.bar = None
        self.enabled = mode == "always" or (mode == "auto"
                                            and sys.stderr.isatty())

    def __enter__(self):
        if not self.enabled:
            return self
        try:
            from tqdm import tqdm
        except ImportError:
            return self
        from .logging_setup import logs_written_by
        solver = self.solver
        total = solver.param.max_iter
        self.bar = tqdm(total=total, initial=solver.iter, unit="iter",
                        file=sys.stderr, dynamic_ncols=True, leave=False)
        self.logs = logs_written_by(lambda line: tqdm.write(
            line, file=sys.stderr))
        self.logs.__enter__()

        def on_start():
            self.bar.n = solver.iter
            self.bar.set_postfix(loss=f"{solver.smoothed_loss:.4g}",
                                 refresh=False)
            self.bar.refresh()

        solver.add_callback(on_start, lambda: None)
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
            self.logs.__exit__(*exc)
