"""Shared helpers for the ONNX tests: random weights for a kaffe net, and
export + onnxruntime check in one call."""
from pathlib import Path

import numpy as np

import kaffe

NETS = Path(__file__).resolve().parent / "nets"


def randomise(net, seed=0):
    """Give every parameter random values that keep activations in range:
    He-scaled weights, biases around 0, Scale factors around 1 and BatchNorm
    running sums with a scale factor other than 1 (so that the exporter
    must divide by it)."""
    rng = np.random.default_rng(seed)
    for name, blobs in net.params.items():
        kind = net.layer_dict[name].type
        if kind == "BatchNorm":
            factor = rng.uniform(0.5, 2.0)
            channels = blobs[0].data.shape
            blobs[0].data[...] = rng.standard_normal(channels) * 0.1 * factor
            blobs[1].data[...] = rng.uniform(0.5, 1.5, channels) * factor
            blobs[2].data[...] = factor
            continue
        for i, blob in enumerate(blobs):
            shape = blob.data.shape
            if kind in ("Scale", "PReLU", "BN") and i == 0 or (
                    kind == "BN" and i == 3):      # scales, PSPNet variance
                blob.data[...] = rng.uniform(0.5, 1.5, shape)
            elif kind == "BN":      # shift, PSPNet mean
                blob.data[...] = rng.standard_normal(shape) * 0.1
            elif blob.data.ndim >= 2:
                fan_in = int(np.prod(shape[1:])) or 1
                if kind == "InnerProduct" and net.layer_dict[name] \
                        .layer_param.inner_product_param.transpose:
                    fan_in = shape[0]
                if kind == "Deconvolution":
                    fan_in = shape[0] // max(1, shape[1])
                blob.data[...] = rng.standard_normal(shape) * np.sqrt(
                    2.0 / max(fan_in, 1))
            else:
                blob.data[...] = rng.standard_normal(shape) * 0.1
    return net


def net_from_text(tmp_path, text, name="net", seed=0):
    """A TEST net built from prototxt ``text`` with random weights."""
    path = tmp_path / f"{name}.prototxt"
    path.write_text(text)
    return randomise(kaffe.Net(str(path), kaffe.TEST), seed)


def export_and_check(net, tmp_path, inputs=None, **options):
    """Export ``net``, run the onnxruntime check, assert it passes."""
    import onnx
    from kaffe.onnx import check_export, export
    result = export(net, str(tmp_path / "model.onnx"), **options)
    onnx.checker.check_model(result.model, full_check=True)
    report = check_export(net, result, inputs)
    assert report.rows, "nothing was compared"
    assert report.ok, report.to_text()
    return result, report
