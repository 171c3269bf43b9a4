"""``kaffe plot``: training curves from a training log (Caffe's
tools/extra/parse_log.py and plot_training_log.py.example).

Parsing and drawing live in :mod:`kaffe.viz.plot`; this module is their
command-line face.
"""
import os

HELP = "plot loss, test outputs and learning rate from a training log"
DESCRIPTION = """\
Read a training log written by `kaffe train` or `caffe train` (glog lines:
"Solving <net>", "Iteration N (… iter/s …), loss = L", "Train net output",
"Iteration N, Testing net (#i)", "Test net output", "Iteration N, lr = R") as
Caffe's tools/extra/parse_log.py does, and draw one figure with the losses
(train and test), the other outputs (accuracy …) and the learning rate
against iterations or seconds since "Solving". Needs matplotlib
(pip install "kaffe[viz]").

--csv also writes parse_log.py's tables beside the log: LOG.train and
LOG.test (NumIters, Seconds, LearningRate and one column per output), the
same bytes parse_log.py writes; they are written even without matplotlib."""
EPILOG = """\
examples:
  kaffe train --solver examples/mnist/lenet_solver.prototxt 2> train.log
  kaffe plot train.log                      # -> train.log.png
  kaffe plot train.log -o curves.svg --x seconds
  kaffe plot caffe.INFO --csv    # + caffe.INFO.train, caffe.INFO.test"""


def add_arguments(parser):
    parser.add_argument("log", metavar="LOG",
                        help="the training log (kaffe's or Caffe's stderr)")
    parser.add_argument("-o", "--output", metavar="OUT.png",
                        help="the figure to write; its extension is the "
                             "format (png, svg, pdf …); default LOG.png")
    parser.add_argument("--csv", action="store_true",
                        help="also write LOG.train and LOG.test as "
                             "parse_log.py does")
    parser.add_argument("--x", choices=("iterations", "seconds"),
                        default="iterations",
                        help="the x axis: iterations (default) or seconds "
                             "since the 'Solving' line")


def run(args):
    from ..core.errors import KaffeError
    from ..viz import plot

    training_log = plot.parse_log(args.log)
    train, test = training_log.train, training_log.test
    print(f"Parsed {args.log}: {len(train)} train rows, {len(test)} test "
          f"rows, {len(training_log.curves)} curves")
    written = plot.write_csv_files(training_log) if args.csv else []
    for path in written:
        print(f"Wrote {path}")
    out = args.output or args.log + ".png"
    try:
        fig = plot.plot(training_log, out, x=args.x)
    except KaffeError as e:
        if not written or "matplotlib" not in e.problem:
            raise
        names = " and ".join(os.path.basename(p) for p in written)
        raise KaffeError(e.problem, fix=f"{e.fix} ({names} were written)"
                         ) from None
    print(f"Drew {len(fig.axes)} plots against {args.x} to {out}")
    return 0
