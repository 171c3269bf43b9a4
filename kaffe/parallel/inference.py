"""Sharded inference: worker ``i % N`` computes item ``i``, worker 0 gets
every result back in order.

``mpiexec -n N kaffe test`` / ``extract_features`` / ``classify`` call
:func:`ordered_map`: batch ``i`` is computed by worker ``i % N`` (whose data
layers, under :func:`kaffe.parallel.set_inference_sharding`, read exactly
the batches ``rank, rank + N, …``, see :mod:`kaffe.parallel.context`), and
worker 0 consumes the results in the order 0, 1, 2, … — so its log lines,
running sums and output files are those of a one-worker run, bit for bit,
because every batch is computed with the same items in the same batch as
one worker would. Results travel one round (N batches) at a time, so memory
stays at a round's worth.
"""
from . import context


def start_sharded_inference():
    """Under several workers, make the data layers of the TEST nets built
    from now on read their batch shard; returns the communicator, or None
    for a single worker. Call before building the net."""
    if context.solver_count() <= 1:
        return None
    from .mpi import world
    comm = world()
    context.set_inference_sharding(True)
    return comm


def ordered_map(count, compute, consume, comm=None):
    """For i in 0 … count−1: ``compute(i)`` on worker ``i % N`` (in
    increasing i on each worker), then ``consume(i, result)`` on worker 0,
    in increasing i.

    Args:
        count: how many items.
        compute: item index -> a picklable result.
        consume: (index, result) -> None, called on worker 0 only.
        comm: the communicator; None runs everything here.
    """
    if comm is None or comm.size == 1:
        for i in range(count):
            consume(i, compute(i))
        return
    size, rank = comm.size, comm.rank
    for start in range(0, count, size):
        mine = start + rank
        result = compute(mine) if mine < count else None
        results = comm.gather_object(result, 0, "sharded inference gather")
        if rank == 0:
            for offset, value in enumerate(results):
                if start + offset < count:
                    consume(start + offset, value)


def blocks_of(count, block, comm=None):
    """This worker's blocks of items: block b (items b·block … b·block +
    block − 1, the last one shorter) goes to worker b % N. Returns the list
    of (block index, range of items)."""
    size = 1 if comm is None else comm.size
    rank = 0 if comm is None else comm.rank
    out = []
    for b, start in enumerate(range(0, count, block)):
        if b % size == rank:
            out.append((b, range(start, min(count, start + block))))
    return out
