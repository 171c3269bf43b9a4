"""The layer registry: Caffe's string-keyed layer factory.

Layer classes register themselves with ``@register_layer("TypeName")``; the
Net creates layers from a LayerParameter's ``type`` through
:func:`create_layer`. ``layer_type_list()`` lists the registered types, sorted
as Caffe's (std::map-backed) registry lists them.
"""
import difflib
import importlib

from ..errors import KaffeConfigError

_REGISTRY = {}


def register_layer(type_name):
    """Class decorator: register ``cls`` as the implementation of ``type_name``."""
    def decorate(cls):
        if type_name in _REGISTRY and _REGISTRY[type_name] is not cls:
            raise KaffeConfigError(
                f"layer type '{type_name}' is registered twice "
                f"({_REGISTRY[type_name].__qualname__} and {cls.__qualname__})",
                fix="give one of the classes another type name")
        cls.type = type_name
        _REGISTRY[type_name] = cls
        return cls
    return decorate


def _load_builtin_layers():
    # Importing the package registers every built-in layer class. By module
    # name: the attribute kaffe.layers is pycaffe's NetSpec layer factory.
    importlib.import_module(f"{__package__.rsplit('.', 1)[0]}.layers")


def layer_class(type_name):
    """The class registered for ``type_name`` (None if there is none)."""
    _load_builtin_layers()
    return _REGISTRY.get(type_name)


def layer_type_list():
    """Every registered layer type, sorted by name."""
    _load_builtin_layers()
    return sorted(_REGISTRY)


def create_layer(layer_param, *, dtype, source=None):
    """Instantiate the layer ``layer_param`` describes.

    Args:
        layer_param: a caffe_pb2.LayerParameter (its ``phase`` already set).
        dtype: element type for the layer's parameter blobs.
        source: (file, line) of the layer's definition, for error messages.
    """
    cls = layer_class(layer_param.type)
    if cls is None:
        raise unknown_type_error(layer_param, source)
    return cls(layer_param, dtype=dtype, source=source)


def unknown_type_error(layer_param, source=None):
    """The error for a layer type nobody registered, with close matches."""
    known = layer_type_list()
    close = difflib.get_close_matches(layer_param.type, known, n=3, cutoff=0.6)
    by_case = [t for t in known if t.lower() == layer_param.type.lower()]
    suggestions = by_case or close
    if suggestions:
        fix = "did you mean " + " or ".join(f"'{t}'" for t in suggestions) + "?"
    else:
        fix = ("use one of the registered types (kaffe.layer_type_list()); "
               "types are case-sensitive")
    file, line = source if source else (None, None)
    return KaffeConfigError(
        "is not a known layer type", file=file, line=line,
        layer=layer_param.name, layer_type=layer_param.type, field="type",
        received=layer_param.type, fix=fix)
