"""What ``kaffe train --stats`` costs: LeNet training with and without the
doctor's Recorder, measured in the same run.

Run ``python benchmarks/doctor_stats.py [--blocks B] [--every K]``. Two
identical SGD solvers train the MNIST LeNet of benchmarks/lenet.py (batch
64, one fixed random batch); one has a :class:`kaffe.doctor.Recorder`
sampling every K-th iteration (K = ``display``, 100 in Caffe's LeNet
recipe). They run alternately in blocks of K iterations; the times are
medians over B blocks. It also times K iterations with every iteration
sampled (``kaffe doctor``'s setting), for reference. Nothing is asserted:
it prints the times and the ratios (recorded / plain; 1.10 would be a 10 %
slowdown). BLAS threads as threadpoolctl reports them.
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

from kaffe.doctor import Recorder  # noqa: E402
from lenet import kaffe_solver  # noqa: E402


def block_seconds(solver, iterations):
    start = time.perf_counter()
    solver.step(iterations)
    return time.perf_counter() - start


def threads():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    return ", ".join(f"{i['internal_api']} {i['num_threads']} threads"
                     for i in threadpool_info()) or "no BLAS pool found"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=7)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = rng.random((args.batch, 1, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, args.batch).astype(np.float32)
    plain = kaffe_solver(args.batch, images, labels)
    watched = kaffe_solver(args.batch, images, labels)
    recorder = Recorder(watched.net, every=args.every).attach(watched)
    every_iter = kaffe_solver(args.batch, images, labels)
    Recorder(every_iter.net, every=1).attach(every_iter)
    print(f"numpy {np.__version__}, {os.cpu_count()} CPUs, {threads()}; "
          f"LeNet batch {args.batch}, blocks of {args.every} iterations")
    for solver in (plain, watched, every_iter):
        solver.step(3)                              # warm up
    # Alternate A B B A ... so that a drifting machine load cancels out;
    # the ratio is the median of the per-pair ratios.
    a, b = [], []
    for k in range(args.blocks):
        pair = (plain, watched) if k % 2 == 0 else (watched, plain)
        times = {id(s): block_seconds(s, args.every) for s in pair}
        a.append(times[id(plain)])
        b.append(times[id(watched)])
    ours, base = statistics.median(b), statistics.median(a)
    paired = statistics.median(y / x for x, y in zip(a, b))
    n = min(args.every, 20)
    c = [block_seconds(plain, n), block_seconds(every_iter, n)]
    print(f"  plain:                 {base / args.every * 1e3:8.2f} ms/iter")
    print(f"  --stats (every {args.every:3d}):  "
          f"{ours / args.every * 1e3:8.2f} ms/iter   ratio {paired:.3f} "
          f"(median of {args.blocks} paired blocks)")
    print(f"  every iteration (doctor): {c[1] / n * 1e3:5.2f} ms/iter   "
          f"ratio {c[1] / c[0]:.3f} (against {c[0] / n * 1e3:.2f} ms/iter "
          f"plain, {n} iterations)")
    print(f"  records kept: {len(recorder.records)}")


if __name__ == "__main__":
    main()
