"""kaffe's error family.

Every error caused by a user's input is a subclass of :class:`KaffeError`
(itself a ``ValueError``), never an ``assert`` and never an abort. A message
says where (file:line, layer and type), what (the field, what was received and
what was expected) and how to fix it::

    lenet.prototxt:42: layer 'fc6' (InnerProduct): inner_product_param.num_output
    must be > 0; received 0. Fix: set num_output to the number of outputs.

The parts are also kept as attributes so that tools can use them.
"""

_UNSET = object()


class KaffeError(ValueError):
    """Base class of kaffe's errors about user input.

    Args:
        problem: what is wrong, as a phrase ("must be > 0", "unknown bottom blob").
        file, line, column: where in a text file the problem is (any may be None).
        layer, layer_type: the layer concerned, if any.
        field: the proto field concerned, as a dotted path
            ("convolution_param.group").
        received: the value that was found (omit when there is none).
        expected: what would have been accepted.
        fix: a sentence telling the user what to do.
    """

    def __init__(self, problem, *, file=None, line=None, column=None,
                 layer=None, layer_type=None, field=None, received=_UNSET,
                 expected=None, fix=None):
        self.problem = problem
        self.file = file
        self.line = line
        self.column = column
        self.layer = layer
        self.layer_type = layer_type
        self.field = field
        self.received = None if received is _UNSET else received
        self.has_received = received is not _UNSET
        self.expected = expected
        self.fix = fix
        super().__init__(self._compose())

    def _compose(self):
        parts = []
        where = self.location()
        if where:
            parts.append(where + ":")
        if self.layer is not None:
            kind = f" ({self.layer_type})" if self.layer_type else ""
            parts.append(f"layer '{self.layer}'{kind}:")
        text = f"{self.field} {self.problem}" if self.field else self.problem
        details = []
        if self.has_received:
            details.append(f"received {_show(self.received)}")
        if self.expected is not None:
            details.append(f"expected {self.expected}")
        if details:
            text += "; " + ", ".join(details)
        if not text.endswith((".", "?", "!")):
            text += "."
        parts.append(text)
        if self.fix:
            fix = self.fix if self.fix.endswith((".", "?", "!")) else self.fix + "."
            parts.append("Fix: " + fix)
        return " ".join(parts)

    def location(self):
        """'file:line:column' (as much of it as is known), or ''."""
        if self.file is None and self.line is None:
            return ""
        out = str(self.file) if self.file is not None else "<string>"
        if self.line is not None:
            out += f":{self.line}"
            if self.column is not None:
                out += f":{self.column}"
        return out


def _show(value):
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return str(value)


class KaffeConfigError(KaffeError):
    """A net, layer or solver definition is invalid (bad field, type, wiring)."""


class KaffeShapeError(KaffeError):
    """Blob shapes do not fit together (a layer's input, a weight file)."""


class KaffeFormatError(KaffeError):
    """A file cannot be read: syntax errors, wrong format, truncated data."""
