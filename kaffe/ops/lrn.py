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
channels, here every window is summed afresh (n − 1 shifted adds per axis).
"""
from ..backend import array_module


def _check(x, local_size):
    if x.ndim != 4:
        raise ValueError(f"LRN expects (N, C, H, W) arrays, received shape "
                         f"{tuple(x.shape)}")
    if local_size < 1 or local_size % 2 == 0:
        raise ValueError(f"LRN local_size must be odd and positive, "
                         f"received {local_size}")


def _window_sum(a, size, axis):
    """Sums of ``a`` over the centred windows of odd length ``size`` along
    ``axis``, ends zero-padded; same shape as ``a``."""
    total = a.copy()
    before = (slice(None),) * axis
    # A shift as long as the axis adds nothing (the padding is zeros), so a
    # huge local_size costs no more than one as long as the axis.
    for shift in range(1, min((size - 1) // 2, a.shape[axis] - 1) + 1):
        total[before + (slice(shift, None),)] += a[before + (slice(-shift),)]
        total[before + (slice(-shift),)] += a[before + (slice(shift, None),)]
    return total


def _region_sum(a, size, region):
    """(sums, cells): the sums of ``a`` over each entry's window, ends
    zero-padded, and the window's cell count. The window is the ``size``
    channels centred on the entry (ACROSS, n cells) or the size × size box
    centred on it in its (H, W) plane (WITHIN, n² cells)."""
    if region == "ACROSS":
        return _window_sum(a, size, axis=1), size
    return _window_sum(_window_sum(a, size, axis=2), size, axis=3), size ** 2


def _forward(x, local_size, region, alpha, beta, k):
    """scale = k + α/cells · Σ_window x², y = x · scale^−β."""
    xp = array_module(x)
    _check(x, local_size)
    scale, cells = _region_sum(x * x, local_size, region)
    scale *= alpha / cells
    scale += k
    y = xp.power(scale, -beta)
    y *= x
    return y, scale


def _backward(dy, x, y, scale, local_size, region, alpha, beta):
    """dx = dy · scale^−β − 2αβ/cells · x · Σ_window(dy · y / scale)."""
    xp = array_module(dy)
    _check(x, local_size)
    ratio = dy * y
    ratio /= scale
    spread, cells = _region_sum(ratio, local_size, region)
    spread *= x
    spread *= -2.0 * alpha * beta / cells
    dx = xp.power(scale, -beta)
    dx *= dy
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
    return _forward(x, local_size, "ACROSS", alpha, beta, k)


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
    return _forward(x, local_size, "WITHIN", alpha, beta, 1)


def lrn_within_channel_backward(dy, x, y, scale, local_size, alpha, beta):
    """Gradient of WITHIN_CHANNEL LRN: arguments and result as for
    ``lrn_across_channels_backward``, with ``local_size`` the side n of the
    square window."""
    return _backward(dy, x, y, scale, local_size, "WITHIN", alpha, beta)
