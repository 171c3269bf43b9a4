"""kaffe.ops.pool_forward (mask-free max pooling) against Caffe's loop,
written out naively, bit for bit."""
import numpy as np
import pytest

from kaffe.ops import pool_forward
from kaffe.ops.pooling import (ave_pool_forward, max_pool_forward,
                               pool_output_size)

FLT_MAX = float(np.finfo(np.float32).max)


def naive_max_pool(x, kernel, stride, pad, out_hw):
    """Caffe: start at −FLT_MAX, take a cell only if strictly greater;
    padding and the overhang are never read."""
    y = np.full(x.shape[:2] + tuple(out_hw), -FLT_MAX, dtype=x.dtype)
    height, width = x.shape[2:]
    for n, c in np.ndindex(x.shape[:2]):
        for ph in range(out_hw[0]):
            hs = ph * stride[0] - pad[0]
            for pw in range(out_hw[1]):
                ws = pw * stride[1] - pad[1]
                for h in range(max(hs, 0), min(hs + kernel[0], height)):
                    for w in range(max(ws, 0), min(ws + kernel[1], width)):
                        if x[n, c, h, w] > y[n, c, ph, pw]:
                            y[n, c, ph, pw] = x[n, c, h, w]
    return y


def same_bits(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(a.view(f"u{a.itemsize}"),
                                  b.view(f"u{b.itemsize}"))


def values(shape, dtype, special, seed=0):
    rng = np.random.default_rng(seed)
    if not special:
        return rng.standard_normal(shape).astype(dtype)
    # Small integers (ties, all zeros +0) with NaN, ±inf and −FLT_MAX.
    x = rng.integers(-3, 4, shape).astype(dtype)
    flat = x.reshape(-1)
    for value in (np.nan, np.inf, -np.inf, -FLT_MAX):
        flat[rng.choice(flat.size, max(1, flat.size // 10),
                        replace=False)] = value
    flat[:4] = np.nan  # the first plane's first cells: windows of NaN only
    return x


def out_size(shape, kernel, stride, pad, mode):
    clip = any(pad)
    return tuple(pool_output_size(s, k, st, p, mode) if not clip else
                 _clipped(s, k, st, p, mode)
                 for s, k, st, p in zip(shape[2:], kernel, stride, pad))


def _clipped(size, kernel, stride, pad, mode):
    # Caffe clips both axes as soon as one is padded.
    span = size + 2 * pad - kernel
    out = (-(-span // stride) if mode == "CEIL" else span // stride) + 1
    return out - 1 if (out - 1) * stride >= size + pad else out


# (input shape, kernel, stride, pad, round mode): every one must pass fits().
CASES = [
    # "same" stride-1 pooling: GoogLeNet's inception pools and others
    ((2, 3, 7, 9), (3, 3), (1, 1), (1, 1), "CEIL"),
    ((1, 4, 5, 5), (5, 5), (1, 1), (2, 2), "CEIL"),
    ((1, 2, 6, 5), (3, 5), (1, 1), (1, 2), "CEIL"),
    ((1, 3, 4, 7), (1, 3), (1, 1), (0, 1), "CEIL"),   # one axis kernel 1
    ((1, 3, 6, 4), (3, 1), (1, 1), (1, 0), "CEIL"),
    ((1, 2, 2, 1), (3, 3), (1, 1), (1, 1), "CEIL"),   # planes under 3×3
    ((2, 2, 1, 1), (3, 3), (1, 1), (1, 1), "CEIL"),
    ((1, 1, 3, 2), (5, 5), (1, 1), (2, 2), "CEIL"),   # kernel over the plane
    # overlapping strided windows
    ((1, 2, 9, 9), (3, 3), (2, 2), (0, 0), "CEIL"),   # GoogLeNet pool1 shape
    ((2, 3, 10, 10), (3, 3), (2, 2), (0, 0), "CEIL"),  # CEIL overhang
    ((1, 3, 11, 11), (3, 3), (2, 2), (0, 0), "FLOOR"),
    ((2, 2, 8, 8), (3, 3), (2, 2), (1, 1), "CEIL"),   # ResNet pool1 shape
    ((1, 2, 7, 7), (3, 3), (2, 2), (1, 1), "FLOOR"),
    ((1, 2, 5, 5), (4, 4), (3, 3), (2, 2), "CEIL"),   # a window in the pad
    ((1, 3, 7, 9), (2, 3), (3, 2), (1, 1), "CEIL"),   # no overlap along H
    ((1, 2, 9, 12), (2, 5), (1, 3), (0, 2), "CEIL"),
    ((1, 2, 3, 3), (3, 3), (2, 2), (0, 0), "CEIL"),   # one window
    ((1, 1, 6, 2), (3, 3), (2, 2), (1, 1), "CEIL"),   # narrower than kernel
]


@pytest.mark.parametrize("shape, kernel, stride, pad, mode", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("special", [False, True])
def test_max_pool_planes_equals_caffe(shape, kernel, stride, pad, mode,
                                      dtype, special):
    x = values(shape, dtype, special)
    out_hw = out_size(shape, kernel, stride, pad, mode)
    assert pool_forward.fits(shape[2:], kernel, stride, pad, out_hw)
    y_ref = naive_max_pool(x, kernel, stride, pad, out_hw)
    planes = shape[0] * shape[1]
    for block in (1, 3, planes):  # blocks of planes, the last one partial
        y = np.full((planes,) + out_hw, 7, dtype)
        pool_forward.max_pool_planes(
            x.reshape((planes,) + shape[2:]), y, kernel, stride, pad,
            block_bytes=block * shape[2] * shape[3] * x.itemsize)
        same_bits(y.reshape(y_ref.shape), y_ref)
    # the public entry point dispatches here when no mask is asked for
    y, mask = max_pool_forward(x, kernel, stride, pad, out_hw, mask=False)
    assert mask is None
    same_bits(y, y_ref)


def test_max_planes_range_writes_only_its_planes():
    x = values((6, 5, 5), np.float32, special=False, seed=3)
    y = np.zeros((6, 5, 5), np.float32)
    pool_forward.max_planes_range(x, y, 2, 4, (3, 3), (1, 1), (1, 1))
    y_ref = naive_max_pool(x[None], (3, 3), (1, 1), (1, 1), (5, 5))[0]
    same_bits(y[2:4], y_ref[2:4])
    assert not y[:2].any() and not y[4:].any()


@pytest.mark.parametrize("in_hw, kernel, stride, pad, out_hw, taken", [
    ((14, 14), (3, 3), (1, 1), (1, 1), (14, 14), True),
    ((112, 112), (3, 3), (2, 2), (0, 0), (56, 56), True),
    ((24, 24), (2, 2), (2, 2), (0, 0), (12, 12), False),  # no overlap
    ((14, 14), (3, 3), (1, 1), (0, 0), (12, 12), False),  # not "same"
    ((9, 9), (3, 3), (3, 1), (0, 0), (3, 7), False),      # width stride 1
])
def test_fits_only_the_geometries_it_speeds_up(in_hw, kernel, stride, pad,
                                               out_hw, taken):
    assert pool_forward.fits(in_hw, kernel, stride, pad, out_hw) is taken


def sequential_mean(x):
    """Caffe's global AVE: +0, plus each cell row by row, over H·W."""
    planes = x.reshape(-1, x.shape[-2] * x.shape[-1])
    total = np.zeros(len(planes), x.dtype)
    for i in range(planes.shape[1]):
        total += planes[:, i]
    return total / x.dtype.type(planes.shape[1])


@pytest.mark.parametrize("shape", [(2, 5, 14, 14), (1, 7, 7, 7),
                                   (3, 2, 1, 5), (1, 1, 1, 1),
                                   (1, 300, 3, 4)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ave_pool_global_adds_in_caffe_order(shape, dtype):
    rng = np.random.default_rng(5)
    # Magnitudes over many orders: any other order of the additions
    # (NumPy's pairwise sum, say) changes low bits.
    x = (rng.standard_normal(shape)
         * np.exp(3 * rng.standard_normal(shape))).astype(dtype)
    x[0, 0] = -0.0  # Caffe's sum starts at +0: the mean is +0, not −0
    y_ref = sequential_mean(x).reshape(shape[:2] + (1, 1))
    planes = shape[0] * shape[1]
    cells = shape[2] * shape[3]
    for block in (1, 4, planes):
        y = np.full(planes, 7, dtype)
        pool_forward.ave_pool_global(
            x.reshape((planes,) + shape[2:]), y,
            block_bytes=block * cells * x.itemsize)
        same_bits(y.reshape(y_ref.shape), y_ref)
    same_bits(ave_pool_forward(x, shape[2:], 1, 0, (1, 1)), y_ref)


@pytest.mark.parametrize("kernel, stride, pad, in_hw, out_hw", [
    (3, 1, 1, (7, 7), (7, 7)),     # "same"
    (3, 2, 0, (7, 7), (3, 3)),     # strided
    ((7, 7), 1, 0, (7, 7), (1, 1)),  # global AVE
])
def test_empty_batch(kernel, stride, pad, in_hw, out_hw):
    x = np.zeros((0, 4) + in_hw, np.float32)
    y, _ = max_pool_forward(x, kernel, stride, pad, out_hw, mask=False)
    assert y.shape == (0, 4) + out_hw
    assert ave_pool_forward(x, kernel, stride, pad, out_hw).shape == y.shape
