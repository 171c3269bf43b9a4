"""Structured and byte-level mutators, one family per file kind.

Each mutator takes a ``random.Random`` and the seed file's path and writes a
mutant to ``out`` (a path). Structured mutators parse the seed with the
right protobuf message (or open it with h5py / lmdb), change one to three
things a hostile or broken file could hold — extreme numbers, huge declared
shapes, missing or duplicated entries, wrong types, renamed keys — and write
the file back; byte-level mutators flip, cut, repeat and insert bytes.
"""
import os
import random
import shutil

from google.protobuf import descriptor as _descriptor
from google.protobuf import text_format

from kaffe.proto import caffe_pb2

FD = _descriptor.FieldDescriptor

INTS = [0, 1, -1, 2, 3, 7, 16, 255, 1000, 2 ** 16, 2 ** 31 - 1, -2 ** 31,
        10 ** 6, 10 ** 9]
UINTS = [0, 1, 2, 3, 5, 64, 1000, 10 ** 5, 2 ** 20, 2 ** 31 - 1, 2 ** 32 - 1,
         10 ** 6, 10 ** 9]
INT64S = INTS + [10 ** 12, 2 ** 40, 2 ** 62, -10 ** 12, 2 ** 63 - 1]
FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e-30, 1e30, -1e30, 3.4e38,
          float("inf"), float("-inf"), float("nan"), 1e-45]
STRINGS = ["", "data", "conv", "loss", "..foo", ".x", "x.", "this", "os",
           "a" * 300, "\u00e9\u00e8", "caffe.Layer", "0", "/", "../x",
           "Convolution", "Python", "\x00"]

# Where huge declared sizes do the most harm.
SHAPE_VALUES = [0, 1, 10 ** 6, 10 ** 12, 2 ** 31 - 1, 2 ** 40, -1, -5,
                10 ** 4, 3 * 10 ** 5]


def _repeated(field):
    flag = getattr(field, "is_repeated", None)
    if flag is not None:
        return flag
    return field.label == FD.LABEL_REPEATED


def _scalar_value(rng, field, current=None):
    t = field.cpp_type
    if t == FD.CPPTYPE_BOOL:
        return rng.choice([True, False])
    if t == FD.CPPTYPE_ENUM:
        return rng.choice([v.number for v in field.enum_type.values])
    if t in (FD.CPPTYPE_INT32,):
        return rng.choice(INTS + ([current * 2, current + 1]
                                  if isinstance(current, int) else []))
    if t == FD.CPPTYPE_UINT32:
        return rng.choice(UINTS)
    if t == FD.CPPTYPE_INT64:
        return rng.choice(INT64S)
    if t == FD.CPPTYPE_UINT64:
        return rng.choice([v for v in INT64S if v >= 0])
    if t in (FD.CPPTYPE_FLOAT, FD.CPPTYPE_DOUBLE):
        return rng.choice(FLOATS)
    if t == FD.CPPTYPE_STRING:
        if field.type == FD.TYPE_BYTES:
            return rng.choice([b"", b"\xff\xfe", rng.randbytes(8), b"\x00" * 40])
        return rng.choice(STRINGS)
    return None


def _clamp(field, value):
    """Fit ``value`` into the field's integer range (else the proto refuses)."""
    bounds = {FD.CPPTYPE_INT32: (-2 ** 31, 2 ** 31 - 1),
              FD.CPPTYPE_UINT32: (0, 2 ** 32 - 1),
              FD.CPPTYPE_INT64: (-2 ** 63, 2 ** 63 - 1),
              FD.CPPTYPE_UINT64: (0, 2 ** 64 - 1)}.get(field.cpp_type)
    if bounds and isinstance(value, int):
        return min(max(value, bounds[0]), bounds[1])
    return value


def _messages(message, depth=0):
    """Every sub-message in ``message`` (itself included), depth first."""
    out = [message]
    if depth > 6:
        return out
    for field, value in message.ListFields():
        if field.cpp_type != FD.CPPTYPE_MESSAGE:
            continue
        items = value if _repeated(field) else [value]
        for item in list(items)[:50]:
            out.extend(_messages(item, depth + 1))
    return out


def _scalar_fields(message):
    return [f for f in message.DESCRIPTOR.fields
            if f.cpp_type != FD.CPPTYPE_MESSAGE]


