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
from ..errors import KaffeError, KaffeFormatError, KaffeShapeError
from ..memory import check_bytes
from ..proto import caffe_pb2
from ..proto.io import read_binary, read_text, write_binary
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
    from ..proto.hdf5 import write_hdf5
    h5py = _import_h5py()

    def fill(f):
        f.create_dataset("iter", data=np.array([iteration], np.int32))
        if learned_net is not None:
            _write_hdf5_string(h5py, f, "learned_net", learned_net)
        f.create_dataset("current_step",
                         data=np.array([current_step], np.int32))
        group = f.create_group("history")
        for i, blob in enumerate(history):
            group.create_dataset(str(i), data=to_numpy(blob.data))

    write_hdf5(path, fill)


def read_solver_state(path, shapes=None):
    """Read a ``.solverstate`` or, for a name ending in ``.h5``, an HDF5 one.

    Everything is checked before it is used: ``iter`` and ``current_step``
    are integers >= 0 (a negative ``iter`` would make a resumed run loop for
    billions of iterations), ``learned_net`` is a file name, and, when
    ``shapes`` (the solver's history shapes) is given, the number and shapes
    of the history entries match it *before* any of them is read.

    Returns:
        (iteration, learned_net or None, current_step, history): history is
        a list of BlobProtos (binary) or NumPy arrays (HDF5).

    Raises:
        KaffeFormatError naming the file and the entry (dataset) at fault;
        KaffeShapeError for a history entry of the wrong shape.
    """
    path = os.fspath(path)
    if path.endswith(".h5"):
        result = _read_hdf5_state(path, shapes)
    else:
        state = read_binary(path, caffe_pb2.SolverState, "SolverState")
        learned = state.learned_net if state.HasField("learned_net") \
            else None
        result = (state.iter, learned, state.current_step,
                  list(state.history))
    iteration, learned, current_step, history = result
    for name, value in (("iter", iteration), ("current_step", current_step)):
        if value < 0:
            raise KaffeFormatError(
                f"holds a negative {name}", file=path, field=name,
                received=value, expected="an integer >= 0",
                fix="resume from a solver state written by Caffe or kaffe")
    if learned is not None:
        learned = _check_learned_net(learned, path)
    return iteration, learned, current_step, history


def check_history_count(path, received, expected, note=None):
    if received != expected:
        raise KaffeFormatError(
            "holds the wrong number of history blobs for this solver",
            file=path, received=received,
            expected=f"{expected}" + (f" ({note})" if note else ""),
            fix="resume with the solver type and net the snapshot was "
                "written by")


def _check_learned_net(learned, path):
    if isinstance(learned, bytes):
        try:
            learned = learned.decode("utf-8")
        except UnicodeDecodeError:
            raise KaffeFormatError(
                "holds a learned_net that is not UTF-8 text", file=path,
                field="learned_net", received=learned[:80]) from None
    if not isinstance(learned, str):
        raise KaffeFormatError(
            "holds a learned_net that is not a file name", file=path,
            field="learned_net", received=type(learned).__name__,
            expected="a string naming the weight file")
    learned = learned.rstrip("\0")
    if "\0" in learned or len(learned) > 4096:
        raise KaffeFormatError(
            "holds a learned_net that is not a usable file name", file=path,
            field="learned_net", received=learned[:80],
            expected="a path without NUL characters, at most 4096 long")
    return learned


def _read_hdf5_state(path, shapes):
    from ..proto.hdf5 import entry, open_hdf5, reading
    h5py = _import_h5py()
    f = open_hdf5(path, "solver state file", h5py)
    what = "an HDF5 solver state (.solverstate.h5)"
    with f, reading(path, what):
        items = {}
        for key in ("iter", "current_step", "history"):
            items[key] = entry(h5py, f, key)
            if items[key] is None:
                raise KaffeFormatError(
                    f"has no '{key}' entry, so it is no solver state",
                    file=path, expected="iter, learned_net, current_step"
                    " and history/<i> as Caffe writes them")
        iteration = _hdf5_int(h5py, items["iter"], path, "iter")
        current_step = _hdf5_int(h5py, items["current_step"], path,
                                 "current_step")
        learned = None
        node = entry(h5py, f, "learned_net")
        if node is not None:
            if not isinstance(node, h5py.Dataset) or \
                    node.dtype.kind not in "SOU" or node.size != 1:
                raise KaffeFormatError(
                    "holds a learned_net dataset that is not one string",
                    file=path, field="learned_net",
                    received=_describe(h5py, node),
                    expected="a scalar string dataset")
            learned = node[()]
            if isinstance(learned, np.ndarray):
                learned = learned.reshape(-1)[0]
        group = items["history"]
        if not isinstance(group, h5py.Group):
            raise KaffeFormatError(
                "holds a dataset at 'history' where a group should be",
                file=path, expected="a group history/<i> of datasets")
        count = len(group)
        if shapes is not None:
            check_history_count(path, count, len(shapes))
        history = []
        for i in range(count):
            dataset = entry(h5py, group, str(i))
            where = f"history/{i}"
            if dataset is None:
                raise KaffeFormatError(
                    f"has no {where} dataset", file=path,
                    received=sorted(group)[:20])
            if not isinstance(dataset, h5py.Dataset) or \
                    dataset.dtype.kind not in "fiu":
                raise KaffeFormatError(
                    f"holds something other than numbers at {where}",
                    file=path, received=_describe(h5py, dataset),
                    expected="a floating-point dataset")
            if shapes is not None and tuple(dataset.shape) != \
                    tuple(shapes[i]):
                raise KaffeShapeError(
                    f"history blob {i} has the wrong shape", file=path,
                    received=tuple(dataset.shape), expected=tuple(shapes[i]),
                    fix="resume with the net the snapshot was written by")
            check_bytes(dataset.size * dataset.dtype.itemsize,
                        f"dataset {where} of shape {tuple(dataset.shape)}",
                        file=path)
            history.append(np.asarray(dataset[()]))
    return iteration, learned, current_step, history


def _describe(h5py, node):
    if isinstance(node, h5py.Dataset):
        return f"a {node.dtype} dataset of shape {tuple(node.shape)}"
    return type(node).__name__


def _hdf5_int(h5py, node, path, name):
    """The one integer a dataset holds (Caffe's H5LTread_dataset_int)."""
    if not isinstance(node, h5py.Dataset) or node.dtype.kind not in "iuf" \
            or node.size != 1:
        raise KaffeFormatError(
            f"holds an '{name}' entry that is not one integer", file=path,
            field=name, received=_describe(h5py, node),
            expected="a dataset of one int32")
    value = np.asarray(node[()]).reshape(-1)[0]
    if not np.isfinite(value) or value != int(value) or \
            not -2 ** 31 <= int(value) < 2 ** 31:
        raise KaffeFormatError(
            f"holds an '{name}' that is not a 32-bit integer", file=path,
            field=name, received=value, expected="an int32")
    return int(value)


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
