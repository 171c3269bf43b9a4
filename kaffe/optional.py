"""The optional dependencies: imported in one place, refused in one format.

kaffe's core needs only NumPy and protobuf. Everything else is an extra of
``pip install "kaffe[...]"`` and is imported only by the function that needs
it, through :func:`require` (a kaffe error when it is missing) or
:func:`available` (None when it is missing, for things kaffe can do without,
such as a progress bar)::

    h5py = require("h5py", "reading HDF5 weights")
    # kaffe: error: reading HDF5 weights needs the h5py package, which is not
    # installed. Fix: pip install kaffe[hdf5] (or pip install h5py)

This module is a leaf: it imports nothing from kaffe but the errors.
"""
import importlib

from .errors import KaffeConfigError

# import name -> (the pip package, the kaffe extra that brings it or None)
PACKAGES = {
    "h5py": ("h5py", "hdf5"),
    "lmdb": ("lmdb", "data"),
    "PIL": ("Pillow", "data"),
    "plyvel": ("plyvel", "leveldb"),
    "matplotlib": ("matplotlib", "viz"),
    "tqdm": ("tqdm", "progress"),
    "onnx": ("onnx", "onnx"),
    "onnxruntime": ("onnxruntime", "onnx"),
    "mpi4py": ("mpi4py", "mpi"),
    "threadpoolctl": ("threadpoolctl", "perf"),
    "tensorboardX": ("tensorboardX", "tensorboard"),
    "pydot": ("pydot", None),
}


def install_hint(module, extra=None):
    """How to install the package that provides ``module`` (a sentence);
    ``extra`` names another kaffe extra that brings it too."""
    top = module.split(".")[0]
    package, default_extra = PACKAGES.get(top, (top, None))
    extra = extra or default_extra
    if extra is None:
        return f"pip install {package}"
    return f"pip install kaffe[{extra}] (or pip install {package})"


def require(module, purpose, *, field=None, received=None, fix=None,
            error=KaffeConfigError, extra=None):
    """Import ``module`` (a dotted name, e.g. "PIL.Image") or raise one kaffe
    error: "<purpose> needs the <package> package, which is not installed",
    with the install command as the fix (``fix`` adds an alternative;
    ``extra`` names the kaffe extra to suggest when not the usual one)."""
    try:
        return _import(module)
    except ImportError as e:
        top = module.split(".")[0]
        package = PACKAGES.get(top, (top, None))[0]
        hint = install_hint(module, extra)
        extras = {} if received is None else {"received": received}
        raise error(
            f"{purpose} needs the {package} package, which is not installed"
            f" ({e})", field=field, fix=f"{hint}; {fix}" if fix else hint,
            **extras) from None


def available(module):
    """``module`` imported, or None when it (or what it needs) is missing."""
    try:
        return _import(module)
    except ImportError:
        return None


def _import(module):
    # The package first: a submodule already imported would otherwise be
    # returned even where its package has been made unimportable.
    importlib.import_module(module.split(".")[0])
    return importlib.import_module(module)