def mutate_message(rng, message, *, names=()):
    """Apply 1-3 random structured changes to a protobuf message in place."""
    for _ in range(rng.randint(1, 3)):
        ops = [_set_scalar, _set_scalar, _set_shape, _drop_repeated,
               _dup_repeated, _clear_field, _truncate_values]
        if isinstance(message, caffe_pb2.NetParameter):
            ops += [_layer_type, _rewire, _dup_layer, _set_shape, _set_shape]
        try:
            rng.choice(ops)(rng, message, names)
        except (ValueError, TypeError, OverflowError, IndexError):
            pass  # a change the protobuf runtime itself refuses
    return message


def _set_scalar(rng, message, names):
    target = rng.choice(_messages(message))
    fields = _scalar_fields(target)
    if not fields:
        return
    field = rng.choice(fields)
    if _repeated(field):
        values = getattr(target, field.name)
        value = _clamp(field, _scalar_value(rng, field))
        if len(values) and rng.random() < 0.6:
            values[rng.randrange(len(values))] = value
        else:
            values.append(value)
        return
    current = getattr(target, field.name)
    value = _clamp(field, _scalar_value(rng, field, current))
    if field.cpp_type == FD.CPPTYPE_STRING and names and rng.random() < .3:
        value = rng.choice(names)
    setattr(target, field.name, value)


def _set_shape(rng, message, names):
    """Make a declared size absurd: a BlobShape dim, num/channels/..."""
    dims = []
    for m in _messages(message):
        for field in _scalar_fields(m):
            if field.name in ("dim", "num", "channels", "height", "width",
                              "num_output", "kernel_size", "kernel_h",
                              "kernel_w", "stride", "pad", "local_size",
                              "pyramid_height", "batch_size", "new_height",
                              "new_width", "crop_size", "tiles", "axis",
                              "top_k", "input_dim", "iter", "current_step",
                              "dilation", "group", "slice_point", "offset",
                              "num_output", "max_iter", "iter_size",
                              "test_iter", "snapshot", "average_loss"):
                dims.append((m, field))
    if not dims:
        return
    m, field = rng.choice(dims)
    value = _clamp(field, rng.choice(SHAPE_VALUES))
    if _repeated(field):
        values = getattr(m, field.name)
        if len(values):
            values[rng.randrange(len(values))] = value
        else:
            values.append(value)
    else:
        setattr(m, field.name, value)


def _repeated_fields(message):
    out = []
    for m in _messages(message):
        for field, value in m.ListFields():
            if _repeated(field) and len(value):
                out.append((m, field))
    return out


def _drop_repeated(rng, message, names):
    fields = _repeated_fields(message)
    if fields:
        m, field = rng.choice(fields)
        values = getattr(m, field.name)
        del values[rng.randrange(len(values))]


def _dup_repeated(rng, message, names):
    fields = _repeated_fields(message)
    if not fields:
        return
    m, field = rng.choice(fields)
    values = getattr(m, field.name)
    item = values[rng.randrange(len(values))]
    if field.cpp_type == FD.CPPTYPE_MESSAGE:
        values.add().CopyFrom(item)
    else:
        values.append(item)


def _truncate_values(rng, message, names):
    """Cut a long repeated field (a blob's data) short, or to nothing."""
    fields = [(m, f) for m, f in _repeated_fields(message)
              if f.cpp_type != FD.CPPTYPE_MESSAGE]
    if fields:
        m, field = rng.choice(fields)
        values = getattr(m, field.name)
        del values[rng.randrange(len(values) + 1):]


def _clear_field(rng, message, names):
    target = rng.choice(_messages(message))
    fields = target.ListFields()
    if fields:
        target.ClearField(rng.choice(fields)[0].name)


def _layer_type(rng, net, names):
    from kaffe.core.registry import layer_type_list
    if net.layer:
        layer = rng.choice(net.layer)
        layer.type = rng.choice(list(layer_type_list()) + ["Nope", ""])


def _rewire(rng, net, names):
    if not net.layer:
        return
    layer = rng.choice(net.layer)
    blobs = [b for lay in net.layer for b in list(lay.top)] or ["x"]
    which = layer.bottom if (layer.bottom and rng.random() < .5) else \
        layer.top
    if len(which) and rng.random() < 0.7:
        which[rng.randrange(len(which))] = rng.choice(blobs)
    else:
        which.append(rng.choice(blobs))


