"""Checking a conversion: onnxruntime against kaffe, blob by blob.

Both directions run the same float32 inputs (random normal, or an image)
through kaffe and through onnxruntime and compare every graph output and
every intermediate blob present on both sides. The relative error of a blob
is its largest absolute difference divided by the largest magnitude of
kaffe's values (floored at 1e-6), so that elements near zero do not make
float32 rounding look large.
"""
import dataclasses

import numpy as np

from ..errors import KaffeConfigError
from ._deps import require_onnxruntime

#: The relative error above which a check fails (the issue's bar).
RELATIVE_TOLERANCE = 1e-4


@dataclasses.dataclass
class BlobError:
    blob: str
    shape: tuple
    max_abs: float
    max_rel: float
    output: bool


@dataclasses.dataclass
class CheckReport:
    """One row per compared blob; ``ok`` when every row is within tolerance."""
    rows: list
    tolerance: float = RELATIVE_TOLERANCE

    @property
    def ok(self):
        return all(r.max_rel <= self.tolerance for r in self.rows)

    @property
    def worst(self):
        return max(self.rows, key=lambda r: r.max_rel, default=None)

    def to_text(self):
        width = max([len(r.blob) for r in self.rows] + [4])
        lines = [f"{'blob':<{width}}  {'shape':<18} {'max abs':>10} "
                 f"{'max rel':>10}"]
        for r in self.rows:
            flag = "" if r.max_rel <= self.tolerance else "  FAIL"
            kind = " (output)" if r.output else ""
            shape = "x".join(map(str, r.shape)) or "scalar"
            lines.append(f"{r.blob:<{width}}  {shape:<18} {r.max_abs:10.3g} "
                         f"{r.max_rel:10.3g}{kind}{flag}")
        worst = self.worst
        verdict = "OK" if self.ok else "FAILED"
        if worst is not None:
            lines.append(f"{verdict}: {len(self.rows)} blobs compared, worst "
                         f"relative error {worst.max_rel:.3g} ('{worst.blob}'"
                         f"), tolerance {self.tolerance:g}")
        return "\n".join(lines)


def compare(expected, actual, name, output):
    """One :class:`BlobError` (expected = kaffe's values)."""
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if expected.size != actual.size:
        return BlobError(name, expected.shape, float("inf"), float("inf"),
                         output)
    actual = actual.reshape(expected.shape)
    if not expected.size:
        return BlobError(name, expected.shape, 0.0, 0.0, output)
    both_nan = np.isnan(expected) & np.isnan(actual)
    diff = np.where(both_nan, 0.0, np.abs(expected - actual))
    diff = np.where(np.isnan(diff), np.inf, diff)
    max_abs = float(diff.max())
    scale = max(float(np.nanmax(np.abs(expected), initial=0.0)), 1e-6)
    return BlobError(name, tuple(expected.shape), max_abs, max_abs / scale,
                     output)


def random_inputs(shapes, seed=0):
    """{name: float32 N(0, 1) array} for {name: shape}."""
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape).astype(np.float32)
            for name, shape in shapes.items()}


def image_input(path, shape):
    """An image as a Caffe input of ``shape`` (N, 3|1, H, W): resized, BGR
    (or grey), 0–255, channels first, repeated over the batch."""
    from ..io import load_image, resize_image
    n, c, h, w = shape
    if c not in (1, 3):
        raise KaffeConfigError(
            "needs an input with 1 or 3 channels", field="--image",
            received=f"input shape {shape}")
    image = load_image(str(path), color=c == 3)
    image = resize_image(image, (h, w)) * 255.0
    if c == 3:
        image = image[:, :, ::-1]
    chw = image.transpose(2, 0, 1).astype(np.float32)
    return np.broadcast_to(chw, (n, c, h, w)).copy()


def _session(model):
    ort = require_onnxruntime()
    options = ort.SessionOptions()
    # Compare the graph as written, not onnxruntime's fused rewrite of it.
    options.graph_optimization_level = \
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def run_onnxruntime(model, feeds, names):
    """{name: array} of the values ``names`` of ``model`` on ``feeds``."""
    from .export import with_outputs
    session = _session(with_outputs(model, names))
    arrays = session.run(list(names), feeds)
    return dict(zip(names, arrays))


def check_export(net, result, inputs=None, seed=0,
                 tolerance=RELATIVE_TOLERANCE):
    """Compare kaffe's forward of ``net`` with onnxruntime on the export.

    Args:
        net: the exported net.
        result: the :class:`~.export.ExportResult` of the export.
        inputs: {input blob: array}; random N(0, 1) by default.

    Returns:
        a :class:`CheckReport` over every output and surviving blob.
    """
    shapes = net.blob_shapes()
    if inputs is None:
        inputs = random_inputs({b: shapes[b] for b in result.inputs}, seed)
    net.forward(**{b: inputs[b] for b in result.inputs})
    compared = {b: v for b, v in result.values.items()
                if v not in result.inputs}
    names = list(dict.fromkeys(compared.values()))
    feeds = {b: np.asarray(inputs[b], dtype=np.float32)
             for b in result.inputs}
    got = run_onnxruntime(result.model, feeds, names)
    rows = []
    for blob, value in compared.items():
        rows.append(compare(net.blobs[blob].data, got[value], blob,
                            blob in result.outputs))
    return CheckReport(rows, tolerance)


def check_import(model, net, result, inputs=None, seed=0,
                 tolerance=RELATIVE_TOLERANCE):
    """Compare onnxruntime on ``model`` with kaffe's forward of the imported
    ``net`` (built from the written files), on every blob both have.

    Args:
        model: the onnx ModelProto (or path).
        net: the kaffe.Net built from the imported prototxt + caffemodel.
        result: the :class:`~.import_.ImportResult`.
    """
    from ._deps import require_onnx
    onnx = require_onnx()
    if not hasattr(model, "graph"):
        model = onnx.load(str(model))
    shapes = {name: tuple(net.blobs[name].shape) for name in result.inputs}
    if inputs is None:
        inputs = random_inputs(shapes, seed)
    net.forward(**inputs)
    compared = [b for b in result.blob_values if b in net.blobs
                and b not in result.inputs]
    names = [result.blob_values[b] for b in compared]
    got = run_onnxruntime(model, {result.onnx_inputs[b]: inputs[b]
                                  for b in result.inputs},
                          list(dict.fromkeys(names)))
    rows = [compare(net.blobs[b].data, got[v], b, b in result.outputs)
            for b, v in zip(compared, names)]
    return CheckReport(rows, tolerance)
