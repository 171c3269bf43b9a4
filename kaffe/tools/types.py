"""``kaffe types``: where a layer type lives, and which messages configure it.

For each registered Caffe type (the built-in ones, and those other packages
register through the ``kaffe.layers`` entry point group or
``kaffe.register_layer``): its family (the folder under kaffe/layers, or
the package it comes from), the file that defines it, and the
LayerParameter fields it reads (``convolution_param`` …, found in the
source of its class and of the kaffe classes it derives from).

    kaffe types                      every type, one line each
    kaffe types Convolution ReLU     those types
    kaffe types --json               the same for programs
"""
import inspect
import json
import os
import re
import sys
from dataclasses import asdict, dataclass

HELP = "list layer types: family, defining file, parameter messages"
DESCRIPTION = __doc__.split("\n\n", 1)[1]


@dataclass(frozen=True)
class TypeInfo:
    """What ``kaffe types`` says about one layer type."""
    type: str
    family: str
    file: str
    implementation: str
    params: tuple          # LayerParameter fields, e.g. ("convolution_param",)


def add_arguments(parser):
    parser.add_argument("types", nargs="*", metavar="TYPE",
                        help="layer types to describe (default: all)")
    parser.add_argument("--json", action="store_true",
                        help="print JSON instead of a table")


def run(args):
    from ..core.registry import layer_type_list
    names = args.types or layer_type_list()
    infos = [type_info(name) for name in names]
    if args.json:
        print(json.dumps([asdict(i) for i in infos], indent=2))
        return 0
    rows = [("TYPE", "FAMILY", "FILE", "PARAMETERS")] + [
        (i.type, i.family, i.file, ", ".join(i.params) or "-") for i in infos]
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths))
              + "  " + row[3])
    return 0


def type_info(type_name):
    """The :class:`TypeInfo` of a registered layer type (a KaffeConfigError
    with close matches for an unknown one)."""
    from ..core.registry import layer_class, type_suggestion
    from ..errors import KaffeConfigError
    cls = layer_class(type_name)
    if cls is None:
        raise KaffeConfigError("is not a registered layer type",
                               field="TYPE", received=type_name,
                               fix=type_suggestion(type_name))
    module = sys.modules[cls.__module__]
    return TypeInfo(type=type_name, family=_family(cls.__module__),
                    file=_shown_path(inspect.getsourcefile(module)),
                    implementation=f"{cls.__module__}.{cls.__qualname__}",
                    params=_param_fields(cls))


def _family(module_name):
    parts = module_name.split(".")
    if parts[:2] == ["kaffe", "layers"] and len(parts) > 3:
        return parts[2]
    return parts[0]        # another package's layer: the package's name


def _shown_path(path):
    """A path under the kaffe checkout relative to it, others as they are."""
    import kaffe
    root = os.path.dirname(os.path.dirname(os.path.abspath(kaffe.__file__)))
    path = os.path.abspath(path)
    return os.path.relpath(path, root) if path.startswith(root + os.sep) \
        else path


def _param_fields(cls):
    """The LayerParameter ``*_param`` fields named in the source of ``cls``'s
    module and of the modules of its kaffe base classes (their order of
    first mention)."""
    from ..proto import caffe_pb2
    fields = {f.name for f in caffe_pb2.LayerParameter.DESCRIPTOR.fields
              if f.name.endswith("_param")}
    modules = []
    for klass in (cls.__mro__ if isinstance(cls, type) else (cls,)):
        name = getattr(klass, "__module__", "")
        if name in ("kaffe.core.layer", "builtins") or name in modules:
            continue
        modules.append(name)
    found = []
    for name in modules:
        try:
            source = inspect.getsource(sys.modules[name])
        except (OSError, TypeError, KeyError):
            continue
        for match in re.findall(r"\b([a-z0-9_]+_param)\b", source):
            if match in fields and match not in found:
                found.append(match)
    return tuple(found)
