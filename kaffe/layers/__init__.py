"""Every built-in layer, one module per type, in folders by Caffe's families.

Importing this package imports every module of the family folders, and each
module registers its layer class with ``@register_layer``.
"""
import importlib
import pkgutil

FAMILIES = ("common", "data", "detection", "loss", "neuron", "normalization",
            "recurrent", "vision")

for _family in FAMILIES:
    _package = importlib.import_module(f"{__name__}.{_family}")
    for _module in pkgutil.iter_modules(_package.__path__):
        importlib.import_module(f"{_package.__name__}.{_module.name}")
