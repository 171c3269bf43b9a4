"""How many bytes kaffe may ask for, and what happens when it asks too much.

Files declare sizes (a blob's shape, a layer's ``num_output``, a history
dataset's shape) that a few bytes of text can make absurd: ``dim: 1000000
dim: 1000000`` is 4 TB of float32. kaffe checks every such size against a
ceiling *before* it allocates, and refuses with a :class:`KaffeMemoryError`
that names what asked and how much, instead of a ``MemoryError`` (or the
kernel's OOM killer) later.

The ceiling, in order of precedence:

1. :func:`set_max_bytes` (the Python API; ``None`` restores the default);
2. the ``KAFFE_MAX_BYTES`` environment variable: bytes, optionally with a
   suffix K, M, G or T (powers of 1024): ``KAFFE_MAX_BYTES=8G``;
3. the memory this process can still get: the smaller of the system's
   available memory (``MemAvailable`` + free swap in /proc/meminfo) and what
   the address-space limit (``ulimit -v``) leaves, where these are known.

A net adds up its parameter and activation bytes layer by layer while it is
set up (:class:`Budget`) and refuses at the layer where the total passes the
ceiling. An allocation that still fails (a genuinely big net on a busy
machine) becomes a KaffeMemoryError naming the layer and the bytes.
"""
import os

from .errors import KaffeError

ENV = "KAFFE_MAX_BYTES"
# Sizes below this are never checked against the machine (cheap path: a
# blob's reshape runs at every forward).
SMALL = 64 << 20
_SUFFIXES = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30,
             "T": 1 << 40}
_override = None


class KaffeMemoryError(KaffeError):
    """A size declared by a file (or a net's total) exceeds the memory kaffe
    may use, or an allocation failed."""


def set_max_bytes(limit):
    """Set the byte ceiling for this process (``None``: back to the default:
    ``KAFFE_MAX_BYTES`` or the available memory)."""
    global _override
    if limit is not None:
        limit = int(limit)
        if limit <= 0:
            raise KaffeError("must be a positive number of bytes",
                             field="max_bytes", received=limit)
    _override = limit


def parse_bytes(text):
    """'8G' -> 8589934592; plain integers are bytes."""
    text = str(text).strip().upper().removesuffix("IB").removesuffix("B")
    unit = text[-1:] if text[-1:] in _SUFFIXES else ""
    number = text[:len(text) - len(unit)] if unit else text
    try:
        value = float(number) * _SUFFIXES[unit]
    except ValueError:
        value = -1
    if not value > 0 or value == float("inf"):
        raise KaffeError("must be a positive size in bytes", field=ENV,
                         received=text, expected="e.g. 4000000000 or 8G")
    return int(value)


def max_bytes():
    """The current ceiling in bytes, or None when nothing is known."""
    if _override is not None:
        return _override
    text = os.environ.get(ENV)
    if text:
        return parse_bytes(text)
    return available_bytes()


def available_bytes():
    """What this process can still allocate, or None if unknown."""
    limits = []
    try:
        info = {}
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                info[key] = int(rest.split()[0]) * 1024
        if "MemAvailable" in info:
            limits.append(info["MemAvailable"] + info.get("SwapFree", 0))
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            limits.append(max(soft - _address_space_used(), 0))
    except (ImportError, OSError, ValueError):
        pass
    return min(limits) if limits else None


def _address_space_used():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def human(n):
    """1536 -> '1.5 KiB'."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:,.0f} {unit}" if unit == "B" else \
                f"{value:,.1f} {unit}"
        value /= 1024
    return f"{n} B"


_FIX = (f"use smaller shapes, or if the machine really has the memory, raise "
        f"the limit with the {ENV} environment variable (e.g. {ENV}=64G) or "
        f"kaffe.set_max_bytes()")


def check_bytes(nbytes, what, *, error=None, **where):
    """Refuse ``nbytes`` (for ``what``) above the ceiling.

    Args:
        nbytes: the size asked for (an exact Python int, never overflowing).
        what: a phrase naming what asks ("blob of shape (1000000, 1000000)").
        error: a function (problem, **details) -> KaffeError that locates the
            error (a layer's ``config_error``); default KaffeMemoryError.
        where: file=, line=, layer=, layer_type=, field= for the default.
    """
    if nbytes <= SMALL and _override is None and ENV not in os.environ:
        return
    limit = max_bytes()
    if limit is None or nbytes <= limit:
        return
    problem = (f"{what} needs {human(nbytes)} ({nbytes:,} bytes), more "
               f"than the {human(limit)} ({limit:,} bytes) kaffe may use")
    if error is not None:
        raise error(problem, fix=_FIX)
    raise KaffeMemoryError(problem, **where, fix=_FIX)


def out_of_memory(exc, what, **where):
    """A KaffeMemoryError for a MemoryError ``exc`` raised while ``what``."""
    size = getattr(exc, "_total_size", None)
    asked = f" (asking for {human(size)}, {size:,} bytes)" if size else ""
    return KaffeMemoryError(
        f"ran out of memory while {what}{asked}", **where, fix=_FIX)


class Budget:
    """The bytes a net has claimed so far while it is set up."""

    def __init__(self):
        self.total = 0

    def add(self, nbytes, layer, layer_type=None, file=None, line=None):
        self.total += nbytes
        check_bytes(self.total, "the net's parameters and activations up "
                    f"to this layer ({human(self.total)} in all)", file=file,
                    line=line, layer=layer, layer_type=layer_type)


def located(exc, what, layer, layer_type=None, file=None, line=None):
    """The error to raise for ``exc`` (a MemoryError, or a KaffeMemoryError
    that does not yet say which layer) met in ``layer`` while ``what``."""
    if isinstance(exc, KaffeMemoryError):
        if exc.layer is not None:
            return exc
        return KaffeMemoryError(
            exc.problem, file=exc.file or file, line=exc.line or line,
            layer=layer, layer_type=layer_type, field=exc.field,
            **({"received": exc.received} if exc.has_received else {}),
            expected=exc.expected, fix=exc.fix)
    return out_of_memory(exc, what, file=file, line=line, layer=layer,
                         layer_type=layer_type)
