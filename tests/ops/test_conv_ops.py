"""kaffe.ops.im2col and kaffe.ops.conv against naive loop references, finite
differences and PyTorch."""
import itertools

import numpy as np
import pytest

from kaffe.ops import conv, conv_backward as conv_back
from kaffe.ops.conv import (conv_backward_data, conv_backward_weights,
                            conv_bias_backward, conv_forward, conv_output_size)
from kaffe.ops.im2col import col2im, im2col
from kaffe.testing.gradient import numeric_gradient


# --------------------------------------------------------------- references

def naive_im2col(image, kernel, stride, pad, dilation):
    """Caffe's im2col_nd_cpu one entry at a time: rows (c, i…), columns the
    output positions (o…), entry image[c, o·s − p + i·d …] or 0 outside."""
    channels, spatial = image.shape[0], image.shape[1:]
    out = [conv_output_size(*a)
           for a in zip(spatial, kernel, stride, pad, dilation)]
    cols = np.zeros((channels * int(np.prod(kernel)), int(np.prod(out))),
                    dtype=image.dtype)
    rows = itertools.product(range(channels), *map(range, kernel))
    for row, (c, *offset) in enumerate(rows):
        for col, position in enumerate(itertools.product(*map(range, out))):
            index = [o * s - p + i * d for o, s, p, i, d
                     in zip(position, stride, pad, offset, dilation)]
            if all(0 <= v < n for v, n in zip(index, spatial)):
                cols[row, col] = image[(c, *index)]
    return cols


def naive_conv(x, w, b, stride, pad, dilation, group):
    """y[n, m, o…] = b[m] + Σ_{c, i…} w[m, c, i…] · x[n, g·C/group + c,
    o·s − p + i·d …], with g the group of m and 0 outside the input."""
    n_spatial = x.ndim - 2
    stride, pad, dilation = ([v] * n_spatial if isinstance(v, int) else v
                             for v in (stride, pad, dilation))
    num_output, c_group = w.shape[:2]
    kernel = w.shape[2:]
    out = [conv_output_size(*a)
           for a in zip(x.shape[2:], kernel, stride, pad, dilation)]
    y = np.zeros((x.shape[0], num_output, *out), dtype=x.dtype)
    m_group = num_output // group
    for n, m in itertools.product(range(x.shape[0]), range(num_output)):
        g = m // m_group
        for position in itertools.product(*map(range, out)):
            total = 0.0 if b is None else b[m]
            for c, *offset in itertools.product(range(c_group),
                                                *map(range, kernel)):
                index = [o * s - p + i * d for o, s, p, i, d
                         in zip(position, stride, pad, offset, dilation)]
                if all(0 <= v < size for v, size in zip(index, x.shape[2:])):
                    total += (w[(m, c, *offset)]
                              * x[(n, g * c_group + c, *index)])
            y[(n, m, *position)] = total
    return y


# (x shape, w shape, stride, pad, dilation, group)
CASES_2D = [
    ((2, 3, 6, 5), (4, 3, 3, 3), 1, 0, 1, 1),
    ((2, 4, 7, 6), (6, 2, 3, 2), (2, 1), (1, 0), (1, 2), 2),
    ((1, 4, 9, 8), (4, 1, 3, 3), 2, 1, 1, 4),
    ((3, 2, 5, 7), (3, 2, 2, 4), (1, 2), (2, 1), (2, 1), 1),
    ((2, 6, 5, 5), (6, 2, 1, 1), 1, 0, 1, 3),   # 1×1: no unfolding
    ((2, 2, 5, 5), (3, 2, 1, 1), 2, 1, 1, 1),
    ((2, 2, 4, 4), (2, 2, 4, 4), 1, 0, 1, 1),   # kernel covers the input
]


@pytest.fixture(params=itertools.product(["batch-first", "batch-last"],
                                         ["one", "two", "all"]),
                ids="-".join)
