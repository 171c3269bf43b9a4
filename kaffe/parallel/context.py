"""Who trains together: Caffe's solver_count / solver_rank, and the data shards.

Nothing here talks to MPI: these are the process-wide settings that Caffe
keeps in its ``Caffe`` singleton (``solver_count``, ``solver_rank``,
``multiprocess``, ``root_solver``) plus the one rule by which data layers
pick their records when several workers share a source.

Training (Caffe 1.0's ``DataLayer::Skip``): in the TRAIN phase a layer keeps
record number ``offset`` (counted from its first read, across restarts of
the source) when ``offset % solver_count == solver_rank``; with 2 workers,
worker 0 reads records 0, 2, 4, … and worker 1 records 1, 3, 5, …. TEST-phase
layers read everything (as in Caffe, only worker 0 tests).

Sharded inference (``mpiexec -n N kaffe test|extract_features``): after
:func:`set_inference_sharding` TEST-phase layers keep whole batches instead,
batch ``b`` (records ``b·B … b·B+B−1``) going to worker ``b % solver_count``,
so that every worker computes exactly the batches a one-worker run would and
worker 0 can put the results back in order.
"""
from ..errors import KaffeConfigError

_state = {"count": 1, "rank": 0, "multiprocess": False, "inference": False}


def solver_count():
    """How many solvers train together (1 unless set, e.g. by mpiexec)."""
    return _state["count"]


def solver_rank():
    """This process's solver index, 0 … solver_count() − 1."""
    return _state["rank"]


def root_solver():
    """Whether this is solver 0, the one that logs, tests and snapshots."""
    return _state["rank"] == 0


def multiprocess():
    """Whether the solvers run in separate processes (Caffe's flag)."""
    return _state["multiprocess"]


def set_solver_count(count):
    """Set how many solvers train together (pycaffe's set_solver_count)."""
    count = _int(count, "solver_count")
    if count < 1:
        raise KaffeConfigError("must be at least 1", field="solver_count",
                               received=count)
    _state["count"] = count


def set_solver_rank(rank):
    """Set this process's solver index (pycaffe's set_solver_rank)."""
    rank = _int(rank, "solver_rank")
    if rank < 0:
        raise KaffeConfigError("must be >= 0", field="solver_rank",
                               received=rank)
    _state["rank"] = rank


def set_multiprocess(value):
    """Say whether the solvers run in separate processes."""
    _state["multiprocess"] = bool(value)


def set_inference_sharding(value):
    """Make TEST-phase data layers read every solver_count-th batch (True),
    or everything (False, the default and Caffe's behaviour)."""
    _state["inference"] = bool(value)


def inference_sharding():
    """Whether TEST-phase data layers read their batch shard."""
    return _state["inference"]


def _int(value, field):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise KaffeConfigError("must be an integer", field=field,
                               received=value) from None


class Shard:
    """Which records of a source one data layer reads.

    Made by :func:`data_shard` when the layer is set up (so that a prefetch
    thread never sees the settings change under it). ``keeps(offset)`` says
    whether the layer uses its ``offset``-th record (0-based, counted over
    every record it passed, across restarts of the source).

    Args:
        count: how many workers share the source.
        rank: this worker.
        block: 1 to deal out single records (training), the batch size to
            deal out whole batches (sharded inference).
    """

    __slots__ = ("count", "rank", "block")

    def __init__(self, count, rank, block=1):
        self.count = count
        self.rank = rank
        self.block = max(1, int(block))

    def keeps(self, offset):
        return (offset // self.block) % self.count == self.rank

    def __repr__(self):
        return (f"Shard(count={self.count}, rank={self.rank}, "
                f"block={self.block})")


def data_shard(phase, batch_size):
    """The :class:`Shard` a data layer of ``phase`` reads now, or None when it
    reads every record (one worker, or a TEST net outside sharded
    inference)."""
    from ..core.net import TRAIN
    count, rank = _state["count"], _state["rank"]
    if count <= 1:
        return None
    if rank >= count:
        raise KaffeConfigError(
            "must be smaller than solver_count", field="solver_rank",
            received=rank, expected=f"0 … {count - 1}",
            fix="call set_solver_count before set_solver_rank with the "
                "number of workers")
    if phase == TRAIN:
        return Shard(count, rank, 1)
    if _state["inference"]:
        return Shard(count, rank, batch_size)
    return None


def next_kept(shard, offset, advance):
    """Call ``advance()`` (one record on, returning nothing) until record
    ``offset`` is one ``shard`` keeps; return the new offset. With no shard,
    return ``offset`` at once."""
    if shard is None:
        return offset
    while not shard.keeps(offset):
        advance()
        offset += 1
    return offset
