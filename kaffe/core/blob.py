"""Blob: Caffe's N-dimensional array pair (data and diff).

A blob owns two flat buffers, ``data`` (values) and ``diff`` (gradients), of
at least ``count`` elements, and a shape. ``blob.data`` and ``blob.diff`` are
writable array views of the first ``count`` elements in that shape, as in
pycaffe.

As in Caffe, reshaping keeps the buffers while the new count fits in the
capacity, and the diff buffer is only allocated when someone first asks for it,
so a net that only runs forward never pays for gradients. Two blobs can share a
buffer (``share_data`` / ``share_diff``): in-place views, Flatten/Reshape tops
and shared parameters use this.

The views are made once and handed out again while the shape and the buffer
stay (a view costs about 0.3 µs, and a small net reads them hundreds of times
per forward: issue 12); a reshape to another shape, a new buffer, sharing or
release makes the next access build a new view. So ``blob.data`` is the same
array object from one access to the next: change its values, never its
``shape`` attribute (reshape the blob instead).
"""
import numpy as np

from ..errors import KaffeShapeError
from ..memory import check_bytes, out_of_memory

MAX_BLOB_AXES = 32


class _Buffer:
    """A growable flat array that several blobs may hold at once."""

    __slots__ = ("array",)

    def __init__(self, xp, capacity, dtype):
        try:
            self.array = xp.zeros(capacity, dtype=dtype)
        except MemoryError as e:
            raise out_of_memory(e, f"allocating a blob of {capacity:,} "
                                "elements") from None

    @property
    def size(self):
        return self.array.shape[0]


