"""The layer registry: Caffe's string-keyed layer factory.

Layer classes register themselves with ``@register_layer("TypeName")``; the
Net creates layers from a LayerParameter's ``type`` through
:func:`create_layer`. ``layer_type_list()`` lists the registered types, sorted
as Caffe's (std::map-backed) registry lists them.

Layers from other packages register the same way (``kaffe.register_layer``),
or are found through the ``kaffe.layers`` entry point group: an entry
``Type = package.module:LayerClass`` registers the class under ``Type``; an
entry naming a module (``anything = package.module``) imports it, and its
``@register_layer`` decorators do the rest. Entry points are read the first
time a layer type is looked up (see docs/graph.md, "Layers from other
packages").
"""
import difflib
import importlib
import logging

from ..errors import KaffeConfigError

ENTRY_POINT_GROUP = "kaffe.layers"

_REGISTRY = {}
_loaded_entry_points = set()
_plugins_scanned = False

log = logging.getLogger("kaffe")


def register_layer(type_name, cls=None):
    """Register a Layer subclass as the implementation of ``type_name``
    (or a factory ``f(layer_param, dtype=, source=)`` returning a Layer, as
    the Python layer does).

    As a class decorator, ``@register_layer("MyType")``; or called,
    ``register_layer("MyType", MyLayer)``, which returns the class.
    Registering another class under a registered type is an error.
    """
    if cls is not None:
        return register_layer(type_name)(cls)

    def decorate(cls):
        from .layer import Layer
        if isinstance(cls, type) and not issubclass(cls, Layer) or \
                not callable(cls):
            raise KaffeConfigError(
                f"cannot register layer type '{type_name}': a layer is a "
                "subclass of kaffe.Layer (or a factory function making one)",
                received=repr(cls), fix="derive the class from kaffe.Layer")
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
    # Importing the package registers every built-in layer class; then the
    # other packages' layers, once.
    importlib.import_module(f"{__package__.rsplit('.', 1)[0]}.layers")
    global _plugins_scanned
    if not _plugins_scanned:
        _plugins_scanned = True
        load_layer_plugins()


def load_layer_plugins():
    """Register the layers other packages offer in the ``kaffe.layers``
    entry point group (those not loaded yet); return their names.

    Called by itself the first time a layer type is looked up; call it
    again after installing a package into the running interpreter. An entry
    that cannot be loaded is logged as a warning and skipped, so that one
    broken package does not stop every net from building.
    """
    from importlib.metadata import entry_points
    loaded = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        key = (entry.name, entry.value)
        if key in _loaded_entry_points:
            continue
        _loaded_entry_points.add(key)
        try:
            target = entry.load()
            if isinstance(target, type):
                register_layer(entry.name, target)
        except Exception as e:  # any error of someone else's code
            log.warning("Cannot load layer plugin '%s = %s' (entry point "
                        "group %s): %s: %s", entry.name, entry.value,
                        ENTRY_POINT_GROUP, type(e).__name__, e)
            continue
        loaded.append(entry.name)
    return loaded


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
    file, line = source if source else (None, None)
    return KaffeConfigError(
        "is not a known layer type", file=file, line=line,
        layer=layer_param.name, layer_type=layer_param.type, field="type",
        received=layer_param.type, fix=type_suggestion(layer_param.type))


def type_suggestion(type_name):
    """'did you mean …?' for an unknown layer type (or where to look)."""
    known = layer_type_list()
    close = difflib.get_close_matches(type_name, known, n=3, cutoff=0.6)
    by_case = [t for t in known if t.lower() == type_name.lower()]
    suggestions = by_case or close
    if suggestions:
        return "did you mean " + " or ".join(f"'{t}'" for t in
                                             suggestions) + "?"
    return ("use one of the registered types (kaffe.layer_type_list(), "
            "kaffe types); types are case-sensitive")
