"""Convolution forward+backward speed of kaffe.ops.conv against numpy's sgemm (and PyTorch if installed).

Run: ``python benchmarks/conv.py [--repeat R]``. For two layer sizes (AlexNet conv2, LeNet conv2) it
prints kaffe's fwd+bwd rate (forward, backward-data, backward-weights, bias), counting 3 × the
forward GEMM flops (2·N·M·(C/group)·Πk·Πout each), the rate of a numpy sgemm with the dimensions of
the layer's main GEMM ((M/group × C/group·Πk) @ (C/group·Πk × N·Πout)) and of a 2048³ sgemm measured
in the same run, kaffe's ratio to the layer-sized sgemm, and the same for PyTorch's conv2d +
autograd when torch is importable. Times are medians of R runs after a warm-up. Nothing is asserted.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from kaffe.ops.conv import (conv_backward_data, conv_backward_weights,  # noqa: E402
                            conv_bias_backward, conv_forward, conv_output_size)

LAYERS = [
    # name, N, C, H, W, M, kernel, stride, pad, group
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
    ho = conv_output_size(h, k, stride, pad, 1)
    wo = conv_output_size(w, k, stride, pad, 1)
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    weights = rng.standard_normal((m, c // group, k, k), dtype=np.float32)
    bias = rng.standard_normal(m, dtype=np.float32)
    dy = rng.standard_normal((n, m, ho, wo), dtype=np.float32)
    dw = np.zeros_like(weights)
    db = np.zeros_like(bias)
    gemm_m, gemm_k, gemm_n = m // group, c // group * k * k, n * ho * wo
    flops = 3 * 2.0 * n * m * gemm_k * ho * wo

    def step(phase):
        def run():
            if phase in ("fwd", "all"):
                conv_forward(x, weights, bias, stride, pad, 1, group)
            if phase in ("data", "all"):
                conv_backward_data(dy, weights, x.shape, stride, pad, 1, group)
            if phase in ("weights", "all"):
                conv_backward_weights(dy, x, dw, stride, pad, 1, group)
                conv_bias_backward(dy, db)
        return run

    kaffe_s = median_seconds(step("all"), repeat)
    phases = {p: median_seconds(step(p), repeat) for p in ("fwd", "data", "weights")}
    gemm = sgemm_rate(gemm_m, gemm_k, gemm_n, repeat, rng)
    kaffe_rate = flops / kaffe_s / 1e9
    print(f"{name}: N={n} C={c} {h}x{w} -> M={m} k={k} stride={stride} pad={pad} group={group} "
          f"({flops / 1e9:.2f} GFLOP fwd+bwd)")
    print(f"  sgemm {gemm_m}x{gemm_k} @ {gemm_k}x{gemm_n}: {gemm:7.1f} GFLOP/s")
    print(f"  kaffe fwd+bwd : {kaffe_s * 1e3:7.2f} ms {kaffe_rate:7.1f} GFLOP/s  "
          f"ratio {kaffe_rate / gemm:.2f}  (fwd {phases['fwd'] * 1e3:.2f} ms, bwd-data "
          f"{phases['data'] * 1e3:.2f} ms, bwd-weights+bias {phases['weights'] * 1e3:.2f} ms)")
    if torch is None:
        print("  torch: not installed")
        return
    tx = torch.from_numpy(x).requires_grad_()
    tw = torch.from_numpy(weights).requires_grad_()
    tb = torch.from_numpy(bias).requires_grad_()
    tdy = torch.from_numpy(dy)

    def torch_step():
        y = torch.nn.functional.conv2d(tx, tw, tb, stride, pad, 1, group)
        tx.grad = tw.grad = tb.grad = None
        y.backward(tdy)

    torch_s = median_seconds(torch_step, repeat)
    torch_rate = flops / torch_s / 1e9
    print(f"  torch fwd+bwd : {torch_s * 1e3:7.2f} ms {torch_rate:7.1f} GFLOP/s  "
          f"ratio {torch_rate / gemm:.2f}  ({torch.get_num_threads()} threads)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per measurement")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    print(f"numpy {np.__version__}, {os.cpu_count()} CPUs"
          + (f", torch {torch.__version__}" if torch is not None else ""))
    print(f"sgemm 2048^3: {sgemm_rate(2048, 2048, 2048, max(3, args.repeat // 3), rng):.1f} GFLOP/s")
    for spec in LAYERS:
        bench_layer(spec, args.repeat, rng, torch)


if __name__ == "__main__":
    main()
