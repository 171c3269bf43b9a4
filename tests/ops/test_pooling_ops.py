"""kaffe.ops.pooling against Caffe's loops (pooling_layer.cpp), written out
naively."""
import numpy as np
import pytest

from kaffe.ops import pooling
from kaffe.ops.pooling import (ave_pool_backward, ave_pool_forward,
                               max_pool_backward, max_pool_forward,
                               pool_output_size)
from kaffe.testing.gradient import numeric_gradient

FLT_MAX = float(np.finfo(np.float32).max)


# --------------------------------------------------------------- references

def windows(out_hw, kernel, stride, pad):
    """Caffe's windows: (ph, pw, hstart, hend, wstart, wend), unclipped."""
    for ph in range(out_hw[0]):
        for pw in range(out_hw[1]):
            hs, ws = ph * stride[0] - pad[0], pw * stride[1] - pad[1]
            yield ph, pw, hs, hs + kernel[0], ws, ws + kernel[1]


def in_image(hs, he, ws, we, height, width):
    """The window's cells inside the image, rows then columns."""
    for h in range(max(hs, 0), min(he, height)):
        for w in range(max(ws, 0), min(we, width)):
            yield h, w


def naive_max_pool(x, kernel, stride, pad, out_hw):
    """Start at -FLT_MAX; take a cell only if strictly greater (the first
    maximum wins); padding is never read."""
    y = np.full(x.shape[:2] + out_hw, -FLT_MAX, dtype=x.dtype)
    mask = np.full(x.shape[:2] + out_hw, -1)
    height, width = x.shape[2:]
    for n, c in np.ndindex(x.shape[:2]):
        for ph, pw, *window in windows(out_hw, kernel, stride, pad):
            for h, w in in_image(*window, height, width):
                if x[n, c, h, w] > y[n, c, ph, pw]:
                    y[n, c, ph, pw] = x[n, c, h, w]
                    mask[n, c, ph, pw] = h * width + w
    return y, mask


def naive_max_backward(dy, mask, x_shape):
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for n, c, ph, pw in np.ndindex(dy.shape):
        if mask[n, c, ph, pw] >= 0:
            h, w = divmod(int(mask[n, c, ph, pw]), x_shape[3])
            dx[n, c, h, w] += dy[n, c, ph, pw]
    return dx


def caffe_pool_size(hs, he, ws, we, height, width, pad):
    """AVE divisor: the window cut at the padded edge (H + pad), before it
    is clipped to the image."""
    return ((min(he, height + pad[0]) - hs)
            * (min(we, width + pad[1]) - ws))


def naive_ave_pool(x, kernel, stride, pad, out_hw):
    y = np.zeros(x.shape[:2] + out_hw, dtype=x.dtype)
    height, width = x.shape[2:]
    for n, c in np.ndindex(x.shape[:2]):
        for ph, pw, *window in windows(out_hw, kernel, stride, pad):
            for h, w in in_image(*window, height, width):
                y[n, c, ph, pw] += x[n, c, h, w]
            y[n, c, ph, pw] /= caffe_pool_size(*window, height, width, pad)
    return y


def naive_ave_backward(dy, x_shape, kernel, stride, pad):
    dx = np.zeros(x_shape, dtype=dy.dtype)
    height, width = x_shape[2:]
    for n, c in np.ndindex(x_shape[:2]):
        for ph, pw, *window in windows(dy.shape[2:], kernel, stride, pad):
            size = caffe_pool_size(*window, height, width, pad)
            for h, w in in_image(*window, height, width):
                dx[n, c, h, w] += dy[n, c, ph, pw] / size
    return dx


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def output_hw(shape, kernel, stride, pad, mode):
    return tuple(pool_output_size(s, k, st, p, mode) for s, k, st, p
                 in zip(shape[2:], pair(kernel), pair(stride), pair(pad)))


# (input shape, kernel, stride, pad, round mode)
CASES = [
    ((2, 3, 6, 6), 3, 2, 1, "CEIL"),   # windows cross the padded edge
    ((2, 3, 6, 6), 3, 2, 1, "FLOOR"),
    ((1, 2, 5, 5), 2, 2, 1, "CEIL"),   # the clip rule drops a window
    ((2, 2, 7, 6), 3, 2, 0, "CEIL"),   # CEIL overhang without padding
    ((1, 3, 7, 9), (3, 2), (2, 3), (1, 1), "CEIL"),
    ((2, 2, 5, 6), (2, 4), (1, 2), (1, 2), "FLOOR"),
    ((1, 2, 4, 5), (4, 5), 1, 0, "CEIL"),   # global pooling
]


