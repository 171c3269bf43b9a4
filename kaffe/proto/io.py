"""Reading and writing Caffe's files: prototxt, caffemodel, binaryproto.

- Text (prototxt) parse errors become :class:`KaffeFormatError` with
  file:line:column, and unknown field names get close-match suggestions.
- Binary files of any size load (no 64 MiB protobuf limit on this path).
- Every write goes to a temporary file in the target's directory and is then
  renamed over the target, so a crash never leaves a half-written file.
- :class:`NetSource` remembers which line each ``layer {`` block of a prototxt
  starts on, so that errors about a layer can name its line.
"""
import contextlib
import difflib
import os
import re
import tempfile

from google.protobuf import text_format
from google.protobuf.message import DecodeError

from ..errors import KaffeFormatError
from . import caffe_pb2
from .forks import known_forks_sentence
from .positions import top_level_block_lines

# top_level_block_lines lives in .positions; importable from here as before.
__all__ = ["NetSource", "atomic_path", "atomic_write", "load_net",
           "load_weights", "parse_binary", "parse_text", "read_binary",
           "read_blobproto", "read_text", "top_level_block_lines",
           "write_binary", "write_text"]


# -- atomic writes ------------------------------------------------------------
@contextlib.contextmanager
def atomic_path(path):
    """A temporary path beside ``path`` to write; renamed over ``path`` when
    the ``with`` block ends without an error, deleted when it fails. An
    OSError (disk full, file too large, no permission) becomes a
    KaffeFormatError naming ``path``.

    The file gets the mode a newly created file gets (as Caffe's ofstream
    does), or keeps the target's, and is synced before the rename.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".",
                                   suffix=".tmp", dir=directory)
    except (OSError, ValueError) as e:   # ValueError: a NUL in the name
        raise _write_error(path, e) from None
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _target_mode(path))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            # A full disk, a file-size limit, a read-only directory: the
            # previous file of that name is untouched.
            raise _write_error(path, e) from None
        raise


def _write_error(path, error):
    reason = getattr(error, "strerror", None) or str(error)
    return KaffeFormatError(
        f"cannot be written ({reason}); nothing was written under this name",
        file=path, fix="free disk space, raise the file-size limit or "
        "choose another directory; any previous file of this name is kept")


def atomic_write(path, data):
    """Write ``data`` (bytes or str) to ``path`` via a temp file + rename."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)


def _target_mode(path):
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_text(message, path):
    """Write ``message`` as protobuf text (prototxt), atomically."""
    atomic_write(path, text_format.MessageToString(message))


def write_binary(message, path):
    """Write ``message`` in protobuf binary form, atomically."""
    atomic_write(path, message.SerializeToString())


# -- reading ------------------------------------------------------------------
def _read_bytes(path, what):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise KaffeFormatError(f"{what} file not found", file=path,
                               fix="check the path") from None
    except IsADirectoryError:
        raise KaffeFormatError(f"{what} path is a directory", file=path,
                               expected="a file") from None
    except OSError as e:
        raise KaffeFormatError(f"cannot read {what} file ({e.strerror})",
                               file=path) from None
    except ValueError:          # a NUL character in the name
        raise KaffeFormatError(f"is not a usable {what} file name (it holds "
                               "a NUL character)", file=path) from None


def parse_text(text, message, path=None):
    """Parse protobuf text into ``message`` (in place) and return it.

    Raises KaffeFormatError naming path:line:column on a syntax error.
    """
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as e:
        raise _text_error(e, path) from None
    return message


_PREFIX = re.compile(r"^\s*\d+:\d+\s*:\s*")
_NO_FIELD = re.compile(
    r'Message type "([\w.]+)" has no field named "(\w+)"')
_NO_ENUM = re.compile(
    r'Enum type "([\w.]+)" has no value named (\w+)')


def _text_error(error, path):
    line, column = error.GetLine(), error.GetColumn()
    message = _PREFIX.sub("", str(error)).rstrip(".")
    fix = None
    match = _NO_FIELD.search(message)
    if match:
        fix = _suggest_field(match.group(1), match.group(2))
    match = _NO_ENUM.search(message)
    if match:
        fix = _suggest_enum(match.group(1), match.group(2))
    return KaffeFormatError(message, file=path or "<string>", line=line,
                            column=column, fix=fix)


