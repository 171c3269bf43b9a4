"""Run real ``mpiexec -n N`` kaffe jobs from the kaffe.parallel tests.

Every job gets a hard deadline, so that a hang fails the test instead of
stopping the suite.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def find_mpiexec():
    beside = Path(sys.executable).with_name("mpiexec")
    if beside.exists():
        return str(beside)
    return shutil.which("mpiexec")


def environment():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                       if p])
    for name in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE",
                 "PMIX_SIZE"):
        env.pop(name, None)
    env.setdefault("KAFFE_NUM_THREADS", "1")
    extra = env.pop("KAFFE_TEST_PYTHONPATH", None)
    if extra:
        env["PYTHONPATH"] = extra + os.pathsep + env["PYTHONPATH"]
    return env


def run_kaffe(args, cwd, n=1, mpiexec=None, timeout=120):
    """``[mpiexec -n n] python -m kaffe args`` in ``cwd``; the
    CompletedProcess (stdout and stderr as text)."""
    command = [sys.executable, "-m", "kaffe", *map(str, args)]
    if n > 1:
        command = [mpiexec, "-n", str(n), *command]
    return subprocess.run(command, cwd=cwd, env=environment(),
                          capture_output=True, text=True, timeout=timeout)


def write_lmdb(path, count, shape=(1, 6, 6), classes=3, seed=0):
    """An LMDB of ``count`` random uint8 Datums, labels i % classes."""
    from kaffe.data.datum import array_to_datum
    from kaffe.data.db import BatchWriter
    rng = np.random.RandomState(seed)
    with BatchWriter(str(path), "lmdb") as writer:
        for i in range(count):
            array = rng.randint(0, 256, size=shape).astype(np.uint8)
            writer.put(b"%08d" % i, array_to_datum(array, i % classes)
                       .SerializeToString())
    return str(path)
