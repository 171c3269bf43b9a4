"""pycaffe's ``caffe.NCCL``, backed by MPI: data-parallel training.

Caffe trains on several GPUs by giving each its own solver and batches and
summing the gradients with NCCL before every update; kaffe does the same
with one process per worker, started by ``mpiexec``, summing over MPI::

    caffe.set_solver_count(size); caffe.set_solver_rank(rank)
    solver = caffe.get_solver("solver.prototxt")
    nccl = caffe.NCCL(solver, caffe.NCCL.new_uid())
    nccl.bcast()                       # every worker starts from rank 0's
    solver.add_callback(nccl)          # sum the gradients before each update
    if solver.param.layer_wise_reduce:
        solver.net.after_backward(nccl)
    solver.step(solver.param.max_iter)

Per iteration, after the iter_size forward/backward passes, every
learnable parameter's diff is summed over the workers and scaled by 1/N
(Caffe's ``ncclAllReduce`` then ``scal(1/solver_count)``); the solver then
clips, normalises (1/iter_size), regularises and updates as usual, so every
worker applies the same update to the same weights. Without
``after_backward`` the diffs go through one flat buffer in one all-reduce;
with it (Caffe's ``layer_wise_reduce``), each layer's diffs start on their
way as soon as that layer's backward is done in the last of the iter_size
passes, and the update waits for all of them.

The all-reduce also carries each worker's pending solver action (SIGINT /
SIGHUP, see :meth:`NCCL.request_action`), so that every worker stops or
snapshots after the same iteration.
"""
import numpy as np

from ..errors import KaffeConfigError
from . import context

# Action slots appended to the flat gradient buffer.
_STOP, _SNAPSHOT = 0, 1


