"""kaffe.ops.depthwise against a dense grouped convolution (torch)."""
import numpy as np
import pytest

from kaffe.ops import depthwise
from kaffe.ops.depthwise import depthwise_backward, depthwise_forward


@pytest.mark.parametrize("stride, pad, dilation", [((1, 1), (1, 1), (1, 1)),
                                                   ((2, 1), (0, 2), (1, 2))])
def test_matches_torch_grouped_conv(stride, pad, dilation):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 8))
    w = rng.standard_normal((3, 1, 3, 2))
    b = rng.standard_normal(3)
    y = depthwise_forward(x, w, b, stride, pad, dilation)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, wt, torch.tensor(b), stride, pad,
                                    dilation, groups=3)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(dy))
    dx, dw = depthwise_backward(dy, x, w, stride, pad, dilation)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, wt.grad.numpy(), rtol=1e-12, atol=1e-12)


def _reference(x, w, b, stride, pad, dilation):
    """Tap by tap on the zero-padded input, in (i, j) order, each product
    rounded then added (the forks' loop), bias last."""
    n, c, h, wd = x.shape
    kh, kw = w.shape[-2:]
    oh = (h + 2 * pad[0] - (dilation[0] * (kh - 1) + 1)) // stride[0] + 1
    ow = (wd + 2 * pad[1] - (dilation[1] * (kw - 1) + 1)) // stride[1] + 1
    padded = np.zeros((n, c, h + 2 * pad[0], wd + 2 * pad[1]), x.dtype)
    padded[:, :, pad[0]:pad[0] + h, pad[1]:pad[1] + wd] = x
    y = np.zeros((n, c, oh, ow), x.dtype)
    for i in range(kh):
        for j in range(kw):
            top, left = i * dilation[0], j * dilation[1]
            window = padded[:, :, top:top + stride[0] * (oh - 1) + 1:stride[0],
                            left:left + stride[1] * (ow - 1) + 1:stride[1]]
            y += w[:, 0, i, j][None, :, None, None] * window
    if b is not None:
        y += b[None, :, None, None]
    return y


GEOMETRIES = [  # x shape, kernel, stride, pad, dilation
    ((1, 3, 7, 8), (3, 3), (1, 1), (1, 1), (1, 1)),
    ((2, 5, 9, 6), (3, 3), (2, 2), (1, 1), (1, 1)),
    ((3, 4, 11, 13), (3, 2), (2, 1), (0, 2), (1, 2)),
    ((2, 6, 10, 9), (3, 3), (1, 2), (2, 2), (2, 2)),
    ((1, 2, 12, 12), (5, 5), (3, 2), (2, 1), (1, 1)),
    ((2, 3, 6, 7), (3, 3), (1, 1), (0, 0), (1, 1)),
    ((2, 4, 1, 1), (1, 1), (1, 1), (0, 0), (1, 1)),
    ((1, 3, 4, 5), (3, 3), (2, 3), (3, 1), (2, 1)),
]


@pytest.fixture(params=["rows-major", "positions-major"])
def layout(request, monkeypatch):
    """Both block layouts, each with large blocks and with blocks of a
    few rows (the last one short)."""
    limit = 0 if request.param == "rows-major" else 1 << 30
    monkeypatch.setattr(depthwise, "POSITIONS_MAJOR_MAX_POSITIONS", limit)
    return request.param


@pytest.mark.parametrize("block_elements", [1 << 18, 300])
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_blocked_forward_float64(layout, geometry, block_elements,
                                 monkeypatch):
    monkeypatch.setattr(depthwise, "BLOCK_ELEMENTS", block_elements)
    shape, kernel, stride, pad, dilation = geometry
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((shape[1], 1) + kernel)
    b = rng.standard_normal(shape[1])
    expected = _reference(x, w, b, stride, pad, dilation)
    np.testing.assert_allclose(
        depthwise_forward(x, w, b, stride, pad, dilation), expected,
        rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(
        depthwise_forward(x, w, None, stride, pad, dilation),
        _reference(x, w, None, stride, pad, dilation), rtol=1e-13,
        atol=1e-13)


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_blocked_forward_float32(layout, geometry, monkeypatch):
    monkeypatch.setattr(depthwise, "BLOCK_ELEMENTS", 500)
    shape, kernel, stride, pad, dilation = geometry
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((shape[1], 1) + kernel).astype(np.float32)
    b = rng.standard_normal(shape[1]).astype(np.float32)
    expected = _reference(x, w, b, stride, pad, dilation)
    out = np.full(expected.shape, np.nan, np.float32)
    y = depthwise_forward(x, w, b, stride, pad, dilation, out=out)
    assert y is out
    # (The einsum of the positions-major layout may fuse multiply-adds,
    # depending on NumPy's build.)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    # In the fork's order: every product rounded, added in (i, j) order.
    out[...] = np.nan
    depthwise_forward(x, w, b, stride, pad, dilation, out=out,
                      fork_order=True)
    np.testing.assert_array_equal(out, expected)


def test_blocks_run_through_parallel_in_any_order(monkeypatch):
    monkeypatch.setattr(depthwise, "BLOCK_ELEMENTS", 400)
    monkeypatch.setattr(depthwise, "PARALLEL_MIN_OUTPUTS", 0)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 7, 9, 10))
    w = rng.standard_normal((7, 1, 3, 3))
    ran = []

    def backwards(fn, count):
        ran.append(count)
        for i in reversed(range(count)):
            fn(i)

    y = depthwise_forward(x, w, None, (1, 1), (1, 1), (1, 1),
                          parallel=backwards, min_blocks=3)
    assert ran and ran[0] >= 3
    np.testing.assert_allclose(
        y, _reference(x, w, None, (1, 1), (1, 1), (1, 1)), rtol=1e-13,
        atol=1e-13)


def test_min_blocks_splits_a_small_input(monkeypatch):
    monkeypatch.setattr(depthwise, "PARALLEL_MIN_OUTPUTS", 0)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 5, 8, 8))
    w = rng.standard_normal((5, 1, 3, 3))
    counts = []

    def record(fn, count):
        counts.append(count)
        for i in range(count):
            fn(i)

    y = depthwise_forward(x, w, None, (2, 2), (1, 1), (1, 1),
                          parallel=record, min_blocks=2)
    assert counts == [2]
    np.testing.assert_allclose(
        y, _reference(x, w, None, (2, 2), (1, 1), (1, 1)), rtol=1e-13,
        atol=1e-13)


def test_a_small_forward_stays_one_block(monkeypatch):
    monkeypatch.setattr(depthwise, "PARALLEL_MIN_OUTPUTS", 1 << 16)
    counts = []

    def record(fn, count):
        counts.append(count)
        for i in range(count):
            fn(i)

    x = np.ones((1, 8, 7, 7))
    depthwise_forward(x, np.ones((8, 1, 3, 3)), None, (1, 1), (1, 1),
                      (1, 1), parallel=record, min_blocks=4)
    assert counts == []     # one block: run here, not handed out
