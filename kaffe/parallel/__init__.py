"""kaffe beyond one process: data-parallel training and sharded inference.

``mpiexec -n N kaffe train --solver S`` trains with N workers, each with its
own solver, its own batches (its shard of the data, see
:mod:`kaffe.parallel.context`) and the gradients summed over MPI before
every update (:mod:`kaffe.parallel.nccl`); ``mpiexec -n N kaffe test``,
``extract_features`` and ``classify`` give each worker every N-th batch and
put the results back in order on worker 0 (:mod:`kaffe.parallel.inference`).

Only this package imports mpi4py, and only when several workers run:
importing it costs nothing, and a single process never touches MPI.

* :mod:`.context`: solver_count / solver_rank / root_solver and the data
  shards (no MPI).
* :mod:`.mpi`: the communicator, with deadlines and abort-on-error.
* :mod:`.nccl`: pycaffe's ``caffe.NCCL`` (gradient all-reduce, broadcast).
* :mod:`.inference`: the ordered gather of sharded inference.
* :mod:`.threads`: each worker's share of the node's threads.
"""
from .context import (data_shard, inference_sharding, multiprocess,
                      root_solver, set_inference_sharding, set_multiprocess,
                      set_solver_count, set_solver_rank, solver_count,
                      solver_rank)


def launched_size():
    """How many processes mpiexec started (1 outside mpiexec); no MPI
    import."""
    from .mpi import launched_size as size
    return size()


def init(threads=None):
    """Join the MPI job this process was started in.

    Sets solver_count / solver_rank from MPI's world, multiprocess, and
    each worker's threads through :mod:`kaffe.threads` (``threads``,
    default: the node's cores divided by the workers on it; an explicit
    ``KAFFE_NUM_THREADS`` wins).

    Returns:
        The :class:`kaffe.parallel.mpi.Communicator`.
    """
    import logging

    from .mpi import world
    from .threads import default_threads, limit_threads
    comm = world()
    set_solver_count(comm.size)
    set_solver_rank(comm.rank)
    set_multiprocess(comm.size > 1)
    n = default_threads(comm.local_size) if threads is None else threads
    set_threads = limit_threads(n)
    if comm.rank == 0:
        logging.getLogger("kaffe").info(
            "Worker 0 of %d (%d on this node), %s thread(s) each",
            comm.size, comm.local_size,
            set_threads if set_threads is not None else "KAFFE_NUM_THREADS")
    return comm


__all__ = [
    "data_shard", "inference_sharding", "init", "launched_size",
    "multiprocess", "root_solver", "set_inference_sharding",
    "set_multiprocess", "set_solver_count", "set_solver_rank",
    "solver_count", "solver_rank",
]
