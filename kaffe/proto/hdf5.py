"""HDF5 weights: ``.caffemodel.h5`` files as Caffe writes and reads them.

Caffe's layout (``Net::ToHDF5`` / ``Net::CopyTrainedLayersFromHDF5`` in
``src/caffe/net.cpp``)::

    /data/<layer name>/<j>    parameter blob j of the layer, an N-D dataset
                              (float32, or float64 for a double net)
    /diff/<layer name>/<j>    its gradient (only when diffs are written)

Every layer gets a group under ``data`` (an empty one when it has no
parameters). A parameter that shares another layer's blob (same
``param { name }``) is written only by its owner; the diff group has every
parameter. Reading matches layers by name and skips the file's unknown
layers with "Ignoring source layer X"; a dataset missing for a shared
parameter is fine (its owner brings the values), for any other parameter it
is an error, as are a layer with more datasets than the net's layer has
parameters, and a shape that differs from the net's. The ``diff`` group is
never read back.

Whether a weight file is HDF5 is decided by its content, as Caffe's
``H5Fis_hdf5``: the HDF5 signature at offset 0, or at 512, 1024, 2048 ...
(after a user block), whatever the file is called.

A layer name with a ``/`` (GoogLeNet's ``conv1/7x7_s2``, MobileNet's
``conv1/bn`` beside ``conv1``) becomes nested groups, since HDF5 reads ``/``
as a path separator; reading follows such paths back to the layer and counts
only a group's datasets as its blobs (Caffe fails on both: it cannot create
``conv1/7x7_s2`` without a ``conv1`` group, and counts ``conv1``'s ``bn``
subgroup as a blob).

h5py is optional: ``pip install kaffe[hdf5]``. It is imported inside the
functions that need it.
"""
import contextlib
import logging
import os

import numpy as np

from ..errors import KaffeError, KaffeFormatError, KaffeShapeError
from .io import atomic_path
from ..optional import require

log = logging.getLogger("kaffe")

# The 8 bytes that start an HDF5 superblock.
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# The most blob axes Caffe accepts (kMaxBlobAxes).
MAX_BLOB_AXES = 32


def _h5py():
    return require("h5py", "reading or writing HDF5 weights")