def _suggest_field(message_name, field):
    try:
        descriptor = caffe_pb2.DESCRIPTOR.pool.FindMessageTypeByName(
            message_name)
    except KeyError:
        return None
    names = [f.name for f in descriptor.fields]
    close = difflib.get_close_matches(field, names, n=3, cutoff=0.6)
    short = message_name.split(".")[-1]
    if close:
        return ("did you mean " + " or ".join(close) + "? "
                + known_forks_sentence())
    return (f"{short} has no such field; check the spelling and the nesting "
            f"of the braces; {known_forks_sentence()}")


def _suggest_enum(enum_name, value):
    try:
        descriptor = caffe_pb2.DESCRIPTOR.pool.FindEnumTypeByName(enum_name)
    except KeyError:
        return None
    names = [v.name for v in descriptor.values]
    return "use one of " + ", ".join(names)


def _read_text_file(path, what):
    data = _read_bytes(path, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise KaffeFormatError(
            "is not a text prototxt (it is not UTF-8 text)", file=path,
            fix="pass the .prototxt text file here; a binary .caffemodel "
                "holds weights and goes where weights are asked for") from None


def read_text(path, message_class):
    """Read a prototxt file into a new ``message_class`` instance."""
    return parse_text(_read_text_file(path, "prototxt"), message_class(),
                      path)


def parse_binary(data, message_class, path=None, what=None):
    """Parse binary protobuf ``data`` into a new ``message_class`` instance."""
    message = message_class()
    try:
        message.ParseFromString(data)
    except (DecodeError, RuntimeError) as e:
        what = what or message_class.DESCRIPTOR.name
        raise KaffeFormatError(
            f"is not a valid binary {what} ({e})", file=path,
            fix="check that the file is complete and of the right kind") \
            from None
    return message


def read_binary(path, message_class, what=None):
    """Read a binary protobuf file into a new ``message_class`` instance."""
    return parse_binary(_read_bytes(path, what or "binary proto"),
                        message_class, path, what)


def read_blobproto(path):
    """Read a .binaryproto file (a BlobProto, e.g. a mean image)."""
    return read_binary(path, caffe_pb2.BlobProto, "BlobProto")


# -- where each layer is in a prototxt ------------------------------------------
class NetSource:
    """Where a net's layers were written: file name and per-layer line numbers.

    Lines are looked up by (layer name, occurrence), which survives format
    upgrades that only rename types or add layers.
    """

    def __init__(self, path=None, layer_keys=None):
        self.path = path
        self._lines = dict(layer_keys or {})

    @classmethod
    def from_text(cls, text, path, layer_names):
        """Pair the n-th top-level layer block of ``text`` with ``layer_names[n]``."""
        lines = top_level_block_lines(text, ("layer", "layers"))
        keys = {}
        seen = {}
        for name, line in zip(layer_names, lines):
            k = seen.get(name, 0)
            seen[name] = k + 1
            keys[(name, k)] = line
        return cls(path, keys)

    def line(self, name, occurrence=0):
        return self._lines.get((name, occurrence))


# -- nets and weights -------------------------------------------------------------
def load_net(network):
    """Read a net definition, upgraded to the current format.

    Args:
        network: a prototxt path, or a caffe_pb2.NetParameter (copied).

    Returns:
        (NetParameter, NetSource)
    """
    from .upgrade import upgrade_net_as_needed
    if isinstance(network, caffe_pb2.NetParameter):
        param = caffe_pb2.NetParameter()
        param.CopyFrom(network)
        source = NetSource(None)
        upgrade_net_as_needed(param, None)
        return param, source
    path = os.fspath(network)
    text = _read_text_file(path, "net prototxt")
    param = parse_text(text, caffe_pb2.NetParameter(), path)
    names = [l.name for l in param.layer] or [
        l.name or l.layer.name for l in param.layers]
    source = NetSource.from_text(text, path, names)
    upgrade_net_as_needed(param, path)
    return param, source


def load_weights(path):
    """Read a binary .caffemodel as a NetParameter, upgraded to the current format."""
    from .upgrade import upgrade_net_as_needed
    path = os.fspath(path)
    param = read_binary(path, caffe_pb2.NetParameter, "NetParameter (caffemodel)")
    upgrade_net_as_needed(param, path)
    return param
