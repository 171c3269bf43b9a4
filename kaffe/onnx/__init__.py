"""ONNX interchange: export a kaffe Net to ONNX, import an ONNX model as
Caffe files, and check either direction against onnxruntime.

Nothing here is imported by kaffe's core; ``onnx`` and ``onnxruntime`` are
imported inside the functions that need them (``pip install kaffe[onnx]``).

* :func:`export` — a built :class:`kaffe.Net` (weights loaded) → ``.onnx``;
* :func:`deploy_net` — a train/deploy prototxt (+ weights) → the Net to
  export (data layers become inputs, losses and accuracies are left out);
* :func:`load` — an ``.onnx`` file → (NetParameter, weights NetParameter);
* :func:`check_export` / :func:`check_import` — onnxruntime against kaffe.
"""
from .deploy import deploy_net
from .export import ExportResult, export
from .import_ import ImportResult, load, save
from .check import check_export, check_import

__all__ = ["export", "ExportResult", "deploy_net", "load", "save",
           "ImportResult", "check_export", "check_import"]
