"""Fillers: how parameter blobs get their initial values.

``fill(blob, filler_param)`` implements Caffe's seven fillers, reading a
caffe_pb2.FillerParameter (type, value, min, max, mean, std, sparse,
variance_norm):

- constant: every value = ``value``.
- uniform: U(min, max).
- gaussian: N(mean, std); with ``sparse`` >= 0 each value is kept with
  probability sparse / shape[0] and zeroed otherwise.
- positive_unitball: U(0, 1), then each of the shape[0] rows scaled to sum 1.
- xavier: U(-sqrt(3/n), sqrt(3/n)); msra: N(0, sqrt(2/n)); n is fan_in
  (count / shape[0]), fan_out (count / shape[1]) or their mean, per
  ``variance_norm``.
- bilinear: for 4-D square kernels, the bilinear-interpolation weights
  (1 - |x/f - c|)(1 - |y/f - c|), f = ceil(K/2), c = (K-1)/(2f), on every
  (out, in) slice — Deconvolution's upsampling recipe.

Only gaussian supports ``sparse``; the others refuse it, as Caffe does.
"""
import math

import numpy as np

from ..errors import KaffeConfigError
from .random import rng


def check_filler(filler_param, *, layer=None, field="filler"):
    """Refuse an unknown filler type (a located error); return its function.

    For a layer that fills later (DummyData's random tops) but must reject
    a bad filler at setup, as Caffe's GetFiller does.
    """
    kind = filler_param.type
    function = _FILLERS.get(kind)
    if function is None:
        raise _error(layer, "is not a known filler type", f"{field}.type",
                     received=kind, expected="one of " + ", ".join(
                         sorted(_FILLERS)))
    return function


def fill(blob, filler_param, *, layer=None, field="filler"):
    """Fill ``blob.data`` as ``filler_param`` says.

    Args:
        blob: the Blob to fill (its whole data is overwritten).
        filler_param: a caffe_pb2.FillerParameter.
        layer: the owning layer, to locate error messages.
        field: the filler's field name, for error messages ("weight_filler").
    """
    kind = filler_param.type
    function = check_filler(filler_param, layer=layer, field=field)
    if blob.count == 0:
        raise _error(layer, "cannot fill an empty blob", field,
                     received=blob.shape_string(),
                     expected="a blob with at least one element")
    if kind != "gaussian" and filler_param.sparse != -1:
        raise _error(layer, "is only supported by the gaussian filler",
                     f"{field}.sparse", received=filler_param.sparse,
                     expected="-1 (unset)",
                     fix="remove sparse or use type: \"gaussian\"")
    values = function(blob.shape, filler_param, layer, field)
    blob.data[...] = blob._xp.asarray(values, dtype=blob.dtype)


def _constant(shape, p, layer, field):
    return np.full(shape, p.value)


def _uniform(shape, p, layer, field):
    if not (math.isfinite(p.min) and math.isfinite(p.max)
            and p.min <= p.max):
        raise _error(layer, "must be finite numbers with min <= max",
                     f"{field}.min/max", received=(p.min, p.max),
                     expected="min <= max (Caffe checks a <= b)")
    with np.errstate(over="ignore"):
        return rng().uniform(p.min, p.max, size=shape)


def _gaussian(shape, p, layer, field):
    if not p.std >= 0:
        raise _error(layer, "must be >= 0", f"{field}.std", received=p.std,
                     expected="a standard deviation >= 0")
    # abs: NumPy refuses a scale of -0.0, which the check above lets by.
    values = rng().normal(p.mean, abs(p.std), size=shape)
    if p.sparse < -1:
        raise _error(layer, "must be >= -1", f"{field}.sparse",
                     received=p.sparse, expected="-1 (off) or a count >= 0")
    if p.sparse >= 0:
        if len(shape) < 1:
            raise _error(layer, "needs a blob with at least one axis",
                         f"{field}.sparse", received=shape)
        keep = p.sparse / shape[0]
        if keep > 1:
            raise _error(layer, "must not exceed the number of outputs",
                         f"{field}.sparse", received=p.sparse,
                         expected=f"at most shape[0] = {shape[0]}")
        values *= rng().random(size=shape) < keep
    return values


def _positive_unitball(shape, p, layer, field):
    values = rng().uniform(0.0, 1.0, size=shape)
    rows = values.reshape(shape[0], -1)
    rows /= rows.sum(axis=1, keepdims=True)
    return values


def _fan(shape, p):
    count = math.prod(shape)
    fan_in = count // shape[0]
    fan_out = count // shape[1] if len(shape) > 1 else count
    norm = p.variance_norm
    from ..proto import caffe_pb2
    if norm == caffe_pb2.FillerParameter.AVERAGE:
        return (fan_in + fan_out) / 2.0
    if norm == caffe_pb2.FillerParameter.FAN_OUT:
        return float(fan_out)
    return float(fan_in)


def _xavier(shape, p, layer, field):
    scale = math.sqrt(3.0 / _fan(shape, p))
    return rng().uniform(-scale, scale, size=shape)


def _msra(shape, p, layer, field):
    return rng().normal(0.0, math.sqrt(2.0 / _fan(shape, p)), size=shape)


def _bilinear(shape, p, layer, field):
    if len(shape) != 4 or shape[2] != shape[3]:
        raise _error(layer, "needs a 4-D blob with a square kernel",
                     f"{field}.type", received=shape,
                     expected="(out, in, K, K)")
    k = shape[3]
    f = math.ceil(k / 2.0)
    c = (k - 1) / (2.0 * f)
    ramp = 1.0 - np.abs(np.arange(k) / f - c)
    return np.broadcast_to(np.outer(ramp, ramp), shape).copy()


_FILLERS = {
    "constant": _constant,
    "uniform": _uniform,
    "gaussian": _gaussian,
    "positive_unitball": _positive_unitball,
    "xavier": _xavier,
    "msra": _msra,
    "bilinear": _bilinear,
}


def _error(layer, problem, field, **details):
    if layer is not None:
        return layer.config_error(problem, field=field, **details)
    return KaffeConfigError(problem, field=field, **details)