class NCCL:
    """Sums a solver's gradients over all workers (pycaffe's caffe.NCCL).

    Args:
        solver: this worker's solver; its nets were built after
            set_solver_count / set_solver_rank (so that its data layers read
            this worker's shard).
        uid: :meth:`new_uid`'s token (accepted for pycaffe's signature; the
            workers are MPI's, so any value works).
        comm: the :class:`kaffe.parallel.mpi.Communicator` (default: all
            MPI workers).

    Raises:
        KaffeConfigError: solver_count / solver_rank disagree with MPI's.
    """

    def __init__(self, solver, uid=None, comm=None):
        from .mpi import world
        self.comm = world() if comm is None else comm
        count, rank = context.solver_count(), context.solver_rank()
        if (count, rank) != (self.comm.size, self.comm.rank):
            raise KaffeConfigError(
                "solver_count / solver_rank do not match the MPI job",
                field="solver_count/solver_rank",
                received=f"{count} / {rank}",
                expected=f"{self.comm.size} / {self.comm.rank} (mpiexec -n "
                         f"{self.comm.size})",
                fix="call caffe.set_solver_count and caffe.set_solver_rank "
                    "(or kaffe.parallel.init()) before building the solver")
        context.set_multiprocess(True)
        self.solver = solver
        net = solver.net
        self.params = list(net.learnable_params)
        self.dtype = np.dtype(solver.dtype)
        sizes = [blob.count for blob in self.params]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        total = int(self.offsets[-1])
        self.buffer = np.zeros(total + 2, self.dtype)
        self.scale = self.dtype.type(1) / self.dtype.type(self.comm.size)
        self._requests = []        # actions asked for here, not yet sent
        self._agreed = _none()
        solver.set_action_function(self._take_agreed_action)
        # Layer-wise reduction (after_backward): the learnable parameters
        # each layer owns. A shared parameter's diff is complete once its
        # owner's backward is done: the owner comes first in forward, so
        # last in backward.
        self._layer_params = [
            [p.learnable_index for p in node.params if p.owner is None]
            for node in net.graph]
        self._layer_wise = False
        self._passes = 0
        self._pending = []         # (param ids, buffer, request)

    @staticmethod
    def new_uid():
        """A fresh token for :class:`NCCL` (pycaffe's NCCL.new_uid)."""
        import os
        return os.urandom(128)

    # -- weights --------------------------------------------------------------
    def bcast(self):
        """Give every worker worker 0's learnable parameters."""
        data = self.buffer[:-2]
        for blob, start, end in self._spans():
            data[start:end] = blob.data.reshape(-1)
        self.comm.bcast_array(data, 0, "weight broadcast")
        for blob, start, end in self._spans():
            blob.data[...] = data[start:end].reshape(blob.shape)

    def _spans(self):
        return zip(self.params, self.offsets[:-1], self.offsets[1:])

    # -- the solver's callbacks -------------------------------------------------
    def on_start(self):
        """Before an iteration's forward passes: count them afresh."""
        self._passes = 0
        self._pending = []

    def on_gradients_ready(self):
        """Sum the diffs over the workers and scale them by 1/N (before the
        solver clips, normalises, regularises and updates)."""
        if self._layer_wise and self._pending:
            self.comm.finish([request for _, _, request in self._pending])
            for ids, buffer, _ in self._pending:
                buffer *= self.scale
                self._unpack(ids, buffer)
            self._pending = []
            flags = self._take_requests()
            self.comm.allreduce_sum(flags, "action all-reduce")
        else:
            data = self.buffer[:-2]
            for blob, start, end in self._spans():
                data[start:end] = blob.diff.reshape(-1)
            self.buffer[-2:] = self._take_requests()
            self.comm.allreduce_sum(self.buffer)
            data *= self.scale
            for blob, start, end in self._spans():
                blob.diff[...] = data[start:end].reshape(blob.shape)
            flags = self.buffer[-2:].copy()
        from ..solvers.solver import NONE, SNAPSHOT, STOP
        self._agreed = STOP if flags[_STOP] > 0 else \
            SNAPSHOT if flags[_SNAPSHOT] > 0 else NONE

    def run(self, layer):
        """After layer ``layer``'s backward (``net.after_backward(nccl)``):
        in the iteration's last pass, start summing that layer's diffs."""
        self._layer_wise = True
        if self._passes == self.solver.param.iter_size - 1:
            ids = self._layer_params[layer]
            if ids:
                buffer = np.concatenate(
                    [self.params[i].diff.reshape(-1) for i in ids])
                self._pending.append(
                    (ids, buffer, self.comm.start_allreduce_sum(buffer)))
            self.comm.progress([request for _, _, request in self._pending])
        if layer == 0:
            self._passes += 1

    __call__ = run

    def _unpack(self, ids, buffer):
        start = 0
        for i in ids:
            blob = self.params[i]
            blob.diff[...] = buffer[start:start + blob.count].reshape(
                blob.shape)
            start += blob.count

    # -- solver actions shared by every worker ----------------------------------
    def request_action(self, kind):
        """Ask every worker to STOP or SNAPSHOT after the next update
        (safe in a signal handler): the request travels with the next
        gradient all-reduce, and all workers act on it together. (The
        solver's own request_action acts on this worker alone, which would
        leave the others waiting: under MPI, send requests here.)"""
        from ..solvers.solver import SNAPSHOT, STOP, _action_value
        action = _action_value(kind)
        if action == STOP:
            self._requests.append(_STOP)
        elif action == SNAPSHOT:
            self._requests.append(_SNAPSHOT)

    def _take_requests(self):
        """The action flags to send, forgetting them here. A signal handler
        may append while this runs: only the requests seen are removed."""
        flags = np.zeros(2, self.dtype)
        count = len(self._requests)
        for slot in self._requests[:count]:
            flags[slot] = 1
        del self._requests[:count]
        return flags

    def _take_agreed_action(self):
        action, self._agreed = self._agreed, _none()
        return action


def _none():
    from ..solvers.solver import NONE
    return NONE
