"""kaffe.ops.rowconv against the naive convolution, finite differences, and
kaffe.ops.conv's im2col path; its rule and its use by kaffe.ops.conv."""
import numpy as np
import pytest

from kaffe.ops import conv, conv_backward as conv_back, rowconv
from kaffe.ops.conv import conv_backward, conv_forward
from kaffe.ops.rowconv import (add_weight_rows, rowconv_applies,
                               rowconv_backward_data,
                               rowconv_backward_weights, rowconv_forward)
from kaffe.testing.gradient import (check_gradients, numeric_gradient,
                                    setup_layer)


def naive_conv(x, w, b, stride, pad, dilation, group):
    """y[n, m, h, o] = b[m] + Σ_{c, i, j} w[m, c, i, j] ·
    x_pad[n, g·C/group + c, h·s_h + i·d_h, o·s_w + j·d_w], one kernel
    offset at a time over a zero-padded copy of x."""
    (s_h, s_w), (p_h, p_w), (d_h, d_w) = stride, pad, dilation
    n, c, height, width = x.shape
    m, c_g, kh, kw = w.shape
    padded = np.zeros((n, c, height + 2 * p_h, width + 2 * p_w))
    padded[:, :, p_h:p_h + height, p_w:p_w + width] = x
    out_h = (height + 2 * p_h - d_h * (kh - 1) - 1) // s_h + 1
    out_w = (width + 2 * p_w - d_w * (kw - 1) - 1) // s_w + 1
    y = np.zeros((n, m, out_h, out_w))
    m_g = m // group
    for g in range(group):
        inputs = padded[:, g * c_g:(g + 1) * c_g]
        for i in range(kh):
            for j in range(kw):
                cells = inputs[:, :, i * d_h:i * d_h + s_h * (out_h - 1) + 1:
                               s_h, j * d_w:j * d_w + s_w * (out_w - 1) + 1:
                               s_w]
                y[:, g * m_g:(g + 1) * m_g] += np.einsum(
                    "mc,nchw->nmhw", w[g * m_g:(g + 1) * m_g, :, i, j],
                    cells)
    if b is not None:
        y += b[:, None, None]
    return y.astype(x.dtype)