def _dup_layer(rng, net, names):
    if net.layer:
        i = rng.randrange(len(net.layer))
        copy = net.layer.add()
        copy.CopyFrom(net.layer[i])
        if rng.random() < 0.5:
            copy.name += "_dup"


# -- files ---------------------------------------------------------------------
def mutate_bytes(rng, data):
    """Byte-level damage: flip, cut, repeat, insert or overwrite bytes."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        n = len(data)
        if n == 0:
            data += rng.randbytes(rng.randint(1, 16))
            continue
        i = rng.randrange(n)
        if op == 0:
            data[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            del data[rng.randrange(n):]
        elif op == 2:
            j = min(n, i + rng.randint(1, 64))
            data[i:i] = data[i:j] * rng.randint(1, 8)
        elif op == 3:
            data[i:i] = bytes(rng.choice([
                b"\xff\xff\xff\xff\x0f", b"\x80\x80\x80\x80\x80\x80\x80\x80\x01",
                b"\x00", b"\xff" * 8, rng.randbytes(rng.randint(1, 8))]))
        elif op == 4:
            del data[i:i + rng.randint(1, 32)]
        else:
            data[i] = rng.randrange(256)
    return bytes(data)


def mutate_text(rng, text):
    """Line- and token-level damage to a prototxt."""
    lines = text.split("\n")
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(6)
        i = rng.randrange(len(lines)) if lines else 0
        if not lines:
            lines.append("")
        elif op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif op == 2:
            lines[i] = lines[i][:rng.randrange(len(lines[i]) + 1)]
        elif op == 3:
            lines.insert(i, rng.choice([
                "}", "{", "layer {", "dim: 1000000000000", "\"", "#",
                "local_size: 2147483647", "pyramid_height: 100000",
                "num_output: 2147483647", "include { phase: TRAIN }",
                "python_param { module: '..foo' layer: 'x' }",
                "input_dim: 100000", "kernel_size: 0", "stride: 0"]))
        elif op == 4:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            raw = lines[i].encode()
            lines[i] = mutate_bytes(rng, raw).decode("utf-8", "replace")
    out = "\n".join(lines)
    if rng.random() < 0.05:
        return out.encode("utf-8")[:rng.randrange(len(out) + 1)] + b"\xff\xfe"
    return out


def _message_class(kind):
    return {"weights": caffe_pb2.NetParameter,
            "solverstate": caffe_pb2.SolverState,
            "mean": caffe_pb2.BlobProto}[kind]


def mutate_file(rng, kind, seed, out):
    """Write a mutant of ``seed`` (a file of ``kind``) to ``out``; return a
    short description of what was done."""
    if kind in ("net", "solver"):
        with open(seed, encoding="utf-8") as f:
            text = f.read()
        if rng.random() < 0.6:
            message = (caffe_pb2.NetParameter() if kind == "net"
                       else caffe_pb2.SolverParameter())
            text_format.Parse(text, message)
            names = [lay.name for lay in getattr(message, "layer", [])]
            mutate_message(rng, message, names=names)
            result = text_format.MessageToString(message)
            how = "structured"
        else:
            result = mutate_text(rng, text)
            how = "text"
        mode = "wb" if isinstance(result, bytes) else "w"
        with open(out, mode, **({} if mode == "wb" else
                                {"encoding": "utf-8"})) as f:
            f.write(result)
        return how
    if kind in ("weights", "solverstate", "mean"):
        with open(seed, "rb") as f:
            data = f.read()
        if rng.random() < 0.6:
            message = _message_class(kind)()
            message.ParseFromString(data)
            mutate_message(rng, message)
            data = message.SerializeToString()
            how = "structured"
        else:
            data = mutate_bytes(rng, data)
            how = "bytes"
        with open(out, "wb") as f:
            f.write(data)
        return how
    if kind in ("weights_h5", "solverstate_h5"):
        shutil.copyfile(seed, out)
        if rng.random() < 0.85:
            mutate_hdf5(rng, out)
            return "structured"
        with open(out, "rb") as f:
            data = f.read()
        with open(out, "wb") as f:
            f.write(mutate_bytes(rng, data))
        return "bytes"
    if kind == "lmdb":
        return mutate_lmdb(rng, seed, out)
    raise ValueError(f"unknown kind {kind}")


# -- HDF5 ----------------------------------------------------------------------
def _h5_items(f):
    items = []
    f.visititems(lambda name, obj: items.append((name, obj)))
    return items


def mutate_hdf5(rng, path):
    import h5py
    import numpy as np
    with h5py.File(path, "r+") as f:
        for _ in range(rng.randint(1, 3)):
            items = _h5_items(f)
            if not items:
                f.create_dataset("data", data=np.zeros(3))
                continue
            name, obj = rng.choice(items)
            op = rng.randrange(9)
            if op == 0:
                del f[name]
            elif op == 1:       # a huge declared shape, nothing stored
                del f[name]
                shape = rng.choice([(10 ** 6, 10 ** 6), (2 ** 31,), (10 ** 12,),
                                    (4, 2 ** 40), (10 ** 5, 10 ** 5)])
                f.create_dataset(name, shape=shape, dtype="f4",
                                 chunks=True, maxshape=shape)
            elif op == 2:       # another dtype
                del f[name]
                f.create_dataset(name, data=rng.choice([
                    np.array([1, 2], "i8"), np.array(["abc"], "S"),
                    np.array(b"\xff\xfe\x00", "S3"), np.array(3.5),
                    np.array([[1 + 2j]]), np.zeros((0,), "f4"),
                    np.array([-1], "i4"), np.array([2 ** 31 - 1], "i4"),
                    np.array([-2 ** 31], "i4"), np.array(["x" * 5000], "S"),
                    np.zeros((2, 3), "f4"), np.array([True])]))
            elif op == 3:       # a group where a dataset was, or the reverse
                del f[name]
                if isinstance(obj, h5py.Dataset):
                    f.create_group(name).create_dataset("0", data=[1.0])
                else:
                    f.create_dataset(name, data=np.arange(3.0))
            elif op == 4:       # renamed
                target = name + rng.choice(["x", "_1", "9", " "])
                if target not in f:
                    f.move(name, target)
            elif op == 5 and isinstance(obj, h5py.Group):
                f[name].create_dataset(str(rng.choice([0, 1, 7, 99, -1])),
                                       data=np.ones(rng.randint(0, 5)))
            elif op == 6 and isinstance(obj, h5py.Dataset) and \
                    obj.dtype.kind in "fiu" and obj.size:
                data = obj[()].copy()
                flat = data.reshape(-1)
                flat[rng.randrange(flat.size)] = rng.choice(
                    [-1, -2 ** 31, 2 ** 31 - 1, np.nan, np.inf, 0]) \
                    if data.dtype.kind == "f" else rng.choice(
                        [-1, -2 ** 31, 2 ** 31 - 1, 0, 10 ** 6])
                obj[...] = data
            elif op == 7:       # a soft link to itself or elsewhere
                del f[name]
                f[name] = h5py.SoftLink(rng.choice(["/" + name, "/nowhere",
                                                    "/"]))
            elif op == 8 and isinstance(obj, h5py.Dataset):
                del f[name]
                f.create_dataset(name, data=np.zeros(
                    rng.choice([(), (1,), (3, 3), (1, 1, 1, 1, 1)]), "f4"))


# -- LMDB ----------------------------------------------------------------------
def mutate_lmdb(rng, seed, out):
    import lmdb

    from .corpus import write_lmdb
    env = lmdb.open(seed, readonly=True, lock=False, subdir=True)
    with env.begin() as txn:
        items = list(txn.cursor())
    env.close()
    for _ in range(rng.randint(1, 2)):
        i = rng.randrange(len(items))
        key, value = items[i]
        if rng.random() < 0.6:
            datum = caffe_pb2.Datum()
            datum.ParseFromString(value)
            mutate_message(rng, datum)
            if rng.random() < 0.2:
                datum.encoded = True
            value = datum.SerializeToString()
        else:
            value = mutate_bytes(rng, value)
        items[i] = (key, value)
    if os.path.exists(out):
        shutil.rmtree(out)
    write_lmdb(out, items)
    return "datum"


def new_rng(seed):
    return random.Random(seed)
