"""Training-step speed of kaffe against the same nets and optimizer in
PyTorch (CPU), measured in the same run.

Run ``python benchmarks/train.py [--nets lenet,cifar10,alexnet]
[--threads 1,all] [--repeat R] [--rounds K] [--cpu-clock]``
(``--cpu-clock``: one thread, process CPU time instead of wall time, for a
loaded machine). Three nets, each on a fixed
random batch:

* LeNet (Caffe's examples/mnist), batch 64, 1×28×28;
* CIFAR-10 quick (examples/cifar10/cifar10_quick), batch 100, 3×32×32;
* AlexNet (BVLC's, LRN and grouped convolutions, dropout), batch 32,
  3×227×227.

A step is forward + backward + the SGD update with momentum 0.9, weight
decay and the bias learning-rate multiplier 2 of the examples: kaffe's
``SGDSolver.step(1)`` against ``zero_grad``, ``cross_entropy(...)
.backward()`` and ``SGD.step()`` in PyTorch. Both are timed in ``--rounds``
alternating blocks of ``--repeat`` steps after warm-up, at each thread
setting (kaffe: ``kaffe.threads.set_num_threads``, which also sets its
BLAS; PyTorch: ``torch.set_num_threads``); the table gives the median
milliseconds per step and the ratio kaffe / PyTorch (below 1: kaffe is
faster). Nothing is asserted.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks", "nets"))

import kaffe  # noqa: E402
from kaffe import threads  # noqa: E402
from kaffe.proto import caffe_pb2  # noqa: E402
from kaffe.proto.io import parse_text  # noqa: E402
from generate import Net  # noqa: E402


class TrainNet(Net):
    """A train net: Input data and label, parameters with lr_mult 1 / 2."""

    def __init__(self, name, shape):
        super().__init__(name, shape)
        dims = " ".join(f"dim: {d}" for d in shape)
        self.lines[1] = (
            'layer { name: "data" type: "Input" top: "data" top: "label" '
            f'input_param {{ shape {{ {dims} }} shape {{ dim: {shape[0]} }} '
            "} }")

    def add(self, name, kind, bottoms, tops=None, body=""):
        if kind in ("Convolution", "InnerProduct"):
            body = "param { lr_mult: 1 } param { lr_mult: 2 } " + body
        return super().add(name, kind, bottoms, tops, body)

    def loss(self, bottom):
        self.add("loss", "SoftmaxWithLoss", [bottom, "label"])


def lenet(batch):
    n = TrainNet("LeNet", (batch, 1, 28, 28))
    x = n.conv("conv1", "data", 20, 5, filler="xavier")
    x = n.pool("pool1", x, "MAX", 2, 2)
    x = n.conv("conv2", x, 50, 5, filler="xavier")
    x = n.pool("pool2", x, "MAX", 2, 2)
    x = n.fc("ip1", x, 500)
    n.relu("relu1", x)
    n.loss(n.fc("ip2", x, 10))
    return n


GAUSS = 'type: "gaussian" std: 0.01'


def cifar10_quick(batch):
    n = TrainNet("CIFAR10_quick", (batch, 3, 32, 32))
    x = n.conv("conv1", "data", 32, 5, pad=2,
               filler='type: "gaussian" std: 0.0001')
    x = n.pool("pool1", x, "MAX", 3, 2)
    n.relu("relu1", x)
    x = n.conv("conv2", x, 32, 5, pad=2, filler=GAUSS)
    n.relu("relu2", x)
    x = n.pool("pool2", x, "AVE", 3, 2)
    x = n.conv("conv3", x, 64, 5, pad=2, filler=GAUSS)
    n.relu("relu3", x)
    x = n.pool("pool3", x, "AVE", 3, 2)
    x = n.fc("ip1", x, 64)
    n.loss(n.fc("ip2", x, 10))
    return n


def alexnet(batch):
    n = TrainNet("AlexNet", (batch, 3, 227, 227))
    x = n.conv("conv1", "data", 96, 11, 4, filler=GAUSS)
    n.relu("relu1", x)
    x = n.lrn("norm1", x)
    x = n.pool("pool1", x, "MAX", 3, 2)
    x = n.conv("conv2", x, 256, 5, pad=2, group=2, filler=GAUSS)
    n.relu("relu2", x)
    x = n.lrn("norm2", x)
    x = n.pool("pool2", x, "MAX", 3, 2)
    x = n.conv("conv3", x, 384, 3, pad=1, filler=GAUSS)
    n.relu("relu3", x)
    x = n.conv("conv4", x, 384, 3, pad=1, group=2, filler=GAUSS)
    n.relu("relu4", x)
    x = n.conv("conv5", x, 256, 3, pad=1, group=2, filler=GAUSS)
    n.relu("relu5", x)
    x = n.pool("pool5", x, "MAX", 3, 2)
    for i in (6, 7):
        x = n.fc(f"fc{i}", x, 4096)
        n.relu(f"relu{i}", x)
        n.add(f"drop{i}", "Dropout", x, [x],
              "dropout_param { dropout_ratio: 0.5 }")
    n.loss(n.fc("fc8", x, 1000))
    return n


def torch_model(name):
    import torch.nn as nn
    if name == "lenet":
        return nn.Sequential(
            nn.Conv2d(1, 20, 5), nn.MaxPool2d(2, 2), nn.Conv2d(20, 50, 5),
            nn.MaxPool2d(2, 2), nn.Flatten(), nn.Linear(800, 500),
            nn.ReLU(), nn.Linear(500, 10))
    if name == "cifar10":
        return nn.Sequential(
            nn.Conv2d(3, 32, 5, padding=2),
            nn.MaxPool2d(3, 2, ceil_mode=True), nn.ReLU(),
            nn.Conv2d(32, 32, 5, padding=2), nn.ReLU(),
            nn.AvgPool2d(3, 2, ceil_mode=True),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(),
            nn.AvgPool2d(3, 2, ceil_mode=True), nn.Flatten(),
            nn.Linear(64 * 4 * 4, 64), nn.Linear(64, 10))
    lrn = dict(size=5, alpha=1e-4, beta=0.75, k=1.0)
    return nn.Sequential(
        nn.Conv2d(3, 96, 11, 4), nn.ReLU(), nn.LocalResponseNorm(**lrn),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(),
        nn.LocalResponseNorm(**lrn), nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU(),
        nn.MaxPool2d(3, 2, ceil_mode=True), nn.Flatten(),
        nn.Linear(256 * 6 * 6, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 1000))


# name, builder, batch, input shape, classes, base_lr, weight decay
NETS = {
    "lenet": (lenet, 64, (1, 28, 28), 10, 0.01, 0.0005),
    "cifar10": (cifar10_quick, 100, (3, 32, 32), 10, 0.001, 0.004),
    "alexnet": (alexnet, 32, (3, 227, 227), 1000, 0.01, 0.0005),
}


def kaffe_step(name, images, labels):
    build, batch, _, _, lr, decay = NETS[name]
    solver_param = parse_text(
        f'base_lr: {lr} momentum: 0.9 weight_decay: {decay} '
        'lr_policy: "fixed" max_iter: 1000000 display: 0 '
        "snapshot_after_train: false", caffe_pb2.SolverParameter())
    solver_param.net_param.CopyFrom(parse_text(build(batch).text(),
                                               caffe_pb2.NetParameter()))
    kaffe.set_random_seed(1)
    solver = kaffe.SGDSolver(solver_param)
    solver.net.blobs["data"].data[...] = images
    solver.net.blobs["label"].data[...] = labels
    return lambda: solver.step(1)


def torch_step(name, images, labels):
    import torch
    import torch.nn.functional as F
    _, _, _, _, lr, decay = NETS[name]
    torch.manual_seed(1)
    model = torch_model(name)
    model.train()
    params = list(model.named_parameters())
    optimizer = torch.optim.SGD([
        {"params": [p for n, p in params if n.endswith("weight")],
         "lr": lr, "weight_decay": decay},
        {"params": [p for n, p in params if n.endswith("bias")],
         "lr": 2 * lr, "weight_decay": decay}], momentum=0.9)
    x = torch.from_numpy(images)
    y = torch.from_numpy(labels.astype(np.int64))

    def step():
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    return step


def time_pair(ours, theirs, repeat, rounds, clock=time.perf_counter):
    ours()
    theirs()
    samples = ([], [])
    for _ in range(rounds):
        for fn, out in ((ours, samples[0]), (theirs, samples[1])):
            for _ in range(repeat):
                start = clock()
                fn()
                out.append(clock() - start)
    return tuple(1000 * statistics.median(s) for s in samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default="lenet,cifar10,alexnet")
    parser.add_argument("--threads", default="1,all")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cpu-clock", action="store_true",
                        help="one thread, timed in process CPU time: steady "
                             "on a loaded machine, where wall time is not")
    args = parser.parse_args()
    if args.cpu_clock:
        args.threads = "1"
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: nothing to compare with "
              "(pip install kaffe[bench])")
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(
        os, "sched_getaffinity") else os.cpu_count()
    counts = [cores if t == "all" else int(t)
              for t in args.threads.split(",")]
    clock = time.process_time if args.cpu_clock else time.perf_counter
    load = (" load average %.1f;" % os.getloadavg()[0]
            if hasattr(os, "getloadavg") else "")
    print(f"numpy {np.__version__}, torch {torch.__version__}, {cores} "
          f"cores;{load} median of {args.rounds} × {args.repeat} steps, "
          f"{'CPU' if args.cpu_clock else 'wall'} time\n")
    print("net        batch threads |   kaffe ms |   torch ms | ratio")
    for name in args.nets.split(","):
        _, batch, shape, classes, _, _ = NETS[name]
        rng = np.random.default_rng(0)
        images = rng.standard_normal((batch,) + shape).astype(np.float32)
        labels = rng.integers(0, classes, batch).astype(np.float32)
        ours = kaffe_step(name, images, labels)
        theirs = torch_step(name, images, labels)
        repeat = max(1, args.repeat // 2) if name == "alexnet" \
            else args.repeat
        for count in counts:
            threads.set_num_threads(count)
            torch.set_num_threads(count)
            k_ms, t_ms = time_pair(ours, theirs, repeat, args.rounds,
                                   clock)
            print(f"{name:10s} {batch:5d} {count:7d} | {k_ms:10.2f} | "
                  f"{t_ms:10.2f} | {k_ms / t_ms:5.2f}", flush=True)


if __name__ == "__main__":
    main()
