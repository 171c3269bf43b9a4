"""Image list files: one "path label" per line, as ImageData and
convert_imageset read them.

Caffe splits each line at its *last* space, so paths may contain spaces:
``my photos/cat 1.jpg 3`` is the path ``my photos/cat 1.jpg`` with label 3.
kaffe reads the same way, and is stricter where Caffe would silently read a
label of 0 (``atoi``): a line without a space or with a label that is not an
integer is an error naming the file and line. Blank lines are skipped.
"""
from ..core.errors import KaffeFormatError


class ListEntry(tuple):
    """(path, label, line): an image path, its label, its 1-based line."""

    __slots__ = ()

    def __new__(cls, path, label, line):
        return super().__new__(cls, (path, label, line))

    path = property(lambda self: self[0])
    label = property(lambda self: self[1])
    line = property(lambda self: self[2])


def read_list_file(source):
    """Read a list file into [ListEntry(path, label, line), ...].

    Raises:
        KaffeFormatError: the file cannot be read, or a line is malformed
            (file:line in the message).
    """
    try:
        with open(source, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise KaffeFormatError("list file not found", file=source,
                               fix="check the path (relative paths are "
                                   "relative to the current directory)") \
            from None
    except OSError as e:
        raise KaffeFormatError(f"cannot read list file ({e.strerror})",
                               file=source) from None
    text = raw.decode("utf-8", "surrogateescape")
    entries = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        pos = line.rfind(" ")
        label_text = line[pos + 1:].strip()
        if pos < 0:
            raise KaffeFormatError(
                "is not 'path label'", file=source, line=number,
                received=line, expected="an image path, a space and an "
                                        "integer label")
        try:
            label = int(label_text)
        except ValueError:
            raise KaffeFormatError(
                "ends with a label that is not an integer", file=source,
                line=number, received=label_text,
                expected="'path label', split at the last space") from None
        entries.append(ListEntry(line[:pos], label, number))
    return entries
