"""The MPI side of kaffe: the one module (with its siblings in this package)
that imports mpi4py.

:func:`world` hands out one :class:`Communicator` over ``MPI.COMM_WORLD``.
Its collectives never hang for ever: they are started non-blocking and
waited for with a deadline (``KAFFE_MPI_TIMEOUT`` seconds, 900 by default;
a worker that tests or snapshots makes the others wait, so leave room for
that), and a worker that passes the deadline aborts the whole job with a
message saying which operation timed out. A worker that raises aborts the
job too (:func:`abort_on_error`), so that the others do not wait in a
collective for a peer that is gone: ``mpiexec`` then ends every rank.
Waiting polls with short sleeps, so a worker that waits leaves the CPU to
those still computing and still takes its signals (SIGINT, SIGHUP).
"""
import os
import sys
import time

import numpy as np

from ..errors import KaffeError

# Environment variables by which MPI launchers tell a process its world.
_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE",
                   "MPI_LOCALNRANKS", "SLURM_NTASKS")
DEFAULT_TIMEOUT_S = 900.0
_SPIN_S = 0.002          # poll without sleeping this long, then nap
_NAP_S = 0.0005

_world = None


def launched_size():
    """How many processes the MPI launcher started (from its environment
    variables; 1 outside ``mpiexec``). Imports nothing."""
    for name in _SIZE_VARIABLES[:3]:
        value = os.environ.get(name)
        if value and value.isdigit():
            return int(value)
    return 1


def mpi_module():
    """mpi4py's MPI module, or a KaffeError saying how to install it.

    MPI starts its own threads when it initialises (on import). They are
    started with SIGINT and SIGHUP blocked, so that those signals go to
    Python's threads (whose handler asks for a solver action) and never
    interrupt a system call in an MPI progress thread.
    """
    import signal
    mask = getattr(signal, "pthread_sigmask", None)       # not on Windows
    blocked = {signal.SIGINT, getattr(signal, "SIGHUP", signal.SIGINT)}
    previous = mask(signal.SIG_BLOCK, blocked) if mask else None
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise KaffeError(
            f"running on several workers needs mpi4py and an MPI library, "
            f"which cannot be imported ({e})",
            fix='pip install "kaffe[mpi]" (mpi4py and the mpich wheel), '
                "or pip install mpi4py against a system MPI") from None
    finally:
        if mask:
            mask(signal.SIG_SETMASK, previous)
    return MPI


def timeout_s():
    """The deadline of one collective, from ``KAFFE_MPI_TIMEOUT``."""
    text = os.environ.get("KAFFE_MPI_TIMEOUT")
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise KaffeError("is not a positive number of seconds",
                         field="KAFFE_MPI_TIMEOUT", received=text)
    return value


class Communicator:
    """A group of workers (MPI's COMM_WORLD by default) and the collectives
    kaffe uses, each with the deadline of :func:`timeout_s`.

    Attributes:
        rank, size: this worker's index and the number of workers.
        local_size: how many workers run on this node.
    """

    def __init__(self, comm=None):
        MPI = mpi_module()
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        node = self.comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_size = node.Get_size()
        node.Free()
        self.timeout = timeout_s()

    def _wait(self, request, what):
        start = time.monotonic()
        deadline = start + self.timeout
        spin_until = start + _SPIN_S
        while not request.Test():
            now = time.monotonic()
            if now > deadline:
                self.abort(f"worker {self.rank}: {what} did not complete "
                           f"within {self.timeout:g} s (KAFFE_MPI_TIMEOUT): "
                           "another worker is stuck or gone", 3)
            if now > spin_until:
                time.sleep(_NAP_S)

    def allreduce_sum(self, buffer, what="gradient all-reduce"):
        """Sum ``buffer`` (a contiguous ndarray) over the workers, in place."""
        request = self.comm.Iallreduce(self.MPI.IN_PLACE, buffer,
                                       op=self.MPI.SUM)
        self._wait(request, what)

    def start_allreduce_sum(self, buffer):
        """Start summing ``buffer`` in place; returns the request to
        :meth:`finish` (used to reduce layer by layer during backward)."""
        return self.comm.Iallreduce(self.MPI.IN_PLACE, buffer,
                                    op=self.MPI.SUM)

    def progress(self, requests):
        """Let MPI move ``requests`` on (returns at once)."""
        if requests:
            self.MPI.Request.Testall(requests)

    def finish(self, requests, what="gradient all-reduce"):
        """Wait for every request of ``requests``."""
        for request in requests:
            self._wait(request, what)

    def bcast_array(self, array, root=0, what="broadcast"):
        """Overwrite ``array`` (contiguous) with worker ``root``'s values."""
        self._wait(self.comm.Ibcast(array, root=root), what)

    def bcast_object(self, value, root=0):
        """Worker ``root``'s ``value`` (a small picklable object)."""
        data = np.frombuffer(_pickle(value), np.uint8) \
            if self.rank == root else None
        length = np.array([0 if data is None else data.size], np.int64)
        self.bcast_array(length, root, "broadcast")
        if data is None:
            data = np.empty(int(length[0]), np.uint8)
        self.bcast_array(data, root, "broadcast")
        return _unpickle(data.tobytes())

    def gather_object(self, value, root=0, what="gather"):
        """Every worker's ``value`` on ``root`` (a list, rank order); None on
        the others. Values are pickled, so keep them to a batch or so."""
        payload = np.frombuffer(_pickle(value), np.uint8)
        sizes = np.zeros(self.size, np.int64)
        self._wait(self.comm.Iallgather(
            np.array([payload.size], np.int64), sizes), what)
        if self.rank == root:
            received = np.empty(int(sizes.sum()), np.uint8)
            counts = sizes.tolist()
            displacements = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            request = self.comm.Igatherv(
                payload, [received, counts, displacements.tolist(),
                          self.MPI.BYTE], root=root)
        else:
            request = self.comm.Igatherv(payload, None, root=root)
        self._wait(request, what)
        if self.rank != root:
            return None
        out, start = [], 0
        for size in sizes.tolist():
            out.append(_unpickle(received[start:start + size].tobytes()))
            start += size
        return out

    def barrier(self, what="barrier"):
        self._wait(self.comm.Ibarrier(), what)

    def abort(self, message=None, code=1):
        """Print ``message`` and end every worker of the job now."""
        if message:
            print(f"kaffe: error: {message}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        # MPI_Abort makes the launcher kill every worker at once; give its
        # output forwarder a moment to pass on what this worker just wrote
        # (seen lost on a loaded machine without it).
        time.sleep(0.5)
        self.comm.Abort(code)


def _pickle(value):
    import pickle
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _unpickle(data):
    import pickle
    return pickle.loads(data)


def world():
    """The :class:`Communicator` over all workers (made once; it also makes
    an uncaught exception abort the whole job, see :func:`abort_on_error`)."""
    global _world
    if _world is None:
        _world = Communicator()
        if _world.size > 1:
            abort_on_error(_world)
    return _world


def abort_on_error(comm):
    """Make an uncaught exception print its traceback and then abort every
    worker (``MPI_Abort``), instead of leaving the others waiting in a
    collective for this one."""
    previous = sys.excepthook

    def hook(kind, value, traceback):
        previous(kind, value, traceback)
        comm.abort(f"worker {comm.rank} of {comm.size} failed; ending the "
                   "job", 1)

    sys.excepthook = hook