# -------------------------------------------------------------- output size

@pytest.mark.parametrize("size, kernel, stride, pad, mode, expected", [
    # ceil(5/2) + 1; the last window starts at row 5, inside the image
    (6, 3, 2, 1, "CEIL", 4),
    (6, 3, 2, 1, "FLOOR", 3),
    # ceil(5/2) + 1 = 4, but window 4 would start at row 5 = H: clipped
    (5, 2, 2, 1, "CEIL", 3),
    (5, 2, 2, 1, "FLOOR", 3),
    (112, 3, 2, 1, "CEIL", 57),  # ResNet pool1: 57 in Caffe, 56 in floor mode
    (112, 3, 2, 0, "CEIL", 56),  # GoogLeNet pool1
    (55, 3, 2, 0, "CEIL", 27),   # AlexNet pool1
    (7, 2, 2, 0, "CEIL", 4),     # no pad, no clip: the last window overhangs
    (7, 2, 2, 0, "FLOOR", 3),
    (13, 13, 1, 0, "CEIL", 1),   # global
])
def test_pool_output_size(size, kernel, stride, pad, mode, expected):
    assert pool_output_size(size, kernel, stride, pad, mode) == expected


def test_pool_output_size_rejects_an_unknown_round_mode():
    with pytest.raises(ValueError, match="round_mode"):
        pool_output_size(6, 3, 2, 1, "NEAREST")


# ---------------------------------------------------------------------- MAX

