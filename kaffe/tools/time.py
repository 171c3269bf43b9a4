"""``kaffe time``: time a net's forward and backward passes layer by layer.

As ``caffe time``: one warm-up forward and backward, then ``--iterations``
timed passes; logs each iteration's forward-backward time, the average
forward and backward time of every layer, the average forward, backward and
forward-backward passes and the total. The net's data layers provide the
input (Input blobs keep their zeros).
"""
import logging

from .flags import add_net_state_flags, add_value_flag, stages

HELP = "time a net's forward and backward passes per layer (caffe time)"
DESCRIPTION = __doc__.split("\n\n", 1)[1]
EPILOG = """\
example:
  kaffe time --model examples/mnist/lenet.prototxt --iterations 10"""

log = logging.getLogger("kaffe")


def add_arguments(parser):
    add_value_flag(parser, "model", metavar="NET.prototxt",
                   help="the net definition")
    add_value_flag(parser, "iterations", type=int, default=50,
                   help="number of timed passes (default 50)")
    add_value_flag(parser, "phase", type=str.upper, choices=("TRAIN", "TEST"),
                   default="TRAIN", help="the net's phase (default TRAIN)")
    add_net_state_flags(parser)


def run(args):
    from time import perf_counter

    from ..core.net import TEST, TRAIN, Net
    from .device_query import refuse_gpu
    from .flags import require
    refuse_gpu(args.gpu)
    require(args, "model", "the model definition to time")
    log.info("Use CPU.")
    phase = TRAIN if args.phase == "TRAIN" else TEST
    net = Net(args.model, phase, level=args.level, stages=stages(args))
    layers = net.layers
    n = len(layers)
    # As caffe time, every layer's Backward runs below, needed or not: let
    # each keep what its backward reads.
    for layer in layers:
        layer.needs_backward = True
    log.info("Performing Forward")
    log.info("Initial loss: %g", net.forward_from_to(0, n - 1))
    log.info("Performing Backward")
    net.backward_from_to(n - 1, 0)
    graph = net.graph
    bottoms = [list(node.bottom_blobs) for node in graph]
    tops = [list(node.top_blobs) for node in graph]
    need = net.bottom_need_backward
    log.info("*** Benchmark begins ***")
    log.info("Testing for %d iterations.", args.iterations)
    forward_per_layer = [0.0] * n
    backward_per_layer = [0.0] * n
    forward_total = backward_total = 0.0
    total_start = perf_counter()
    for j in range(args.iterations):
        iteration_start = perf_counter()
        for i in range(n):
            start = perf_counter()
            layers[i].Forward(bottoms[i], tops[i])
            forward_per_layer[i] += perf_counter() - start
        forward_end = perf_counter()
        forward_total += forward_end - iteration_start
        # As caffe time: every layer's Backward, needed or not.
        for i in range(n - 1, -1, -1):
            start = perf_counter()
            layers[i].Backward(tops[i], need[i], bottoms[i])
            backward_per_layer[i] += perf_counter() - start
        backward_total += perf_counter() - forward_end
        log.info("Iteration: %d forward-backward time: %s ms.", j + 1,
                 _ms(perf_counter() - iteration_start))
    iterations = max(args.iterations, 1)
    log.info("Average time per layer: ")
    for i in range(n):
        name = graph[i].name
        log.info("%10s\tforward: %s ms.", name,
                 _ms(forward_per_layer[i] / iterations))
        log.info("%10s\tbackward: %s ms.", name,
                 _ms(backward_per_layer[i] / iterations))
    total = perf_counter() - total_start
    log.info("Average Forward pass: %s ms.", _ms(forward_total / iterations))
    log.info("Average Backward pass: %s ms.",
             _ms(backward_total / iterations))
    log.info("Average Forward-Backward: %s ms.", _ms(total / iterations))
    log.info("Total Time: %s ms.", _ms(total))
    log.info("*** Benchmark ends ***")
    return 0


def _ms(seconds):
    return f"{seconds * 1000:g}"
