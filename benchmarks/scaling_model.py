"""The N-node scaling model of docs/scaling.md, as a table.

Run ``python benchmarks/scaling_model.py [--latency-us A]
[--lenet-ms T] [--alexnet-ms T] [--resnet50-ms T]``. Per step, every
worker computes its own batch (T, measured with benchmarks/parallel.py:
LeNet directly, AlexNet and ResNet-50 from ``--model`` runs, scaled to
the batch), then the gradients are summed by a ring all-reduce::

    T_allreduce(N) = 2 (N - 1) / N · G / BW  +  2 (N - 1) · A

(G gradient bytes, BW the link bandwidth, A the latency per message; the
ring sends 2(N − 1) messages of G/N bytes). Without overlap the step takes
T + T_allreduce(N), so the efficiency is T / (T + T_allreduce(N)) and the
speed-up N times that. Nothing is measured here; it prints the model.
"""
import argparse

# (name, batch per worker, gradient bytes: learnable float32 values × 4)
NETS = (("LeNet", 64, 431_080 * 4),
        ("AlexNet", 256, 60_965_224 * 4),
        ("ResNet-50", 32, 25_610_205 * 4))
LINKS_GBIT = (10, 25, 100)
WORKERS = (2, 8, 32, 128)


def allreduce_s(n, grad_bytes, gbit, latency_s):
    if n == 1:
        return 0.0
    return 2 * (n - 1) / n * grad_bytes / (gbit * 1e9 / 8) + \
        2 * (n - 1) * latency_s


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-us", type=float, default=20.0)
    parser.add_argument("--lenet-ms", type=float, default=81.9,
                        help="LeNet compute per step, batch 64")
    parser.add_argument("--alexnet-ms", type=float, default=503.5 * 256,
                        help="AlexNet compute per step, batch 256")
    parser.add_argument("--resnet50-ms", type=float, default=2490.8 * 32,
                        help="ResNet-50 compute per step, batch 32")
    args = parser.parse_args()
    compute = {"LeNet": args.lenet_ms, "AlexNet": args.alexnet_ms,
               "ResNet-50": args.resnet50_ms}
    latency = args.latency_us * 1e-6
    print(f"ring all-reduce, {args.latency_us:g} µs per message; "
          "efficiency = compute / (compute + all-reduce), no overlap")
    header = "".join(f"{f'N={n}':>16}" for n in WORKERS)
    for name, batch, grad in NETS:
        t = compute[name] / 1000
        print(f"\n{name}: batch {batch}/worker, compute {t:.4g} s/step, "
              f"gradients {grad / 1e6:.1f} MB")
        print(f"{'link':>9}{header}")
        for gbit in LINKS_GBIT:
            cells = []
            for n in WORKERS:
                ar = allreduce_s(n, grad, gbit, latency)
                eff = t / (t + ar)
                cells.append(f"{1000 * ar:7.1f} ms {100 * eff:5.1f}%")
            print(f"{gbit:>5} Gb/s" + "".join(f"{c:>16}" for c in cells))


if __name__ == "__main__":
    main()
