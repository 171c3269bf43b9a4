"""Reading a solver definition, and the solver state a snapshot writes.

One module for a solver's files:

* :func:`load_solver` reads a solver.prototxt (or copies a message), upgrades
  it as Caffe's tools do, and returns it with a :class:`SolverSource` that
  knows the line of every top-level field (for located errors);
* :func:`write_solver_state` / :func:`read_solver_state` write and read the
  ``.solverstate`` (a binary SolverState message) and ``.solverstate.h5``
  (HDF5: ``iter``, ``learned_net``, ``current_step``, ``history/<i>``)
  files, in Caffe's layouts, atomically.
"""
import os

import numpy as np

from ..backend import to_numpy
from ..errors import KaffeError, KaffeFormatError
from ..proto import caffe_pb2
from ..proto.io import atomic_path, read_binary, read_text, write_binary
from ..proto.positions import top_level_field_lines
from ..proto.upgrade import upgrade_snapshot_prefix, upgrade_solver_as_needed


# -- reading a solver definition -----------------------------------------------
class SolverSource:
    """Where a SolverParameter came from: its file, and its fields' lines.

    Args:
        path: the solver.prototxt path (None for a message built in memory).
        text: the file's text, scanned for the lines of its top-level fields.
    """

    def __init__(self, path=None, text=None):
        self.path = path
        self._lines = top_level_field_lines(text) if text else {}

    def line(self, field, occurrence=0):
        """1-based line of the ``occurrence``-th ``field:``, or None."""
        lines = self._lines.get(field, ())
        return lines[occurrence] if occurrence < len(lines) else None

    def where(self, *fields):
        """``dict(file=, line=)`` for the first of ``fields`` the file sets."""
        if self.path is None:
            return {}
        for field in fields:
            line = self.line(field)
            if line is not None:
                return {"file": self.path, "line": line}
        return {"file": self.path}


def load_solver(solver):
    """Read a solver definition the way Caffe's tools do.

    A path is parsed (syntax errors name file:line:column), its deprecated
    ``solver_type`` is upgraded to ``type`` and its snapshot_prefix completed
    from the file's path (``UpgradeSnapshotPrefixProperty``). A message is
    copied and its solver_type upgraded.

    Args:
        solver: a solver.prototxt path or a caffe_pb2.SolverParameter.

    Returns:
        (SolverParameter, SolverSource)
    """
    if isinstance(solver, caffe_pb2.SolverParameter):
        param = caffe_pb2.SolverParameter()
        param.CopyFrom(solver)
        upgrade_solver_as_needed(param, None)
        return param, SolverSource()
    path = os.fspath(solver)
    param = read_text(path, caffe_pb2.SolverParameter)
    with open(path, encoding="utf-8") as f:
        source = SolverSource(path, f.read())
    upgrade_solver_as_needed(param, path)
    upgrade_snapshot_prefix(param, path)
    return param, source


# -- solver state (snapshots) ---------------------------------------------------
def solver_state_message(iteration, current_step, history, learned_net=None):
    """The SolverState message of a binary snapshot.

    Args:
        iteration, current_step: the solver's counters.
        history: the update rule's state blobs, in order.
        learned_net: the weight file written beside it, or None.
    """
    state = caffe_pb2.SolverState(iter=iteration, current_step=current_step)
    if learned_net is not None:
        state.learned_net = learned_net
    for blob in history:
        blob.to_proto(state.history.add())
    return state


def write_solver_state(path, iteration, current_step, history,
                       learned_net=None, hdf5=False):
    """Write a solver state atomically: binary SolverState, or Caffe's HDF5
    layout when ``hdf5`` (needs h5py: kaffe[hdf5])."""
    if not hdf5:
        write_binary(solver_state_message(iteration, current_step, history,
                                          learned_net), path)
        return
    h5py = _import_h5py()
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("iter", data=np.array([iteration], np.int32))
            if learned_net is not None:
                _write_hdf5_string(h5py, f, "learned_net", learned_net)
            f.create_dataset("current_step",
                             data=np.array([current_step], np.int32))
            group = f.create_group("history")
            for i, blob in enumerate(history):
                group.create_dataset(str(i), data=to_numpy(blob.data))


def read_solver_state(path):
    """Read a ``.solverstate`` or, for a name ending in ``.h5``, an HDF5 one.

    Returns:
        (iteration, learned_net or None, current_step, history): history is
        a list of BlobProtos (binary) or NumPy arrays (HDF5).
    """
    path = os.fspath(path)
    if path.endswith(".h5"):
        return _read_hdf5_state(path)
    state = read_binary(path, caffe_pb2.SolverState, "SolverState")
    learned = state.learned_net if state.HasField("learned_net") else None
    return state.iter, learned, state.current_step, list(state.history)


def _read_hdf5_state(path):
    h5py = _import_h5py()
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise KaffeFormatError("solver state file not found", file=path,
                               fix="check the path") from None
    except OSError as e:
        raise KaffeFormatError(
            f"cannot be opened as an HDF5 solver state ({e})",
            file=path) from None
    with f:
        for key in ("iter", "current_step", "history"):
            if key not in f:
                raise KaffeFormatError(
                    f"has no '{key}' entry, so it is no solver state",
                    file=path, expected="iter, learned_net, current_step"
                    " and history/<i> as Caffe writes them")
        iteration = int(np.asarray(f["iter"]).reshape(-1)[0])
        current_step = int(np.asarray(f["current_step"]).reshape(-1)[0])
        learned = None
        if "learned_net" in f:
            learned = f["learned_net"][()]
            if isinstance(learned, bytes):
                learned = learned.decode("utf-8")
            learned = learned.rstrip("\0")
        group = f["history"]
        history = []
        for i in range(len(group)):
            if str(i) not in group:
                raise KaffeFormatError(
                    f"has no history/{i} dataset", file=path,
                    received=sorted(group))
            history.append(np.asarray(group[str(i)][()]))
    return iteration, learned, current_step, history


def _import_h5py():
    try:
        import h5py
    except ImportError:
        raise KaffeError(
            "HDF5 snapshots need the h5py package, which is not installed",
            fix="pip install kaffe[hdf5] (or pip install h5py), or use "
                "snapshot_format: BINARYPROTO") from None
    return h5py


def _write_hdf5_string(h5py, group, name, text):
    """A scalar fixed-length NUL-terminated string (H5LTmake_dataset_string)."""
    data = text.encode("utf-8")
    string_type = h5py.h5t.C_S1.copy()
    string_type.set_size(len(data) + 1)
    string_type.set_strpad(h5py.h5t.STR_NULLTERM)
    space = h5py.h5s.create(h5py.h5s.SCALAR)
    dataset = h5py.h5d.create(group.id, name.encode(), string_type, space)
    dataset.write(h5py.h5s.ALL, h5py.h5s.ALL,
                  np.array(data + b"\0", dtype=f"S{len(data) + 1}"),
                  mtype=string_type)
