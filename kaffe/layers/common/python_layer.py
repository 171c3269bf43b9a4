"""Python: a layer written by the user, as a ``caffe.Layer`` subclass.

::

    layer { name: "scale" type: "Python" bottom: "data" top: "scaled"
            python_param { module: "my_layers" layer: "ScaleBy"
                           param_str: "10" } }

    # my_layers.py, somewhere on sys.path
    import kaffe as caffe

    class ScaleBy(caffe.Layer):
        def setup(self, bottom, top):
            self.k = float(self.param_str)
        def reshape(self, bottom, top):
            top[0].reshape(*bottom[0].data.shape)
        def forward(self, bottom, top):
            top[0].data[...] = self.k * bottom[0].data
        def backward(self, top, propagate_down, bottom):
            bottom[0].diff[...] = self.k * top[0].diff

The registry entry for "Python" is the factory :func:`create_python_layer`,
not a class: it returns the user's own instance, which the net then drives
like a built-in layer (setup once, reshape before every forward, forward,
backward), and which is what ``net.layers[i]`` holds. As in pycaffe, the
instance is built from the layer's LayerParameter (``self.layer_param``,
``self.phase``), ``self.param_str`` is set before ``setup`` runs,
``self.type`` is "Python", and ``self.blobs`` is a :class:`BlobVec`, whose
``add_blob(*shape)`` adds a zero-filled parameter blob (learnable, saved in
.caffemodels and copied back by name like any layer's).
``python_param.share_in_parallel`` (deprecated in Caffe) is ignored.

Safety: building a net that has a Python layer **imports** the module that
``python_param.module`` names, which runs that module's top-level code. That
is Caffe's behaviour and the user's choice — the module is named in the
prototxt they chose to run — so only run prototxts you trust (or read their
python_param blocks first). A few well-known Python layers are served by
kaffe's own implementation without importing anything (see
:func:`register_python_layer`). What a prototxt cannot do is make kaffe call an
arbitrary callable: ``python_param.layer`` must name a class derived from
:class:`kaffe.Layer` (``caffe.Layer``), checked before anything is
instantiated or called; ``layer: "system"`` of ``module: "os"`` is refused.
"""
import difflib
import importlib
import inspect

import numpy as np

from ...core.blob import Blob
from ...core.errors import KaffeConfigError
from ...core.layer import Layer
from ...core.registry import register_layer

_LAYER_FIX = ("set python_param.layer to a class derived from caffe.Layer "
              "(kaffe.Layer) that defines setup/reshape/forward/backward; "
              "kaffe only instantiates such classes, so that a prototxt "
              "cannot make it call an arbitrary function")


class BlobVec(list):
    """pycaffe's BlobVec: a list of Blobs with ``add_blob(*shape)``."""

    def __init__(self, blobs=(), dtype=np.float32):
        super().__init__(blobs)
        self.dtype = np.dtype(dtype)

    def add_blob(self, *shape):
        """Append a new zero-filled blob of ``shape`` (``add_blob(2, 3)``)."""
        self.append(Blob(shape, dtype=self.dtype))


# Python layers of well-known projects that kaffe implements itself:
# (python_param.module, python_param.layer) -> factory(layer_param, dtype=,
# source=). A prototxt naming one is served without importing anything.
_KNOWN_PYTHON_LAYERS = {}


def register_python_layer(module, layer, factory):
    """Serve ``python_param { module: module layer: layer }`` with
    ``factory(layer_param, dtype=, source=)`` instead of importing the
    module (e.g. py-faster-rcnn's ``rpn.proposal_layer.ProposalLayer``)."""
    _KNOWN_PYTHON_LAYERS[(module, layer)] = factory
    return factory


@register_layer("Python")
def create_python_layer(layer_param, *, dtype=np.float32, source=None):
    """Build the user's layer that ``layer_param.python_param`` names.

    The registry calls this as it calls a layer class.

    Returns:
        an instance of the user's :class:`kaffe.Layer` subclass.

    Raises:
        KaffeConfigError (with the layer's file and line) if the module
        cannot be found, lacks the attribute, or the attribute is not a
        subclass of kaffe.Layer. Errors raised by the module's own code
        while it is imported propagate unchanged.
    """
    param = layer_param.python_param
    known = _KNOWN_PYTHON_LAYERS.get((param.module, param.layer))
    if known is not None:
        return known(layer_param, dtype=dtype, source=source)
    cls = python_layer_class(layer_param, source)
    try:
        inspect.signature(cls).bind(layer_param, dtype=dtype, source=source)
        takes_options = True
    except (TypeError, ValueError):
        # A pycaffe-style __init__(self, param) that calls
        # super().__init__(param): it gets the parameter only.
        takes_options = False
    if takes_options:
        layer = cls(layer_param, dtype=dtype, source=source)
    else:
        layer = cls(layer_param)
        layer.source = source
    layer.type = "Python"
    layer.param_str = layer_param.python_param.param_str
    layer.blobs = BlobVec(layer.blobs, dtype=layer.dtype)
    return layer


