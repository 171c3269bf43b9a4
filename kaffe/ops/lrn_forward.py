"""ACROSS_CHANNELS LRN forward in fewer passes over memory, by blocks.

The same formula as :mod:`kaffe.ops.lrn` (Caffe's ``CrossChannelForward``):

    scale[:, c] = k + α/n · Σ_{c' = c − (n−1)/2}^{c + (n−1)/2} x[:, c']²
    y = x · scale^−β

An image's maps are several MB (GoogLeNet's norm2: 2.4 MB a pass), so the
time goes in passes over memory. Here an image goes by blocks of channels
that stay in the cache, each with its squares and the sums of adjacent
pairs of them (the block's channels and the (n − 1)/2 on either side, zero
past the ends); a channel's window is then a sum of (n − 1)/2 pairs and one
square: 3 additions for n = 5 instead of 4. A small image is done whole,
with the squares in the ``power`` buffer and the pair sums in ``y`` (both
scratch until their own results are written last), the few channels whose
window crosses the first or last channel summed on their own.

The window sums associate differently from Caffe's running sum and from the
shifted adds of :mod:`kaffe.ops.lrn`; all agree to float rounding (a few
ulp of scale). :func:`lrn_across_range` does one block of one image and
:func:`lrn_across_image` one image, so either can run on several threads.
"""
import math

from ..backend import array_module

# Values of x per block of channels: the block's squares, pair sums, scale,
# powers and output stay in a 2 MB L2 cache (one thread, in a forward:
# GoogLeNet's norm2 2.7 → 2.1 ms, AlexNet's norm1 at batch 8 10.3 → 8.2 ms
# against shifted adds over whole arrays; blocks of 32 K: a little slower).
BLOCK_ELEMENTS = 1 << 16


def lrn_across_forward(x, local_size, alpha, beta, k, y, scale, power,
                       block_elements=BLOCK_ELEMENTS):
    """ACROSS_CHANNELS LRN of (N, C, H, W) ``x`` into the x-shaped,
    C-contiguous ``y``, ``scale`` and ``power`` (scale^−β), none
    overlapping x or each other; ``local_size`` is odd. Returns
    (y, scale, power).

    An image of up to ``block_elements`` values is done whole in the
    caller's buffers (:func:`lrn_across_image`), a larger one by blocks of
    channels of about that many values (:func:`lrn_across_range`)."""
    num, channels = x.shape[:2]
    if x.size == 0:
        return y, scale, power
    plane = math.prod(x.shape[2:])
    step = max(1, block_elements // plane)
    if step >= channels:
        for n in range(num):
            lrn_across_image(x, local_size, alpha, beta, k, y, scale, power,
                             n)
        return y, scale, power
    work = _scratch(x, local_size, step)
    for n in range(num):
        for first in range(0, channels, step):
            lrn_across_range(x, local_size, alpha, beta, k, y, scale, power,
                             n, first, min(channels, first + step), work)
    return y, scale, power


def _scratch(x, local_size, channels):
    """(squares, pair sums) for a block of ``channels`` channels."""
    xp = array_module(x)
    plane = math.prod(x.shape[2:])
    rows = channels + local_size - 1
    return (xp.empty((rows, plane), dtype=x.dtype),
            xp.empty((max(1, rows - 1), plane), dtype=x.dtype))


def lrn_across_range(x, local_size, alpha, beta, k, y, scale, power, n,
                     first, stop, work=None):
    """y, scale and power of image ``n``, channels [first, stop).

    ``work``: scratch from :func:`_scratch` for a block of at least
    stop − first channels (made when absent); each thread needs its own.
    """
    xp = array_module(x)
    channels = x.shape[1]
    count = stop - first
    half = (local_size - 1) // 2
    if work is None:
        work = _scratch(x, local_size, count)
    planes = x[n].reshape(channels, -1)
    # squares[i] is channel first − half + i, zero outside [0, C).
    rows = count + 2 * half
    squares = work[0][:rows]
    lo, hi = first - half, stop + half
    inside = slice(max(lo, 0) - lo, min(hi, channels) - lo)
    if lo < 0:
        squares[:inside.start] = 0
    if hi > channels:
        squares[inside.stop:] = 0
    source = planes[max(lo, 0):min(hi, channels)]
    xp.multiply(source, source, out=squares[inside])
    total = scale[n].reshape(channels, -1)[first:stop]
    if half == 0:
        xp.copyto(total, squares)
    else:
        # pairs[i] = squares[i] + squares[i + 1]; the window of channel
        # first + j is rows j … j + n − 1: pairs j, j + 2, …, j + n − 3,
        # then row j + n − 1.
        pairs = work[1][:rows - 1]
        xp.add(squares[:-1], squares[1:], out=pairs)
        if local_size == 3:
            xp.add(pairs[:count], squares[2:2 + count], out=total)
        else:
            xp.add(pairs[:count], pairs[2:2 + count], out=total)
            for i in range(4, local_size - 1, 2):
                total += pairs[i:i + count]
            total += squares[local_size - 1:local_size - 1 + count]
    total *= alpha / local_size
    total += k
    powers = power[n].reshape(channels, -1)[first:stop]
    xp.power(total, -beta, out=powers)
    xp.multiply(powers, planes[first:stop],
                out=y[n].reshape(channels, -1)[first:stop])


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