# (x shape, w shape, stride (h, w), pad, dilation, group); stride_h is 1.
CASES = [
    ((3, 4, 7, 6), (5, 4, 3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((2, 6, 9, 5), (4, 3, 5, 5), (1, 1), (2, 2), (1, 1), 2),     # groups
    ((2, 3, 8, 9), (4, 3, 3, 2), (1, 2), (0, 1), (1, 1), 1),     # stride_w
    ((3, 2, 9, 8), (3, 2, 2, 3), (1, 1), (2, 1), (2, 2), 1),     # dilation
    ((2, 5, 6, 7), (2, 5, 4, 2), (1, 3), (3, 0), (1, 1), 1),     # pad > k/2
    ((1, 2, 5, 5), (3, 2, 5, 5), (1, 1), (0, 0), (1, 1), 1),     # 1×1 out
]
# Those whose backward-data is a stride-1 convolution of dy.
DATA_CASES = [c for c in CASES if c[2] == (1, 1) and all(
    d * (k - 1) >= p for p, d, k in zip(c[3], c[4], c[1][2:]))]


@pytest.fixture(params=["one", "two", "all"])
def chunk(request, monkeypatch):
    """Chunks of 1 image, of 2 (the last one partial), or all."""
    size = {"one": 1, "two": 2, "all": 1 << 30}[request.param]
    original = rowconv.RowGeometry.__init__

    def init(geo, *args):
        original(geo, *args)
        geo.chunk = max(1, min(size, geo.batch))

    monkeypatch.setattr(rowconv.RowGeometry, "__init__", init)
    return request.param


def random_case(case, dtype=np.float64, seed=0):
    x_shape, w_shape, stride, pad, dilation, group = case
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(x_shape).astype(dtype),
            rng.standard_normal(w_shape).astype(dtype),
            rng.standard_normal(w_shape[0]).astype(dtype),
            stride, pad, dilation, group)


@pytest.mark.parametrize("case", CASES)
def test_forward_matches_naive_reference(case, chunk):
    x, w, b, stride, pad, dilation, group = random_case(case)
    expected = naive_conv(x, w, b, stride, pad, dilation, group)
    np.testing.assert_allclose(
        rowconv_forward(x, w, b, stride, pad, dilation, group), expected,
        rtol=1e-12, atol=1e-12)
    y = np.full(expected.shape, np.nan)
    assert rowconv_forward(x, w, None, stride, pad, dilation, group,
                           out=y) is y
    np.testing.assert_allclose(y, expected - b[:, None, None], rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_ranges_of_images_compose(case, chunk):
    """Ranges computed apart (as threads would) give the whole batch."""
    x, w, b, stride, pad, dilation, group = random_case(case)
    expected = rowconv_forward(x, w, b, stride, pad, dilation, group)
    y = np.full(expected.shape, np.nan)
    parts = [(0, 1), (1, x.shape[0])]
    for n0, n1 in parts:
        rowconv_forward(x, w, b, stride, pad, dilation, group, out=y,
                        n0=n0, n1=n1, workspace=rowconv.RowConvWorkspace())
    np.testing.assert_array_equal(y, expected)
    dy = np.random.default_rng(3).standard_normal(expected.shape)
    whole = rowconv_backward_weights(dy, x, w.shape, stride, pad, dilation,
                                     group)
    summed = sum(rowconv_backward_weights(dy, x, w.shape, stride, pad,
                                          dilation, group, n0=n0, n1=n1)
                 for n0, n1 in parts)
    np.testing.assert_allclose(summed, whole, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", DATA_CASES)
def test_backward_data_matches_finite_differences(case, chunk):
    x, w, b, stride, pad, dilation, group = random_case(case)
    dy = np.random.default_rng(1).standard_normal(
        naive_conv(x, w, b, stride, pad, dilation, group).shape)

    def loss():
        return float(np.sum(naive_conv(x, w, b, stride, pad, dilation,
                                       group) * dy))

    dx = np.full(x.shape, np.nan)
    assert rowconv_backward_data(dy, w, x.shape, pad, dilation, group,
                                 out=dx) is dx
    np.testing.assert_allclose(dx, numeric_gradient(loss, x), rtol=1e-6,
                               atol=1e-8)


@pytest.mark.parametrize("case", CASES)
def test_backward_weights_accumulates_the_gradient(case, chunk):
    x, w, b, stride, pad, dilation, group = random_case(case)
    dy = np.random.default_rng(2).standard_normal(
        naive_conv(x, w, b, stride, pad, dilation, group).shape)

    def loss():
        return float(np.sum(naive_conv(x, w, b, stride, pad, dilation,
                                       group) * dy))

    dw = np.full(w.shape, 0.5)
    add_weight_rows(dw, rowconv_backward_weights(dy, x, w.shape, stride,
                                                 pad, dilation, group))
    np.testing.assert_allclose(dw - 0.5, numeric_gradient(loss, w),
                               rtol=1e-6, atol=1e-8)


def test_float32_is_close_to_the_float64_sum():
    x, w, b, stride, pad, dilation, group = random_case(
        ((4, 16, 12, 12), (8, 16, 5, 5), (1, 1), (2, 2), (1, 1), 1),
        dtype=np.float32)
    y = rowconv_forward(x, w, b, stride, pad, dilation, group)
    assert y.dtype == np.float32
    expected = rowconv_forward(*(a.astype(np.float64) for a in (x, w, b)),
                               stride, pad, dilation, group)
    assert np.abs(y - expected).max() <= 1e-6 * np.abs(expected).max()


def test_the_rule():
    big = ((100, 32, 16, 16), (32, 32, 5, 5), (1, 1), (2, 2), (1, 1), 1)
    for kind in ("forward", "backward_data", "backward_weights"):
        assert rowconv_applies(*big, kind=kind)
    # Stride 2 down the rows, 1-D, or a 1-wide kernel: never.
    assert not rowconv_applies(big[0], big[1], (2, 1), *big[3:])
    assert not rowconv_applies((100, 32, 16), (32, 32, 5), (1,), (2,), (1,),
                               1)
    assert not rowconv_applies(big[0], (32, 32, 5, 1), *big[2:])
    # Shallow windows (3 channels · 5: not backward-data's, 32 · 5): only
    # backward-data; many outputs per group: only the filter gradient.
    shallow = ((100, 3, 32, 32), (32, 3, 5, 5)) + big[2:]
    wide = ((32, 96, 27, 27), (256, 48, 5, 5), (1, 1), (2, 2), (1, 1), 2)
    for kind in ("forward", "backward_weights"):
        assert not rowconv_applies(*shallow, kind=kind)
    assert rowconv_applies(*shallow, kind="backward_data")
    assert not rowconv_applies(*wide, kind="forward")
    assert rowconv_applies(*wide, kind="backward_weights")
    # Unpadded: dy would be padded by 4, more than x was.
    unpadded = big[:3] + ((0, 0),) + big[4:]
    assert rowconv_applies(*unpadded, kind="forward")
    assert not rowconv_applies(*unpadded, kind="backward_data")
    assert not rowconv_applies(big[0], big[1], (1, 2), *big[3:],
                               kind="backward_data")


@pytest.fixture
def rowconv_everywhere(monkeypatch):
    """kaffe.ops.conv takes the rowconv path wherever the rule's shape
    conditions hold (no columns are kept by default, any depth)."""
    monkeypatch.setattr(conv, "KEEP_COLUMNS_MAX_BYTES", -1)
    monkeypatch.setattr(rowconv, "_MIN_WINDOW_DEPTH", 0)
    monkeypatch.setattr(rowconv, "_MAX_OUTPUTS", 1 << 30)


@pytest.mark.parametrize("case", CASES[:2])
def test_conv_ops_take_it_and_match_im2col(case, rowconv_everywhere,
                                           monkeypatch):
    x, w, b, stride, pad, dilation, group = random_case(case,
                                                        dtype=np.float32)
    dy = np.random.default_rng(4).standard_normal(
        naive_conv(x, w, b, stride, pad, dilation, group).shape).astype(
        np.float32)
    calls = []
    for name in ("rowconv_forward", "rowconv_backward_data",
                 "rowconv_backward_weights"):
        module = conv if name == "rowconv_forward" else conv_back

        def spy(*args, _original=getattr(module, name), _name=name, **kw):
            calls.append(_name)
            return _original(*args, **kw)
        monkeypatch.setattr(module, name, spy)
    saved = conv.SavedColumns()
    y = conv_forward(x, w, b, stride, pad, dilation, group, save=saved)
    assert saved.nbytes == 0
    dw = np.full_like(w, 0.5)
    dx = conv_backward(dy, x, w, dw, True, stride, pad, dilation, group,
                       saved=saved)
    assert calls == ["rowconv_forward", "rowconv_backward_data",
                     "rowconv_backward_weights"]
    monkeypatch.setattr(conv, "rowconv_applies", lambda *a, **k: False)
    dw_ref = np.full_like(w, 0.5)
    dx_ref = conv_backward(dy, x, w, dw_ref, True, stride, pad, dilation,
                           group)
    for ours, ref in ((y, conv_forward(x, w, b, stride, pad, dilation,
                                       group)), (dx, dx_ref), (dw, dw_ref)):
        assert ours.dtype == np.float32
        np.testing.assert_allclose(ours, ref, rtol=1e-5,
                                   atol=1e-5 * np.abs(ref).max())


def test_convolution_layer_gradients_through_it(rowconv_everywhere,
                                                monkeypatch):
    calls = []
    original = conv_back.rowconv_backward_data

    def spy(*args, **kw):
        calls.append(args[0].shape)
        return original(*args, **kw)

    monkeypatch.setattr(conv_back, "rowconv_backward_data", spy)
    rng = np.random.default_rng(5)
    layer, bottom, top = setup_layer(
        'type: "Convolution" convolution_param { num_output: 3 '
        'kernel_size: 3 pad: 1 weight_filler { type: "gaussian" } '
        'bias_filler { type: "gaussian" } }',
        [rng.standard_normal((2, 4, 6, 5))])
    check_gradients(layer, bottom, top)
    assert calls


def test_workspace_keeps_zero_borders_apart_between_geometries():
    """Two geometries whose unfolded inputs have one shape but different
    zero cells (pad 2 on 6 rows, pad 1 on 8) share a workspace."""
    workspace = rowconv.RowConvWorkspace()
    rng = np.random.default_rng(6)
    w = rng.standard_normal((2, 3, 3, 3))
    for height, pad in ((6, 2), (8, 1), (6, 2)):
        x = rng.standard_normal((2, 3, height, 5))
        np.testing.assert_allclose(
            rowconv_forward(x, w, None, (1, 1), (pad, 1), (1, 1), 1,
                            workspace=workspace),
            naive_conv(x, w, None, (1, 1), (pad, 1), (1, 1), 1),
            rtol=1e-12, atol=1e-12)


def test_out_is_checked():
    x, w, b, stride, pad, dilation, group = random_case(CASES[0])
    y = rowconv_forward(x, w, b, stride, pad, dilation, group)
    for bad in (np.empty(y.shape[::-1]).T, np.empty(y.shape, np.float32),
                np.empty(y.shape[:-1] + (y.shape[-1] + 1,))):
        with pytest.raises(ValueError, match="out must be"):
            rowconv_forward(x, w, b, stride, pad, dilation, group, out=bad)
    with pytest.raises(ValueError, match="not x's shape"):
        rowconv_backward_data(y, w, (3, 4, 7, 7), pad, dilation, group)
