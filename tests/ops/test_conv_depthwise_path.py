"""The Convolution ops' depthwise path (group = channels = filters, 2-D:
kaffe.ops.depthwise) against the generic grouped im2col path."""
import numpy as np
import pytest

from kaffe.ops import conv
from kaffe.ops.conv import depthwise_applies

# (x shape, kernel, stride, pad, dilation)
CASES = [((2, 3, 9, 8), (3, 3), 1, 1, 1), ((1, 4, 10, 7), (3, 3), 2, 1, 1),
         ((2, 2, 7, 9), (2, 3), (1, 2), (0, 1), (2, 1))]


def _generic(fn, *args, **kwargs):
    """Run a conv op with the depthwise path switched off."""
    original = conv.depthwise_applies
    conv.depthwise_applies = lambda *a: False
    try:
        return fn(*args, **kwargs)
    finally:
        conv.depthwise_applies = original


@pytest.mark.parametrize("case", CASES)
def test_depthwise_matches_the_grouped_path(case):
    shape, kernel, stride, pad, dilation = case
    rng = np.random.default_rng(0)
    c = shape[1]
    x = rng.standard_normal(shape)
    w = rng.standard_normal((c, 1) + kernel)
    b = rng.standard_normal(c)
    geometry = (stride, pad, dilation, c)
    y = conv.conv_forward(x, w, b, *geometry)
    np.testing.assert_allclose(
        y, _generic(conv.conv_forward, x, w, b, *geometry), rtol=1e-12,
        atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dw = np.zeros_like(w)
    dx = conv.conv_backward(dy, x, w, dw, True, *geometry)
    dw_ref = np.zeros_like(w)
    dx_ref = _generic(conv.conv_backward, dy, x, w, dw_ref, True, *geometry)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        conv.conv_backward_data(dy, w, x.shape, *geometry), dx_ref,
        rtol=1e-12, atol=1e-12)


def test_which_convolutions_are_depthwise():
    assert depthwise_applies((1, 8, 5, 5), (8, 1, 3, 3), 8)
    assert not depthwise_applies((1, 8, 5, 5), (16, 1, 3, 3), 8)  # ×2
    assert not depthwise_applies((1, 8, 5, 5), (8, 2, 3, 3), 4)
    assert not depthwise_applies((1, 1, 5, 5), (1, 1, 3, 3), 1)
    assert not depthwise_applies((1, 8, 5), (8, 1, 3), 8)   # 1-D: generic


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocks_on_kaffes_tasks_match_one_thread(dtype):
    """The depthwise kernel's blocks run on kaffe.threads.parallel_for when
    asked (Convolution does not: one thread measured faster): the same
    values as one thread, and as the grouped GEMM."""
    from kaffe import threads
    from kaffe.ops.depthwise import depthwise_forward
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 40, 60, 60)).astype(dtype)
    w = rng.standard_normal((40, 1, 3, 3)).astype(dtype)
    b = rng.standard_normal(40).astype(dtype)
    geometry = ((2, 2), (1, 1), (1, 1))
    one = depthwise_forward(x, w, b, *geometry)
    try:
        threads.set_num_threads(2, adaptive=False)
        several = depthwise_forward(x, w, b, *geometry,
                                    parallel=threads.parallel_for,
                                    min_blocks=4)
    finally:
        threads.set_num_threads()
    np.testing.assert_array_equal(several, one)
    np.testing.assert_allclose(
        one, _generic(conv.conv_forward, x, w, b, 2, 1, 1, 40),
        rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)