def is_hdf5(path):
    """Whether ``path`` is an HDF5 file, judged by its content.

    Looks for the HDF5 signature where a superblock may start: offset 0, or
    a power of two from 512 on (the file may begin with a user block). A
    missing or unreadable file is not HDF5 (the caller's reader then says
    what is wrong with it).
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            offset = 0
            while offset + len(HDF5_SIGNATURE) <= size:
                f.seek(offset)
                if f.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                    return True
                offset = 512 if offset == 0 else offset * 2
    except (OSError, ValueError):     # ValueError: a NUL in the name
        return False
    return False


# What h5py raises on a damaged file: a missing or dangling entry
# (KeyError), a link it cannot follow (RuntimeError), an unreadable chunk or
# header (OSError), a type it cannot convert (TypeError, ValueError).
H5_ERRORS = (KeyError, RuntimeError, OSError, TypeError, ValueError,
             AttributeError, IndexError, OverflowError)
# Groups nested deeper than this are refused (hard links can make cycles).
MAX_DEPTH = 64


@contextlib.contextmanager
def reading(path, what):
    """Turn any error h5py raises while reading ``path`` into a
    KaffeFormatError naming the file (kaffe's own errors pass through)."""
    try:
        yield
    except KaffeError:
        raise
    except H5_ERRORS as e:
        raise KaffeFormatError(
            f"cannot be read as {what} ({type(e).__name__}: {e})", file=path,
            fix=f"pass {what} written by Caffe or kaffe") from None


def open_hdf5(path, what, h5py=None):
    """Open ``path`` read-only; a kaffe error if it is missing or not HDF5."""
    h5py = h5py or _h5py()
    path = os.fspath(path)
    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise KaffeFormatError(f"{what} not found", file=path,
                               fix="check the path") from None
    except H5_ERRORS as e:
        raise KaffeFormatError(
            f"cannot be opened as an HDF5 file ({e})", file=path,
            fix=f"pass {what} written by Caffe or kaffe") from None


def entry(h5py, group, key):
    """``group[key]`` if it is a hard-linked entry, else None (missing).

    Soft and external links are refused: Caffe's files have none, and an
    external link would make kaffe open another file the user never named.
    """
    link = group.get(key, getlink=True)
    if link is None:
        return None
    if not isinstance(link, h5py.HardLink):
        raise KaffeFormatError(
            f"holds a link ({type(link).__name__}) at "
            f"{group.name.rstrip('/')}/{key}, where Caffe writes a group or "
            "dataset", file=group.file.filename,
            fix="pass a file written by Caffe or kaffe")
    return group[key]


# -- writing ------------------------------------------------------------------
def save_hdf5(net, path, write_diff=False):
    """Write ``net``'s parameters to ``path`` in Caffe's HDF5 layout.

    Args:
        net: a kaffe.Net.
        path: the file to write (``.caffemodel.h5`` by convention); written
            to a temporary file beside it, then renamed over it.
        write_diff: also write every parameter's diff under ``/diff``.
    """
    write_hdf5(path, lambda f: _write_groups(net, f, write_diff))


def write_hdf5(path, fill):
    """Write an HDF5 file atomically: ``fill(h5py_file)`` builds it in memory,
    then its bytes go to a temporary file renamed over ``path``.

    Building in memory keeps the HDF5 library away from a failing disk (a
    full disk or a file-size limit in the middle of a write can crash it);
    the plain write then fails cleanly, with a kaffe error naming ``path``,
    and leaves any previous file of that name as it was.
    """
    import io
    h5py = _h5py()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        fill(f)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as out:
            out.write(buffer.getbuffer())


def _write_groups(net, f, write_diff):
    data = f.create_group("data")
    diff = f.create_group("diff") if write_diff else None
    for node in net.graph:
        layer_data = data.require_group(node.name)
        layer_diff = diff.require_group(node.name) if write_diff else None
        for param in node.params:
            if param.owner is None:
                # Only a parameter's owner writes its values.
                layer_data.create_dataset(str(param.index),
                                          data=_host(param.blob.data))
            if write_diff:
                layer_diff.create_dataset(str(param.index),
                                          data=_host(param.blob.diff))


def _host(array):
    from ..backend import to_numpy
    return np.ascontiguousarray(to_numpy(array))


# -- reading ------------------------------------------------------------------
def load_hdf5(net, path):
    """Copy the parameters stored in HDF5 file ``path`` into ``net``.

    Layers are matched by name; see the module docstring for what is
    checked.

    Raises:
        KaffeFormatError: the file is not HDF5, has no ``data`` group, or a
            parameter entry is not a numeric dataset of at most 32 axes.
        KaffeShapeError: a layer has more datasets than parameters, a
            non-shared parameter is missing, or a shape differs from the net's.
    """
    h5py = _h5py()
    path = os.fspath(path)
    f = open_hdf5(path, "weight file", h5py)
    with f, reading(path, "a .caffemodel.h5 weight file"):
        data = entry(h5py, f, "data")
        if not isinstance(data, h5py.Group):
            raise KaffeFormatError(
                "has no 'data' group, so it holds no Caffe weights",
                file=path, expected="groups data/<layer name>/<param index>",
                fix="pass a .caffemodel.h5 written by Caffe or kaffe")
        for name, group in _layer_groups(h5py, data, net.layer_dict):
            _copy_layer(net, name, group, path, h5py)


def _layer_groups(h5py, group, layer_dict, prefix="", depth=0):
    """(layer name, group) for the net's layers, in the file's name order.

    Logs "Ignoring source layer X" for an entry that is no layer of the net.
    Descends into groups that hold groups: a layer name with '/' is stored
    as nested groups, possibly inside the group of another layer (MobileNet's
    "conv1" and "conv1/bn").
    """
    if depth > MAX_DEPTH:
        raise KaffeFormatError(
            f"nests groups more than {MAX_DEPTH} deep under data/",
            file=group.file.filename, received=group.name,
            fix="pass a .caffemodel.h5 written by Caffe or kaffe")
    for key in group:
        name = prefix + key
        item = entry(h5py, group, key)
        nested = isinstance(item, h5py.Group) and any(
            isinstance(child, h5py.Group) for child in item.values())
        if name in layer_dict:
            yield name, item
        elif not nested:
            log.info("Ignoring source layer %s", name)
        if nested:
            yield from _layer_groups(h5py, item, layer_dict, name + "/",
                                     depth + 1)


def _copy_layer(net, name, group, path, h5py):
    node = net.node(name)
    target = node.layer
    if not isinstance(group, h5py.Group):
        raise KaffeFormatError(
            f"holds a dataset at data/{name} where a group of parameter "
            "datasets should be", file=path, layer=name,
            layer_type=target.type)
    n_target = len(target.blobs)
    n_source = sum(isinstance(item, h5py.Dataset) for item in group.values())
    if n_source > n_target:
        raise KaffeShapeError(
            "has a different number of parameter blobs in the weight file",
            file=path, layer=name, layer_type=target.type,
            received=f"{n_source} blob(s) in the file",
            expected=f"at most {n_target} (as the net defines it)",
            fix="check bias_term and that the file belongs to this net")
    for j, blob in enumerate(target.blobs):
        key = str(j)
        if key not in group:
            if node.params[j].owner is not None:
                continue    # shared: its owner's dataset brings the values
            raise KaffeShapeError(
                f"has no dataset for param {j} in the weight file",
                file=path, layer=name, layer_type=target.type,
                received=f"datasets {sorted(group)} under data/{name}",
                expected=f"one per parameter blob, 0 to {n_target - 1}",
                fix="check bias_term and that the file belongs to this net")
        dataset = entry(h5py, group, key)
        _check_dataset(dataset, h5py, path, name, target, j)
        if tuple(dataset.shape) != blob.shape:
            raise KaffeShapeError(
                f"cannot copy param {j} weights: shape mismatch", file=path,
                layer=name, layer_type=target.type,
                received=_shape_text(dataset.shape) + " in the file",
                expected=blob.shape_string() + " in the net",
                fix="to learn this layer's parameters from scratch rather "
                    "than copying them, rename the layer; otherwise make the "
                    "layer's definition match the file (num_output, kernel, "
                    "group, input size)")
        blob.data[...] = dataset[()]


def _check_dataset(dataset, h5py, path, name, target, j):
    where = f"data/{name}/{j}"
    if not isinstance(dataset, h5py.Dataset):
        raise KaffeFormatError(
            f"has a group at {where} where a dataset should be", file=path,
            layer=name, layer_type=target.type)
    kind = dataset.dtype.kind
    if kind not in "fiu":
        raise KaffeFormatError(
            f"holds an unsupported datatype at {where}", file=path,
            layer=name, layer_type=target.type, received=str(dataset.dtype),
            expected="floating-point or integer values")
    if dataset.ndim > MAX_BLOB_AXES:
        raise KaffeFormatError(
            f"has too many axes at {where}", file=path, layer=name,
            layer_type=target.type, received=dataset.ndim,
            expected=f"at most {MAX_BLOB_AXES}")


def _shape_text(shape):
    count = 1
    for d in shape:
        count *= d
    return "".join(f"{d} " for d in shape) + f"({count})"
