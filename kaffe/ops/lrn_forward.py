"""ACROSS_CHANNELS LRN forward in fewer passes over memory.

The same formula as :mod:`kaffe.ops.lrn` (Caffe's ``CrossChannelForward``):

    scale[:, c] = k + α/n · Σ_{c' = c − (n−1)/2}^{c + (n−1)/2} x[:, c']²
    y = x · scale^−β

An image's maps are several MB (GoogLeNet's norm2: 2.4 MB a pass), so the
time goes in passes over memory. Here the squares go into the ``power``
buffer and the sums of adjacent pairs of them into ``y``, both scratch until
their own results are written last; a channel's window is then a sum of
(n − 1)/2 pairs and one square: 3 additions for n = 5 instead of 4, and no
memory beyond the caller's three buffers. The few channels whose window
crosses the first or last channel are summed on their own.

The window sums associate differently from Caffe's running sum and from the
shifted adds of :mod:`kaffe.ops.lrn`; all agree to float rounding (a few
ulp of scale). :func:`lrn_across_image` does one image, so images can run
on different threads.
"""
from ..backend import array_module


def lrn_across_forward(x, local_size, alpha, beta, k, y, scale, power):
    """ACROSS_CHANNELS LRN of (N, C, H, W) ``x`` into the x-shaped,
    C-contiguous ``y``, ``scale`` and ``power`` (scale^−β), none
    overlapping x or each other; ``local_size`` is odd. Returns
    (y, scale, power)."""
    for n in range(x.shape[0]):
        lrn_across_image(x, local_size, alpha, beta, k, y, scale, power, n)
    return y, scale, power


def lrn_across_image(x, local_size, alpha, beta, k, y, scale, power, n):
    """y, scale and power of image ``n`` (arguments as for
    :func:`lrn_across_forward`)."""
    xp = array_module(x)
    channels = x.shape[1]
    planes = x[n].reshape(channels, -1)
    squares = xp.multiply(planes, planes,
                          out=power[n].reshape(channels, -1))
    total = scale[n].reshape(channels, -1)
    half = (local_size - 1) // 2
    if half == 0 or channels == 1:
        xp.copyto(total, squares)
    else:
        # pairs[i] = squares[i] + squares[i + 1], in y until y is written.
        pairs = y[n].reshape(channels, -1)[:channels - 1]
        xp.add(squares[:-1], squares[1:], out=pairs)
        # Channels whose window lies inside: c in [lo, hi), window rows
        # c − half … c + half = pairs c − half, c − half + 2, …, then the
        # square c + half.
        lo, hi = half, channels - half
        if hi > lo:
            inner = total[lo:hi]
            first = pairs[:hi - lo]
            if local_size == 3:
                xp.add(first, squares[lo + half:hi + half], out=inner)
            else:
                xp.add(first, pairs[2:2 + hi - lo], out=inner)
                for i in range(4, local_size - 1, 2):
                    inner += pairs[i:i + hi - lo]
                inner += squares[lo + half:hi + half]
        edges = list(range(min(half, channels))) + list(
            range(max(half, channels - half), channels))
        for c in edges:
            cells = range(max(0, c - half), min(channels, c + half + 1))
            if len(cells) == 1:
                xp.copyto(total[c], squares[cells[0]])
                continue
            xp.add(squares[cells[0]], squares[cells[1]], out=total[c])
            for i in cells[2:]:
                total[c] += squares[i]
    total *= alpha / local_size
    total += k
    xp.power(total, -beta, out=squares)        # squares become the powers
    xp.multiply(squares, planes, out=y[n].reshape(channels, -1))
