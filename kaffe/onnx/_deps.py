"""The optional onnx / onnxruntime imports (through kaffe.optional)."""
from ..optional import require


def require_onnx():
    """The ``onnx`` module, or a kaffe error saying how to install it."""
    return require("onnx", "ONNX export and import", field="onnx")


def require_onnxruntime():
    """The ``onnxruntime`` module, or a kaffe error saying how to install it."""
    return require("onnxruntime", "checking against onnxruntime",
                   field="onnxruntime")