def python_layer_class(layer_param, source=None):
    """The kaffe.Layer subclass ``layer_param.python_param`` names.

    Imports ``python_param.module``; checks, without calling anything, that
    its attribute ``python_param.layer`` is a class derived from kaffe.Layer.
    """
    param = layer_param.python_param
    module_name, class_name = param.module, param.layer

    def error(problem, field, **details):
        file, line = source if source else (None, None)
        return KaffeConfigError(problem, file=file, line=line,
                                layer=layer_param.name, layer_type="Python",
                                field=field, **details)

    if not module_name:
        raise error("must name the module that defines the layer class",
                    "python_param.module", received=module_name,
                    fix='add python_param { module: "my_layers" layer: '
                        '"MyLayer" } (my_layers.py on sys.path)')
    if not class_name:
        raise error("must name the layer class", "python_param.layer",
                    received=class_name, fix=_LAYER_FIX)
    if not all(part.isidentifier() for part in module_name.split(".")):
        raise error("must be an absolute module name (identifiers joined by "
                    "dots)", "python_param.module", received=module_name,
                    expected='e.g. "my_layers" or "package.my_layers"',
                    fix="relative imports such as '..foo' or '.x' cannot "
                        "be resolved from a prototxt; name the module as "
                        "`import` would")
    if not class_name.isidentifier():
        raise error("must be a class name (an identifier)",
                    "python_param.layer", received=class_name,
                    fix=_LAYER_FIX)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        missing = e.name or ""
        if module_name != missing and not module_name.startswith(
                missing + "."):
            raise  # the module exists; one of its own imports failed
        raise error(
            f"names module '{module_name}', which cannot be found",
            "python_param.module", received=module_name,
            fix=f"put the directory holding {module_name.replace('.', '/')}"
                ".py on sys.path (or PYTHONPATH) before building the net, "
                "or correct python_param.module") from None
    qualified = f"{module_name}.{class_name}"
    if not hasattr(module, class_name):
        candidates = _layer_classes(module)
        close = difflib.get_close_matches(class_name, candidates, n=3)
        shown = close or candidates[:5]
        raise error(
            f"names '{class_name}', which module '{module_name}' does not "
            "define", "python_param.layer", received=qualified,
            fix=("did you mean " + " or ".join(f"'{c}'" for c in shown) +
                 "?") if shown else _LAYER_FIX)
    obj = getattr(module, class_name)
    if not (isinstance(obj, type) and issubclass(obj, Layer)):
        raise error(
            f"must name a subclass of kaffe.Layer (caffe.Layer), but "
            f"{qualified} is {_describe(obj)}: refused, nothing was called",
            "python_param.layer", received=qualified,
            expected="a class derived from caffe.Layer", fix=_LAYER_FIX)
    if obj is Layer:
        raise error("names kaffe.Layer itself, which computes nothing",
                    "python_param.layer", received=qualified,
                    fix="name your subclass of caffe.Layer")
    return obj


def _layer_classes(module):
    """Names of the kaffe.Layer subclasses a module defines (for hints)."""
    return sorted(name for name, value in vars(module).items()
                  if isinstance(value, type) and issubclass(value, Layer)
                  and value is not Layer)


def _describe(obj):
    """'a function', 'a built-in function', 'a class that does not ...'."""
    if inspect.isbuiltin(obj):
        return "a built-in function"
    if inspect.isfunction(obj) or inspect.ismethod(obj):
        return "a function"
    if inspect.ismodule(obj):
        return "a module"
    if isinstance(obj, type):
        return "a class that does not derive from kaffe.Layer"
    if callable(obj):
        return f"a callable {type(obj).__name__} object"
    return f"a value of type {type(obj).__name__}"
