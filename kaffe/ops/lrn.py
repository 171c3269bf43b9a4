"""Local response normalisation, Caffe's two regions
(``src/caffe/layers/lrn_layer.cpp``).

ACROSS_CHANNELS, n = local_size (odd), channels zero-padded by (n − 1)/2:

    scale[:, c] = k + α/n · Σ_{c' = c − (n−1)/2}^{c + (n−1)/2} x[:, c']²
    y = x · scale^−β

WITHIN_CHANNEL: Caffe chains Split, Power, Pooling and Eltwise layers into

    scale = 1 + α · AVE_POOL(x², kernel n, stride 1, pad (n − 1)/2)
    y = x · scale^−β

(its ``k`` is ignored). With stride 1 and that pad, Caffe's AVE divisor is
n² for every window — a window ends at h + (n − 1)/2 + 1 ≤ H + pad, never
past the padded edge — so the pool is a zero-padded n × n box sum / n²,
summed here separably (rows, then columns).

Both backward passes have the same closed form, with ratio = dy · y / scale:

    ACROSS: dx = dy · scale^−β − 2αβ/n · x · Σ_channel window(ratio)
    WITHIN: dx = dy · scale^−β − 2αβ/n² · x · Σ_n×n box(ratio)

(the box and the channel window are symmetric, so each is its own adjoint).

Arrays are (N, C, H, W). The forward functions also return ``scale``, which
the backward ones take (Caffe keeps it in its ``scale_`` blob). Results
agree with Caffe's to rounding: Caffe slides a running sum over the
channels, here every window is summed afresh (n − 1 shifted adds per axis;
the ACROSS forward adds sums of adjacent pairs, :mod:`kaffe.ops.lrn_forward`).
"""
from ..backend import array_module
from .lrn_forward import lrn_across_forward


def _check(x, local_size):
    if x.ndim != 4:
        raise ValueError(f"LRN expects (N, C, H, W) arrays, received shape "
                         f"{tuple(x.shape)}")
    if local_size < 1 or local_size % 2 == 0:
        raise ValueError(f"LRN local_size must be odd and positive, "
                         f"received {local_size}")