def chunking(request, monkeypatch):
    """Force a layout, and split the batch into chunks of 1 image, of 2 (last
    one partial), or one chunk of all images."""
    layout, size = request.param
    original = conv._Plan.__init__

    def init(plan, *args):
        original(plan, *args)
        plan.batch_first = layout == "batch-first"
        plan.chunk = {"one": 1, "two": min(2, plan.batch),
                      "all": plan.batch}[size]

    monkeypatch.setattr(conv._Plan, "__init__", init)
    return request.param


@pytest.fixture(params=["dw", "dw-transposed"])
def dw_orientation(request, monkeypatch):
    """Force the filter gradient's GEMM: dy · columnsᵀ or columns · dyᵀ."""
    original = conv._Plan.__init__

    def init(plan, *args):
        original(plan, *args)
        plan.dw_transposed = request.param == "dw-transposed"

    monkeypatch.setattr(conv._Plan, "__init__", init)
    return request.param


@pytest.fixture(params=["col2im", "rows"])
def backward_data_plan(request, monkeypatch):
    """Force a backward-data plan ("rows" only where it applies)."""
    def fits(plan):
        return (request.param == "rows" and plan.stride[-1] == 1
                and not plan.pointwise)

    monkeypatch.setattr(conv._Plan, "rows_plan_fits", fits)
    return request.param


def random_case(case, dtype=np.float64, seed=0):
    x_shape, w_shape, stride, pad, dilation, group = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    return x, w, b, stride, pad, dilation, group


# ------------------------------------------------------------------- im2col

def test_conv_output_size():
    assert conv_output_size(27, 5, 1, 2, 1) == 27
    assert conv_output_size(227, 11, 4, 0, 1) == 55
    assert conv_output_size(7, 3, 2, 1, 2) == 3
    assert conv_output_size(8, 3, 3, 0, 1) == 2


@pytest.mark.parametrize("shape, kernel, stride, pad, dilation", [
    ((3, 5, 6), (3, 3), 1, 0, 1),
    ((2, 7, 5), (3, 2), (2, 1), (1, 2), (1, 2)),
    ((2, 4, 5, 3), (2, 3, 2), (1, 2, 1), (0, 1, 1), 1),
    ((3, 9), (4,), 2, 1, 2),
])
def test_im2col_layout_and_col2im_adjoint(shape, kernel, stride, pad,
                                          dilation):
    rng = np.random.default_rng(1)
    image = rng.standard_normal(shape)
    n = len(kernel)
    per_axis = [[v] * n if isinstance(v, int) else v
                for v in (stride, pad, dilation)]
    expected = naive_im2col(image, kernel, *per_axis)
    np.testing.assert_array_equal(im2col(image, kernel, stride, pad, dilation),
                                  expected)
    batch = np.stack([image, 2 * image])
    np.testing.assert_array_equal(
        im2col(batch, kernel, stride, pad, dilation)[1], 2 * expected)
    # col2im sums each entry back onto its pixel: <im2col x, c> = <x, col2im c>
    cols = rng.standard_normal(expected.shape)
    folded = col2im(cols, shape, kernel, stride, pad, dilation)
    assert folded.shape == shape
    np.testing.assert_allclose(np.vdot(expected, cols), np.vdot(image, folded),
                               rtol=1e-12)


