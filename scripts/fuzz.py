#!/usr/bin/env python
"""The long fuzz run: mutated files of every kind through kaffe's API and CLI.

    python scripts/fuzz.py --cases 20000 --out /tmp/kaffe-fuzz
    python scripts/fuzz.py --minutes 30 --kinds net,solverstate_h5 --seed 4

Prints each failure as it happens (the mutant is kept under OUT/failures)
and a summary of outcomes per file kind. Exits 1 if any case failed
(foreign exception, MemoryError, CLI traceback or internal error, hang,
crash). See docs/robustness.md.
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kaffe.testing.fuzz.runner import GiB, fuzz  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10000)
    parser.add_argument("--minutes", type=float, default=None,
                        help="stop after this long (whatever --cases says)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", default=None,
                        help="comma-separated: net, weights, weights_h5, "
                             "solver, solverstate, solverstate_h5, mean, lmdb")
    parser.add_argument("--cli", type=float, default=0.25,
                        help="share of cases run through the CLI")
    parser.add_argument("--subprocess", type=float, default=0.05,
                        help="share of CLI cases run as python -m kaffe")
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--memory-gib", type=float, default=3.0,
                        help="the workers' address-space limit (0: none)")
    parser.add_argument("--out", default=None,
                        help="scratch folder (default: a new temp folder)")
    args = parser.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="kaffe-fuzz-")
    print(f"fuzzing into {out}", flush=True)
    stats = fuzz(out, args.cases, seed=args.seed,
                 kinds=args.kinds.split(",") if args.kinds else None,
                 cli_fraction=args.cli, subprocess_fraction=args.subprocess,
                 timeout=args.timeout,
                 address_space=int(args.memory_gib * GiB),
                 seconds=args.minutes * 60 if args.minutes else None,
                 log=lambda line: print(line, flush=True))
    print(stats.report())
    return 1 if stats.failures else 0


if __name__ == "__main__":
    sys.exit(main())
