"""One LeNet training step in kaffe against the same net and optimizer in
PyTorch (CPU), measured in the same run.

Run ``python benchmarks/lenet.py [--repeat R] [--batch N] [--layers]``. Both
sides train the MNIST LeNet of examples/mnist (conv 20·5×5 → max pool → conv
50·5×5 → max pool → fc 500 → ReLU → fc 10 → softmax loss) on the same random
batch with SGD (lr 0.01, momentum 0.9, weight decay 0.0005, bias lr ×2 as the
example's lr_mult). A step is forward + backward + update; times are medians
of R steps after warm-up. Nothing is asserted; it prints the times and the
ratio kaffe / PyTorch (below 1: kaffe is faster). ``--layers`` adds kaffe's
time per layer, forward and backward, and the rest of the step (clearing the
diffs, the SGD update, the loop), medians over R steps, timed with pycaffe's
net hooks.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))

import kaffe  # noqa: E402
from kaffe.proto import caffe_pb2  # noqa: E402
from kaffe.proto.io import parse_text  # noqa: E402

NET = """
name: "LeNet"
layer {{ name: "data" type: "Input" top: "data" top: "label"
  input_param {{ shape {{ dim: {n} dim: 1 dim: 28 dim: 28 }} shape {{ dim: {n} }} }} }}
layer {{ name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param {{ lr_mult: 1 }} param {{ lr_mult: 2 }}
  convolution_param {{ num_output: 20 kernel_size: 5 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}
layer {{ name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
  param {{ lr_mult: 1 }} param {{ lr_mult: 2 }}
  convolution_param {{ num_output: 50 kernel_size: 5 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2"
  pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}
layer {{ name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1"
  param {{ lr_mult: 1 }} param {{ lr_mult: 2 }}
  inner_product_param {{ num_output: 500 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }}
layer {{ name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  param {{ lr_mult: 1 }} param {{ lr_mult: 2 }}
  inner_product_param {{ num_output: 10 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }}
"""

SOLVER = """
base_lr: 0.01 momentum: 0.9 weight_decay: 0.0005 lr_policy: "fixed"
max_iter: 1000000 display: 0 snapshot_after_train: false
"""


def median_seconds(step, repeat, warmup=3):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def kaffe_solver(batch, images, labels):
    solver_param = parse_text(SOLVER, caffe_pb2.SolverParameter())
    solver_param.net_param.CopyFrom(
        parse_text(NET.format(n=batch), caffe_pb2.NetParameter()))
    solver = kaffe.SGDSolver(solver_param)
    solver.net.blobs["data"].data[...] = images
    solver.net.blobs["label"].data[...] = labels
    return solver


def kaffe_step(batch, images, labels):
    solver = kaffe_solver(batch, images, labels)
    return lambda: solver.step(1)


def kaffe_layer_times(batch, images, labels, repeat, warmup=3):
    """{(layer name, "forward" | "backward"): median seconds}, and the
    median of the step's remainder."""
    solver = kaffe_solver(batch, images, labels)
    net = solver.net
    names = list(net.layer_dict)
    marks = {}
    samples = {}

    def start(i):
        marks[i] = time.perf_counter()

    def stop(kind):
        def record(i):
            samples.setdefault((names[i], kind), []).append(
                time.perf_counter() - marks[i])
        return record

    net.before_forward(start)
    net.after_forward(stop("forward"))
    net.before_backward(start)
    net.after_backward(stop("backward"))
    steps = []
    for r in range(warmup + repeat):
        if r == warmup:
            samples.clear()
        begin = time.perf_counter()
        solver.step(1)
        steps.append(time.perf_counter() - begin)
    layers = {key: statistics.median(values)
              for key, values in samples.items()}
    rest = statistics.median(
        steps[warmup + k] - sum(values[k] for values in samples.values())
        for k in range(repeat))
    return names, layers, rest


def torch_step(batch, images, labels):
    import torch
    import torch.nn.functional as F
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 20, 5), torch.nn.MaxPool2d(2, 2),
        torch.nn.Conv2d(20, 50, 5), torch.nn.MaxPool2d(2, 2),
        torch.nn.Flatten(), torch.nn.Linear(800, 500), torch.nn.ReLU(),
        torch.nn.Linear(500, 10))
    weights = [p for name, p in model.named_parameters()
               if name.endswith("weight")]
    biases = [p for name, p in model.named_parameters()
              if name.endswith("bias")]
    optimizer = torch.optim.SGD([
        {"params": weights, "lr": 0.01, "weight_decay": 0.0005},
        {"params": biases, "lr": 0.02, "weight_decay": 0.0005}],
        momentum=0.9)
    x = torch.from_numpy(images)
    y = torch.from_numpy(labels.astype(np.int64))

    def step():
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--layers", action="store_true",
                        help="also time each kaffe layer")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = rng.random((args.batch, 1, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, args.batch).astype(np.float32)
    print(f"numpy {np.__version__}, {os.cpu_count()} CPUs, "
          f"LeNet training step, batch {args.batch}")
    ours = median_seconds(kaffe_step(args.batch, images, labels), args.repeat)
    print(f"  kaffe:   {ours * 1e3:8.2f} ms/step")
    if args.layers:
        names, layers, rest = kaffe_layer_times(args.batch, images, labels,
                                                args.repeat)
        print("    layer        forward  backward (ms)")
        for name in names:
            print(f"    {name:10s} {layers[(name, 'forward')] * 1e3:8.2f}"
                  f"  {layers[(name, 'backward')] * 1e3:8.2f}")
        print(f"    update, loop {rest * 1e3:6.2f}")
    try:
        import torch
    except ImportError:
        print("  torch:   not installed (pip install kaffe[bench])")
        return
    theirs = median_seconds(torch_step(args.batch, images, labels),
                            args.repeat)
    print(f"  torch:   {theirs * 1e3:8.2f} ms/step  (torch {torch.__version__},"
          f" {torch.get_num_threads()} threads)")
    print(f"  ratio kaffe / torch: {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
