"""Convolution forward+backward speed of kaffe.ops.conv against numpy's
sgemm, and against PyTorch when it is installed.

Run ``python benchmarks/conv.py [--repeat R]``. For an AlexNet-conv2-sized
and a LeNet-conv2-sized layer it prints:

* kaffe's forward + backward-data + backward-weights + bias rate, counting
  3 × the forward's GEMM flops (2·N·M·(C/group)·Πk·Πout each), and the time
  of each pass;
* the rate of a numpy sgemm with the dimensions of the layer's main GEMM,
  (M/group × C/group·Πk) @ (C/group·Πk × N·Πout), and of a 2048³ sgemm, both
  measured in the same run (numpy's BLAS uses all cores, as kaffe does);
* kaffe's ratio to the layer-sized sgemm; PyTorch's conv2d + autograd rate
  and ratio (its default thread count).

Times are medians of R runs after two warm-up runs. Nothing is asserted.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))

from kaffe.ops.conv import (conv_backward_data,  # noqa: E402
                            conv_backward_weights, conv_bias_backward,
                            conv_forward, conv_output_size)

# name, N, C, H, W, M, kernel, stride, pad, group
LAYERS = [
    ("AlexNet conv2", 16, 96, 27, 27, 256, 5, 1, 2, 2),
    ("LeNet conv2", 64, 20, 12, 12, 50, 5, 1, 0, 1),
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


def bench_layer(spec, repeat, rng, torch):
    name, n, c, h, w, m, k, stride, pad, group = spec
    geometry = (stride, pad, 1, group)
    ho = conv_output_size(h, k, stride, pad, 1)
    wo = conv_output_size(w, k, stride, pad, 1)
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    weights = rng.standard_normal((m, c // group, k, k), dtype=np.float32)
    bias = rng.standard_normal(m, dtype=np.float32)
    dy = rng.standard_normal((n, m, ho, wo), dtype=np.float32)
    dw, db = np.zeros_like(weights), np.zeros_like(bias)
    gemm_m, gemm_k, gemm_n = m // group, c // group * k * k, n * ho * wo
    flops = 3 * 2.0 * n * m * gemm_k * ho * wo

    def forward():
        conv_forward(x, weights, bias, *geometry)

    def backward_data():
        conv_backward_data(dy, weights, x.shape, *geometry)

    def backward_weights():
        conv_backward_weights(dy, x, dw, *geometry)
        conv_bias_backward(dy, db)

    def forward_backward():
        forward()
        backward_data()
        backward_weights()

    kaffe_s = median_seconds(forward_backward, repeat)
    passes = [median_seconds(f, repeat)
              for f in (forward, backward_data, backward_weights)]
    gemm = sgemm_rate(gemm_m, gemm_k, gemm_n, repeat, rng)
    rate = flops / kaffe_s / 1e9
    print(f"{name}: N={n} C={c} {h}x{w} -> M={m}, k={k} stride={stride} "
          f"pad={pad} group={group}; {flops / 1e9:.2f} GFLOP fwd+bwd")
    print(f"  numpy sgemm {gemm_m}x{gemm_k} @ {gemm_k}x{gemm_n}: "
          f"{gemm:6.1f} GFLOP/s")
    print(f"  kaffe fwd+bwd: {kaffe_s * 1e3:7.2f} ms {rate:6.1f} GFLOP/s "
          f"ratio {rate / gemm:.2f}  (fwd {passes[0] * 1e3:.2f}, "
          f"bwd-data {passes[1] * 1e3:.2f}, bwd-weights+bias "
          f"{passes[2] * 1e3:.2f} ms)")
    if torch is None:
        print("  torch: not installed")
        return
    tx = torch.from_numpy(x).requires_grad_()
    tw = torch.from_numpy(weights).requires_grad_()
    tb = torch.from_numpy(bias).requires_grad_()
    tdy = torch.from_numpy(dy)

    def torch_forward_backward():
        tx.grad = tw.grad = tb.grad = None
        y = torch.nn.functional.conv2d(tx, tw, tb, *geometry)
        y.backward(tdy)

    torch_s = median_seconds(torch_forward_backward, repeat)
    torch_rate = flops / torch_s / 1e9
    print(f"  torch fwd+bwd: {torch_s * 1e3:7.2f} ms {torch_rate:6.1f} "
          f"GFLOP/s ratio {torch_rate / gemm:.2f}  "
          f"({torch.get_num_threads()} threads)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15,
                        help="timed runs per measurement (default 15)")
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


if __name__ == "__main__":
    main()
