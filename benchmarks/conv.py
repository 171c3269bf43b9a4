"""Convolution forward+backward speed of kaffe.ops.conv against numpy's
sgemm and PyTorch (when installed), measured in the same run.

Run ``python benchmarks/conv.py [--repeat R] [--nsfw]``. For AlexNet conv2,
LeNet conv1 and LeNet conv2 it prints:

* kaffe's forward + backward-data + backward-weights + bias rate, counting
  3 × the forward's GEMM flops (2·N·M·(C/group)·Πk·Πout each), and the time
  of each pass, with its layout (batch-first or batch-last, see
  kaffe/ops/conv.py) and chunk size;
* the rate of a numpy sgemm with the dimensions of the layer's main GEMM,
  (M/group × C/group·Πk) @ (C/group·Πk × N·Πout), and of a 2048³ sgemm, both
  measured in the same run (numpy's BLAS uses all cores, as kaffe does);
* kaffe's ratio to the layer-sized sgemm; PyTorch's conv2d + autograd time,
  rate and ratio (its default thread count), and its time per pass.

With ``--nsfw``, also every distinct convolution of open_nsfw (ResNet-50
"1by2") at batch 1 and 8: kaffe's and PyTorch's forward+backward time, and
the sums over the net's 53 convolutions.

Times are medians of R runs after two warm-up runs. Both sides compute all
three passes (the input's gradient too, even for a first layer). Nothing is
asserted.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))

from kaffe.ops import conv  # noqa: E402
from kaffe.ops.conv import (conv_backward_data,  # noqa: E402
                            conv_backward_weights, conv_bias_backward,
                            conv_forward, conv_output_size)

# name, N, C, H, W, M, kernel, stride, pad, group
LAYERS = [
    ("AlexNet conv2", 16, 96, 27, 27, 256, 5, 1, 2, 2),
    ("LeNet conv1", 64, 1, 28, 28, 20, 5, 1, 0, 1),
    ("LeNet conv2", 64, 20, 12, 12, 50, 5, 1, 0, 1),
]

# open_nsfw's distinct convolutions: how many of each, C, H (= W), M, kernel,
# stride, pad (its deploy.prototxt, 224×224 input).
NSFW_LAYERS = [
    (1, 3, 224, 64, 7, 2, 3),
    (3, 32, 56, 32, 3, 1, 1),
    (4, 64, 28, 64, 3, 1, 1),
    (6, 128, 14, 128, 3, 1, 1),
    (3, 256, 7, 256, 3, 1, 1),
    (1, 64, 56, 128, 1, 1, 0),
    (1, 64, 56, 32, 1, 1, 0),
    (3, 32, 56, 128, 1, 1, 0),
    (2, 128, 56, 32, 1, 1, 0),
    (1, 128, 56, 256, 1, 2, 0),
    (1, 128, 56, 64, 1, 2, 0),
    (4, 64, 28, 256, 1, 1, 0),
    (3, 256, 28, 64, 1, 1, 0),
    (1, 256, 28, 512, 1, 2, 0),
    (1, 256, 28, 128, 1, 2, 0),
    (6, 128, 14, 512, 1, 1, 0),
    (5, 512, 14, 128, 1, 1, 0),
    (1, 512, 14, 1024, 1, 2, 0),
    (1, 512, 14, 256, 1, 2, 0),
    (3, 256, 7, 1024, 1, 1, 0),
    (2, 1024, 7, 256, 1, 1, 0),
]


def median_seconds(fn, repeat, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sgemm_rate(m, k, n, repeat, rng):
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    c = np.empty((m, n), dtype=np.float32)
    seconds = median_seconds(lambda: np.matmul(a, b, out=c), repeat)
    return 2.0 * m * k * n / seconds / 1e9


class Layer:
    """Random data for one convolution and its passes in kaffe and torch."""

    def __init__(self, rng, n, c, h, w, m, k, stride, pad, group):
        self.geometry = (stride, pad, 1, group)
        ho = conv_output_size(h, k, stride, pad, 1)
        wo = conv_output_size(w, k, stride, pad, 1)
        self.x = rng.standard_normal((n, c, h, w), dtype=np.float32)
        self.w = rng.standard_normal((m, c // group, k, k), dtype=np.float32)
        self.b = rng.standard_normal(m, dtype=np.float32)
        self.dy = rng.standard_normal((n, m, ho, wo), dtype=np.float32)
        self.dw, self.db = np.zeros_like(self.w), np.zeros_like(self.b)
        self.gemm = (m // group, c // group * k * k, n * ho * wo)
        self.flops = 3 * 2.0 * n * m * (c // group) * k * k * ho * wo
        self.plan = conv._Plan(np, np.float32, self.x.shape, self.w.shape,
                               *self.geometry)

    def forward(self):
        conv_forward(self.x, self.w, self.b, *self.geometry)

    def backward_data(self):
        conv_backward_data(self.dy, self.w, self.x.shape, *self.geometry)

    def backward_weights(self):
        conv_backward_weights(self.dy, self.x, self.dw, *self.geometry)
        conv_bias_backward(self.dy, self.db)

    def forward_backward(self):
        self.forward()
        self.backward_data()
        self.backward_weights()

    def torch_passes(self, torch):
        """PyTorch's forward+backward (autograd), forward, backward-data and
        backward-weights+bias."""
        functional, grad = torch.nn.functional, torch.nn.grad
        tx = torch.from_numpy(self.x).requires_grad_()
        tw = torch.from_numpy(self.w).requires_grad_()
        tb = torch.from_numpy(self.b).requires_grad_()
        tdy = torch.from_numpy(self.dy)
        x, w, dy = tx.detach(), tw.detach(), tdy
        geometry = self.geometry

        def forward_backward():
            tx.grad = tw.grad = tb.grad = None
            functional.conv2d(tx, tw, tb, *geometry).backward(tdy)

        def forward():
            with torch.no_grad():
                functional.conv2d(x, w, tb, *geometry)

        def backward_data():
            grad.conv2d_input(x.shape, w, dy, *geometry)

        def backward_weights():
            grad.conv2d_weight(x, w.shape, dy, *geometry)
            dy.sum(dim=(0, 2, 3))

        return forward_backward, forward, backward_data, backward_weights


def bench_layer(spec, repeat, rng, torch):
    name, n, c, h, w, m, k, stride, pad, group = spec
    layer = Layer(rng, n, c, h, w, m, k, stride, pad, group)
    kaffe_s = median_seconds(layer.forward_backward, repeat)
    passes = [median_seconds(f, repeat) for f in (
        layer.forward, layer.backward_data, layer.backward_weights)]
    gemm = sgemm_rate(*layer.gemm, repeat, rng)
    rate = layer.flops / kaffe_s / 1e9
    layout = "batch-first" if layer.plan.batch_first else "batch-last"
    print(f"{name}: N={n} C={c} {h}x{w} -> M={m}, k={k} stride={stride} "
          f"pad={pad} group={group}; {layer.flops / 1e9:.2f} GFLOP fwd+bwd; "
          f"{layout}, chunks of {layer.plan.chunk}")
    gemm_m, gemm_k, gemm_n = layer.gemm
    print(f"  numpy sgemm {gemm_m}x{gemm_k} @ {gemm_k}x{gemm_n}: "
          f"{gemm:6.1f} GFLOP/s")
    print(f"  kaffe fwd+bwd: {kaffe_s * 1e3:7.2f} ms {rate:6.1f} GFLOP/s "
          f"ratio {rate / gemm:.2f}  (fwd {passes[0] * 1e3:.2f}, "
          f"bwd-data {passes[1] * 1e3:.2f}, bwd-weights+bias "
          f"{passes[2] * 1e3:.2f} ms)")
    if torch is None:
        print("  torch: not installed")
        return
    torch_s, *torch_passes = [median_seconds(f, repeat)
                              for f in layer.torch_passes(torch)]
    torch_rate = layer.flops / torch_s / 1e9
    print(f"  torch fwd+bwd: {torch_s * 1e3:7.2f} ms {torch_rate:6.1f} "
          f"GFLOP/s ratio {torch_rate / gemm:.2f}  (fwd "
          f"{torch_passes[0] * 1e3:.2f}, bwd-data {torch_passes[1] * 1e3:.2f}"
          f", bwd-weights+bias {torch_passes[2] * 1e3:.2f} ms; "
          f"{torch.get_num_threads()} threads)")
    print(f"  kaffe / torch: {kaffe_s / torch_s:.2f}")


def bench_nsfw(batch, repeat, rng, torch):
    print(f"open_nsfw convolutions, batch {batch}: fwd+bwd ms "
          f"(count × C@HxW -> M, k/stride)")
    kaffe_total = torch_total = 0.0
    for count, c, h, m, k, stride, pad in NSFW_LAYERS:
        layer = Layer(rng, batch, c, h, h, m, k, stride, pad, 1)
        kaffe_s = median_seconds(layer.forward_backward, repeat)
        kaffe_total += count * kaffe_s
        layout = "BF" if layer.plan.batch_first else "BL"
        line = (f"  {count} x {c:4d}@{h:3d}x{h:<3d} -> {m:4d}, "
                f"{k}x{k}/{stride} {layout}: kaffe {kaffe_s * 1e3:7.2f}")
        if torch is not None:
            torch_s = median_seconds(layer.torch_passes(torch)[0], repeat)
            torch_total += count * torch_s
            line += f"  torch {torch_s * 1e3:7.2f}"
        print(line)
    line = f"  all {sum(spec[0] for spec in NSFW_LAYERS)} convolutions: " \
           f"kaffe {kaffe_total * 1e3:.1f} ms"
    if torch is not None:
        line += f", torch {torch_total * 1e3:.1f} ms"
    print(line)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15,
                        help="timed runs per measurement (default 15)")
    parser.add_argument("--nsfw", action="store_true",
                        help="also time open_nsfw's convolutions at batch 1 "
                             "and 8")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    versions = f"numpy {np.__version__}, {os.cpu_count()} CPUs"
    if torch is not None:
        versions += f", torch {torch.__version__}"
    print(versions)
    big = sgemm_rate(2048, 2048, 2048, max(3, args.repeat // 3), rng)
    print(f"numpy sgemm 2048^3: {big:.1f} GFLOP/s")
    for spec in LAYERS:
        bench_layer(spec, args.repeat, rng, torch)
    if args.nsfw:
        for batch in (1, 8):
            bench_nsfw(batch, args.repeat, rng, torch)


if __name__ == "__main__":
    main()
