"""How many BLAS threads each worker uses.

Several workers on one node share its cores: by default each gets
``cores // workers on the node`` (at least 1), so that 2 workers on 2 cores
run one BLAS thread each instead of fighting over the cores with two each.
An explicit ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` /
``MKL_NUM_THREADS`` is left alone. The limit is set with threadpoolctl (a
dependency of the ``mpi`` extra); this small module is the one place that
does it, so a future kaffe-wide threads setting can replace it.
"""
import logging
import os

log = logging.getLogger("kaffe")

_USER_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                   "MKL_NUM_THREADS")
_limits = []           # keeps the threadpool_limits object alive


def node_cores():
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:          # not on Linux
        return os.cpu_count() or 1


def default_threads(workers_on_node):
    """The node's cores divided by the workers on it (at least 1)."""
    return max(1, node_cores() // max(1, int(workers_on_node)))


def limit_blas_threads(threads):
    """Limit the BLAS (and OpenMP) thread pools to ``threads``; returns the
    number set, or None when threadpoolctl is not installed or the user set
    a thread variable."""
    if any(os.environ.get(name) for name in _USER_VARIABLES):
        return None
    # kaffe.threads decides each GEMM's BLAS threads within this cap.
    from .. import threads as kaffe_threads
    kaffe_threads.set_num_threads(int(threads))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        log.warning("threadpoolctl is not installed: each worker's BLAS "
                    "uses its default thread count (pip install "
                    "threadpoolctl, or set OMP_NUM_THREADS)")
        return None
    _limits.append(threadpool_limits(limits=int(threads)))
    return int(threads)
