"""Helpers for layer tests: build a layer from text, run it, check gradients
and the errors it raises.

The gradient check is Caffe's GradientChecker idea in one projection: with a
random R_i per checked top, the objective is L = Σ_i Σ top_i·R_i. Backward with
top diffs R gives dL/dx analytically; central differences of L give it
numerically, element by element, for every bottom and parameter blob asked
for. Run it in float64 so that a tolerance of 1e-6 is meaningful.

For plain functions (kaffe.ops), ``numeric_gradient`` gives the central
differences of any scalar function of one array.
"""
import numpy as np
from google.protobuf import text_format

from ..core.blob import Blob
from ..core.random import set_random_seed
from ..core.registry import create_layer
from ..proto import caffe_pb2


def layer_param(text, phase=caffe_pb2.TEST):
    """A LayerParameter from prototxt text (the inside of ``layer { }``)."""
    param = text_format.Parse(text, caffe_pb2.LayerParameter())
    if not param.HasField("phase"):
        param.phase = phase
    return param


def make_layer(text, phase=caffe_pb2.TEST, dtype=np.float64):
    """Instantiate the registered layer that ``text`` describes."""
    return create_layer(layer_param(text, phase), dtype=dtype)


def blobs_from(arrays, dtype=np.float64):
    """Blobs holding copies of ``arrays`` (in ``dtype``)."""
    out = []
    for a in arrays:
        a = np.asarray(a)
        blob = Blob(a.shape, dtype=dtype)
        blob.data[...] = a
        out.append(blob)
    return out


def empty_blobs(n, dtype=np.float64):
    return [Blob(dtype=dtype) for _ in range(n)]


def setup_layer(text, bottoms, n_top=1, phase=caffe_pb2.TEST,
                dtype=np.float64):
    """Make a layer, wrap ``bottoms`` in blobs, SetUp and Forward once.

    Returns (layer, bottom blobs, top blobs).
    """
    layer = make_layer(text, phase, dtype)
    bottom = blobs_from(bottoms, dtype)
    top = empty_blobs(n_top, dtype)
    layer.SetUp(bottom, top)
    layer.Forward(bottom, top)
    return layer, bottom, top


def setup_in_place(text, bottoms, phase=caffe_pb2.TEST, dtype=np.float64):
    """Make a layer whose tops are its bottoms (in place) and SetUp.

    Unlike ``setup_layer`` this does not Forward, which would overwrite the
    inputs. Returns (layer, bottom blobs, top blobs): two lists of the same
    Blob objects, ready for ``check_gradients``.
    """
    layer = make_layer(text, phase, dtype)
    bottom = blobs_from(bottoms, dtype)
    top = list(bottom)
    layer.SetUp(bottom, top)
    return layer, bottom, top


def check_backward_overwrites(layer, bottom, top):
    """Check Backward on a set-up one-bottom layer whose top diffs are set.

    A second Backward must give the same bottom diff (it is overwritten, not
    accumulated into), and one with propagate_down False must leave the
    bottom diff as it was.
    """
    layer.Backward(top, [True], bottom)
    first = bottom[0].diff.copy()
    layer.Backward(top, [True], bottom)
    np.testing.assert_array_equal(bottom[0].diff, first)
    bottom[0].diff[...] = 5
    layer.Backward(top, [False], bottom)
    assert (bottom[0].diff == 5).all()


def check_layer_error(info, field, received, layer):
    """Check the KaffeError that ``pytest.raises`` caught in ``info``.

    Its ``field`` attribute must be ``field``, and its message must name
    ``layer 'layer'``, the field and ``received <received>``.
    """
    message = str(info.value)
    assert info.value.field == field
    assert f"layer '{layer}'" in message and field in message
    assert f"received {received}" in message


def _central_difference(loss, array, index, eps):
    """(loss(a + eps) − loss(a − eps)) / 2eps for the entry ``array[index]``,
    which is restored afterwards."""
    saved = array[index]
    array[index] = saved + eps
    plus = loss()
    array[index] = saved - eps
    minus = loss()
    array[index] = saved
    return (plus - minus) / (2 * eps)


