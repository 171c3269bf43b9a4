"""``kaffe test``: score a trained net over some batches, as ``caffe test``.

Runs the TEST-phase net forward ``--iterations`` times and logs each batch's
outputs ("Batch i, accuracy = v"), the mean loss ("Loss: L") and the mean of
every output ("accuracy = v", with "(* w = v loss)" for losses).

Under ``mpiexec -n N`` worker r scores batches r, r + N, … (its data layers
read just those) and worker 0 logs every batch and the means in order: the
same lines, the same numbers as one worker.
"""
import logging

from .flags import add_net_state_flags, add_value_flag, stages

HELP = "score a trained net over several batches (caffe test)"
PARALLEL = True
DESCRIPTION = __doc__.split("\n\n", 1)[1]
EPILOG = """\
example:
  kaffe test --model lenet_train_test.prototxt \\
      --weights lenet_iter_10000.caffemodel --iterations 100"""

log = logging.getLogger("kaffe")


def add_arguments(parser):
    add_value_flag(parser, "model", metavar="NET.prototxt",
                   help="the net definition")
    add_value_flag(parser, "weights", metavar="W.caffemodel",
                   help="the trained weights")
    add_value_flag(parser, "iterations", type=int, default=50,
                   help="number of batches (default 50)")
    add_net_state_flags(parser)


def run(args):
    import numpy as np

    from ..core.net import TEST, Net
    from .device_query import refuse_gpu
    from .flags import require
    refuse_gpu(args.gpu)
    require(args, "model", "the model definition to score")
    require(args, "weights", "the trained weights to score")
    log.info("Use CPU.")
    from ..parallel.inference import ordered_map, start_sharded_inference
    comm = start_sharded_inference()
    net = Net(args.model, TEST, level=args.level, stages=stages(args))
    net.copy_from(args.weights)
    log.info("Running for %d iterations.", args.iterations)
    f = np.float32
    scores = []          # [output name, loss weight, running sums]
    totals = {"loss": f(0)}
    weights = net.blob_loss_weights
    outputs = net.outputs

    def score(i):
        batch_loss = f(net.forward_from_to(0, len(net.layers) - 1))
        return batch_loss, [
            (name, weights[name], net.blobs[name].data.reshape(-1).copy())
            for name in outputs]

    def add(i, result):
        batch_loss, values_by_output = result
        totals["loss"] += batch_loss
        for k, (name, weight, values) in enumerate(values_by_output):
            if i == 0:
                scores.append([name, weight, np.zeros(
                    values.size, np.result_type(f, values.dtype))])
            sums = scores[k][2]
            n = min(sums.size, values.size)
            sums[:n] += values[:n]
            for value in values[:MAX_LOGGED]:
                log.info("Batch %d, %s = %s", i, name, _g(value))
            if values.size > MAX_LOGGED:
                log.info("Batch %d, %s: %d more values not shown", i, name,
                         values.size - MAX_LOGGED)

    ordered_map(args.iterations, score, add, comm)
    loss = totals["loss"]
    loss /= f(args.iterations)
    log.info("Loss: %s", _g(loss))
    for name, weight, sums in scores:
        for total in sums[:MAX_LOGGED]:
            mean = total / f(args.iterations)
            suffix = (f" (* {_g(weight)} = {_g(f(weight) * mean)} loss)"
                      if weight else "")
            log.info("%s = %s%s", name, _g(mean), suffix)
        if sums.size > MAX_LOGGED:
            log.info("%s: %d more values not shown", name,
                     sums.size - MAX_LOGGED)
    return 0


# Values of one output logged per batch (Caffe logs every one; an output of a
# million values would print for minutes): the rest are counted in one line.
MAX_LOGGED = 10000


def _g(value):
    """A float as C++'s ostream prints it (6 significant digits)."""
    return f"{float(value):g}"
