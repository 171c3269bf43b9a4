"""What ``kaffe train --stats`` costs: LeNet training with the doctor's
Recorder sampling every K-th iteration against not sampling, in one run.

Run ``python benchmarks/doctor_stats.py [--pairs P] [--every K]``. One SGD
solver trains the MNIST LeNet of benchmarks/lenet.py (batch 64, one fixed
random batch) with a :class:`kaffe.doctor.Recorder` attached. Blocks of K
iterations alternate (A B B A …, so that a drifting machine load cancels)
between the recorder sampling once per block (``--stats`` with
``display: K``; K = 100 in Caffe's LeNet recipe) and not sampling at all;
the ratio is the median over P pairs. Short blocks then compare sampling
every iteration (``kaffe doctor``'s setting) with not sampling. On a busy
machine those ratios carry its noise; two numbers that do not: what the
callbacks cost when they do not sample (timed by calling them directly)
and the recording work of a sampled iteration (timed inside the
callbacks), as a share of an iteration.
The same solver serves every mode, so that nets, caches and memory are the
same. Nothing is asserted; 1.10 would be a 10 % slowdown. BLAS threads as
threadpoolctl reports them.
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

NEVER = 10 ** 9


def block_seconds(solver, recorder, every, iterations):
    recorder.every = every
    # Start the block on a multiple of ``every`` so that it samples once.
    if every != NEVER:
        solver.step((-solver.iter) % every)
    start = time.perf_counter()
    solver.step(iterations)
    return (time.perf_counter() - start) / iterations


def paired(solver, recorder, every, block, pairs):
    """(median ratio sampled/not, median s/iter not sampling, sampling)."""
    a, b = [], []
    for k in range(pairs):
        modes = (NEVER, every) if k % 2 == 0 else (every, NEVER)
        for mode in modes:
            t = block_seconds(solver, recorder, mode, block)
            (a if mode == NEVER else b).append(t)
    return (statistics.median(y / x for x, y in zip(a, b)),
            statistics.median(a), statistics.median(b))


def idle_hook_seconds(solver, recorder, repeat=2000):
    """Seconds per iteration the callbacks take when not sampling."""
    recorder.every = NEVER
    solver.step(1)
    n = len(solver.net.layers)
    start = time.perf_counter()
    for _ in range(repeat):
        recorder._on_start()
        for i in range(n):
            recorder._before_forward(i)
            recorder._after_forward(i)
        for i in reversed(range(n)):
            recorder._after_backward(i)
        recorder._on_gradients_ready()
    return (time.perf_counter() - start) / repeat


def recording_seconds(batch, images, labels, iterations=5):
    """Seconds per iteration spent inside the Recorder's callbacks when
    every iteration is sampled (timed around each callback, so it does not
    depend on how busy the machine is between them), and the iteration's
    own time."""
    solver = kaffe_solver(batch, images, labels)
    recorder = Recorder(solver.net, every=1)
    spent = [0.0]

    def timed(fn):
        def run(*args):
            start = time.perf_counter()
            fn(*args)
            spent[0] += time.perf_counter() - start
        return run

    for name in ("_before_forward", "_after_forward", "_after_backward",
                 "_on_start", "_on_gradients_ready"):
        setattr(recorder, name, timed(getattr(recorder, name)))
    recorder.attach(solver)
    solver.step(2)
    spent[0] = 0.0
    start = time.perf_counter()
    solver.step(iterations)
    total = time.perf_counter() - start
    return spent[0] / iterations, total / iterations


def threads():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    return ", ".join(f"{i['internal_api']} {i['num_threads']} threads"
                     for i in threadpool_info()) or "no BLAS pool found"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--short", type=int, default=10,
                        help="block length for the every-iteration "
                             "comparison (default 10)")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = rng.random((args.batch, 1, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, args.batch).astype(np.float32)
    solver = kaffe_solver(args.batch, images, labels)
    recorder = Recorder(solver.net, every=NEVER).attach(solver)
    solver.step(2)                                      # warm up
    print(f"numpy {np.__version__}, {os.cpu_count()} CPUs, {threads()}; "
          f"LeNet batch {args.batch}")
    hooks = idle_hook_seconds(solver, recorder)
    ratio, base, t = paired(solver, recorder, args.every, args.every,
                            args.pairs)
    print(f"  not sampling:            {base * 1e3:8.2f} ms/iter "
          f"(of which the callbacks {hooks * 1e6:.1f} µs)")
    print(f"  --stats, every {args.every:3d}:     {t * 1e3:8.2f} ms/iter   "
          f"ratio {ratio:.3f}  ({args.pairs} pairs of {args.every}-"
          "iteration blocks)")
    ratio, base, t = paired(solver, recorder, 1, args.short, args.pairs)
    print(f"  every iteration (doctor): {t * 1e3:7.2f} ms/iter   "
          f"ratio {ratio:.3f}  (against {base * 1e3:.2f}; {args.pairs} "
          f"pairs of {args.short}-iteration blocks)")
    inside, whole = recording_seconds(args.batch, images, labels)
    print(f"  recording work per sampled iteration: {inside * 1e3:.2f} ms of "
          f"{whole * 1e3:.2f} ({inside / (whole - inside):.1%} of an "
          f"iteration); every {args.every}: "
          f"{inside / (whole - inside) / args.every:.3%} + the callbacks "
          f"{hooks / base:.3%}")


if __name__ == "__main__":
    main()