def numeric_gradient(loss, array, eps=1e-6):
    """Central-difference gradient of a scalar function of ``array``.

    Args:
        loss: a function of no arguments that reads ``array`` and returns a
            scalar.
        array: the array to differentiate by; each entry is moved by ± eps
            in place (and restored) while ``loss`` is evaluated.
        eps: the finite-difference step.

    Returns:
        An array like ``array``: entry i is (loss(+eps at i) − loss(−eps at
        i)) / 2eps.
    """
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        grad[index] = _central_difference(loss, array, index, eps)
    return grad


def check_gradients(layer, bottom, top, *, check_bottom=None,
                    check_params=True, check_top=None, eps=1e-5, tol=1e-6,
                    seed=1701, reseed=None, kink=None, max_elements=None):
    """Compare ``layer``'s backward with central differences of its forward.

    Args:
        layer, bottom, top: a set-up layer and its blobs (float64 advised).
            A top may be the same Blob as a bottom (in-place layers): the
            check then restores the input before every forward.
        check_bottom: indices of bottoms to check (default: all).
        check_params: also check every parameter blob's diff.
        check_top: indices of tops that form the objective (default: all).
        eps: finite-difference step.
        tol: allowed |analytic − numeric| / max(1, |analytic|, |numeric|).
        reseed: if set, reseed kaffe's RNG with it before every forward
            (for layers that draw random numbers, e.g. Dropout in TRAIN).
        kink: (value, range): skip bottom elements within ``range`` of
            ``value`` (e.g. ReLU's kink at 0).
        max_elements: check at most this many elements per blob (spread over
            the blob), to keep big blobs fast.

    Raises:
        AssertionError listing the worst mismatches (this is a test helper).
    """
    rng = np.random.default_rng(seed)
    check_bottom = range(len(bottom)) if check_bottom is None else check_bottom
    check_top = range(len(top)) if check_top is None else check_top
    # The inputs, kept apart so that in-place layers can be re-run.
    inputs = [b.data.copy() for b in bottom]
    in_place = any(t is b for t in top for b in bottom)

    def forward():
        if in_place:
            for blob, values in zip(bottom, inputs):
                blob.data[...] = values
        if reseed is not None:
            set_random_seed(reseed)
        layer.Forward(bottom, top)

    forward()
    weights = {i: rng.standard_normal(top[i].shape) for i in check_top}

    def objective():
        forward()
        return sum(float(np.sum(top[i].data * weights[i])) for i in check_top)

    # Analytic gradients. Clear first: a top may share its diff with a bottom.
    forward()
    for blob in bottom:
        blob.diff[...] = 0
    for blob in layer.blobs:
        blob.diff[...] = 0
    for i in check_top:
        top[i].diff[...] = weights[i]
    if check_params:
        for j in range(len(layer.blobs)):
            layer.set_param_propagate_down(j, True)
    propagate = [i in set(check_bottom) for i in range(len(bottom))]
    layer.Backward(top, propagate, bottom)
    targets = [(f"bottom[{i}]", inputs[i], bottom[i], True)
               for i in check_bottom]
    if check_params:
        targets += [(f"param[{j}]", b.data, b, False)
                    for j, b in enumerate(layer.blobs)]
    analytic = {name: blob.diff.copy() for name, _, blob, _ in targets}

    failures = []
    for name, values, blob, is_bottom in targets:
        flat = values.reshape(-1)
        if not in_place and is_bottom:
            flat = blob.data.reshape(-1)
            np.copyto(values, blob.data)
        indices = np.arange(flat.size)
        if max_elements is not None and flat.size > max_elements:
            indices = np.linspace(0, flat.size - 1, max_elements).astype(int)
        grad = analytic[name].reshape(-1)
        for k in indices:
            if is_bottom and kink is not None and abs(
                    flat[k] - kink[0]) < kink[1]:
                continue
            numeric = _central_difference(objective, flat, k, eps)
            scale = max(1.0, abs(grad[k]), abs(numeric))
            if abs(grad[k] - numeric) > tol * scale:
                failures.append((abs(grad[k] - numeric) / scale, name, int(k),
                                 float(grad[k]), numeric))
    forward()
    if failures:
        failures.sort(reverse=True)
        lines = [f"{name}[{k}]: analytic {a:.8g} vs numeric {n:.8g}"
                 for _, name, k, a, n in failures[:10]]
        raise AssertionError(
            f"{len(failures)} gradient mismatch(es) in {layer!r}:\n  "
            + "\n  ".join(lines))