class Blob:
    """An N-D array of ``data`` with a same-shaped ``diff``.

    Args:
        shape: the initial shape (a tuple of ints; () is a scalar blob).
            Without one the blob is empty (count 0), as Caffe's Blob().
        dtype: element type, float32 like Caffe unless a test asks for float64.
        xp: the array module (numpy, or cupy on a GPU).
    """

    # How many times any blob took a new shape (in this process): while it
    # stays put, no blob's shape changed (Layer.Forward's cheap check).
    reshapes = 0

    def __init__(self, shape=None, dtype=np.float32, xp=np):
        self._xp = xp
        self.dtype = np.dtype(dtype)
        self._shape = ()
        self._count = 0
        self._data = None
        self._diff = None
        # The views of data and diff in the current shape, or None.
        self._data_view = None
        self._diff_view = None
        if shape is not None:
            self.reshape(shape)

    # -- shape -------------------------------------------------------------
    def reshape(self, *shape):
        """Change the shape; ``reshape(2, 3)`` and ``reshape((2, 3))`` both work.

        Keeps the buffers if the new count fits, else allocates new zeroed ones
        (which also ends any sharing with other blobs, as in Caffe).
        """
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = tuple(shape[0])
        shape = tuple(int(d) for d in shape)
        if len(shape) > MAX_BLOB_AXES:
            raise KaffeShapeError(
                "has too many axes", field="blob shape", received=shape,
                expected=f"at most {MAX_BLOB_AXES} axes")
        for d in shape:
            if d < 0:
                raise KaffeShapeError(
                    "must not have negative dimensions", field="blob shape",
                    received=shape)
        count = 1
        for d in shape:
            count *= d          # Python ints: exact, never overflowing
        check_bytes(count * self.dtype.itemsize,
                    f"a blob of shape {_dims(shape)}")
        if shape != self._shape or count != self._count:
            self._data_view = None
            self._diff_view = None
            Blob.reshapes += 1
        self._shape = shape
        self._count = count
        # Keep each buffer while it is big enough (Caffe's capacity rule).
        if self._data is not None and self._data.size < count:
            self._data = self._data_view = None
        if self._diff is not None and self._diff.size < count:
            self._diff = self._diff_view = None

    def reshape_like(self, other):
        """Take ``other``'s shape."""
        self.reshape(other.shape)

    @property
    def shape(self):
        """The shape as a tuple of ints."""
        return self._shape

    @property
    def count(self):
        """Number of elements (product of the shape)."""
        return self._count

    @property
    def num_axes(self):
        return len(self._shape)

    def count_axes(self, start, end=None):
        """Product of the dimensions ``start`` .. ``end - 1`` (end: last axis)."""
        end = self.num_axes if end is None else end
        out = 1
        for d in self._shape[start:end]:
            out *= d
        return out

    def canonical_axis_index(self, axis):
        """Map a possibly negative axis into [0, num_axes)."""
        n = self.num_axes
        if not -n <= axis < n:
            raise KaffeShapeError(
                f"axis {axis} is out of range for a {n}-D blob of shape "
                f"{self.shape_string()}", expected=f"an axis in [{-n}, {n})")
        return axis + n if axis < 0 else axis

    def legacy_shape(self, index):
        """Caffe's num/channels/height/width accessor: missing axes read as 1."""
        if self.num_axes > 4:
            raise KaffeShapeError(
                "cannot use the legacy num/channels/height/width accessors "
                f"on a {self.num_axes}-D blob", expected="at most 4 axes",
                fix="use blob.shape[i] instead")
        if index >= self.num_axes or index < -self.num_axes:
            return 1
        return self._shape[index]

    @property
    def num(self):
        return self.legacy_shape(0)

    @property
    def channels(self):
        return self.legacy_shape(1)

    @property
    def height(self):
        return self.legacy_shape(2)

    @property
    def width(self):
        return self.legacy_shape(3)

    def shape_string(self):
        """Caffe's shape string: '64 20 24 24 (737280)'."""
        return "".join(f"{d} " for d in self._shape) + f"({self._count})"

    # -- values ------------------------------------------------------------
    def _view(self, buf):
        return buf.array[:self._count].reshape(self._shape)

    @property
    def data(self):
        """The values, a writable view in the blob's shape."""
        view = self._data_view
        if view is None:
            view = self._data_view = self._view(self._ensure("_data"))
        return view

    @data.setter
    def data(self, value):
        self.data[...] = value

    @property
    def diff(self):
        """The gradients, a writable view in the blob's shape."""
        view = self._diff_view
        if view is None:
            view = self._diff_view = self._view(self._ensure("_diff"))
        return view

    @diff.setter
    def diff(self, value):
        self.diff[...] = value

    @property
    def has_diff(self):
        """True once a diff buffer exists (inference nets never create one)."""
        return self._diff is not None

    def release(self):
        """Drop this blob's data and diff buffers (their memory is freed
        once no other blob shares them); they come back zeroed, in the
        current shape, on the next access."""
        self._data = None
        self._diff = None
        self._data_view = None
        self._diff_view = None

    def share_data(self, other):
        """Make this blob's data the same memory as ``other``'s (counts must match)."""
        self._check_same_count(other, "share data")
        buf = other._ensure("_data")
        if buf is not self._data:
            self._data = buf
            self._data_view = None

    def share_diff(self, other):
        """Make this blob's diff the same memory as ``other``'s (counts must match)."""
        self._check_same_count(other, "share diff")
        buf = other._ensure("_diff")
        if buf is not self._diff:
            self._diff = buf
            self._diff_view = None

    def _ensure(self, which):
        buf = getattr(self, which)
        if buf is None:
            buf = _Buffer(self._xp, self._count, self.dtype)
            setattr(self, which, buf)
            setattr(self, which + "_view", None)
        return buf

    def _check_same_count(self, other, what):
        if self._count != other._count:
            raise KaffeShapeError(
                f"cannot {what} between blobs of different sizes",
                received=f"{self.shape_string()} and {other.shape_string()}")

    def update(self):
        """data -= diff (what Caffe's solver does after computing the update)."""
        self.data -= self.diff

    def copy_from(self, other, copy_diff=False, reshape=False):
        """Copy ``other``'s data (or diff) into this blob."""
        if other.shape != self.shape:
            if not reshape:
                raise KaffeShapeError(
                    "cannot copy between blobs of different shapes",
                    received=other.shape_string(),
                    expected=self.shape_string())
            self.reshape_like(other)
        if copy_diff:
            self.diff[...] = other.diff
        else:
            self.data[...] = other.data

    # -- protobuf ----------------------------------------------------------
    def shape_equals_proto(self, proto):
        """Caffe's ShapeEquals: legacy 4-D protos compare right-aligned."""
        if _has_legacy_shape(proto):
            return (self.num_axes <= 4
                    and self.legacy_shape(-4) == proto.num
                    and self.legacy_shape(-3) == proto.channels
                    and self.legacy_shape(-2) == proto.height
                    and self.legacy_shape(-1) == proto.width)
        return self._shape == tuple(proto.shape.dim)

    def from_proto(self, proto, reshape=True):
        """Load values (and diff if present) from a BlobProto.

        With ``reshape`` the blob takes the proto's shape (legacy 4-D fields
        give a 4-D shape); otherwise the shapes must already agree.
        """
        if reshape:
            self.reshape(proto_shape(proto))
        elif not self.shape_equals_proto(proto):
            raise KaffeShapeError(
                "shape mismatch", received=" ".join(
                    str(d) for d in proto_shape(proto)),
                expected=self.shape_string())
        self.data[...] = self._values(proto, "data")
        if len(proto.double_diff) or len(proto.diff):
            self.diff[...] = self._values(proto, "diff")

    def _values(self, proto, which):
        doubles = getattr(proto, "double_" + which)
        singles = getattr(proto, which)
        values = doubles if len(doubles) else singles
        if len(values) != self._count:
            raise KaffeShapeError(
                f"BlobProto holds {len(values)} {which} values for a blob of "
                f"{self._count} elements", received=len(values),
                expected=self._count)
        array = np.asarray(values, dtype=np.float64 if len(doubles)
                           else np.float32)
        return self._xp.asarray(array.reshape(self._shape), dtype=self.dtype)

    def to_proto(self, proto=None, write_diff=False):
        """Write shape, data (and diff) into a BlobProto and return it.

        float64 blobs write ``double_data`` as Caffe's Blob<double> does.
        """
        from ..proto import caffe_pb2
        proto = caffe_pb2.BlobProto() if proto is None else proto
        proto.Clear()
        if self._shape:  # a 0-axis blob writes no shape field, as Caffe's
            proto.shape.dim.extend(self._shape)
        double = self.dtype == np.float64
        target_data = proto.double_data if double else proto.data
        target_data.extend(_host(self.data).ravel().tolist())
        if write_diff:
            target_diff = proto.double_diff if double else proto.diff
            target_diff.extend(_host(self.diff).ravel().tolist())
        return proto

    def __repr__(self):
        return f"<Blob {self.shape_string()} {self.dtype.name}>"


def _host(a):
    from ..backend import to_numpy
    return to_numpy(a)


def _dims(shape):
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _has_legacy_shape(proto):
    return (proto.HasField("num") or proto.HasField("channels")
            or proto.HasField("height") or proto.HasField("width"))


def proto_shape(proto):
    """The shape a BlobProto describes (legacy num/channels/height/width → 4-D)."""
    if _has_legacy_shape(proto):
        return (proto.num, proto.channels, proto.height, proto.width)
    return tuple(proto.shape.dim)