def _window_sum(a, size, axis, total=None):
    """Sums of ``a`` over the centred windows of odd length ``size`` along
    ``axis``, ends zero-padded; same shape as ``a``. ``total``: where to
    write them (a buffer that does not overlap ``a``), else a new array.

    Each entry is a[i] + a[i−1] + a[i+1] + a[i−2] + a[i+2] + … in that
    order (the first add writes ``total`` itself, no separate copy)."""
    xp = array_module(a)
    if total is None:
        total = xp.empty_like(a)
    before = (slice(None),) * axis
    if size == 1 or a.shape[axis] == 1:
        total[...] = a
    else:
        xp.add(a[before + (slice(1, None),)], a[before + (slice(-1),)],
               out=total[before + (slice(1, None),)])
        total[before + (slice(1),)] = a[before + (slice(1),)]
    # A shift as long as the axis adds nothing (the padding is zeros), so a
    # huge local_size costs no more than one as long as the axis.
    for shift in range(1, min((size - 1) // 2, a.shape[axis] - 1) + 1):
        if shift > 1:
            total[before + (slice(shift, None),)] += \
                a[before + (slice(-shift),)]
        total[before + (slice(-shift),)] += a[before + (slice(shift, None),)]
    return total


def _region_sum(a, size, region, out=None, work=None):
    """(sums, cells): the sums of ``a`` over each entry's window, ends
    zero-padded, and the window's cell count. The window is the ``size``
    channels centred on the entry (ACROSS, n cells) or the size × size box
    centred on it in its (H, W) plane (WITHIN, n² cells). ``out``: where to
    write the sums; ``work``: a scratch array of a's shape (WITHIN's row
    sums); both must not overlap ``a``."""
    if region == "ACROSS":
        return _window_sum(a, size, axis=1, total=out), size
    rows = _window_sum(a, size, axis=2, total=work)
    return _window_sum(rows, size, axis=3, total=out), size ** 2


def _forward(x, local_size, region, alpha, beta, k, out=None, scale=None,
             power=None):
    """scale = k + α/cells · Σ_window x², y = x · scale^−β.

    ``out``, ``scale``, ``power``: buffers of x's shape for y, scale and
    scale^−β (none overlapping x or each other); each absent one is
    allocated. The same operations in the same order either way (ACROSS
    goes by blocks of channels, :mod:`kaffe.ops.lrn_forward`)."""
    xp = array_module(x)
    _check(x, local_size)
    if power is None:
        power = xp.empty_like(x)
    if region == "ACROSS":
        # By blocks of channels that stay in the cache (lrn_forward.py).
        buffers = [xp.empty_like(x) if a is None else a for a in (out, scale)]
        if all(a.flags.c_contiguous for a in [x, power] + buffers):
            return lrn_across_forward(x, local_size, alpha, beta, k,
                                      *buffers, power)
    squares = xp.multiply(x, x, out=power)     # power is scratch until below
    work = out if out is not None and region != "ACROSS" else None
    scale, cells = _region_sum(squares, local_size, region, out=scale,
                               work=work)
    scale *= alpha / cells
    scale += k
    xp.power(scale, -beta, out=power)
    y = xp.multiply(power, x, out=out)
    return y, scale, power


def _backward(dy, x, y, scale, local_size, region, alpha, beta, power=None,
              out=None, work=None):
    """dx = dy · scale^−β − 2αβ/cells · x · Σ_window(dy · y / scale).

    ``power``: the forward's scale^−β (recomputed when absent). ``out``:
    where to write dx (may be dy itself, or overlap nothing); ``work``: up
    to two scratch arrays of x's shape (allocated when absent)."""
    xp = array_module(dy)
    _check(x, local_size)
    work = list(work or ())
    while len(work) < 2:
        work.append(xp.empty_like(x))
    ratio = xp.multiply(dy, y, out=work[0])
    ratio /= scale
    inner = None
    if region != "ACROSS":
        # WITHIN needs a second scratch for its row sums; ratio's own
        # buffer is free once the sums are taken, but not during.
        inner = xp.empty_like(x)
    spread, cells = _region_sum(ratio, local_size, region, out=work[1],
                                work=inner)
    spread *= x
    spread *= -2.0 * alpha * beta / cells
    if power is None:
        power = xp.power(scale, -beta)
    dx = xp.multiply(power, dy, out=out)
    dx += spread
    return dx


def lrn_across_channels_forward(x, local_size, alpha, beta, k):
    """ACROSS_CHANNELS LRN.

    Args:
        x: (N, C, H, W) input.
        local_size: odd window length n, over channels.
        alpha, beta, k: Caffe's lrn_param values.

    Returns:
        (y, scale), both (N, C, H, W): scale = k + α/n · Σ_window x².
    """
    return _forward(x, local_size, "ACROSS", alpha, beta, k)[:2]


def lrn_across_channels_backward(dy, x, y, scale, local_size, alpha, beta):
    """Gradient of ACROSS_CHANNELS LRN.

    Args:
        dy: (N, C, H, W) gradient of the output.
        x, y, scale: the forward's input, output and scale.
        local_size, alpha, beta: as for the forward.

    Returns:
        A new (N, C, H, W) array.
    """
    return _backward(dy, x, y, scale, local_size, "ACROSS", alpha, beta)


def lrn_within_channel_forward(x, local_size, alpha, beta):
    """WITHIN_CHANNEL LRN (Caffe's ``k`` plays no part).

    Args:
        x: (N, C, H, W) input.
        local_size: odd side n of the square window.
        alpha, beta: Caffe's lrn_param values.

    Returns:
        (y, scale), both (N, C, H, W): scale = 1 + α/n² · Σ_n×n box(x²),
        which is Caffe's 1 + α · AVE_POOL(x²).
    """
    return _forward(x, local_size, "WITHIN", alpha, beta, 1)[:2]


def lrn_within_channel_backward(dy, x, y, scale, local_size, alpha, beta):
    """Gradient of WITHIN_CHANNEL LRN: arguments and result as for
    ``lrn_across_channels_backward``, with ``local_size`` the side n of the
    square window."""
    return _backward(dy, x, y, scale, local_size, "WITHIN", alpha, beta)


def lrn_forward(x, local_size, region, alpha, beta, k, out=None, scale=None,
                power=None):
    """Either region's LRN into caller-kept buffers (a layer's, reused from
    step to step: no allocation, no page faults on large maps).

    Args:
        x: (N, C, H, W) input.
        local_size, alpha, beta, k: Caffe's lrn_param (WITHIN: pass k = 1).
        region: "ACROSS" or "WITHIN".
        out, scale, power: x-shaped buffers for y, scale and scale^−β,
            overlapping neither x nor each other; None: allocated.

    Returns:
        (y, scale, power), the same bits as the functions above.
    """
    return _forward(x, local_size, region, alpha, beta, k, out, scale, power)


def lrn_backward(dy, x, y, scale, local_size, region, alpha, beta,
                 power=None, out=None, work=None):
    """Gradient of :func:`lrn_forward`: ``power`` its scale^−β (skips
    recomputing it), ``out`` where dx goes (may be dy), ``work`` up to two
    x-shaped scratch arrays. The same bits as the functions above."""
    return _backward(dy, x, y, scale, local_size, region, alpha, beta, power,
                     out, work)
