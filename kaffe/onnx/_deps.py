"""The optional onnx / onnxruntime imports, with kaffe's install hint."""
from ..errors import KaffeConfigError


def require_onnx():
    """The ``onnx`` module, or a kaffe error saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise KaffeConfigError(
            "needs the 'onnx' package, which is not installed",
            field="onnx", fix="pip install 'kaffe[onnx]'") from None
    return onnx


def require_onnxruntime():
    """The ``onnxruntime`` module, or a kaffe error saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise KaffeConfigError(
            "needs the 'onnxruntime' package, which is not installed",
            field="onnxruntime", fix="pip install 'kaffe[onnx]'") from None
    return onnxruntime
