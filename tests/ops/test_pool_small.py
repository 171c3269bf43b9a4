"""SmallMaxPool: the bits of max_pool_forward (no mask), where it applies."""
import numpy as np
import pytest

from kaffe.ops.pool_small import SmallMaxPool
from kaffe.ops.pooling import max_pool_forward, pool_output_size

F32_MAX = np.finfo(np.float32).max


def _input(shape, dtype, special):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape).astype(dtype)
    if special:
        # Ties of zeros of both signs, NaN, ±inf, ±FLT_MAX, whole windows
        # of NaN / -inf.
        flat = x.reshape(-1)
        picks = rng.integers(0, 12, flat.size)
        values = [0.0, -0.0, np.nan, -np.inf, np.inf, -F32_MAX, F32_MAX]
        for code, value in enumerate(values):
            flat[picks == code] = value
        x[0, 0, :2, :2] = np.nan
        x[-1, -1, :2, :2] = -np.inf
    return x


@pytest.mark.parametrize("special", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, kernel, stride", [
    ((1, 10, 10, 10), (2, 2), (2, 2)),      # P-Net pool1
    ((8, 20, 24, 24), (2, 2), (2, 2)),      # LeNet pool1, batch 8
    ((2, 3, 9, 9), (3, 3), (2, 2)),         # overlapping windows
    ((2, 3, 7, 9), (3, 1), (1, 2)),         # a one-cell axis
    ((1, 2, 5, 5), (1, 1), (1, 1)),
])
def test_same_bits_as_max_pool_forward(shape, kernel, stride, dtype, special):
    out_hw = tuple(pool_output_size(s, k, st, 0)
                   for s, k, st in zip(shape[2:], kernel, stride))
    small = SmallMaxPool.build(shape, dtype, kernel, stride, (0, 0), out_hw)
    assert small is not None
    x = _input(shape, dtype, special)
    expected, _ = max_pool_forward(x, kernel, stride, 0, out_hw, mask=False)
    y = np.full(expected.shape, 5.0, dtype=dtype)
    small.forward(x, y)
    np.testing.assert_array_equal(y.view(f"u{y.itemsize}"),
                                  expected.view(f"u{y.itemsize}"))


def test_refused_where_windows_reach_outside_or_are_few():
    # Padding: the border windows miss cells.
    assert SmallMaxPool.build((1, 1, 6, 6), np.float32, (3, 3), (2, 2),
                              (1, 1), (3, 3)) is None
    # CEIL overhang: the last window is cut by the image's edge.
    assert SmallMaxPool.build((1, 1, 5, 5), np.float32, (2, 2), (2, 2),
                              (0, 0), (3, 3)) is None
    # Global pooling of a large plane: max_pool_forward loops windows.
    assert SmallMaxPool.build((1, 1, 12, 12), np.float32, (12, 12), (1, 1),
                              (0, 0), (1, 1)) is None
    # Large inputs keep max_pool_forward's cache-sized chunks.
    assert SmallMaxPool.build((8, 64, 56, 56), np.float32, (2, 2), (2, 2),
                              (0, 0), (28, 28)) is None