@pytest.mark.parametrize("shape, kernel, stride, pad, mode", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_equals_caffe(shape, kernel, stride, pad, mode, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    size = output_hw(shape, kernel, stride, pad, mode)
    y, mask = max_pool_forward(x, kernel, stride, pad, size)
    y_ref, mask_ref = naive_max_pool(x, pair(kernel), pair(stride),
                                     pair(pad), size)
    assert y.dtype == dtype and mask.dtype == np.int32
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(mask, mask_ref)
    y_only, no_mask = max_pool_forward(x, kernel, stride, pad, size,
                                       mask=False)
    assert no_mask is None
    np.testing.assert_array_equal(y_only, y_ref)
    dy = rng.standard_normal(y.shape).astype(dtype)
    np.testing.assert_array_equal(max_pool_backward(dy, mask, shape),
                                  naive_max_backward(dy, mask_ref, shape))


def test_max_pool_keeps_the_first_of_tied_maxima_and_ignores_padding():
    x = -np.ones((1, 1, 3, 3))
    x[0, 0, 1, 1] = x[0, 0, 2, 2] = 5.0
    y, mask = max_pool_forward(x, 3, 2, 1, (2, 2))
    # Every window holds (1, 1); window (1, 1) also holds (2, 2), later.
    np.testing.assert_array_equal(y[0, 0], [[5, 5], [5, 5]])
    np.testing.assert_array_equal(mask[0, 0], [[4, 4], [4, 4]])
    # A zero pad would beat these all-negative windows if it were read.
    y, _ = max_pool_forward(-np.ones((1, 1, 2, 2)), 2, 1, 1, (3, 3))
    np.testing.assert_array_equal(y, -1.0)
    _, mask = max_pool_forward(np.zeros((1, 1, 2, 4)), 2, 2, 0, (1, 2))
    np.testing.assert_array_equal(mask[0, 0], [[0, 2]])


def test_max_pool_window_without_cells():
    # CEIL, no padding, stride 3 > kernel 1: window 2 starts at row 6 > 4.
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    size = (pool_output_size(5, 1, 3, 0), 1)
    assert size == (3, 1)
    y, mask = max_pool_forward(x, (1, 5), (3, 1), 0, size)
    np.testing.assert_array_equal(y[0, 0, :, 0], [4, 19, -FLT_MAX])
    np.testing.assert_array_equal(mask[0, 0, :, 0], [4, 19, -1])
    dx = max_pool_backward(np.ones_like(y), mask, x.shape)
    assert dx.sum() == 2 and dx[0, 0, 0, 4] == 1 and dx[0, 0, 3, 4] == 1
    # Cells at or below -FLT_MAX never win, as in Caffe.
    y, mask = max_pool_forward(np.full((1, 1, 2, 2), -np.inf), 2, 2, 0,
                               (1, 1))
    assert y[0, 0, 0, 0] == -FLT_MAX and mask[0, 0, 0, 0] == -1


def test_max_pool_backward_sums_shared_maxima():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 1.0
    _, mask = max_pool_forward(x, 2, 1, 0, (2, 2))
    dy = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    dx = max_pool_backward(dy, mask, x.shape)
    assert dx[0, 0, 1, 1] == 10.0 and dx.sum() == 10.0


@pytest.mark.parametrize("shape, kernel, stride, pad, mode", CASES[:3])
def test_max_pool_backward_matches_finite_differences(shape, kernel, stride,
                                                      pad, mode):
    rng = np.random.default_rng(1)
    x = rng.permutation(np.prod(shape)).reshape(shape) / 7.0  # no ties
    size = output_hw(shape, kernel, stride, pad, mode)
    _, mask = max_pool_forward(x, kernel, stride, pad, size)
    r = rng.standard_normal(mask.shape)

    def loss():
        return np.vdot(max_pool_forward(x, kernel, stride, pad, size)[0], r)

    np.testing.assert_allclose(max_pool_backward(r, mask, shape),
                               numeric_gradient(loss, x, eps=1e-4),
                               atol=1e-8)


# ---------------------------------------------------------------------- AVE

@pytest.mark.parametrize("shape, kernel, stride, pad, mode", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ave_pool_equals_caffe(shape, kernel, stride, pad, mode, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(dtype)
    size = output_hw(shape, kernel, stride, pad, mode)
    y = ave_pool_forward(x, kernel, stride, pad, size)
    assert y.dtype == dtype
    geometry = (pair(kernel), pair(stride), pair(pad))
    np.testing.assert_array_equal(y, naive_ave_pool(x, *geometry, size))
    dy = rng.standard_normal(y.shape).astype(dtype)
    np.testing.assert_array_equal(
        ave_pool_backward(dy, shape, kernel, stride, pad),
        naive_ave_backward(dy, shape, *geometry))


def test_ave_pool_divisor_counts_padding_but_not_overhang():
    # 4×4 ones, kernel 3, stride 2, pad 1: 3×3 windows, along each axis
    # [-1, 2) [1, 4) [3, 6) of sizes 3, 3, 2 (the last is cut at
    # H + pad = 5) holding 2, 3, 1 in-image cells.
    y = ave_pool_forward(np.ones((1, 1, 4, 4)), 3, 2, 1, (3, 3))
    cells, sizes = np.array([2, 3, 1]), np.array([3, 3, 2])
    expected = np.outer(cells, cells) / np.outer(sizes, sizes)
    np.testing.assert_allclose(y[0, 0], expected, rtol=1e-15)
    assert y[0, 0, 2, 2] == 0.25 and y[0, 0, 0, 0] == 4 / 9


def test_ave_pool_global_is_the_mean():
    x = np.random.default_rng(4).standard_normal((2, 3, 4, 5))
    y = ave_pool_forward(x, (4, 5), 1, 0, (1, 1))
    np.testing.assert_allclose(y[..., 0, 0], x.mean(axis=(2, 3)), rtol=1e-14)


@pytest.mark.parametrize("shape, kernel, stride, pad, mode",
                         [CASES[0], CASES[2], CASES[5]])
def test_ave_pool_backward_matches_finite_differences(shape, kernel, stride,
                                                      pad, mode):
    x = np.random.default_rng(5).standard_normal(shape)
    size = output_hw(shape, kernel, stride, pad, mode)
    r = np.random.default_rng(6).standard_normal(shape[:2] + size)

    def loss():
        return np.vdot(ave_pool_forward(x, kernel, stride, pad, size), r)

    np.testing.assert_allclose(
        ave_pool_backward(r, shape, kernel, stride, pad),
        numeric_gradient(loss, x), rtol=1e-6, atol=1e-9)


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        max_pool_forward(np.zeros((3, 4, 4)), 2, 2, 0, (2, 2))
    with pytest.raises(ValueError, match="pair"):
        ave_pool_forward(np.zeros((1, 1, 4, 4)), (2, 2, 2), 2, 0, (2, 2))
    with pytest.raises(ValueError, match="mask shape"):
        max_pool_backward(np.zeros((1, 1, 2, 2)),
                          np.zeros((1, 1, 3, 3), np.int32), (1, 1, 4, 4))


# ------------------------------------- MAX: special values, the mask-free and
# the out= paths (each bit for bit against the loops above)

def same_bits(a, b):
    """Equal to the bit: tells +0 from −0 (and NaN payloads apart)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(a.view(f"u{a.itemsize}"),
                                  b.view(f"u{b.itemsize}"))


def special_values(shape, dtype, seed=0):
    """Small integers (many exact ties, zeros all +0) with NaN, ±inf and
    −FLT_MAX sprinkled in."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, shape).astype(dtype)
    flat = x.reshape(-1)
    for value in (np.nan, np.inf, -np.inf, -FLT_MAX):
        flat[rng.choice(flat.size, flat.size // 10, replace=False)] = value
    return x


SPECIAL_CASES = CASES + [
    ((2, 3, 8, 8), 2, 2, 0, "CEIL"),     # LeNet: windows tile the map
    ((1, 2, 9, 9), 3, 2, 0, "CEIL"),     # ResNet pool1: overlap, overhang
    ((1, 2, 2, 3), (3, 4), 1, (1, 2), "CEIL"),  # kernel wider than W
    ((1, 2, 3, 62), 3, 3, 0, "FLOOR"),    # 8-bit codes up to 127
    ((1, 2, 3, 63), 3, 3, 0, "FLOOR"),    # 16-bit codes from 129
    ((1, 1, 3, 16380), 3, 3, 0, "FLOOR"),  # 16-bit codes up to 32763
    ((1, 1, 3, 17000), 3, 3, 0, "FLOOR"),  # 32-bit winner codes
]


@pytest.mark.parametrize("shape, kernel, stride, pad, mode", SPECIAL_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_special_values_equal_caffe(shape, kernel, stride, pad,
                                             mode, dtype):
    x = special_values(shape, dtype)
    x[0, 0, :2, :2] = np.nan  # a window of NaN and nothing else
    size = output_hw(shape, kernel, stride, pad, mode)
    y_ref, mask_ref = naive_max_pool(x, pair(kernel), pair(stride),
                                     pair(pad), size)
    y, mask = max_pool_forward(x, kernel, stride, pad, size)
    same_bits(y, y_ref)
    np.testing.assert_array_equal(mask, mask_ref)
    y_only, _ = max_pool_forward(x, kernel, stride, pad, size, mask=False)
    same_bits(y_only, y_ref)
    # −0 gradients become +0 (Caffe adds to a zeroed diff); NaN gradients
    # of windows without a maximum go nowhere.
    rng = np.random.default_rng(1)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dy[0, 0, 0, 0] = -0.0
    dy[mask_ref < 0] = np.nan
    same_bits(max_pool_backward(dy, mask, shape),
              naive_max_backward(dy, mask_ref, shape))


@pytest.mark.parametrize("chunk_planes", [1, 4])
def test_max_pool_without_mask_by_chunks_of_planes(monkeypatch, chunk_planes):
    # 2·5 = 10 planes of 9×9 float32: chunks of 1 plane, or 4, 4 and 2.
    monkeypatch.setattr(pooling, "_CHUNK_BYTES", chunk_planes * 9 * 9 * 4)
    x = special_values((2, 5, 9, 9), np.float32, seed=4)
    y_ref, _ = naive_max_pool(x, (3, 3), (2, 2), (1, 1), (5, 5))
    y, _ = max_pool_forward(x, 3, 2, 1, (5, 5), mask=False)
    same_bits(y, y_ref)


@pytest.mark.parametrize("chunk_planes", [1, 4])
@pytest.mark.parametrize("kernel, stride, pad, size", [
    (3, 2, 1, (5, 5)),   # overlapping windows across the padded edge
    (2, 2, 0, (4, 4)),   # LeNet's and VGG's 2×2 stride 2
])
def test_max_pool_with_mask_by_chunks_of_planes(monkeypatch, chunk_planes,
                                                kernel, stride, pad, size):
    # 10 planes of 9×9 float32 with ties, NaN, ±inf and −FLT_MAX: chunks
    # of 1 plane, or of 4, 4 and 2, give the one-chunk result bit for bit.
    x = special_values((2, 5, 9, 9), np.float32, seed=5)
    y_ref, mask_ref = naive_max_pool(x, pair(kernel), pair(stride),
                                     pair(pad), size)
    monkeypatch.setattr(pooling, "_CHUNK_BYTES", 1 << 30)
    y_one, mask_one = max_pool_forward(x, kernel, stride, pad, size)
    monkeypatch.setattr(pooling, "_CHUNK_BYTES", chunk_planes * 9 * 9 * 4)
    y, mask = max_pool_forward(x, kernel, stride, pad, size)
    same_bits(y, y_one)
    same_bits(y, y_ref)
    np.testing.assert_array_equal(mask, mask_one)
    np.testing.assert_array_equal(mask, mask_ref)


def test_max_pool_backward_adds_shared_maxima_in_output_order():
    # Nine overlapping windows share one maximum: float32 sums depend on
    # the order, which must be Caffe's (output order).
    x = np.zeros((1, 1, 5, 5), np.float32)
    x[0, 0, 2, 2] = 1
    _, mask = max_pool_forward(x, 3, 1, 0, (3, 3))
    dy = (np.random.default_rng(2).standard_normal((1, 1, 3, 3))
          * 10.0 ** np.arange(-4, 5).reshape(1, 1, 3, 3)).astype(np.float32)
    same_bits(max_pool_backward(dy, mask, x.shape),
              naive_max_backward(dy, mask, x.shape))


def test_max_pool_writes_into_out():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 7, 7)).astype(np.float32)
    y_ref, mask_ref = max_pool_forward(x, 3, 2, 0, (3, 3))
    for with_mask in (True, False):
        out = np.full((2, 3, 3, 3), 7.0, np.float32)
        y, _ = max_pool_forward(x, 3, 2, 0, (3, 3), mask=with_mask, out=out)
        assert y is out
        same_bits(out, y_ref)
    dy = rng.standard_normal(y_ref.shape).astype(np.float32)
    dx = np.full(x.shape, 7.0, np.float32)  # overwritten, zeros included
    assert max_pool_backward(dy, mask_ref, x.shape, out=dx) is dx
    same_bits(dx, max_pool_backward(dy, mask_ref, x.shape))


@pytest.mark.parametrize("out, why", [
    (np.zeros((2, 3, 3, 3), np.float64), "float32"),
    (np.zeros((2, 3, 3, 4), np.float32), r"\(2, 3, 3, 3\)"),
    (np.zeros((2, 3, 3, 6), np.float32)[..., ::2], "not contiguous"),
])
def test_max_pool_refuses_an_unfit_out(out, why):
    x = np.zeros((2, 3, 7, 7), np.float32)
    with pytest.raises(ValueError, match=why):
        max_pool_forward(x, 3, 2, 0, (3, 3), out=out)


@pytest.mark.parametrize("chunk_planes", [1, 4])
def test_max_pool_backward_by_chunks_of_planes(monkeypatch, chunk_planes):
    # 10 planes of 9×9 float32 (chunks of 1 plane, or of 4, 4 and 2), with
    # windows without a maximum (mask −1, NaN gradients that go nowhere),
    # a −0 gradient and shared maxima: bit for bit the naive scatter.
    x = special_values((2, 5, 9, 9), np.float32, seed=6)
    x[0, 0, :3, :3] = np.nan        # the first plane's first window
    x[1, 2] = -np.inf               # a whole plane inside a chunk
    _, mask = naive_max_pool(x, (3, 3), (2, 2), (1, 1), (5, 5))
    assert (mask < 0).any() and (mask >= 0).any()
    dy = np.random.default_rng(7).standard_normal(mask.shape).astype(
        np.float32)
    dy[0, 0, 0, 0] = -0.0
    dy[mask < 0] = np.nan
    monkeypatch.setattr(pooling, "_CHUNK_BYTES", chunk_planes * 9 * 9 * 4)
    dx = np.full(x.shape, np.nan, np.float32)
    assert max_pool_backward(dy, mask, x.shape, out=dx) is dx
    same_bits(dx, naive_max_backward(dy, mask, x.shape))


@pytest.mark.parametrize("chunk_planes", [1, 4])
def test_ave_pool_by_chunks_of_planes(monkeypatch, chunk_planes):
    # 10 planes of 9×9 float32, padded and CEIL-overhanging windows: chunks
    # of 1 plane, or of 4, 4 and 2, equal Caffe's loops bit for bit.
    monkeypatch.setattr(pooling, "_CHUNK_BYTES", chunk_planes * 9 * 9 * 4)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 5, 9, 9)).astype(np.float32)
    geometry = ((3, 3), (2, 2), (1, 1))
    size = output_hw(x.shape, 3, 2, 1, "CEIL")
    y = ave_pool_forward(x, 3, 2, 1, size)
    np.testing.assert_array_equal(y, naive_ave_pool(x, *geometry, size))
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = np.full(x.shape, np.nan, np.float32)
    assert ave_pool_backward(dy, x.shape, 3, 2, 1, out=dx) is dx
    np.testing.assert_array_equal(dx, naive_ave_backward(dy, x.shape,
                                                         *geometry))
