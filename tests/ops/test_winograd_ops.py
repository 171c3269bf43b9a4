"""kaffe.ops.winograd (F(4,3)) against the direct im2col convolution: exact
to rounding in float64, within a stated bound in float32; the shape rule;
the filter-transform cache."""
import numpy as np
import pytest

from kaffe.ops import conv
from kaffe.ops.conv import conv_backward_data, conv_forward
from kaffe.ops.winograd import (WinogradFilters, winograd_applies,
                                winograd_backward_data, winograd_forward)

# (N, C, H, W, M, pad): odd sizes, partial edge tiles, pads 0..2, several
# chunks (the 33-channel 70×70 case spans more than one chunk of rows).
SHAPES = [(2, 3, 9, 7, 4, 1), (1, 5, 4, 4, 2, 0), (3, 4, 11, 13, 6, 2),
          (1, 2, 6, 5, 3, (1, 2)), (1, 33, 70, 70, 8, 1)]


def _case(shape, dtype, seed=0):
    n, c, h, w, m, pad = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    f = rng.standard_normal((m, c, 3, 3)).astype(dtype)
    b = rng.standard_normal(m).astype(dtype)
    return x, f, b, pad


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_direct_in_float64(shape):
    x, f, b, pad = _case(shape, np.float64)
    np.testing.assert_allclose(winograd_forward(x, f, b, pad),
                               conv_forward(x, f, b, 1, pad),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("store_min", [0, 1 << 40])
@pytest.mark.parametrize("shape", SHAPES)
def test_both_ways_of_storing_the_output_blocks(shape, store_min,
                                                monkeypatch):
    """Strided copies per (a, c) (large blocks) and one transposed copy
    (small ones) store the same values, cropped at the edges, bias added."""
    from kaffe.ops import winograd
    monkeypatch.setattr(winograd, "_STRIDED_STORE_MIN", store_min)
    x, f, b, pad = _case(shape, np.float64, seed=4)
    np.testing.assert_allclose(winograd_forward(x, f, b, pad),
                               conv_forward(x, f, b, 1, pad),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_backward_data_matches_direct_in_float64(shape):
    x, f, _, pad = _case(shape, np.float64)
    dy = np.random.default_rng(5).standard_normal(
        conv_forward(x, f, None, 1, pad).shape)
    np.testing.assert_allclose(winograd_backward_data(dy, f, x.shape, pad),
                               conv_backward_data(dy, f, x.shape, 1, pad),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("channels", [32, 256])
def test_float32_error_is_bounded(channels):
    """Against the float64 direct sum, F(4,3) in float32 errs by at most
    2e-5 of the output's largest magnitude (the parity tests allow 1e-5 ·
    scale plus 1e-4 relative)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, channels, 20, 20))
    f = rng.standard_normal((channels, channels, 3, 3)) / np.sqrt(
        9 * channels)
    exact = conv_forward(x, f, None, 1, 1)
    ours = winograd_forward(x.astype(np.float32), f.astype(np.float32),
                            None, 1)
    assert ours.dtype == np.float32
    assert np.abs(ours - exact).max() <= 2e-5 * np.abs(exact).max()
    dy = rng.standard_normal(exact.shape)
    exact_dx = conv_backward_data(dy, f, x.shape, 1, 1)
    ours_dx = winograd_backward_data(dy.astype(np.float32),
                                     f.astype(np.float32), x.shape, 1)
    assert np.abs(ours_dx - exact_dx).max() <= 2e-5 * np.abs(
        exact_dx).max()


def test_shape_rule():
    f32 = np.float32
    assert winograd_applies((1, 64, 56, 56), (64, 64, 3, 3), 1, 1, 1, 1, f32)
    # float64 always takes the direct path (gradient checks stay exact)
    assert not winograd_applies((1, 64, 56, 56), (64, 64, 3, 3), 1, 1, 1, 1,
                                np.float64)
    # stride, dilation, group, kernel, too few channels, wasteful tiles
    assert not winograd_applies((1, 64, 56, 56), (64, 64, 3, 3), 2, 1, 1, 1,
                                f32)
    assert not winograd_applies((1, 64, 56, 56), (64, 64, 3, 3), 1, 1, 2, 1,
                                f32)
    assert not winograd_applies((1, 64, 56, 56), (64, 32, 3, 3), 1, 1, 1, 2,
                                f32)
    assert not winograd_applies((1, 64, 56, 56), (64, 64, 5, 5), 1, 2, 1, 1,
                                f32)
    assert not winograd_applies((1, 3, 224, 224), (64, 3, 3, 3), 1, 1, 1, 1,
                                f32)
    assert not winograd_applies((1, 512, 7, 7), (512, 512, 3, 3), 1, 1, 1,
                                1, f32)
    # backward-data needs pad <= 2
    assert not winograd_applies((1, 64, 56, 56), (64, 64, 3, 3), 1, 3, 1, 1,
                                f32, backward=True)


def test_conv_ops_take_winograd_by_shape():
    """conv_forward / conv_backward_data route a fitting float32 layer
    through Winograd: the results differ from im2col's in the last bits
    only, and the transform cache is filled."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 32, 28, 28)).astype(np.float32)
    f = (rng.standard_normal((32, 32, 3, 3)) / 17).astype(np.float32)
    cache = WinogradFilters()
    y = conv_forward(x, f, None, 1, 1, winograd=cache)
    assert cache.get(f) is cache.get(f)
    exact = conv_forward(x.astype(np.float64), f.astype(np.float64), None,
                         1, 1)
    assert np.abs(y - exact).max() <= 2e-5 * np.abs(exact).max()
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = conv.conv_backward(dy, x, f, None, True, 1, 1,
                            winograd=WinogradFilters())
    exact_dx = conv_backward_data(dy.astype(np.float64),
                                  f.astype(np.float64), x.shape, 1, 1)
    assert np.abs(dx - exact_dx).max() <= 2e-5 * np.abs(exact_dx).max()


def test_filter_cache_follows_changed_weights():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 4, 8, 8))
    f = rng.standard_normal((3, 4, 3, 3))
    cache = WinogradFilters()
    winograd_forward(x, f, None, 1, filters=cache)
    f *= 2          # updated in place, as a solver step does
    np.testing.assert_allclose(winograd_forward(x, f, None, 1,
                                                filters=cache),
                               conv_forward(x, f, None, 1, 1),
                               rtol=1e-12, atol=1e-12)


def test_parallel_tasks_give_the_same_result():
    from kaffe import threads
    x, f, b, pad = _case(SHAPES[4], np.float32)
    serial = winograd_forward(x, f, b, pad)
    np.testing.assert_array_equal(
        winograd_forward(x, f, b, pad, parallel=threads.parallel_for),
        serial)


@pytest.mark.parametrize("blas_threads", [1, 2])
def test_chunks_as_tasks_or_blas_threads(blas_threads, monkeypatch):
    """Several chunks run as parallel tasks (their own scratch each) unless
    BLAS takes the threads; the result is the same either way."""
    from kaffe.ops import winograd
    monkeypatch.setattr(winograd, "_CHUNK_ELEMENTS", 1)
    monkeypatch.setattr(winograd, "_CHUNK_MIN_TILES", 8)
    x, f, b, pad = _case((2, 6, 23, 21, 5, 1), np.float64, seed=7)
    calls = []

    def runner(fn, count):
        calls.append(count)
        for i in reversed(range(count)):
            fn(i)

    asked = []

    def blas(flops):
        asked.append(flops)
        return blas_threads

    ours = winograd_forward(x, f, b, pad, parallel=runner, blas=blas)
    np.testing.assert_allclose(ours, conv_forward(x, f, b, 1, pad),
                               rtol=1e-12, atol=1e-12)
    assert asked and asked[0] > 0
    if blas_threads > 1:
        assert calls == []
    else:
        assert calls and calls[0] > 1     # the chunks are the tasks


@pytest.mark.parametrize("workspace", [1, 3000, 1 << 20])
def test_a_workspace_bound_makes_smaller_chunks_on_one_thread(workspace):
    """Lean inference: the chunk's scratch arrays held near ``workspace``
    elements (down to one tile row), chunks run serially, same values."""
    from kaffe.ops import winograd
    x, f, b, pad = _case((2, 6, 23, 21, 5, 1), np.float64, seed=8)
    calls = []

    def runner(fn, count):
        calls.append(count)
        for i in range(count):
            fn(i)

    np.testing.assert_allclose(
        winograd_forward(x, f, b, pad, parallel=runner, workspace=workspace),
        conv_forward(x, f, b, 1, pad), rtol=1e-12, atol=1e-12)
    assert calls == []          # one thread: no tasks handed out
    chunks = winograd._chunks(2, 6, 6, 6, workspace)
    rows = max(r1 - r0 for _, _, r0, r1 in chunks)
    scratch = 6 * 36 * 6 * rows * 6
    assert rows == 1 or scratch <= workspace


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="must be"):
        winograd_forward(np.zeros((1, 2, 5, 5)), np.zeros((1, 3, 3, 3)))
    with pytest.raises(ValueError, match="pad"):
        winograd_backward_data(np.zeros((1, 1, 9, 9)),
                               np.zeros((1, 2, 3, 3)), (1, 2, 3, 3), pad=3)