def test_col2im_accumulates_overlapping_windows():
    counts = col2im(np.ones((1 * 2 * 2, 2 * 2)), (1, 3, 3), (2, 2))
    np.testing.assert_array_equal(counts[0],
                                  [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


def test_im2col_rejects_a_kernel_larger_than_the_padded_input():
    with pytest.raises(ValueError, match="does not fit"):
        im2col(np.zeros((1, 3, 3)), (5, 5), pad=0)


# -------------------------------------------------------------- convolution

@pytest.mark.parametrize("case", CASES_2D)
def test_forward_matches_naive_reference(case, chunking):
    x, w, b, stride, pad, dilation, group = random_case(case)
    expected = naive_conv(x, w, b, stride, pad, dilation, group)
    np.testing.assert_allclose(
        conv_forward(x, w, b, stride, pad, dilation, group), expected,
        rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        conv_forward(x, w, None, stride, pad, dilation, group),
        expected - b[:, None, None], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES_2D + [
    ((1, 2, 4, 5, 4), (3, 2, 2, 3, 2), (1, 2, 1), (1, 0, 1), (1, 1, 2), 1),
    ((1, 3, 40, 9), (5, 3, 3, 3), (2, 1), 1, (1, 2), 1),
    ((2, 4, 30, 30), (6, 2, 5, 5), 1, 2, 1, 2)])
@pytest.mark.parametrize("limit", [1, 60, 1 << 30])
def test_forward_by_bands_of_output_rows(case, limit, monkeypatch):
    """A workspace bound below one image's columns computes the image band
    by band of output rows (each band with at least _BAND_MIN_POSITIONS
    positions): the same values as the unbounded forward."""
    monkeypatch.setattr(conv, "_BAND_MIN_POSITIONS", 4)
    x, w, b, stride, pad, dilation, group = random_case(case)
    bands = []
    original = conv._forward_bands
    monkeypatch.setattr(conv, "_forward_bands",
                        lambda *a: (bands.append(a[-1]), original(*a)))
    np.testing.assert_allclose(
        conv_forward(x, w, b, stride, pad, dilation, group, workspace=limit),
        naive_conv(x, w, b, stride, pad, dilation, group),
        rtol=1e-12, atol=1e-12)
    plan = conv._Plan(np, x.dtype, x.shape, w.shape, stride, pad, dilation,
                      group)
    # (Depthwise convolutions take kaffe.ops.depthwise, whose scratch is
    # bounded by its own blocks: no columns, no bands.)
    if (limit == 1 << 30 or plan.chunk != 1 or plan.pointwise
            or plan.depthwise):
        assert not bands
    elif plan.out_shape[0] > 1 and limit == 1:
        assert bands and len(bands[0]) > 1


@pytest.mark.parametrize("case", [
    ((2, 2, 7), (4, 1, 3), 2, 1, 1, 2),
    ((2, 2, 4, 5, 4), (3, 2, 2, 3, 2), (1, 2, 1), (1, 0, 1), (1, 1, 2), 1),
])
def test_nd_forward_matches_naive_reference(case, chunking):
    x, w, b, stride, pad, dilation, group = random_case(case)
    np.testing.assert_allclose(
        conv_forward(x, w, b, stride, pad, dilation, group),
        naive_conv(x, w, b, stride, pad, dilation, group),
        rtol=1e-12, atol=1e-12)


GRADIENT_CASES = CASES_2D[:5] + [
    ((2, 2, 6), (4, 1, 3), 1, 1, 2, 2),
    ((1, 2, 3, 4, 3), (2, 2, 2, 2, 2), 1, (1, 0, 1), 1, 1),
]


@pytest.mark.parametrize("case", GRADIENT_CASES)
def test_backward_matches_finite_differences(case, chunking,
                                             backward_data_plan,
                                             dw_orientation):
    x, w, b, stride, pad, dilation, group = random_case(case, seed=2)
    geometry = (stride, pad, dilation, group)
    y_shape = conv_forward(x, w, b, *geometry).shape
    r = np.random.default_rng(3).standard_normal(y_shape)

    def loss():
        return np.vdot(conv_forward(x, w, b, *geometry), r)

    tol = dict(rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(conv_backward_data(r, w, x.shape, *geometry),
                               numeric_gradient(loss, x), **tol)
    # Parameter gradients accumulate onto what the arrays hold.
    dw = np.full_like(w, 0.5)
    conv_backward_weights(r, x, dw, *geometry)
    np.testing.assert_allclose(dw - 0.5, numeric_gradient(loss, w), **tol)
    db = np.full_like(b, -1.0)
    conv_bias_backward(r, db)
    np.testing.assert_allclose(db + 1.0, numeric_gradient(loss, b), **tol)


def test_float32_stays_float32():
    x, w, b, *geometry = random_case(CASES_2D[1], dtype=np.float32)
    y = conv_forward(x, w, b, *geometry)
    assert y.dtype == np.float32
    assert conv_backward_data(y, w, x.shape, *geometry).dtype == np.float32
    expected = naive_conv(*random_case(CASES_2D[1]))
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", [
    CASES_2D[1], CASES_2D[3], CASES_2D[4], CASES_2D[5],
    ((5, 8, 12, 11), (6, 4, 5, 3), 1, (2, 1), 1, 2),
    ((4, 6, 13, 13), (8, 6, 3, 3), 1, 1, 1, 1),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_torch(case, dtype, chunking, backward_data_plan,
                       dw_orientation):
    torch = pytest.importorskip("torch")
    x, w, b, *geometry = random_case(case, dtype=dtype, seed=4)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, *geometry)
    dy = np.random.default_rng(5).standard_normal(tuple(ty.shape))
    dy = dy.astype(dtype)
    ty.backward(torch.from_numpy(dy))
    if dtype == np.float32:
        tol = dict(rtol=1e-4, atol=1e-4)
    else:
        tol = dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(conv_forward(x, w, b, *geometry),
                               ty.detach().numpy(), **tol)
    np.testing.assert_allclose(conv_backward_data(dy, w, x.shape, *geometry),
                               tx.grad.numpy(), **tol)
    dw, db = np.zeros_like(w), np.zeros_like(b)
    conv_backward_weights(dy, x, dw, *geometry)
    conv_bias_backward(dy, db)
    np.testing.assert_allclose(dw, tw.grad.numpy(), **tol)
    np.testing.assert_allclose(db, tb.grad.numpy(), **tol)


@pytest.mark.parametrize("case", [
    ((3, 4, 11), (6, 2, 3), 2, 1, 2, 2),
    ((2, 2, 5, 6, 4), (4, 2, 3, 2, 2), (1, 2, 1), (1, 0, 1), (2, 1, 1), 1),
    ((2, 4, 4, 5, 3), (4, 2, 1, 1, 1), 1, 0, 1, 2),
])
def test_nd_matches_torch(case, chunking, backward_data_plan, dw_orientation):
    torch = pytest.importorskip("torch")
    x, w, b, *geometry = random_case(case, seed=9)
    function = {3: torch.nn.functional.conv1d,
                5: torch.nn.functional.conv3d}[x.ndim]
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = function(tx, tw, tb, *geometry)
    dy = np.random.default_rng(10).standard_normal(tuple(ty.shape))
    ty.backward(torch.from_numpy(dy))
    tol = dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(conv_forward(x, w, b, *geometry),
                               ty.detach().numpy(), **tol)
    np.testing.assert_allclose(conv_backward_data(dy, w, x.shape, *geometry),
                               tx.grad.numpy(), **tol)
    dw = np.zeros_like(w)
    conv_backward_weights(dy, x, dw, *geometry)
    np.testing.assert_allclose(dw, tw.grad.numpy(), **tol)


def test_backward_data_is_the_adjoint_of_forward():
    """What Deconvolution relies on: <conv x, y> = <x, backward_data y>."""
    x, w, _, *geometry = random_case(CASES_2D[1])
    y = np.random.default_rng(6).standard_normal(
        conv_forward(x, w, None, *geometry).shape)
    np.testing.assert_allclose(
        np.vdot(conv_forward(x, w, None, *geometry), y),
        np.vdot(x, conv_backward_data(y, w, x.shape, *geometry)), rtol=1e-12)


def test_chunk_sizes_follow_the_column_budget():
    lenet = conv._Plan(np, np.float32, (64, 20, 12, 12), (50, 20, 5, 5),
                       1, 0, 1, 1)
    alexnet = conv._Plan(np, np.float32, (16, 96, 27, 27), (256, 48, 5, 5),
                         1, 2, 1, 2)
    assert lenet.chunk == 64 and alexnet.chunk == 1


def plan_for(x_shape, w_shape, stride=1, pad=0, group=1):
    return conv._Plan(np, np.float32, x_shape, w_shape, stride, pad, 1, group)


def test_layout_follows_the_positions_per_image():
    # Batch-first from 256 output positions per image (LeNet conv1: 24×24,
    # ResNet's 3×3 layers on 28×28 and 56×56 maps) ...
    assert plan_for((64, 1, 28, 28), (20, 1, 5, 5)).batch_first
    assert plan_for((8, 64, 28, 28), (64, 64, 3, 3), pad=1).batch_first
    assert plan_for((8, 32, 56, 56), (32, 32, 3, 3), pad=1).batch_first
    # ... batch-last below (LeNet conv2: 8×8, ResNet's 3×3 on 14×14 and 7×7).
    assert not plan_for((64, 20, 12, 12), (50, 20, 5, 5)).batch_first
    assert not plan_for((8, 128, 14, 14), (128, 128, 3, 3),
                        pad=1).batch_first
    assert not plan_for((8, 256, 7, 7), (256, 256, 3, 3), pad=1).batch_first
    # 1×1 kernels have nothing to unfold: batch-first from 16 positions,
    # strided or not (ResNet's 1×1 layers down to 7×7 maps) ...
    assert plan_for((8, 1024, 7, 7), (256, 1024, 1, 1)).batch_first
    assert plan_for((8, 512, 14, 14), (1024, 512, 1, 1),
                    stride=2).batch_first
    # ... but a 1×1 map (a fully connected layer as a convolution) is
    # batch-last: one GEMM over the batch instead of N matrix-vector ones.
    assert not plan_for((64, 64, 1, 1), (10, 64, 1, 1)).batch_first
    # One image per chunk (AlexNet conv2) is batch-first: same array.
    assert plan_for((16, 96, 27, 27), (256, 48, 5, 5), pad=2,
                    group=2).batch_first
    assert plan_for((1, 256, 7, 7), (256, 256, 3, 3), pad=1).batch_first


def test_filter_gradient_orientation_follows_the_outputs_per_group():
    assert plan_for((64, 20, 12, 12), (50, 20, 5, 5)).dw_transposed
    assert plan_for((8, 64, 28, 28), (64, 64, 3, 3), pad=1).dw_transposed
    assert not plan_for((8, 64, 56, 56), (128, 64, 1, 1)).dw_transposed
    assert not plan_for((16, 96, 27, 27), (256, 48, 5, 5), pad=2,
                        group=2).dw_transposed


def test_backward_data_plan_rule():
    # "rows": stride 1 along the last axis, padded width <= 1.5 × out[-1],
    # M <= C·Πk[:-1], N·Πout >= 8·M.
    assert plan_for((64, 20, 12, 12), (50, 20, 5, 5)).rows_plan_fits()
    assert plan_for((16, 96, 27, 27), (256, 48, 5, 5), pad=2,
                    group=2).rows_plan_fits()
    assert plan_for((8, 128, 14, 14), (128, 128, 3, 3),
                    pad=1).rows_plan_fits()
    # Too few positions per filter: the filter reorder would dominate.
    assert not plan_for((1, 128, 14, 14), (128, 128, 3, 3),
                        pad=1).rows_plan_fits()
    assert not plan_for((8, 256, 7, 7), (256, 256, 3, 3),
                        pad=1).rows_plan_fits()
    # Stride 2 along the last axis; more outputs than C·k[0] (LeNet conv1).
    assert not plan_for((8, 3, 224, 224), (64, 3, 7, 7), stride=2,
                        pad=3).rows_plan_fits()
    assert not plan_for((64, 1, 28, 28), (20, 1, 5, 5)).rows_plan_fits()


@pytest.mark.parametrize("case", [CASES_2D[1], CASES_2D[4]])
def test_non_contiguous_arrays(case, chunking):
    """Views (here: transposed batch and channel axes) give the same
    results as contiguous copies."""
    x, w, b, *geometry = random_case(case, seed=7)
    x_view = np.ascontiguousarray(x.swapaxes(0, 1)).swapaxes(0, 1)
    y = conv_forward(x, w, b, *geometry)
    np.testing.assert_allclose(conv_forward(x_view, w, b, *geometry), y,
                               rtol=1e-12, atol=1e-12)
    dy = np.random.default_rng(8).standard_normal(y.shape)
    dy_view = np.ascontiguousarray(dy.swapaxes(0, 1)).swapaxes(0, 1)
    np.testing.assert_allclose(
        conv_backward_data(dy_view, w, x.shape, *geometry),
        conv_backward_data(dy, w, x.shape, *geometry), rtol=1e-12,
        atol=1e-12)
    dw, dw_view = np.zeros_like(w), np.zeros_like(w).T.copy().T
    conv_backward_weights(dy, x, dw, *geometry)
    conv_backward_weights(dy_view, x_view, dw_view, *geometry)
    np.testing.assert_allclose(dw_view, dw, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES_2D[:3] + CASES_2D[4:6])
def test_forward_into_a_given_array(case, chunking):
    x, w, b, stride, pad, dilation, group = random_case(case)
    expected = naive_conv(x, w, b, stride, pad, dilation, group)
    out = np.full(expected.shape, np.nan)
    result = conv_forward(x, w, b, stride, pad, dilation, group, out=out)
    assert result is out
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="C-contiguous"):
        conv_forward(x, w, b, stride, pad, dilation, group,
                     out=np.empty(expected.shape, np.float32))
    with pytest.raises(ValueError, match="not contiguous"):
        conv_forward(x, w, b, stride, pad, dilation, group,
                     out=np.empty(expected.shape[::-1]).T)


def test_numpy_integer_geometry_is_accepted():
    x, w, b, *_ = random_case(CASES_2D[0])
    np.testing.assert_allclose(
        conv_forward(x, w, b, np.int64(1), [np.int64(0)], (1, 1), 1),
        naive_conv(x, w, b, 1, 0, 1, 1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("x_shape, w_shape, group, match", [
    ((2, 4, 5, 5), (4, 3, 3, 3), 1, "expect 3 input channels"),
    ((2, 4, 5, 5), (3, 2, 3, 3), 2, "group 2 must divide"),
    ((2, 4, 5), (4, 4, 3, 3), 1, "same number"),
    ((2, 4, 2, 2), (4, 4, 3, 3), 1, "does not fit"),
])
def test_invalid_shapes_raise(x_shape, w_shape, group, match):
    with pytest.raises(ValueError, match=match):
        conv_forward(np.zeros(x_shape), np.zeros(w_shape), None, 1, 0, 1,
                     group)


def test_dy_shape_is_checked():
    x, w = np.zeros((2, 3, 5, 5)), np.zeros((4, 3, 3, 3))
    with pytest.raises(ValueError, match="dy has shape"):
        conv_backward_data(np.zeros((2, 4, 4, 4)), w, x.shape)
    with pytest.raises(ValueError, match="dy has shape"):
        conv_backward_weights(np.zeros((2, 4, 4, 4)), x, np.zeros_like(w))


# ---------------------------------------------------------- saved columns

# (CASES_2D[2] is depthwise, which takes its own path and keeps no columns:
# a grouped case with two channels per group stands in for it.)
SAVED_CASES = [CASES_2D[0], CASES_2D[1], ((1, 4, 9, 8), (4, 2, 3, 3), 2, 1,
                                          1, 2), CASES_2D[3],
               ((2, 2, 6), (4, 1, 3), 1, 1, 2, 2)]


@pytest.mark.parametrize("case", SAVED_CASES)
def test_saved_columns_give_the_same_filter_gradient(case, chunking,
                                                     dw_orientation):
    x, w, b, *geometry = random_case(case, dtype=np.float32, seed=11)
    saved = conv.SavedColumns()
    y = conv_forward(x, w, b, *geometry, save=saved)
    assert saved.nbytes > 0
    np.testing.assert_array_equal(y, conv_forward(x, w, b, *geometry))
    dy = np.random.default_rng(12).standard_normal(y.shape).astype(
        np.float32)
    dw_saved, dw = np.full_like(w, 0.5), np.full_like(w, 0.5)
    conv_backward_weights(dy, x, dw_saved, *geometry, saved=saved)
    conv_backward_weights(dy, x, dw, *geometry)
    np.testing.assert_array_equal(dw_saved, dw)  # bit for bit


def test_saved_columns_are_used_only_for_the_same_input(monkeypatch):
    x, w, b, *geometry = random_case(CASES_2D[0], dtype=np.float32)
    saved = conv.SavedColumns()
    y = conv_forward(x, w, b, *geometry, save=saved)
    dy = np.ones_like(y)
    unfolded = []
    original = conv._Plan.columns

    def columns(plan, x_chunk, dest=None):
        unfolded.append(dest is None)
        return original(plan, x_chunk, dest)

    monkeypatch.setattr(conv._Plan, "columns", columns)
    dw = np.zeros_like(w)
    conv_backward_weights(dy, x, dw, *geometry, saved=saved)
    assert unfolded == []  # the kept columns served
    # The input changed after the forward (a script writing into the
    # blob): its gradient comes from the input as it is now, as in Caffe.
    x[0, 0, 0, 0] += 1
    dw_changed, dw_fresh = np.zeros_like(w), np.zeros_like(w)
    conv_backward_weights(dy, x, dw_changed, *geometry, saved=saved)
    assert unfolded == [True]
    conv_backward_weights(dy, x, dw_fresh, *geometry)
    np.testing.assert_array_equal(dw_changed, dw_fresh)
    assert not np.array_equal(dw_changed, dw)
    # Another geometry (or shape) does not match either.
    assert saved.lookup(plan_for((2, 3, 6, 5), (4, 3, 3, 3), stride=2),
                        x) is None


def test_saved_columns_respect_their_memory_budget():
    x, w, b, *geometry = random_case(CASES_2D[0], dtype=np.float32)
    # 2 images × 3·3·3 rows × 4·3 positions of columns, plus the input.
    needed = (2 * 27 * 12 + x.size) * 4
    saved = conv.SavedColumns(max_bytes=needed)
    conv_forward(x, w, b, *geometry, save=saved)
    assert saved.nbytes == needed
    small = conv.SavedColumns(max_bytes=needed - 1)
    conv_forward(x, w, b, *geometry, save=small)
    assert small.nbytes == 0
    # A forward that no longer fits frees what an earlier one kept.
    saved.max_bytes = needed - 1
    conv_forward(x, w, b, *geometry, save=saved)
    assert saved.nbytes == 0
    # 1×1 kernels: the columns are the input itself, nothing to keep.
    x, w, b, *geometry = random_case(CASES_2D[4], dtype=np.float32)
    conv_forward(x, w, b, *geometry, save=saved)
    assert saved.nbytes == 0
    # The default budget: LeNet's conv2 at batch 64 (8.2 MB of columns,
    # 0.7 MB of input) fits, ResNet's 3×3 32→32 on 56×56 at batch 8 (32 MB)
    # does not.
    assert conv.SavedColumns().max_bytes == conv.KEEP_COLUMNS_MAX_BYTES
    assert conv.KEEP_COLUMNS_MAX_BYTES == 16 << 20
    assert 64 * (20 * 25 * 64 + 20 * 144) * 4 <= conv.KEEP_COLUMNS_MAX_BYTES
    assert 8 * (32 * 9 * 3136 + 32 * 3136) * 4 > conv.KEEP_COLUMNS_MAX_BYTES


@pytest.mark.parametrize("batched", [True, False])
def test_batch_first_filter_gradient_sums_images_in_order(chunking, batched,
                                                          monkeypatch):
    """dw is the images' products summed one after the other (across
    chunks too), whatever the chunking, made by one batched matmul or image
    by image: float32 bit for bit."""
    if not batched:
        monkeypatch.setattr(conv_back, "_DW_BATCHED_MAX_ELEMENTS", 0)
    x, w, b, *geometry = random_case(CASES_2D[0], dtype=np.float32, seed=13)
    x = np.concatenate([x, 100 * x, x / 100])   # 6 images, unequal sizes
    dy = np.random.default_rng(14).standard_normal(
        conv_forward(x, w, None, *geometry).shape).astype(np.float32)
    dw = np.zeros_like(w)
    conv_backward_weights(dy, x, dw, *geometry)
    expected = np.zeros_like(w)
    for n in range(len(x)):
        one = np.zeros_like(w)
        conv_backward_weights(dy[n:n + 1], x[n:n + 1], one, *geometry)
        expected += one
    if chunking[0] == "batch-first":
        np.testing.assert_array_equal(dw, expected)
    else:
        np.testing.assert_allclose(dw, expected, rtol=1e-5, atol=1e-5)


# ------------------------------------------------- both gradients at once

@pytest.mark.parametrize("case", CASES_2D[:6] + [
    ((5, 8, 12, 11), (6, 4, 5, 3), 1, (2, 1), 1, 2)])
def test_conv_backward_equals_the_two_functions(case, chunking,
                                                backward_data_plan,
                                                dw_orientation):
    """One pass over dy's chunks gives both gradients bit for bit, kept
    columns or not (padded inputs over several chunks included: the
    buffers of the two gradients must not mix)."""
    x, w, b, *geometry = random_case(case, dtype=np.float32, seed=15)
    saved = conv.SavedColumns()
    y = conv_forward(x, w, b, *geometry, save=saved)
    dy = np.random.default_rng(16).standard_normal(y.shape).astype(
        np.float32)
    dw_expected = np.full_like(w, 0.25)
    conv_backward_weights(dy, x, dw_expected, *geometry)
    dx_expected = conv_backward_data(dy, w, x.shape, *geometry)
    for kept in (None, saved):
        dw = np.full_like(w, 0.25)
        dx = conv.conv_backward(dy, x, w, dw, True, *geometry, saved=kept)
        np.testing.assert_array_equal(dw, dw_expected)
        np.testing.assert_array_equal(dx, dx_expected)
    # Either one alone, the input's gradient into a given array.
    dw = np.full_like(w, 0.25)
    assert conv.conv_backward(dy, x, w, dw, False, *geometry) is None
    np.testing.assert_array_equal(dw, dw_expected)
    out = np.full(x.shape, np.nan, np.float32)
    assert conv.conv_backward(dy, x, w, None, True, *geometry,
                              out=out) is out
    np.testing.assert_array_equal(out, dx_expected)


def test_backward_data_into_a_given_array():
    x, w, b, *geometry = random_case(CASES_2D[1])
    dy = np.random.default_rng(17).standard_normal(
        conv_forward(x, w, b, *geometry).shape)
    out = np.full(x.shape, np.nan)
    assert conv_backward_data(dy, w, x.shape, *geometry, out=out) is out
    np.testing.assert_array_equal(out,
                                  conv_backward_data(dy, w, x.shape,
                                                     *geometry))
    with pytest.raises(ValueError, match="conv_backward_data: out must be"):
        conv_backward_data(dy, w, x.shape, *geometry,
                           out=np.empty(x.shape, np.float32))
    with pytest.raises(ValueError, match="dw has shape"):
        conv.conv_backward(dy, x, w, np.zeros(w.shape[:-1]), True,
                           *geometry)
